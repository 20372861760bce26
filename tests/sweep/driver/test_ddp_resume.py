"""Issue 13 item 2: a two-worker (TorchTrainer, gloo) trial whose worker is killed after a checkpoint resumes, on
its retry, from the checkpoint its rank 0 reported to Ray Train's storage (`--storage` on a local path: every
attempt trains in a fresh scratch folder, so nothing else could hold it), and replays the uninterrupted run's
losses bit for bit, as tests/engine/test_train_resume.py requires of a single-worker resume."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from bench.sweep.driver.runner import run_sweep
from bench.sweep.spec.trials import load_sweep
from bench.sweep.folder.storage import open_storage
from tests.sweep.conftest import TINY_HEADS, read_results, tiny_experiment, write_spec

pytestmark = [pytest.mark.ray, pytest.mark.slow]
ITERS, EVERY = 30, 10  # the kill lands after the first registered checkpoint (10), the retry resumes there


def _spec(tmp_path: Path, data_root: Path, name: str, max_failures: int) -> Path:
    experiment = tiny_experiment(data_root, iterations=ITERS, checkpoint_every=EVERY, measure=False)
    return write_spec(tmp_path / f"{name}.yaml", experiment, {
        "name": "ddp", "axes": {"head": [TINY_HEADS["fpn"]]}, "resources": {"cpus": 0.5, "workers": 2},
        "max_failures": max_failures,
    })


def _losses(metrics: Path) -> list[tuple]:
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [(r["iter"], r["loss"], r["lr"]) for r in rows if r.get("kind") == "train"]


def _train_workers() -> list[psutil.Process]:
    """This test's own Ray Train worker processes (the embedded Ray runs under this process)."""
    procs = []
    for p in psutil.Process().children(recursive=True):
        try:
            if " ".join(p.cmdline()).startswith("ray::RayTrainWorker"):
                procs.append(p)
        except psutil.NoSuchProcess:
            continue
    return procs


def _train_has_a_checkpoint(store: Path) -> bool:
    """Ray Train's snapshot names a latest checkpoint. It is first written before any (a run's start, or a checkpoint
    still pending): a worker killed then leaves nothing to resume from, and the retry rightly starts afresh."""
    for snapshot in (store / "tune" / "train").glob("*/checkpoint_manager_snapshot.json"):
        try:
            if json.loads(snapshot.read_text()).get("latest_checkpoint_result"):
                return True
        except (OSError, ValueError):  # being written
            continue
    return False


@pytest.mark.timeout(600)
def test_killed_ddp_worker_resumes_from_ray_train_storage_bit_exact(tmp_path, data_root, ray_down):
    ref = load_sweep(_spec(tmp_path, data_root, "ref", 0))
    run_sweep(ref, tmp_path / "ref")
    assert read_results(tmp_path / "ref")["status"].tolist() == ["completed"]
    h = ref.trials[0].config_hash
    reference = _losses(tmp_path / "ref" / "trials" / h / "metrics.jsonl")

    store = tmp_path / "store"
    killed = {}

    def kill_a_worker_after_a_checkpoint():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if _train_has_a_checkpoint(store):
                workers = _train_workers()
                if workers:
                    killed["pid"] = workers[-1].pid
                    os.kill(workers[-1].pid, signal.SIGKILL)
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker_after_a_checkpoint, daemon=True)
    killer.start()
    sweep = load_sweep(_spec(tmp_path, data_root, "killed", 1))
    run_sweep(sweep, tmp_path / "out", storage=open_storage(str(store)))
    killer.join(timeout=5)
    assert killed, "no worker was killed"
    df = read_results(tmp_path / "out")
    assert df["status"].tolist() == ["completed"], df[["status", "error"]]
    history = json.loads((store / "trials" / h / "attempts.json").read_text())["history"]
    assert len(history) == 2, history
    resumed = history[1]
    assert resumed["restored_from"].startswith(str(store / "tune" / "train")), resumed
    assert 0 < resumed["restored_iter"] < ITERS and resumed["restored_iter"] % EVERY == 0
    # every step once, and bit for bit the uninterrupted run's losses and learning rates
    assert _losses(store / "trials" / h / "metrics.jsonl") == reference
