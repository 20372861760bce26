"""Issue 30's resume window: a worker node SIGKILLed 1 s after the trial's first checkpoint object appeared in S3
(before Tune's driver may have registered it) must retry from that checkpoint, not from iteration 1, and finish with
the uninterrupted run's losses and mIoU; and nothing of the lost node may be left running (its `log_monitor` was seen
orphaned). Real parts: `ray start` head and worker processes (the workers as `ray start --block`, ended by PID), a
moto_server as S3, `ifa-bench sweep --address --storage s3://...`, and the engine's own uninterrupted run."""
import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.engine import train_experiment
from bench.engine.run_dir import read_metrics
from bench.sweep.spec.trials import load_sweep
from tests.sweep.conftest import tiny_experiment, write_spec
from tests.sweep.ray_processes import NODE_MARKER, head_and_two_nodes, wait_for
from tests.sweep.s3_server import BUCKET, free_port, s3_server  # noqa: F401 - fixture

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]
ITERS, EVERY = 240, 120  # 15-70 ms an iteration here: 1 s after the first checkpoint the second is far off


@pytest.fixture
def cluster(tmp_path, s3_server):  # noqa: F811 - the S3 credentials must be in the nodes' environment
    with head_and_two_nodes(tmp_path / "cluster", blocking=True) as c:
        yield c


def _stored(fs, folder: str) -> tuple[list[str], list[int]]:
    """(every object under the trial's Tune folder in S3 inside a checkpoint_* folder, the iterations of the complete
    checkpoints there: a hand-off record and the file it names)."""
    from pyarrow import fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, recursive=True, allow_not_found=True))
    objects = [i.path for i in infos if i.type == pafs.FileType.File and "/checkpoint_" in i.path]
    iters = []
    for path in objects:
        if path.endswith("/engine_checkpoint.json"):
            with fs.open_input_stream(path) as f:
                meta = json.loads(f.read())
            if f"{path.rsplit('/', 1)[0]}/{meta['name']}" in objects:
                iters.append(int(meta["iter"]))
    return objects, sorted(iters)


def _read_json(fs, path: str):
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):
        return None


def _train_rows(records) -> list[tuple]:
    return [(r["iter"], r["loss"], r["lr"]) for r in records if r.get("kind") == "train"]


@pytest.mark.timeout(420)
def test_node_killed_1s_after_the_first_checkpoint_resumes_from_it_and_leaves_nothing(cluster, s3_server,  # noqa: F811
                                                                                      tmp_path, data_root):
    spec = write_spec(tmp_path / "window.yaml", tiny_experiment(data_root, iterations=ITERS, checkpoint_every=EVERY,
                                                                measure=False),
                      {"name": "window", "resources": {"cpus": 1}, "max_failures": 2})
    (trial,) = load_sweep(spec).trials
    h = trial.config_hash
    fs, prefix = s3_server.fs(), f"{BUCKET}/window/sweep"
    log = tmp_path / "driver.log"
    driver = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "sweep", str(spec), "--address", cluster.address, "--out",
         str(tmp_path / "out"), "--storage", s3_server.uri("window/sweep")],
        cwd=REPO, env=cluster.env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    problems = []
    try:
        objects = wait_for(lambda: _stored(fs, f"{prefix}/tune")[0], 240, "the first checkpoint object in S3",
                           interval_s=0.05)
        seen = time.time()
        attempt0 = (_read_json(fs, f"{prefix}/trials/{h}/attempts.json") or {}).get("history", [{}])[0]
        raylet = next(p for p in psutil.Process(attempt0["pid"]).parents() if "raylet" in p.name())
        node = raylet.environ()[NODE_MARKER]
        before = {p.pid: " ".join(p.cmdline())[:120] for p in cluster.node_processes(node)}
        time.sleep(max(0.0, seen + 1.0 - time.time()))
        killed_at = time.time() - seen
        cluster.kill_node_of(attempt0["pid"])  # the raylet and every process under it, SIGKILL
        objects, complete = _stored(fs, f"{prefix}/tune")  # what the lost attempt left (the retry needs seconds more)
        # what is left of the node ends by itself: `ray start --block` kills the rest (log_monitor) and exits
        try:
            cluster.blocking[node].wait(timeout=20)
        except subprocess.TimeoutExpired:
            problems.append(f"`ray start --block` of {node} still running 20 s after its raylet was killed")
        deadline = time.time() + 10
        while (left := cluster.node_processes(node)) and time.time() < deadline:
            time.sleep(0.2)
        if left:
            problems.append(f"processes of the lost node left: {[(p.pid, p.name(), p.cmdline()[:3]) for p in left]}")
        driver.wait(timeout=240)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    text = log.read_text()
    assert driver.returncode == 0, text[-5000:]
    assert any("log_monitor" in c for c in before.values()), before  # the "nothing left" check is not vacuous
    assert complete == [EVERY], (complete, objects)  # killed while only the first checkpoint was in S3
    history = _read_json(fs, f"{prefix}/trials/{h}/attempts.json")["history"]
    assert len(history) == 2 and history[0]["node_id"] != history[1]["node_id"], history
    resumed = history[1]
    retry_line = next((line for line in text.splitlines() if "retrying" in line), "")
    if not (resumed.get("restored_iter") == EVERY and resumed.get("first_iter") == EVERY + 1
            and str(resumed.get("restored_from", "")).startswith(f"s3://{prefix}/tune/")):
        problems.append(f"the retry did not resume from the checkpoint at {EVERY} in S3: {resumed}; driver: "
                        f"{retry_line!r}")
    with fs.open_input_stream(f"{prefix}/trials/{h}/metrics.jsonl") as f:
        swept = [json.loads(line) for line in f.read().decode().splitlines()]
    final = _read_json(fs, f"{prefix}/trials/{h}/final.json")
    reference = train_experiment(trial.config, tmp_path / "uninterrupted", progress=False)
    if [r[0] for r in _train_rows(swept)] != list(range(1, ITERS + 1)):
        problems.append(f"train steps not 1..{ITERS} once each")
    elif _train_rows(swept) != _train_rows(read_metrics(tmp_path / "uninterrupted" / "metrics.jsonl")):
        problems.append("losses differ from the uninterrupted run")
    if final["miou"] != reference["miou"]:
        problems.append(f"final mIoU {final['miou']} != uninterrupted {reference['miou']}")
    print(f"killed {killed_at:.2f}s after the first checkpoint object ({len(objects)} objects then); node {node} "
          f"had {len(before)} processes; retry {resumed}; driver: {retry_line!r}; mIoU {final['miou']} vs "
          f"{reference['miou']}")
    assert not problems, problems
