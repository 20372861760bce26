"""Issue 13's acceptance on one machine: a Ray cluster of separate `ray start` processes (a scheduling-only head
serving the job API on 127.0.0.1, two worker nodes with custom resources), a sweep with --address and --storage on a
real S3 server (moto_server), the node running the trial killed mid-trial, the trial resumed on the other node from
the checkpoint in S3 (its attempt record says so), then the same sweep submitted through the Ray Jobs API with its
results arriving in S3. Every process is ended by PID at the end, whatever happened."""
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.sweep.spec.trials import load_sweep
from tests.sweep.conftest import tiny_experiment, write_spec
from tests.sweep.ray_processes import head_and_two_nodes, ray_exe, wait_for
from tests.sweep.s3_server import BUCKET, FAKE_KEY_ID, FAKE_SECRET, free_port, s3_server  # noqa: F401 - fixture

pytestmark = [pytest.mark.ray, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cluster(tmp_path, s3_server):  # noqa: F811 - the S3 credentials must be in the nodes' environment
    with head_and_two_nodes(tmp_path / "cluster", blocking=False) as c:
        yield c


def _read_json(fs, path: str):
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except (FileNotFoundError, OSError, ValueError):
        return None


def _s3_checkpoint_iter(fs, prefix: str) -> int:
    """The newest engine checkpoint's iteration in Tune's storage (0: none yet)."""
    from pyarrow import fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(f"{prefix}/tune", recursive=True, allow_not_found=True))
    metas = [_read_json(fs, i.path) for i in infos if i.base_name == "engine_checkpoint.json"]
    return max([int(m["iter"]) for m in metas if m and "iter" in m], default=0)


@pytest.mark.timeout(600)
def test_cluster_of_ray_start_processes_s3_storage_node_loss_and_job_submit(cluster, s3_server, tmp_path,  # noqa: F811
                                                                            data_root):
    t0 = time.time()
    experiment = tiny_experiment(data_root, iterations=200, checkpoint_every=20, measure=False)
    spec = write_spec(tmp_path / "cluster.yaml", experiment,
                      {"name": "cluster", "resources": {"cpus": 1}, "max_failures": 2})
    (victim,) = [t.config_hash for t in load_sweep(spec).trials]
    fs, prefix = s3_server.fs(), f"{BUCKET}/cluster/sweep"
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench.cli", "sweep", str(spec), "--address", cluster.address, "--out", str(out),
           "--storage", s3_server.uri("cluster/sweep")]
    log = tmp_path / "driver.log"
    driver = subprocess.Popen(cmd, cwd=REPO, env=cluster.env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        # The second checkpoint (iteration 40), not the first: a checkpoint is in S3 a moment before the driver has
        # registered it with Tune, and a node killed in that moment is retried from the start (seen once in CI under
        # load: the retry had no `restored_from`). By the second, the first has long reached the driver.
        first = wait_for(lambda: (_read_json(fs, f"{prefix}/trials/{victim}/attempts.json") or {}).get("history")
                         and _s3_checkpoint_iter(fs, prefix) >= 40
                         and _read_json(fs, f"{prefix}/trials/{victim}/attempts.json"),
                         240, "the trial's second checkpoint in S3")
        assert driver.poll() is None, log.read_text()
        attempt0 = first["history"][0]
        cluster.kill_node_of(attempt0["pid"])  # the node running the trial, mid-trial
        driver.wait(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == 0, log.read_text()[-5000:]
    history = _read_json(fs, f"{prefix}/trials/{victim}/attempts.json")["history"]
    assert len(history) == 2, history
    lost, resumed = history
    assert lost["node_id"] != resumed["node_id"], history
    # the retry trained in a fresh local scratch folder and took its checkpoint from S3, not from a local disk
    assert resumed["scratch"] != lost["scratch"]
    # the lost attempt died with its node and never removed its folder: the retry, on this same machine, did
    assert not Path(lost["scratch"]).exists(), lost["scratch"]
    assert resumed["restored_from"].startswith(f"s3://{prefix}/tune/"), resumed
    assert resumed["resume_from"] == resumed["restored_iter"] > 0 and resumed["first_iter"] == resumed["resume_from"] + 1
    with fs.open_input_stream(f"{prefix}/trials/{victim}/metrics.jsonl") as f:
        iters = [r["iter"] for r in map(json.loads, f.read().decode().splitlines()) if r.get("kind") == "train"]
    assert iters == list(range(1, 201))
    with fs.open_input_stream(f"{prefix}/results.csv") as f:
        table = f.read().decode()
    assert ",completed," in table
    sweep_s = time.time() - t0

    # the same sweep as a Ray job (a shorter one: 8 iterations), its results in S3
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    shutil.copy(spec, job_dir / "cluster.yaml")
    # The entrypoint runs in a folder that exists for the whole job: with --working-dir, the job's driver died here
    # once with "Intel oneMKL FATAL ERROR: Cannot load libtorch_cpu.so", which is what torch does when its current
    # directory has been removed (docs/cluster.md).
    entrypoint = (f"cd {job_dir} && ifa-bench sweep cluster.yaml --address auto --out {tmp_path / 'job-out'} "
                  f"--storage '{s3_server.uri('cluster/job')}' --set train.iterations=8")
    for _ in range(12):  # the job server answers before a node's agent has registered with it: wait for one
        submit = subprocess.run(
            [ray_exe(), "job", "submit", "--address", cluster.job_address, "--", "sh", "-c", entrypoint],
            env=cluster.env, capture_output=True, text=True, timeout=300,
        )
        if "No available agent to submit job" not in submit.stdout + submit.stderr:
            break
        time.sleep(5)
    assert submit.returncode == 0, submit.stdout[-5000:] + submit.stderr[-3000:]
    assert "succeeded" in submit.stdout + submit.stderr
    with fs.open_input_stream(f"{BUCKET}/cluster/job/results.csv") as f:
        job_table = f.read().decode()
    assert ",completed," in job_table
    files = s3_server.all_objects(tmp_path / "bucket", f"{BUCKET}/cluster")
    for p in [*files, *out.rglob("*")]:
        if p.is_file():
            blob = p.read_bytes()
            assert FAKE_SECRET.encode() not in blob and FAKE_KEY_ID.encode() not in blob, p
    for text in (log.read_text(), submit.stdout, submit.stderr):
        assert FAKE_SECRET not in text and FAKE_KEY_ID not in text
    print(f"sweep with node loss {sweep_s:.0f}s, job {time.time() - t0 - sweep_s:.0f}s; attempts {history}")
