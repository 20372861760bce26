"""Issue 28: credentials set for a sweep reach no file that Ray, the sweep or the report writes, and Ray's temp
folder is private. A real sweep runs with sentinel secrets in its environment; while its trial trains, every file
under Ray's temp folder is read (runtime_env_agent.log is where Tune's runtime_env used to land), and after it
ends, every file of the sweep folder and the driver's output."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.sweep.driver.cluster.ray_session import temp_dir_for
from tests.sweep.conftest import read_results, tiny_experiment, write_spec

BIN = Path(sys.executable).parent / "ifa-bench"
SENTINEL = "SeNtInEl-7f3a9c-SECRET"


def _files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sentinel_secret_is_in_no_file_and_ray_temp_is_private(tmp_path, data_root):
    spec = write_spec(tmp_path / "spec.yaml", tiny_experiment(data_root, iterations=300, checkpoint_every=100,
                                                              measure=False),
                      {"name": "secrets", "axes": {"seed": [0]}, "resources": {"cpus": 1}})
    out = tmp_path / "out"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIA" + SENTINEL, AWS_SECRET_ACCESS_KEY=SENTINEL,
               AWS_SESSION_TOKEN=SENTINEL + "-token", GOOGLE_OAUTH_ACCESS_TOKEN=SENTINEL + "-google",
               STORAGE_EMULATOR_HOST=f"http://user:{SENTINEL}@127.0.0.1:1")
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "bench.cli"]
    log_path = tmp_path / "driver.log"
    with open(log_path, "wb") as log:
        driver = subprocess.Popen([*cmd, "sweep", str(spec), "--out", str(out)], stdout=log, stderr=subprocess.STDOUT,
                                  env=env)
        temp = temp_dir_for(out)
        seen_running = False
        try:
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline and driver.poll() is None:
                if any((out / "trials").glob("*/metrics.jsonl")) and temp.is_dir():
                    seen_running = True
                    time.sleep(3)  # the trial actor's runtime_env has been set up and logged by now
                    assert stat.S_IMODE(os.stat(temp).st_mode) == 0o700, oct(os.stat(temp).st_mode)
                    logs = list(temp.rglob("runtime_env_agent*.log"))
                    assert logs, sorted(str(p) for p in temp.rglob("*.log"))[:20]
                    assert _files_holding(temp, SENTINEL.encode()) == []
                    break
                time.sleep(1)
            assert driver.wait(timeout=400) == 0, log_path.read_text()[-3000:]
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.wait(timeout=30)
    assert seen_running, log_path.read_text()[-3000:]
    assert _files_holding(out, SENTINEL.encode()) == []
    assert SENTINEL not in log_path.read_text()
    assert read_results(out)["status"].tolist() == ["completed"]
