"""End to end: a real (tiny) training run lowers the loss and writes its run directory; a run killed with SIGKILL
and resumed replays the uninterrupted run's losses exactly."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.engine import train_experiment
from bench.engine.optim import poly_lr, warmup_factor
from bench.engine.run_dir import read_metrics
from tests.engine.train_helpers import tiny_config, tiny_dict

REPO = Path(__file__).resolve().parents[2]
ITERS, EVERY = 120, 10


def _train_records(run: Path) -> list[dict]:
    return [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "train"]


def _loss_columns(records):
    return [(r["iter"], r["loss"], r["loss_main"], r["loss_aux"], r["lr"], r["lr_head"]) for r in records]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    base = tmp_path_factory.mktemp("train")
    cfg = tiny_config(base / "data", train={"iterations": ITERS, "checkpoint_every": EVERY})
    reports = []
    final = train_experiment(cfg, base / "run", on_report=reports.append, progress=False)
    return cfg, base, final, reports


def test_training_lowers_the_loss_and_writes_the_run_directory(uninterrupted):
    cfg, base, final, reports = uninterrupted
    run = base / "run"
    records = _train_records(run)
    assert [r["iter"] for r in records] == list(range(1, ITERS + 1))
    first = sum(r["loss"] for r in records[:10]) / 10
    last = sum(r["loss"] for r in records[-10:]) / 10
    assert last < 0.8 * first, (first, last)
    # record `iter` n is the step that ran at 0-based iteration n - 1, with warm-up over the first 3
    assert records[0]["lr"] == pytest.approx(poly_lr(0.01, 0, ITERS, 0.9, 1e-4) * warmup_factor(0, 3, 1e-6))
    assert records[1]["lr_head"] == pytest.approx(poly_lr(0.1, 1, ITERS, 0.9, 1e-4) * warmup_factor(1, 3, 1e-6))
    assert records[-1]["lr"] == pytest.approx(poly_lr(0.01, ITERS - 1, ITERS, 0.9, 1e-4))
    assert records[-1]["lr_head"] == pytest.approx(poly_lr(0.1, ITERS - 1, ITERS, 0.9, 1e-4))
    evals = [r for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"]
    assert len(evals) == 1 and evals[0]["iter"] == ITERS and evals[0]["miou"] == pytest.approx(final["miou"])
    # final.json = the returned metrics
    on_disk = json.loads((run / "final.json").read_text())
    assert on_disk["miou"] == pytest.approx(final["miou"]) and on_disk["iterations"] == ITERS
    assert set(final["per_class_iou"]) == {"road", "sidewalk", "building", "vegetation", "terrain", "sky", "car",
                                           "person", "pole", "wire"}
    assert 0 <= final["miou"] <= 100 and 0 <= final["aacc"] <= 100 and final["train_time_s"] > 0
    assert on_disk["environment"]["device"] == "cpu" and on_disk["environment"]["threads"] == 1
    # config + hash; checkpoints: the newest 2 plus last.pt
    assert (run / "config_hash.txt").read_text().strip() == cfg.config_hash()
    assert yaml.safe_load((run / "config.yaml").read_text()) == cfg.model_dump(mode="json")
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == [f"iter_{ITERS - EVERY:07d}.pt", f"iter_{ITERS:07d}.pt", "last.pt"]
    # on_report: every train and eval record, and one checkpoint record per write
    kinds = [r["kind"] for r in reports]
    assert kinds.count("train") == ITERS and kinds.count("eval") == 1 and kinds.count("checkpoint") == ITERS // EVERY
    assert reports[-1]["kind"] == "eval"
    # a finished run resumed is not retrained
    again = train_experiment(cfg, run, resume=True, progress=False)
    assert again["miou"] == pytest.approx(final["miou"])


@pytest.mark.slow
def test_sigkill_then_resume_replays_the_uninterrupted_losses(uninterrupted, tmp_path):
    cfg, base, final, _ = uninterrupted
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_dict(base / "data", train={"iterations": ITERS,
                                                                       "checkpoint_every": EVERY})))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "bench.cli", "train", str(config), "--out", str(run), "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    try:
        while not list((run / "checkpoints").glob("iter_*.pt")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "final.json").exists(), "the run finished before it could be killed"
    kept = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("iter_*.pt"))
    before = {r["iter"]: r for r in _train_records(run)}

    done = subprocess.run(cmd + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _train_records(run)
    # iterations up to the checkpoint are the killed run's own records (not retrained), the rest were recomputed
    assert all(after[i - 1] == before[i] for i in range(1, kept + 1))
    assert _loss_columns(after) == _loss_columns(_train_records(base / "run"))  # bitwise: floats compared exactly
    resumed_final = json.loads((run / "final.json").read_text())
    assert resumed_final["miou"] == final["miou"] and resumed_final["per_class_iou"] == json.loads(
        json.dumps(final["per_class_iou"]))
