"""Sweep spec: expansion semantics, one-line errors before any Ray process, the dry-run table."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.cli import main
from bench.errors import UserError
from bench.sweep.spec.trials import load_sweep

BASE = {
    "name": "tiny",
    "data": {"dataset": "synthetic", "root": "/tmp/ifa-bench-spec-data", "crop_size": [64, 64]},
    "model": {"num_classes": 4, "backbone": {"name": "resnet18", "width": 0.25},
              "head": {"name": "ifa", "channels": 32, "mlp": [32, 32], "formulation": "reference"}},
    "train": {"iterations": 3},
}


def _write(tmp_path, sweep, base=None, name="s.yaml") -> Path:
    doc = dict(base or BASE)
    if sweep is not None:
        doc["sweep"] = sweep
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_cartesian_product_and_head_reset(tmp_path):
    sweep = load_sweep(_write(tmp_path, {"axes": {"head": ["ifa", "fpn", {"name": "ppm", "channels": 16}],
                                                  "seed": [0, 1], "train.iterations": [2, 5]}}))
    assert len(sweep.trials) == 3 * 2 * 2 and sweep.collapsed == 0
    by = {(t.config.model.head.name, t.config.seed, t.config.train.iterations): t for t in sweep.trials}
    assert set(by) == {(h, s, i) for h in ("ifa", "fpn", "ppm") for s in (0, 1) for i in (2, 5)}
    ifa = by["ifa", 0, 2].config.model.head
    assert (ifa.channels, ifa.mlp, ifa.formulation) == (32, (32, 32), "reference")  # base head keeps its options
    fpn = by["fpn", 0, 2].config.model.head
    assert fpn.channels == 256 and fpn.scale_channels == 128  # switching head resets to that head's defaults
    assert by["ppm", 1, 5].config.model.head.channels == 16
    assert by["ppm", 1, 5].config.model.backbone.width == 0.25  # other sections untouched
    hashes = [t.config_hash for t in sweep.trials]
    assert len(set(hashes)) == len(hashes) and all(t.config.config_hash() == t.config_hash for t in sweep.trials)
    assert by["ppm", 1, 5].trial_id == "synthetic-resnet18-ppm-s1-iterations=5"
    assert by["ppm", 1, 5].extra_axes == {"train.iterations": 5}


def test_head_only_keys_apply_to_heads_that_have_them(tmp_path):
    sweep = load_sweep(_write(tmp_path, {"axes": {"head": ["ifa", "fpn"],
                                                  "model.head.formulation": ["reference", "fused"]}}))
    heads = sorted((t.config.model.head.name, getattr(t.config.model.head, "formulation", "")) for t in sweep.trials)
    assert heads == [("fpn", ""), ("ifa", "fused"), ("ifa", "reference")]
    assert sweep.collapsed == 1
    fpn = next(t for t in sweep.trials if t.config.model.head.name == "fpn")
    assert fpn.extra_axes == {"model.head.formulation": ""}


def test_dataset_presets_from_mapping_and_file(tmp_path):
    other = dict(BASE, data={"dataset": "cityscapes", "root": "/data/cs", "crop_size": [512, 1024]},
                 model={"num_classes": 19}, eval={"mode": "slide"})
    _write(tmp_path, None, other, name="cityscapes.yaml")
    sweep = load_sweep(_write(tmp_path, {
        "axes": {"dataset": ["synthetic", "cityscapes", "ade"], "backbone": ["resnet18", {"name": "resnet50"}]},
        "datasets": {"cityscapes": "cityscapes.yaml",
                     "ade": {"data": {"dataset": "ade20k", "root": "/data/ade"}, "model": {"num_classes": 150}}},
    }))
    assert len(sweep.trials) == 6
    cs = next(t for t in sweep.trials if t.axis_values["dataset"] == "cityscapes").config
    assert (cs.data.dataset, str(cs.data.root), cs.data.crop_size, cs.model.num_classes, cs.eval.mode) == (
        "cityscapes", "/data/cs", (512, 1024), 19, "slide")
    assert cs.model.head.channels == 32  # the base model stays, only num_classes changes
    ade = next(t for t in sweep.trials if t.axis_values["dataset"] == "ade").config
    assert ade.data.crop_size == (512, 1024)  # a preset replaces `data`: the schema default, not the base's 64x64
    assert ade.model.num_classes == 150
    syn = [t for t in sweep.trials if t.axis_values["dataset"] == "synthetic"]
    assert {t.config.model.backbone.name for t in syn} == {"resnet18", "resnet50"}
    assert all(t.config.model.backbone.width == 0.25 for t in syn)  # a backbone value keeps the other options


def test_no_sweep_section_is_one_trial(tmp_path):
    sweep = load_sweep(_write(tmp_path, None))
    assert len(sweep.trials) == 1 and sweep.name == "tiny"
    assert sweep.trials[0].trial_id == "synthetic-resnet18-ifa-s0"


@pytest.mark.parametrize(
    "sweep, expected",
    [
        ({"axes": {"model.head.chanels": [1]}}, "sweep.axes.model.head.chanels: unknown config key"),
        ({"axes": {"train.bogus": [1]}}, "sweep.axes.train.bogus: unknown config key"),
        ({"axes": {"colour": [1]}}, "sweep.axes.colour: unknown config key"),
        ({"axes": {"seed": []}}, "sweep.axes.seed: empty axis"),
        ({"axes": {"head": ["fpn"], "model.head.pe": ["none"]}}, "no head in this sweep has the option 'pe'"),
        ({"axes": {"head": ["unet"]}}, "(trial head=unet): model.head: Input tag 'unet'"),
        ({"axes": {"head": ["fpn"], "model.head.dropout": [0.1, 2]}},
         "(trial head=fpn, model.head.dropout=2): model.head.dropout: Input should be less than 1"),
        ({"axes": {"dataset": ["cityscapes"]}}, "sweep.axes.dataset: dataset 'cityscapes' is neither"),
        ({"resources": {"cpus": 0}}, "sweep.resources.cpus: Input should be greater than 0"),
        ({"resources": {"cpus": -1}}, "sweep.resources.cpus: Input should be greater than 0"),
        ({"resources": {"workers": 0}}, "sweep.resources.workers: Input should be greater than 0"),
        ({"axes": {"seed": [0]}, "retries": 3}, "sweep.retries: unknown key"),
        ({"axes": {"model.head.name": ["fpn"]}}, "use the `head` axis"),
        ({"axes": {"train.threads": [1, 3]}, "resources": {"cpus": 2}},
         "(trial train.threads=3): train.threads: 3 is more than the 2 CPU(s) each trial reserves"),
    ],
)
def test_spec_errors_are_one_line_and_start_no_ray(tmp_path, capsys, sweep, expected):
    import ray

    path = _write(tmp_path, sweep)
    with pytest.raises(UserError) as info:
        load_sweep(path)
    assert expected in str(info.value) and str(info.value).startswith(str(path)), str(info.value)
    assert "\n" not in str(info.value)
    # the command: exit 2, one line, and still no Ray
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ifa-bench sweep: error: ") and expected in err and "\n" not in err
    assert ray.is_initialized() is False
    assert not (tmp_path / "out").exists()


def test_impossible_resources_refused_before_ray(tmp_path, capsys):
    import os

    import ray

    cores = os.cpu_count()
    for res, what in [({"cpus": cores + 1}, "CPUs"), ({"cpus": 1, "workers": cores + 1}, "CPUs"),
                      ({"gpus": 64}, "GPUs")]:
        path = _write(tmp_path, {"resources": res})
        assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert f"sweep.resources: a trial needs" in err and f"but only" in err and what in err, err
        assert ray.is_initialized() is False


def test_dry_run_table(tmp_path, capsys):
    path = _write(tmp_path, {"axes": {"head": ["ifa", "fpn"], "seed": [0, 1, 2], "model.head.formulation": ["fused"]},
                             "resources": {"cpus": 0.5, "workers": 2}})
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.split("\n\n")[0].strip().splitlines()  # then the cost table (docs/sweeps.md)
    header, rows, footer = lines[0].split(), lines[1:-1], lines[-1]
    assert header[:7] == ["#", "trial_id", "config_hash", "dataset", "backbone", "head", "seed"]
    assert "model.head.formulation" in header
    assert len(rows) == 6 and footer.startswith("6 trials (0 already done")
    sweep = load_sweep(path)
    for row, trial in zip(rows, sweep.trials):
        cells = row.split()
        assert cells[1] == trial.trial_id and cells[2] == trial.config_hash
        assert "0.5 CPU x 2 workers" in row and cells[-1] == "new"
    fpn_rows = [r for r in rows if " fpn " in r]
    assert len(fpn_rows) == 3 and all(r.split()[7] == "-" for r in fpn_rows)
    assert not (tmp_path / "out").exists()


def test_dry_run_in_a_fresh_process_never_imports_ray(tmp_path):
    path = _write(tmp_path, {"axes": {"seed": [0, 1]}})
    code = ("import sys; from bench.cli import main; rc = main(['sweep', sys.argv[1], '--dry-run']);"
            "assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "2 trials" in proc.stdout
