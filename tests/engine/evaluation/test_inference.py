"""Whole/slide inference, padding, multi-scale + flip, and the IFA query switch."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.engine.evaluation.inference import (
    default_stride, ifa_query_mode, infer_logits, predict_labels, predict_probs, slide_logits, window_starts,
)


class PixelModel(nn.Module):
    """Per-pixel (1x1 conv) segmentor: translation-equivariant, so windowing must not change its logits.
    `stride` > 1 makes it predict on a coarser grid and upsample, like a real head."""

    def __init__(self, num_classes=4, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(3, num_classes, 1)
        self.stride = stride
        self.calls = []
        self.query_at_output = False
        self.query_seen = []

    def forward(self, images, size=None):
        self.calls.append(tuple(images.shape))
        self.query_seen.append(self.query_at_output)
        x = images[:, :, ::self.stride, ::self.stride] if self.stride > 1 else images
        out = self.conv(x)
        size = size or images.shape[-2:]
        if tuple(out.shape[-2:]) != tuple(size):
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out


@pytest.fixture
def model():
    torch.manual_seed(0)
    return PixelModel().eval()


def test_window_starts_cover_and_end_at_the_border():
    assert window_starts(1024, 769, 513) == [0, 255]
    assert window_starts(2048, 769, 513) == [0, 513, 1026, 1279]
    assert window_starts(50, 64, 32) == [0]
    for length, crop, stride in [(100, 30, 20), (97, 32, 11), (64, 64, 10)]:
        starts = window_starts(length, crop, stride)
        covered = torch.zeros(length, dtype=torch.bool)
        for s in starts:
            covered[s:s + crop] = True
        assert bool(covered.all()) and starts[-1] + crop == length and starts[0] == 0
    assert default_stride((769, 769)) == (513, 513) and default_stride((512, 1024)) == (341, 683)


def test_slide_equals_whole_for_a_translation_equivariant_model(model):
    image = torch.randn(1, 3, 45, 70)
    with torch.inference_mode():
        whole = model(image)
        slid = slide_logits(model, image, crop=(20, 32), stride=(13, 21))
        batched = slide_logits(model, image, crop=(20, 32), stride=(13, 21), window_batch=4)
    torch.testing.assert_close(slid, whole)
    torch.testing.assert_close(batched, whole)
    assert all(shape[-2:] == (20, 32) for shape in model.calls[1:])
    assert max(shape[0] for shape in model.calls) == 4  # windows were batched


def test_slide_averages_overlaps_with_a_count_map():
    class PositionModel(nn.Module):  # logit = 1 + window's own x offset: differs between overlapping windows
        def forward(self, images, size=None):
            return images[:, :1] * 0 + images[:, 1:2].amin(dim=(2, 3), keepdim=True)

    xs = torch.arange(10.0).expand(1, 1, 4, 10)
    image = torch.cat([torch.zeros_like(xs), xs, torch.zeros_like(xs)], 1)
    with torch.inference_mode():
        out = slide_logits(PositionModel(), image, crop=(4, 6), stride=(4, 4))
    # windows start at x = 0 and 4: columns 4-5 are covered twice -> mean of 0 and 4
    expected = torch.tensor([0, 0, 0, 0, 2, 2, 4, 4, 4, 4.0])
    torch.testing.assert_close(out[0, 0, 0], expected)


def test_image_smaller_than_crop_is_padded_then_cropped(model):
    image = torch.randn(1, 3, 17, 23)
    with torch.inference_mode():
        out = slide_logits(model, image, crop=(32, 40), stride=(20, 20))
    assert out.shape == (1, 4, 17, 23)
    assert model.calls[-1][-2:] == (32, 40)  # the model saw a full-size (padded) window
    torch.testing.assert_close(out, model(image).detach())


def test_slide_mode_resizes_to_the_output_size(model):
    image = torch.randn(1, 3, 30, 40)
    with torch.inference_mode():
        out = infer_logits(model, image, (60, 80), mode="slide", crop=(16, 16))
        expected = F.interpolate(model(image), size=(60, 80), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected)


def test_flip_is_undone_before_averaging(model):
    image = torch.randn(1, 3, 16, 24)
    single = predict_probs(model, image)
    flipped = predict_probs(model, image, flip=True)
    torch.testing.assert_close(flipped, single)  # a per-pixel model is flip-equivariant
    torch.testing.assert_close(single.sum(1), torch.ones(1, 16, 24))
    assert torch.equal(predict_labels(model, image), single.argmax(1))  # one view: argmax of the logits


def test_multi_scale_averages_softmax_probabilities_at_the_output_size():
    torch.manual_seed(1)
    model = PixelModel(stride=2).eval()
    image = torch.randn(1, 3, 20, 30)
    out_size = (40, 60)
    probs = predict_probs(model, image, out_size, scales=(0.5, 1.0, 1.5), flip=True)
    assert probs.shape == (1, 4, 40, 60)
    torch.testing.assert_close(probs.sum(1), torch.ones(1, 40, 60))
    with torch.inference_mode():
        views = []
        for s in (0.5, 1.0, 1.5):
            scaled = F.interpolate(image, size=(round(20 * s), round(30 * s)), mode="bilinear", align_corners=False) \
                if s != 1.0 else image
            views.append(model(scaled, size=out_size).softmax(1))
            views.append(model(scaled.flip(-1), size=out_size).flip(-1).softmax(1))
    torch.testing.assert_close(probs, torch.stack(views).mean(0))
    assert [c[-2:] for c in model.calls[:6:2]] == [(10, 15), (20, 30), (30, 45)]
    labels = predict_labels(model, image, out_size, scales=(0.5, 1.0, 1.5), flip=True)
    assert labels.shape == (1, 40, 60) and torch.equal(labels, probs.argmax(1))


def test_ifa_query_mode_sets_and_restores(model):
    image = torch.randn(1, 3, 8, 8)
    with ifa_query_mode(model, "label"):
        predict_probs(model, image)
    assert model.query_seen[-1] is True and model.query_at_output is False
    plain = nn.Conv2d(3, 2, 1)
    with ifa_query_mode(plain, "upsample"):
        assert plain.query_at_output is False
    assert not hasattr(plain, "query_at_output")
    with pytest.raises(ValueError):
        with ifa_query_mode(model, "nearest"):
            pass


def test_stride_larger_than_window_is_refused(model):
    with pytest.raises(ValueError, match="uncovered"):
        slide_logits(model, torch.randn(1, 3, 40, 40), crop=(10, 10), stride=(11, 5))


def _tiny_ifa_segmentor():
    models = pytest.importorskip("bench.models")
    from bench.config import ModelConfig

    cfg = ModelConfig(num_classes=5, backbone={"name": "resnet18", "width": 0.25},
                      head={"name": "ifa", "channels": 16, "mlp": [16, 16], "pe_dim": 8}, aux_head={"enabled": False})
    return models.build_segmentor(cfg).eval()


def test_real_ifa_segmentor_is_queried_at_the_label_size_or_upsampled():
    model = _tiny_ifa_segmentor()
    shapes = []
    model.head.register_forward_hook(lambda mod, inp, out: shapes.append(tuple(out.shape[-2:])))
    image = torch.randn(1, 3, 64, 96)
    with ifa_query_mode(model, "label"):
        label_probs = predict_probs(model, image, (50, 70))
    with ifa_query_mode(model, "upsample"):
        up_probs = predict_probs(model, image, (50, 70))
    assert shapes == [(50, 70), (16, 24)]  # direct query at the label size vs the stride-4 grid
    assert label_probs.shape == up_probs.shape == (1, 5, 50, 70)
    assert not torch.allclose(label_probs, up_probs)
    with ifa_query_mode(model, "label"):
        slid = predict_probs(model, image, mode="slide", crop=(96, 128), stride=(64, 64))
    assert slid.shape == (1, 5, 64, 96) and shapes[-1] == (96, 128)  # padded window queried at full resolution
