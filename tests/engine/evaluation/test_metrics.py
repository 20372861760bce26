"""Metrics against independent references written here: per-class loops for mIoU/Acc, a literal
re-implementation of the reference boundary code (pad + iterated 3x3 erosion) and a brute-force
per-pixel distance search for boundary IoU."""
import math

import numpy as np
import pytest
import torch

from bench.engine.evaluation.boundary import boundary_map, boundary_stats, boundary_width
from bench.engine.evaluation.metrics import confusion_matrix, metrics_from_confusion

IGNORE = 255


def reference_iou_acc(preds, labels, num_classes):
    """Per-class loops over the dataset, mmseg convention: totals first; 0/0 -> NaN; nanmean."""
    inter = [0] * num_classes
    union = [0] * num_classes
    gt_area = [0] * num_classes
    correct = total = 0
    for pred, label in zip(preds, labels):
        valid = label != IGNORE
        for c in range(num_classes):
            p = (pred == c) & valid
            g = (label == c) & valid
            inter[c] += int(np.sum(p & g))
            union[c] += int(np.sum(p | g))
            gt_area[c] += int(np.sum(g))
        correct += int(np.sum((pred == label) & valid))
        total += int(np.sum(valid))
    iou = [inter[c] / union[c] * 100 if union[c] else math.nan for c in range(num_classes)]
    acc = [inter[c] / gt_area[c] * 100 if gt_area[c] else math.nan for c in range(num_classes)]
    present = [v for v in iou if not math.isnan(v)]
    present_acc = [v for v in acc if not math.isnan(v)]
    return iou, acc, sum(present) / len(present), sum(present_acc) / len(present_acc), correct / total * 100


def test_miou_matches_per_class_reference_with_absent_classes_and_ignore():
    rng = np.random.default_rng(1)
    num_classes = 7  # class 5: absent from GT and prediction; class 6: predicted, never in GT
    preds, labels = [], []
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for shape in [(13, 17), (20, 9), (5, 31)]:
        label = rng.integers(0, 5, shape)
        label[rng.random(shape) < 0.2] = IGNORE
        pred = np.where(rng.random(shape) < 0.6, label, rng.integers(0, 5, shape))
        pred[rng.random(shape) < 0.1] = 6
        pred[pred == IGNORE] = 0
        preds.append(pred)
        labels.append(label)
        conf += confusion_matrix(torch.from_numpy(pred), torch.from_numpy(label).to(torch.uint8), num_classes)
    iou, acc, miou, macc, aacc = reference_iou_acc(preds, labels, num_classes)
    got = metrics_from_confusion(conf)
    assert math.isnan(got["iou"][5]) and math.isnan(iou[5])
    assert got["iou"][6] == 0.0 and iou[6] == 0.0  # predicted but absent from GT: IoU 0, counted in the mean
    assert math.isnan(got["acc"][6])
    np.testing.assert_allclose(got["iou"], iou, equal_nan=True)
    np.testing.assert_allclose(got["acc"], acc, equal_nan=True)
    assert got["miou"] == pytest.approx(miou) and got["macc"] == pytest.approx(macc)
    assert got["aacc"] == pytest.approx(aacc)
    assert conf.dtype == torch.int64 and int(conf.sum()) == sum(int((lab != IGNORE).sum()) for lab in labels)


def test_perfect_and_all_wrong_predictions():
    label = torch.tensor([[0, 1], [2, IGNORE]])
    perfect = metrics_from_confusion(confusion_matrix(torch.tensor([[0, 1], [2, 1]]), label, 3))
    assert perfect["miou"] == 100.0 and perfect["aacc"] == 100.0
    wrong = metrics_from_confusion(confusion_matrix(torch.tensor([[1, 2], [0, 0]]), label, 3))
    assert wrong["miou"] == 0.0 and wrong["macc"] == 0.0 and wrong["aacc"] == 0.0


def test_out_of_range_label_is_an_error_not_silently_dropped():
    with pytest.raises(ValueError, match="label value 9"):
        confusion_matrix(torch.zeros(2, 2, dtype=torch.long), torch.full((2, 2), 9), 3)


# ---- boundary IoU -------------------------------------------------------------------------------

def reference_mask_to_boundary(mask, dilation_ratio):
    """The reference's steps (copyMakeBorder 1px of 0, cv2.erode 3x3 x d, whose own border reads as 1)."""
    h, w = mask.shape
    d = max(1, int(round(dilation_ratio * np.sqrt(h ** 2 + w ** 2))))
    m = np.pad(mask, 1, constant_values=0)
    for _ in range(d):
        big = np.pad(m, 1, constant_values=1)
        m = np.min([big[dy:dy + h + 2, dx:dx + w + 2] for dy in range(3) for dx in range(3)], axis=0)
    return mask - m[1:h + 1, 1:w + 1]


def brute_force_boundary(mask_in, dont_care, d):
    """Pixel of the mask whose Chebyshev distance to a non-mask, non-don't-care pixel (or the outside) is <= d."""
    h, w = mask_in.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            if not mask_in[y, x]:
                continue
            for yy in range(y - d, y + d + 1):
                for xx in range(x - d, x + d + 1):
                    outside = not (0 <= yy < h and 0 <= xx < w)
                    if outside or (not mask_in[yy, xx] and not dont_care[yy, xx]):
                        out[y, x] = True
    return out


def test_boundary_width_follows_reference():
    assert boundary_width(1024, 2048) == round(0.02 * math.hypot(1024, 2048)) == 46
    assert boundary_width(10, 10) == 1  # never below 1


@pytest.mark.parametrize("seed", range(4))
def test_boundary_map_equals_reference_erosion_without_ignore(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(8, 40, 2)
    label = np.kron(rng.integers(0, 4, (h // 4 + 1, w // 4 + 1)), np.ones((4, 4), int))[:h, :w]
    ratio = float(rng.choice([0.02, 0.05, 0.1]))
    got = boundary_map(torch.from_numpy(label), boundary_width(h, w, ratio)).numpy()
    for c in range(4):
        expected = reference_mask_to_boundary((label == c).astype(np.uint8), ratio).astype(bool)
        np.testing.assert_array_equal(got & (label == c), expected)


def test_boundary_iou_matches_brute_force_with_ignore_pixels():
    rng = np.random.default_rng(7)
    num_classes, ratio = 4, 0.1
    inter_sum = np.zeros(num_classes)
    union_sum = np.zeros(num_classes)
    got_inter = torch.zeros(num_classes, dtype=torch.int64)
    got_union = torch.zeros(num_classes, dtype=torch.int64)
    for _ in range(3):
        h, w = rng.integers(10, 22, 2)
        d = max(1, int(round(ratio * math.hypot(h, w))))
        label = np.kron(rng.integers(0, 3, (h // 3 + 1, w // 3 + 1)), np.ones((3, 3), int))[:h, :w]
        label[rng.random((h, w)) < 0.08] = IGNORE
        pred = np.where(rng.random((h, w)) < 0.8, label, rng.integers(0, num_classes, (h, w)))
        pred[pred == IGNORE] = 3
        ignore = label == IGNORE
        for c in range(num_classes):
            g = brute_force_boundary(label == c, ignore, d)
            p = brute_force_boundary((pred == c) & ~ignore, ignore, d)
            inter_sum[c] += np.sum(g & p)
            union_sum[c] += np.sum(g | p)
        i, u = boundary_stats(torch.from_numpy(pred), torch.from_numpy(label), num_classes, IGNORE, ratio)
        got_inter += i
        got_union += u
    np.testing.assert_array_equal(got_inter.numpy(), inter_sum)
    np.testing.assert_array_equal(got_union.numpy(), union_sum)


def test_perfect_prediction_on_valid_pixels_has_boundary_iou_100():
    rng = np.random.default_rng(3)
    label = np.kron(rng.integers(0, 3, (6, 8)), np.ones((5, 5), int))
    label[10:20, 5:12] = IGNORE
    pred = np.where(label == IGNORE, 1, label)  # anything under the ignore region
    i, u = boundary_stats(torch.from_numpy(pred), torch.from_numpy(label), 3)
    assert torch.equal(i, u) and int(u.sum()) > 0
