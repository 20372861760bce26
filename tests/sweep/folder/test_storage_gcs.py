"""`sweep --storage gs://` against a real GCS protocol server: gcp-storage-emulator on loopback, started as a
subprocess and stopped by its PID, reached the standard way (STORAGE_EMULATOR_HOST). A bad STORAGE_EMULATOR_HOST
fails with one line before anything runs; a sweep's records and results land in the bucket; `report` and `check`
read the sweep from its gs:// URI."""
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.cli import main
from tests.sweep.conftest import tiny_experiment, write_spec
from tests.sweep.s3_server import free_port, stop_server

REPO = Path(__file__).resolve().parents[3]
BUCKET = "ifa-bench-gcs-test"


@dataclass
class GcsServer:
    port: int
    pid: int

    @property
    def host(self) -> str:  # STORAGE_EMULATOR_HOST
        return f"http://127.0.0.1:{self.port}"

    def fs(self):
        from pyarrow import fs as pafs

        return pafs.GcsFileSystem(anonymous=True, scheme="http", endpoint_override=f"127.0.0.1:{self.port}",
                                  project_id="test")

    def all_objects(self, dest: Path, prefix: str) -> list[Path]:
        from pyarrow import fs as pafs

        pafs.copy_files(prefix, str(dest), source_filesystem=self.fs(), destination_filesystem=pafs.LocalFileSystem())
        return [p for p in Path(dest).rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def gcs_server(tmp_path_factory):
    """gcp-storage-emulator (in memory) on 127.0.0.1 with one bucket; STORAGE_EMULATOR_HOST points at it in
    os.environ for the module (Ray workers and subprocesses inherit it)."""
    exe = (shutil.which("gcp-storage-emulator", path=str(Path(sys.executable).parent))
           or shutil.which("gcp-storage-emulator"))
    assert exe, "gcp-storage-emulator not installed (pip install -e '.[dev]')"
    tmp = tmp_path_factory.mktemp("gcs")
    log = tmp / "emulator.log"
    port = free_port()
    proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                             "--default-bucket", BUCKET], cwd=tmp, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        deadline = time.time() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.time() < deadline, "gcp-storage-emulator did not answer within 30 s"
                time.sleep(0.1)
        server = GcsServer(port=port, pid=proc.pid)
        os.environ["STORAGE_EMULATOR_HOST"] = server.host
        yield server
    finally:
        stop_server(proc)  # its own session: the emulator and nothing else
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved


@pytest.fixture
def spec(tmp_path, data_root) -> Path:
    return write_spec(tmp_path / "s.yaml", tiny_experiment(data_root, iterations=4, checkpoint_every=2, measure=False),
                      {"name": "stored-gcs", "resources": {"cpus": 1}})


def test_bad_emulator_host_is_one_line_exit_2(spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://someone:planted-pw-91@127.0.0.1:notaport")
    code = main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--storage", f"gs://{BUCKET}/x"])
    out, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1, err
    assert "STORAGE_EMULATOR_HOST=http://***@127.0.0.1:notaport: expected http(s)://HOST:PORT" in err, err
    assert "planted-pw-91" not in out + err
    assert not (tmp_path / "out").exists()


def test_unreachable_emulator_and_missing_bucket_fail_before_any_trial(gcs_server, spec, tmp_path, capsys,
                                                                         monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{free_port()}")  # nothing listens there
        code = main(["sweep", str(spec), "--out", str(tmp_path / "a"), "--storage", f"gs://{BUCKET}/x"])
    _, err = capsys.readouterr()
    # an unreachable server is told apart from a missing bucket, and the variable that chose it is named
    assert code == 2 and "cannot reach the storage server" in err and "STORAGE_EMULATOR_HOST" in err, err
    assert err.count("\n") == 1 and not (tmp_path / "a").exists(), err
    code = main(["sweep", str(spec), "--out", str(tmp_path / "b"), "--storage", "gs://no-such-bucket/x"])
    _, err = capsys.readouterr()
    assert code == 2 and "bucket 'no-such-bucket' does not exist" in err and err.count("\n") == 1, err
    assert not (tmp_path / "b").exists()


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(360)  # as the s3:// test
def test_sweep_on_gcs_then_report_and_check_read_it(gcs_server, spec, tmp_path):
    uri = f"gs://{BUCKET}/sweeps/one"
    out = tmp_path / "out"
    env = {**os.environ, "STORAGE_EMULATOR_HOST": gcs_server.host}
    run = subprocess.run([sys.executable, "-m", "bench.cli", "sweep", str(spec), "--out", str(out), "--storage", uri],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=200)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"storage: gs://{BUCKET}/sweeps/one" in run.stdout

    files = gcs_server.all_objects(tmp_path / "bucket", f"{BUCKET}/sweeps/one")
    names = {str(p.relative_to(tmp_path / "bucket")) for p in files}
    assert {"results.csv", "results.parquet", "per_class_iou.csv"} <= names, sorted(names)
    (h,) = {n.split("/")[1] for n in names if n.startswith("trials/")}
    for rec in ("attempts.json", "result.json", "metrics.jsonl", "final.json", "trial.log"):
        assert f"trials/{h}/{rec}" in names, sorted(names)
    # Tune's checkpoint of the trial (the engine's checkpoint file inside) is in the bucket too
    assert any(n.startswith("tune/") and n.endswith("engine_checkpoint.json") for n in names), sorted(names)
    assert not (out / "tune").exists()  # Tune's state is not in the local folder
    assert (out / "results.csv").read_bytes() == (tmp_path / "bucket" / "results.csv").read_bytes()

    rep = subprocess.run([sys.executable, "-m", "bench.cli", "report", uri, "--out", str(tmp_path / "report")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert (tmp_path / "report" / "index.html").is_file() and "1 completed" in rep.stdout
    chk = subprocess.run([sys.executable, "-m", "bench.cli", "check", uri, "--allow-empty"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert chk.returncode == 0, chk.stdout + chk.stderr
