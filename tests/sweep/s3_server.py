"""A real S3 protocol server on loopback for --storage tests: moto's `moto_server`, started as a subprocess and
stopped by its PID. Credentials are planted fake keys (moto accepts any): tests grep every written file for them."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

FAKE_KEY_ID = "AKIAPLANTEDFAKEKEY42"
FAKE_SECRET = "planted/fake+secret/Zq8vR2mT5wX1yB4nK7pL0sD3"
BUCKET = "ifa-bench-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def uri(self, prefix: str, bucket: str = BUCKET) -> str:
        return f"s3://{bucket}/{prefix}?endpoint_override=127.0.0.1:{self.port}&scheme=http"

    def fs(self):
        from pyarrow import fs as pafs

        return pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{self.port}", scheme="http", region="us-east-1",
                                 allow_bucket_creation=True)

    def all_objects(self, dest: Path, prefix: str = BUCKET) -> list[Path]:
        """Download every object under `prefix` into dest; returns the local files."""
        from pyarrow import fs as pafs

        pafs.copy_files(prefix, str(dest), source_filesystem=self.fs(), destination_filesystem=pafs.LocalFileSystem())
        return [p for p in Path(dest).rglob("*") if p.is_file()]


def credentials_env() -> dict:
    return {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET, "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true"}


def start_server(log: Path) -> tuple[S3Server, subprocess.Popen]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    assert exe, "moto_server not installed (pip install -e '.[dev]')"
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        stop_server(proc)
        raise AssertionError("moto_server did not answer within 30 s")
    return S3Server(port=port, pid=proc.pid), proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the server and nothing else
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto_server on 127.0.0.1 with one bucket; the planted credentials are in os.environ for the whole session
    (Ray workers and subprocesses inherit them)."""
    saved = {k: os.environ.get(k) for k in credentials_env()}
    os.environ.update(credentials_env())
    server, proc = start_server(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        server.fs().create_dir(BUCKET)
        yield server
    finally:
        stop_server(proc)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
