"""Experiment files validate; bad configs are one-line errors with the key path, exit 2, and no run directory."""
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.config.experiment_file import load_experiment
from bench.config.overrides import apply_override
from bench.errors import UserError
from tests.engine.train_helpers import tiny_dict

EXPERIMENTS = sorted(p for p in (Path(__file__).resolve().parents[2] / "experiments").rglob("*.yaml")
                     if p.parent.name != "base")


def test_the_experiment_files_exist_and_validate():
    names = {p.name for p in EXPERIMENTS}
    assert {"synthetic.yaml", "cityscapes_r50.yaml", "ade20k_r50.yaml", "pascal_context_r101.yaml"} <= names
    for path in EXPERIMENTS:
        cfg = load_experiment(path, [])
        assert cfg.model.num_classes > 0, path


def test_cityscapes_experiment_is_the_released_recipe():
    cfg = load_experiment(EXPERIMENTS[0].parent / "cityscapes_r50.yaml", [])
    b, t, d, e = cfg.model.backbone, cfg.train, cfg.data, cfg.eval
    assert (b.name, b.stem, b.output_stride, b.multi_grid) == ("resnet50", "deep", 32, (2, 2, 4))
    assert d.crop_size == (769, 769) and d.scale_range == (0.5, 2.0) and cfg.model.num_classes == 19
    assert (t.iterations, t.batch_size, t.lr, t.head_lr_mult, t.poly_power, t.weight_decay) == (
        37200, 8, 0.01, 10, 0.9, 5e-4)
    assert (t.loss, t.ohem_thresh, t.ohem_min_kept) == ("ohem", 0.7, 100000)
    assert cfg.model.aux_head.enabled and cfg.model.aux_head.weight == 0.4 and cfg.model.aux_head.in_feature == "c4"
    assert (e.mode, e.crop_size) == ("slide", (769, 769))
    assert cfg.model.head.name == "ifa" and cfg.model.head.mlp == (512, 256, 256) and cfg.model.head.channels == 256


def test_switching_the_head_by_name_resets_its_options(tmp_path):
    path = EXPERIMENTS[0].parent / "synthetic.yaml"
    base = load_experiment(path, [])
    assert base.model.head.name == "ifa" and base.model.head.channels != 256
    fpn = load_experiment(path, ["model.head.name=fpn"])
    assert fpn.model.head.name == "fpn" and fpn.model.head.channels == 256  # FPN's default, not IFA's 64
    small = load_experiment(path, ["model.head={name: ocr, channels: 32}", "train.iterations=7"])
    assert small.model.head.name == "ocr" and small.model.head.channels == 32 and small.train.iterations == 7
    same = load_experiment(path, ["model.head.name=ifa"])
    assert same.model.head == base.model.head
    data = {"model": {"head": {"name": "ifa", "channels": 8}}}
    apply_override(data, "model.head", {"channels": 16})
    assert data["model"]["head"] == {"name": "ifa", "channels": 16}


def _write(tmp_path, data) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _run_cli(capsys, *argv) -> tuple[int, str]:
    rc = main(["train", *map(str, argv), "--no-progress"])
    return rc, capsys.readouterr().err


CASES = [
    ("malformed YAML", "name: [unclosed\n", [], r"exp\.yaml: malformed YAML \(line"),
    ("unknown key", {"trian": {}}, [], r"exp\.yaml: trian: unknown key"),
    ("wrong type", {"train": {"iterations": "many"}}, [], r"train\.iterations: .*integer"),
    ("missing dataset root", {"data": {"generate": False, "root": "/nonexistent/synth"}}, [], r"data\.root: "),
    ("wrong class count", {"model": {"num_classes": 19}}, [], r"model\.num_classes: 19.*10 classes"),
    ("fp16 on CPU", {"train": {"amp": "fp16", "device": "cpu"}}, [], r"train\.amp: fp16 .*CUDA"),
    ("bad --set", {}, ["--set", "train.iterations"], r"--set: expected KEY\.PATH=VALUE"),
    ("unknown --set key", {}, ["--set", "train.lrr=0.1"], r"train\.lrr: unknown key"),
    ("cuda missing", {"train": {"device": "cuda"}}, [], r"train\.device: cuda"),
]


@pytest.mark.parametrize("what,change,extra,message", CASES, ids=[c[0] for c in CASES])
def test_bad_configs_exit_2_without_a_run_directory(tmp_path, capsys, what, change, extra, message):
    import torch

    if what == "cuda missing" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    if isinstance(change, dict):
        data = tiny_dict(tmp_path / "data")
        for section, values in change.items():
            if isinstance(data.get(section), dict):
                data[section].update(values)
            else:
                data[section] = values
        change = data
    out = tmp_path / "run"
    rc, err = _run_cli(capsys, _write(tmp_path, change), "--out", out, *extra)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_a_run_directory_of_another_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config_hash.txt").write_text("0123456789ab\n")
    rc, err = _run_cli(capsys, _write(tmp_path, tiny_dict(tmp_path / "data")), "--out", out, "--resume")
    assert rc == 2 and "holds a run of another config (config hash 0123456789ab" in err
    assert sorted(p.name for p in out.iterdir()) == ["config_hash.txt"]


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path):
    import torch

    from bench.engine import checkpoint as ckpt
    from bench.engine import train_experiment
    from tests.engine.train_helpers import tiny_config

    cfg = tiny_config(tmp_path / "data")
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    ckpt.save_checkpoint(out / "checkpoints", 10, {"config_hash": "ffffffffffff", "model": {"w": torch.zeros(1)}}, 1)
    with pytest.raises(UserError, match="config hash ffffffffffff.*refusing to resume"):
        train_experiment(cfg, out, resume=True, progress=False)
    assert not (out / "metrics.jsonl").exists()
