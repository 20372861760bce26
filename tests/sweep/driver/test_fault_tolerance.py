"""Faults with real Ray and the real engine: a SIGKILLed driver then --resume; a node lost mid-trial on a simulated
multi-node cluster; a trial spanning two Ray Train workers (gloo)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.results.schema import RESULT_COLUMNS
from bench.sweep.folder import layout, records
from bench.files.json_records import read_json
from bench.sweep.driver.runner import run_sweep
from bench.sweep.spec.trials import load_sweep
from tests.sweep.conftest import TINY_HEADS, attempts, read_results, tiny_experiment, train_iters, write_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


def _checkpointed(tdir: Path) -> bool:
    ck = tdir / "checkpoints"
    return ck.is_dir() and any(p.suffix == ".pt" for p in ck.iterdir())


def _assert_resumed(out: Path, config_hash: str, total: int) -> None:
    """The second attempt found a checkpoint and its first training step was the one after it (not step 1);
    metrics.jsonl ends up with every step once (the engine drops the records after the checkpoint it resumes)."""
    history = attempts(out, config_hash)["history"]
    assert len(history) == 2, history
    second = history[1]
    assert second["resume_from"] > 0, history
    assert second["first_iter"] == second["resume_from"] + 1, history
    assert train_iters(out, config_hash) == list(range(1, total + 1))


@pytest.mark.timeout(300)
def test_killed_driver_then_resume_gives_one_row_per_trial(tmp_path, data_root):
    experiment = tiny_experiment(data_root, iterations=4, checkpoint_every=10, measure=False)
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "killed", "axes": {"train.iterations": [4, 5, 240]},
        "resources": {"cpus": 1}, "max_concurrent": 2,
    })
    sweep = load_sweep(spec)
    hashes = [t.config_hash for t in sweep.trials]
    long_ones = {t.config_hash for t in sweep.trials if t.config.train.iterations == 240}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench.cli", "sweep", str(spec), "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 200
        while time.time() < deadline and proc.poll() is None:
            dirs = [layout.trial_dir(out, h) for h in hashes]
            done = [d for d in dirs if records.read_done(d)]
            midway = [d for d in dirs if d.name in long_ones and not records.read_done(d) and _checkpointed(d)]
            if done and midway:
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"the sweep ended before it could be killed:\n{proc.stdout.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    before = {h: records.read_done(layout.trial_dir(out, h)) for h in hashes}
    finished = [h for h in hashes if before[h]]
    interrupted = [h for h in hashes if not before[h] and _checkpointed(layout.trial_dir(out, h))]
    assert finished and interrupted
    stamps = {h: (layout.trial_dir(out, h) / "final.json").stat().st_mtime_ns for h in finished}
    df = read_results(out)  # the table written before the kill: a row for every trial, none completed twice
    assert sorted(df["config_hash"]) == sorted(hashes)

    resumed = subprocess.run(cmd + ["--resume"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming Tune experiment" in resumed.stdout  # Tuner.restore, not a new experiment
    df = read_results(out)
    assert list(df["config_hash"]) == hashes and df["config_hash"].is_unique
    assert set(df["status"]) == {"completed"}, df[["trial_id", "status", "error"]]
    for h in finished:  # not retrained
        assert (layout.trial_dir(out, h) / "final.json").stat().st_mtime_ns == stamps[h]
        assert attempts(out, h)["count"] == 1
    for h in interrupted:  # continued from its checkpoint
        assert attempts(out, h)["count"] == 2
        _assert_resumed(out, h, 240)
    assert (df.set_index("config_hash").loc[interrupted, "attempts"] == 2).all()


@pytest.mark.timeout(300)
def test_lost_node_retries_trial_on_the_other_node(tmp_path, data_root, ray_down):
    from ray.cluster_utils import Cluster

    experiment = tiny_experiment(data_root, iterations=4, checkpoint_every=10, measure=False)
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "cluster", "axes": {"head": [TINY_HEADS["ifa"], TINY_HEADS["fpn"]], "train.iterations": [160]},
        "resources": {"cpus": 1}, "max_failures": 2,
    })
    sweep = load_sweep(spec)
    victim = sweep.trials[0].config_hash
    out = tmp_path / "out"
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0,
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                           "health_check_failure_threshold": 3},
    })
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        killed = {}

        def kill_victims_node():
            tdir = layout.trial_dir(out, victim)
            deadline = time.time() + 150
            while time.time() < deadline:
                rec = read_json(tdir / layout.ATTEMPTS)
                if rec and _checkpointed(tdir):
                    node_id = rec["history"][0]["node_id"]
                    node = next(n for n in workers if n.node_id == node_id)
                    cluster.remove_node(node, allow_graceful=False)
                    killed["node_id"] = node_id
                    return
                time.sleep(0.1)

        killer = threading.Thread(target=kill_victims_node, daemon=True)
        killer.start()
        run_sweep(sweep, out, address=cluster.address)
        killer.join(timeout=5)
    finally:
        cluster.shutdown()
    assert killed, "the victim's node was never removed"
    df = read_results(out)
    assert list(df["config_hash"]) == [t.config_hash for t in sweep.trials]
    assert set(df["status"]) == {"completed"}, df[["trial_id", "status", "error"]]
    history = attempts(out, victim)["history"]
    assert len(history) == 2 and history[0]["node_id"] == killed["node_id"] != history[1]["node_id"]
    _assert_resumed(out, victim, 160)
    assert df.set_index("config_hash").loc[victim, "attempts"] == 2


@pytest.mark.timeout(240)
def test_trial_on_two_torchtrainer_workers(tmp_path, data_root, ray_down):
    experiment = tiny_experiment(data_root, iterations=4, checkpoint_every=2)
    # norm stays "bn": under DDP the engine converts it to SyncBatchNorm (its CPU variant on CPU)
    spec = write_spec(tmp_path / "s.yaml", experiment, {
        "name": "ddp", "axes": {"head": [TINY_HEADS["fpn"]]}, "resources": {"cpus": 0.5, "workers": 2},
        "max_failures": 0,
    })
    sweep = load_sweep(spec)
    out = tmp_path / "out"
    run_sweep(sweep, out)
    df = read_results(out)
    assert list(df.columns) == RESULT_COLUMNS
    row = df.iloc[0]
    assert row["status"] == "completed", row["error"]
    assert 0 <= row["miou"] <= 100 and row["gmacs"] > 0 and row["params_m"] > 0
    tdir = out / row["trial_dir"]
    final = json.loads((tdir / "final.json").read_text())
    assert final["miou"] == pytest.approx(row["miou"])
    assert train_iters(out, row["config_hash"])[-1] == 4
    log = (tdir / "metrics.jsonl").read_text()
    assert log.count('"kind": "train"') + log.count('"kind":"train"') == len(train_iters(out, row["config_hash"]))
    assert os.path.isdir(out / "tune" / "train")  # Ray Train's own run folder
