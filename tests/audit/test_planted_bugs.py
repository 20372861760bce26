"""Issue 16: one named test per bug that an outside mutation audit planted and no test caught.

Each test was checked by planting its bug (see docs/contributing/testing.md, "The seven planted bugs"): it fails on the
planted bug and passes on the correct code. The atomic-write row lives in tests/audit/test_atomic_writes.py.
"""
import pytest
import torch
import yaml
from torch import nn

from bench.config.experiment import EvalConfig, ExperimentConfig
from bench.data.classes import CITYSCAPES_CLASSES, CITYSCAPES_LABEL_ID_TO_TRAIN_ID, CITYSCAPES_PALETTE
from bench.engine.evaluation.boundary import boundary_stats, boundary_width
from bench.engine.losses import ohem_cross_entropy, ohem_mask
from bench.measure.macs import count_macs
from bench.sweep.spec.trials import load_sweep
from reports.regression.check import run_check
from reports.load import CHECK_REQUIRED, read_results
from tests.reports.fixture import trial, write_sweep


# --- row 1: the published default of boundary IoU ------------------------------------------------------------
def test_boundary_iou_default_dilation_ratio_is_the_published_002():
    # Cheng et al. (CVPR 2021) and bowenc0221/boundary-iou-api use dilation_ratio=0.02 of the image diagonal.
    assert EvalConfig().boundary_dilation_ratio == 0.02
    assert EvalConfig.model_fields["boundary_dilation_ratio"].default == 0.02
    # 1024x2048: diagonal 2289.7 -> d = round(45.8) = 46 pixels (0.05 would give 114)
    assert boundary_width(1024, 2048) == boundary_width(1024, 2048, EvalConfig().boundary_dilation_ratio) == 46


def test_boundary_stats_default_band_matches_the_config_default():
    label = torch.zeros(50, 50, dtype=torch.long)
    label[:, 25:] = 1
    # diagonal 70.7: 0.02 -> d = 1 (0.05 would give 4): a class's band is its 25x50 block minus the 23x48 interior
    default = boundary_stats(label, label, 2)
    explicit = boundary_stats(label, label, 2, dilation_ratio=EvalConfig().boundary_dilation_ratio)
    assert all(torch.equal(a, b) for a, b in zip(default, explicit))
    inter, union = default
    assert inter.tolist() == union.tolist() == [50 * 25 - 48 * 23] * 2


# --- row 2: OHEM keeps min_kept per image --------------------------------------------------------------------
def _confident_logits(n_images: int, h: int, w: int, classes: int = 3):
    """Every pixel predicts its true class with a distinct probability above 0.9 (so above thresh=0.7)."""
    label = torch.arange(n_images * h * w).reshape(n_images, h, w) % classes
    margin = 3.0 + torch.arange(n_images * h * w, dtype=torch.float32).reshape(n_images, h, w) / 10
    logits = torch.zeros(n_images, classes, h, w)
    logits.scatter_(1, label.unsqueeze(1), margin.unsqueeze(1))
    return logits, label


def test_ohem_keeps_min_kept_pixels_per_image_with_two_images():
    logits, label = _confident_logits(2, 8, 8)
    prob = torch.softmax(logits, 1).gather(1, label.unsqueeze(1))
    assert float(prob.min()) > 0.7  # a confident model: the threshold alone would keep nothing
    kept = ohem_mask(logits, label, thresh=0.7, min_kept=10)
    # mmseg's OHEMPixelSampler: batch_kept = min_kept * N -> the 20 least confident pixels of the batch
    assert int(kept.sum()) == 10 * 2
    true_prob = prob.squeeze(1)
    assert float(true_prob[kept].max()) < float(true_prob[~kept].min())
    one = ohem_mask(logits[:1], label[:1], thresh=0.7, min_kept=10)
    assert int(one.sum()) == 10


def test_ohem_loss_over_two_images_averages_min_kept_times_n_pixels():
    logits, label = _confident_logits(2, 8, 8)
    kept = ohem_mask(logits, label, 0.7, 10)
    per_pixel = torch.nn.functional.cross_entropy(logits, label, reduction="none")
    assert int(kept.sum()) == 20
    assert float(ohem_cross_entropy(logits, label, 0.7, 10)) == pytest.approx(float(per_pixel[kept].mean()), rel=1e-6)


# --- row 3: check's tolerance is inclusive --------------------------------------------------------------------
IFA = dict(dataset="cityscapes", head="ifa", backbone="resnet50", stem="deep", output_stride=32, iterations=37200,
           crop="769x769", batch_size=8, num_classes=19)
PUBLISHED_IFA = {
    "dataset": "cityscapes_val", "method": "FPN + IFA", "backbone": "ResNet-50", "head": "IFA", "kind": "published",
    "source": "test row", "note": "", "row_index": 0, "miou_ss": 78.85,
    "match": {"dataset": "cityscapes", "head": "ifa", "backbone": "resnet50", "stem": "deep", "output_stride": 32,
              "iterations": 37200, "crop": "769x769", "batch_size": 8, "assumed": ""},
}


def _check_one(tmp_path, reproduced, tolerance):
    root = write_sweep(tmp_path, [trial(seed=0, miou=reproduced, **IFA)], per_class=False, curves=False)
    return run_check(read_results(root, CHECK_REQUIRED), [PUBLISHED_IFA], tolerance=tolerance)


@pytest.mark.parametrize("reproduced", [77.85, 79.85])
def test_check_delta_exactly_equal_to_tolerance_passes(tmp_path, reproduced):
    assert abs(reproduced - 78.85) == 1.0  # exactly 1.0 in binary floating point
    res = _check_one(tmp_path, reproduced, tolerance=1.0)
    row = res.matched.iloc[0]
    assert row["delta"] == pytest.approx(reproduced - 78.85)
    assert bool(row["within_tolerance"]) and row["verdict"] == "ok" and res.exit_code == 0


def test_check_delta_just_over_tolerance_fails(tmp_path):
    res = _check_one(tmp_path, 77.85, tolerance=0.99)
    assert res.matched.iloc[0]["verdict"] == "outside tolerance" and res.exit_code == 1


# --- row 4: the config hash covers the eval section -----------------------------------------------------------
SWEEP_BASE = {
    "name": "tiny",
    "data": {"dataset": "synthetic", "root": "/tmp/ifa-bench-audit-data", "crop_size": [64, 64]},
    "model": {"num_classes": 4, "backbone": {"name": "resnet18", "width": 0.25},
              "head": {"name": "fpn", "channels": 16}},
    "train": {"iterations": 3},
}


def test_sweep_over_eval_flip_gives_two_distinct_trials(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**SWEEP_BASE, "sweep": {"axes": {"eval.flip": [False, True]}}}))
    sweep = load_sweep(path)
    assert sweep.collapsed == 0 and len(sweep.trials) == 2
    assert sorted(t.config.eval.flip for t in sweep.trials) == [False, True]
    assert len({t.config_hash for t in sweep.trials}) == 2


@pytest.mark.parametrize("section, change", [
    ("eval", {"flip": True}), ("eval", {"boundary_dilation_ratio": 0.05}), ("eval", {"scales": [0.5, 1.0]}),
    ("train", {"iterations": 4}), ("data", {"crop_size": [32, 32]}), ("model", {"num_classes": 5}),
])
def test_config_hash_changes_with_every_result_section(section, change):
    base = ExperimentConfig.model_validate(SWEEP_BASE)
    changed = ExperimentConfig.model_validate({**SWEEP_BASE, section: {**SWEEP_BASE.get(section, {}), **change}})
    assert changed.config_hash() != base.config_hash()
    assert ExperimentConfig.model_validate({**SWEEP_BASE, "name": "other"}).config_hash() == base.config_hash()
    assert len(base.config_hash()) == 12 and int(base.config_hash(), 16) >= 0


# --- row 5: exact MACs of conv + BatchNorm -------------------------------------------------------------------
def test_conv_bn_model_exact_macs_including_batchnorm():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()).eval()
    macs = count_macs(model, torch.zeros(2, 3, 16, 16))
    conv = 2 * 8 * 16 * 16 * (3 * 3 * 3)  # output elements x (C_in x k x k)
    bn = 2 * (2 * 8 * 16 * 16)  # inference BatchNorm with affine: a scale and a shift per element (fvcore)
    assert macs.by_operator == {"conv": conv, "batch_norm": bn}
    assert macs.by_module == {"0": conv, "1": bn, "2": 0}
    assert macs.total == conv + bn == 118784


# --- row 6: Cityscapes class names in the official train-id order --------------------------------------------
# cityscapesScripts helpers/labels.py (github.com/mcordts/cityscapesScripts), the labels with trainId 0..18:
OFFICIAL_CITYSCAPES_TRAIN_IDS = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)


def test_cityscapes_names_in_official_train_id_order():
    assert CITYSCAPES_CLASSES == OFFICIAL_CITYSCAPES_TRAIN_IDS
    assert CITYSCAPES_CLASSES.index("truck") == 14 and CITYSCAPES_CLASSES.index("bus") == 15


def test_cityscapes_tables_match_cityscapesscripts():
    from cityscapesscripts.helpers.labels import labels  # the official table (dev dependency)

    train = sorted((l for l in labels if 0 <= l.trainId < 255 and not l.ignoreInEval), key=lambda l: l.trainId)
    assert [l.trainId for l in train] == list(range(19))
    assert CITYSCAPES_CLASSES == tuple(l.name for l in train)
    assert CITYSCAPES_PALETTE == [tuple(l.color) for l in train]
    assert CITYSCAPES_LABEL_ID_TO_TRAIN_ID == {l.id: l.trainId for l in train}
