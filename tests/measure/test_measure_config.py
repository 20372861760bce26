"""`ifa-bench measure --config EXP.yaml [--set ...] [--checkpoint] [--all] [--out]`: the experiment's own model,
the same numbers as a sweep's measurement, rows kept when a run is interrupted."""
import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from bench.config.experiment_file import load_experiment
from tests.measure.test_measure_command import _one_line_error, _run  # noqa: F401 - shared helpers

SYNTHETIC = Path(__file__).resolve().parents[2] / "experiments" / "synthetic.yaml"
FAST = ["--no-latency", "--no-memory", "--format", "json"]


@pytest.mark.slow
def test_config_gives_the_sweeps_gmacs_and_params_for_the_demo_ifa(capsys):
    from bench.sweep.tasks.measurement import _run_measurements

    code, out, _ = _run(capsys, "--config", str(SYNTHETIC), *FAST)
    assert code == 0
    (row,) = json.loads(out)
    cfg = load_experiment(SYNTHETIC, ["measure.latency=false"])
    # how a sweep's measurement phase measures the model (the body of its Ray task, run here in-process)
    sweep = _run_measurements([(cfg.model_dump(mode="json"), "key")], "cpu", torch.get_num_threads(), None)[0]
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()  # it started no Ray of its own
    for key in ("gmacs", "gmacs_backbone", "gmacs_head", "params_m", "params_backbone_m", "params_head_m",
                "measure_input", "unsupported_ops", "dtype", "device"):
        assert row[key] == sweep[key], key
    sweep_only = {"measure_key", "measure_node", "measure_node_id"}  # where the phase ran
    assert set(sweep) - sweep_only <= set(row)  # every key measure_model returns is passed through
    # the README's demo row for IFA: 2.57 GMACs at 256x512, 2.93 M parameters
    assert round(row["gmacs"], 2) == 2.57 and round(row["params_m"], 2) == 2.93
    assert row["measure_input"] == "256x512" and row["batch"] == 1 and row["backbone_width"] == 0.5
    assert row["model"] == "IFA (auto: fused)" and row["formulation"] == "fused"  # what auto ran on the CPU
    assert row["num_classes"] == 10 and row["stem"] == "deep"
    assert row["config_hash"] == load_experiment(SYNTHETIC, []).config_hash()


def test_set_changes_the_measured_model(capsys):
    small = ["--input", "64x128"]
    code, out, _ = _run(capsys, "--config", str(SYNTHETIC), *small, *FAST)
    assert code == 0
    (base,) = json.loads(out)
    code, out, _ = _run(capsys, "--config", str(SYNTHETIC), *small, *FAST, "--set", "model.backbone.width=0.25",
                        "--set", "model.head.name=fpn")
    assert code == 0
    (other,) = json.loads(out)
    assert other["model"] == "Semantic-FPN" and other["backbone_width"] == 0.25
    assert other["params_backbone_m"] < base["params_backbone_m"] / 3  # width 0.25 vs 0.5: ~1/4 of the weights
    assert other["overrides"] == "model.backbone.width=0.25 model.head.name=fpn"
    assert other["config_hash"] != base["config_hash"]


@pytest.mark.parametrize("argv, needles", [
    (["--set", "model.backbone.width=-1"], ["model.backbone.width"]),
    (["--set", "model.nosuchkey=1"], ["nosuchkey"]),
    (["--set", "model.backbone.width"], ["--set", "KEY.PATH=VALUE"]),
    (["--backbone", "resnet50"], ["--backbone", "--config", "--set model.backbone.name"]),
    (["--head", "fpn"], ["--head", "--set model.head.name"]),
    (["--classes", "3"], ["--classes", "model.num_classes"]),
    (["--out", "rows.txt"], ["--out", "rows.txt", ".csv"]),
])
def test_config_errors_are_one_line(capsys, argv, needles):
    code, _, err = _run(capsys, "--config", str(SYNTHETIC), *FAST, *argv)
    _one_line_error(code, err, *needles)


def test_set_without_config_and_missing_config_are_one_line(capsys, tmp_path):
    code, _, err = _run(capsys, "--set", "model.num_classes=3", *FAST)
    _one_line_error(code, err, "--set", "--config")
    code, _, err = _run(capsys, "--config", str(tmp_path / "nope.yaml"), *FAST)
    _one_line_error(code, err, "nope.yaml")


def test_half_width_checkpoint_loads_with_its_config_only(capsys, tmp_path):
    from bench.models import build_segmentor

    cfg = load_experiment(SYNTHETIC, [])
    torch.manual_seed(1)
    ckpt = tmp_path / "iter_300.pt"
    torch.save({"model": build_segmentor(cfg.model).state_dict(), "iter": 300}, ckpt)

    code, out, _ = _run(capsys, "--config", str(SYNTHETIC), "--input", "64x128", *FAST, "--checkpoint", str(ckpt))
    assert code == 0
    (row,) = json.loads(out)
    assert row["checkpoint"] == str(ckpt) and row["backbone_width"] == 0.5

    # the same file against another width (the config with --set, or the command line's full-width model)
    code, _, err = _run(capsys, "--config", str(SYNTHETIC), *FAST, "--set", "model.backbone.width=1.0",
                        "--checkpoint", str(ckpt))
    _one_line_error(code, err, str(ckpt), str(SYNTHETIC))
    code, _, err = _run(capsys, "--backbone", "resnet18", "--stem", "deep", "--classes", "10", *FAST,
                        "--checkpoint", str(ckpt))
    _one_line_error(code, err, str(ckpt))


@pytest.mark.slow
def test_all_measures_every_head_on_the_configs_backbone_and_appends_rows(capsys, tmp_path):
    out_file = tmp_path / "rows.jsonl"
    out_file.write_text(json.dumps({"model": "earlier row"}) + "\n")
    code, out, err = _run(capsys, "--config", str(SYNTHETIC), "--all", "--input", "64x128", *FAST,
                          "--out", str(out_file))
    assert code == 0
    rows = json.loads(out)
    assert [r["model"] for r in rows] == ["IFA (reference)", "IFA (fused)", "Semantic-FPN", "PPM (PSPNet)", "OCR"]
    assert len({r["gmacs_backbone"] for r in rows}) == 1 and {r["backbone_width"] for r in rows} == {0.5}
    assert {r["num_classes"] for r in rows} == {10}
    # the IFA rows are the experiment's IFA (channels 64, mlp 128-64-64), not the default head
    code, single, _ = _run(capsys, "--config", str(SYNTHETIC), "--input", "64x128", *FAST)
    assert json.loads(single)[0]["params_head_m"] == rows[0]["params_head_m"] == rows[1]["params_head_m"]
    kept = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["model"] for r in kept] == ["earlier row"] + [r["model"] for r in rows]
    assert kept[1]["gmacs"] == rows[0]["gmacs"] and kept[1]["measure_input"] == "64x128"
    assert "breakdown_gmacs" not in kept[1]
    assert err.count(f"-> {out_file}") == 5  # each row printed as it was measured


def _is_spawned_worker(p: psutil.Process) -> bool:
    """A fresh measurement process (bench.measure.processes.isolated starts `python -m bench.measure.processes.child FD`)."""
    try:
        return "bench.measure.processes.child" in p.cmdline()
    except psutil.Error:
        return False


def _sigint_as_at_a_terminal() -> None:
    """A command started in the background of a non-interactive shell (as CI may start `make test`) inherits SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler: the child gets the default a terminal gives."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_interrupted_all_keeps_the_rows_it_finished(tmp_path):
    out_file = tmp_path / "rows.csv"
    exe = Path(sys.executable).parent / "ifa-bench"
    # Each row takes a second or more (an fvcore trace, one fresh process timing 20 runs: a pool free to grow would make
    # the rows slow); the interrupt comes once the second row's latency process is running.
    proc = subprocess.Popen([str(exe), "measure", "--config", str(SYNTHETIC), "--all", "--input", "64x128",
                             "--warmup", "0", "--runs", "20", "--processes", "1", "--span", "0", "--no-memory",
                             "--out", str(out_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=_sigint_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 240
        while not out_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert out_file.exists(), f"no row was written (exit {proc.poll()})"
        children = []  # wait for a fresh latency process of a later row: the interrupt must take it down too
        while not children and time.monotonic() < deadline and proc.poll() is None:
            children = [c for c in psutil.Process(proc.pid).children(recursive=True) if _is_spawned_worker(c)]
            time.sleep(0.02)
        assert children, "no later row's latency was timed in a fresh process"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err  # stopped by the interrupt, not finished
    rows = list(csv.DictReader(out_file.open()))
    assert 1 <= len(rows) < 5
    assert rows[0]["model"] == "IFA (reference)" and float(rows[0]["latency_ms_median"]) > 0
    assert rows[0]["measure_input"] == "64x128" and int(rows[0]["threads"]) >= 1 and rows[0]["device_name"]
    assert "IFA (reference): " in err and "interrupted" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left behind
    time.sleep(0.5)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]  # none outlives it
