"""`ifa-bench eval` end to end: a real small segmentor, a Cityscapes-layout fixture, JSON output checked against
an independent count; bad checkpoints give one line and exit 2."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from bench.cli import main
from tests.data.fixtures import make_cityscapes

try:
    import bench.models as models
    from bench.models import build_segmentor  # noqa: F401
except ImportError:  # the models package lands separately
    pytest.skip("bench.models.build_segmentor is not available", allow_module_level=True)

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


def model_section(num_classes=19, head="fpn"):
    heads = {
        "fpn": {"name": "fpn", "channels": 16, "scale_channels": 8},
        "ifa": {"name": "ifa", "channels": 16, "mlp": [16, 16], "pe_dim": 8},
    }
    return {"num_classes": num_classes,
            "backbone": {"name": "resnet18", "width": 0.25, "stem": "standard", "output_stride": 32},
            "head": heads[head], "aux_head": {"enabled": True, "channels": 8}}


@pytest.fixture
def setup(tmp_path):
    samples = make_cityscapes(tmp_path / "cs", n_train=1, n_val=2, size=(32, 48))
    cfg = {"name": "t", "data": {"dataset": "cityscapes", "root": str(tmp_path / "cs"), "crop_size": [32, 32],
                                 "num_workers": 0},
           "model": model_section(), "train": {"device": "cpu"}}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from bench.config import ExperimentConfig, validate

    torch.manual_seed(0)
    model = models.build_segmentor(validate(ExperimentConfig, cfg).model).eval()
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "iter": 7}, ckpt)
    return tmp_path, config, ckpt, model, samples["val"]


def reference_miou(model, samples, num_classes=19):
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    with torch.no_grad():
        for s in samples:
            image = np.asarray(Image.open(s.image).convert("RGB"), np.float32)
            x = torch.from_numpy(((image - MEAN) / STD).astype(np.float32).transpose(2, 0, 1))[None]
            pred = model(x).argmax(1)[0].numpy()
            valid = s.raw != 255
            for c in range(num_classes):
                inter[c] += np.sum((pred == c) & (s.raw == c) & valid)
                union[c] += np.sum(((pred == c) | (s.raw == c)) & valid)
    present = union > 0
    return float(np.mean(inter[present] / union[present]) * 100)


def test_eval_writes_json_matching_an_independent_count(setup, capsys):
    tmp, config, ckpt, model, val = setup
    out = tmp / "res" / "metrics.json"
    assert main(["eval", str(ckpt), "--config", str(config), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "road" in printed and "boundary IoU" in printed
    res = json.loads(out.read_text())
    assert res["num_images"] == 2 and res["iter"] == 7 and res["split"] == "val"
    assert res["miou"] == pytest.approx(reference_miou(model, val), abs=1e-9)
    assert set(res["per_class_iou"]) >= {"road", "bicycle"} and len(res["per_class_iou"]) == 19
    assert res["eval_mode"] == "whole" and res["eval_scales"] == "1.0" and res["eval_flip"] is False
    assert 0 <= res["boundary_iou"] <= 100
    # beside it, each image's class intersections and unions (the bootstrap's input); no temp file left
    assert sorted(p.name for p in out.parent.iterdir()) == ["metrics.json", "metrics.per_image.npz"]
    from bench.engine.evaluation.bootstrap import load_per_image, miou_from_sums

    inter, union = load_per_image(out.parent / "metrics.per_image.npz")
    assert inter.shape == union.shape == (2, 19)
    assert miou_from_sums(inter.sum(0), union.sum(0)) == pytest.approx(res["miou"], abs=1e-9)
    assert res["miou_ci_low"] <= res["miou"] <= res["miou_ci_high"] and res["ci_level"] == 95
    assert "bootstrap interval" in printed


def test_eval_overrides_protocol(setup, capsys):
    tmp, config, ckpt, _, _ = setup
    out = tmp / "ms.json"
    rc = main(["eval", str(ckpt), "--config", str(config), "--mode", "slide", "--crop", "32x32", "--scales",
               "0.75,1.0", "--flip", "--ifa-query", "label", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert (res["eval_mode"], res["eval_scales"], res["eval_flip"], res["ifa_query"]) == \
        ("slide", "0.75,1.0", True, "label")
    assert res["eval_crop"] == "32x32" and res["eval_stride"] == "21x21"


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_checkpoint_of_another_model_is_refused_naming_file_and_key(setup, tmp_path, capsys):
    _, config, ckpt, _, _ = setup
    other = models.build_segmentor(
        __import__("bench.config", fromlist=["ModelConfig"]).ModelConfig(**model_section(head="ifa")))
    bad = tmp_path / "ifa.pt"
    torch.save({"model": other.state_dict()}, bad)
    line = _one_line_error(capsys, ["eval", str(bad), "--config", str(config)])
    assert str(bad) in line and "key 'head." in line

    wrong_classes = models.build_segmentor(
        __import__("bench.config", fromlist=["ModelConfig"]).ModelConfig(**model_section(num_classes=5)))
    bad2 = tmp_path / "c5.pt"
    torch.save({"model": wrong_classes.state_dict()}, bad2)
    line = _one_line_error(capsys, ["eval", str(bad2), "--config", str(config)])
    assert str(bad2) in line and "shape" in line


def test_unreadable_or_missing_checkpoint(setup, tmp_path, capsys):
    _, config, _, _, _ = setup
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert str(junk) in _one_line_error(capsys, ["eval", str(junk), "--config", str(config)])
    missing = tmp_path / "nope.pt"
    assert "no such file" in _one_line_error(capsys, ["eval", str(missing), "--config", str(config)])
    nomodel = tmp_path / "nomodel.pt"
    torch.save({"optimizer": {}}, nomodel)
    assert "'model'" in _one_line_error(capsys, ["eval", str(nomodel), "--config", str(config)])
    assert "--scales" in _one_line_error(capsys, ["eval", str(junk), "--config", str(config), "--scales", "0,1"])
    line = _one_line_error(capsys, ["eval", str(junk), "--config", str(config), "--mode", "slide", "--stride", "40x8"])
    assert line.endswith("--stride: 40x8 is larger than the window 32x32 and would leave pixels unpredicted")


def test_console_error_has_no_traceback(setup, tmp_path):
    _, config, _, _, _ = setup
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 10)
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "eval", str(junk), "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(junk) in proc.stderr


@pytest.mark.timeout(240)
def test_checkpoint_written_by_training_evaluates_to_the_runs_final_metrics(tmp_path, capsys):
    from bench.engine import train_experiment
    from bench.config import ExperimentConfig, validate

    cfg = {"name": "tiny", "seed": 0,
           "data": {"dataset": "synthetic", "root": str(tmp_path / "syn"), "generate": True,
                    "synthetic_size": [48, 96], "synthetic_train": 2, "synthetic_val": 2, "crop_size": [48, 48],
                    "num_workers": 0},
           "model": {**model_section(num_classes=10, head="ifa"), "aux_head": {"enabled": False}},
           "train": {"iterations": 2, "batch_size": 2, "checkpoint_every": 2, "log_every": 1, "device": "cpu"}}
    final = train_experiment(validate(ExperimentConfig, cfg), tmp_path / "run", progress=False)
    out = tmp_path / "eval.json"
    config = tmp_path / "run" / "config.yaml"
    assert main(["eval", str(tmp_path / "run" / "checkpoints" / "last.pt"), "--config", str(config),
                 "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["iter"] == 2 and res["checkpoint_config_hash"] == res["config_hash"]
    for key in ("miou", "macc", "aacc", "boundary_iou"):
        assert res[key] == pytest.approx(final[key], abs=1e-9), key
