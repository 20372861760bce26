"""Issue 10, classes 7, 10 and 13 through the console script: unwritable and full outputs, an unreachable or
malformed --address, and a kill during checkpoint writing followed by a resume."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bench.sweep.driver.cluster.ray_address import CONNECT_TIMEOUT_S
from tests.engine.train_helpers import tiny_dict

BIN = Path(sys.executable).parent / "ifa-bench"


def cli(*args, cwd=None, timeout=240) -> subprocess.CompletedProcess:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "bench.cli"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def assert_one_line_error(proc, *needles, code=2):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1, proc.stderr
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture
def tmpfs(tmp_path):
    """Mount small tmpfs file systems under tmp_path (root only); unmounted afterwards."""
    mounted = []

    def mount(name: str, options: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()})")
        mounted.append(point)
        return point
    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults")
    cfg = tiny_dict(root / "synthetic", train={"iterations": 4, "checkpoint_every": 2, "keep_checkpoints": 2})
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _unwritable(kind: str, tmp_path: Path, tmpfs) -> tuple[Path, str]:
    """(an output path that cannot be written, the OS reason expected in the message)."""
    if kind == "under_file":
        (tmp_path / "file.txt").write_text("x")
        return tmp_path / "file.txt" / "out", "Not a directory"
    if kind == "proc":
        return Path("/proc/ifa-bench-no-such"), "No such file or directory"
    ro = tmpfs("ro", "ro,size=1m")
    return ro / "out", "Read-only file system"


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["under_file", "proc", "read_only"])
def test_train_to_unwritable_out_is_one_line_and_leaves_nothing(experiment, tmp_path, tmpfs, kind):
    out, reason = _unwritable(kind, tmp_path, tmpfs)
    proc = cli("train", experiment, "--out", out / "run", "--no-progress")
    assert_one_line_error(proc, str(out), reason)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_train_on_a_full_disk_names_enospc_and_removes_the_run_directory(experiment, tmp_path, tmpfs):
    small = tmpfs("full", "size=160k")  # room for config and metrics, not for a checkpoint (~1 MB)
    proc = cli("train", experiment, "--out", small / "run", "--no-progress")
    err = assert_one_line_error(proc, str(small / "run"), "No space left on device")
    assert "unexpected pos" not in err
    assert list(small.iterdir()) == []  # the half-made run directory is gone, temp files with it


def _fill(disk: Path, leave: int) -> Path:
    """Fill the file system at `disk`, then give back `leave` bytes."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: ENOSPC surfaces in write(), not at close()
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


def _start_train(path: Path, run: Path, *extra) -> subprocess.Popen:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "bench.cli"]
    return subprocess.Popen([*cmd, "train", str(path), "--out", str(run), "--no-progress", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout_s: float = 300, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and proc.poll() is None and not ready():
            time.sleep(poll_s)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_existing_run_keeps_its_last_good_state_on_a_full_disk(experiment, tmp_path, tmpfs):
    """A killed run with a checkpoint, resumed on a full disk: exit 2 naming ENOSPC, and the run directory keeps
    its checkpoint and no temp file."""
    disk = tmpfs("disk", "size=16m")
    run = disk / "run"
    cfg = yaml.safe_load(experiment.read_text())
    cfg["train"].update({"iterations": 200, "checkpoint_every": 2})
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    first = _start_train(path, run)
    _kill_when(first, lambda: (run / "checkpoints" / "iter_0000002.pt").exists())
    assert first.returncode == -signal.SIGKILL
    good = {p.name: p.read_bytes() for p in (run / "checkpoints").iterdir() if p.name.startswith("iter_")}
    assert good
    filler = _fill(disk, leave=96 * 1024)  # room for the lock, the config and metrics; not for a checkpoint
    proc = cli("train", path, "--out", run, "--no-progress", "--resume", timeout=400)
    assert_one_line_error(proc, str(run), "No space left on device")
    assert run.is_dir() and (run / "config.yaml").is_file()
    for name, data in good.items():
        assert (run / "checkpoints" / name).read_bytes() == data
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    filler.unlink()


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["under_file", "proc", "read_only"])
def test_report_and_check_to_unwritable_out(tmp_path, tmpfs, kind):
    from tests.reports.fixture import default_trials, write_sweep

    sweep = write_sweep(tmp_path / "sweep", default_trials())
    out, reason = _unwritable(kind, tmp_path, tmpfs)
    assert_one_line_error(cli("report", sweep, "--out", out / "report"), str(out), reason)
    proc = cli("check", sweep, "--out", out / "check.csv")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert reason in proc.stderr and str(out) in proc.stderr
    assert not out.exists()


def test_full_disk_error_names_the_file_in_atomic_writes(tmp_path, tmpfs):
    from bench.files.atomic import write_bytes
    from bench.engine.checkpoint import save_checkpoint
    import torch

    small = tmpfs("tiny", "size=64k")
    with pytest.raises(OSError) as err:
        write_bytes(small / "big.bin", b"\0" * 200_000)
    assert err.value.filename == str(small / "big.bin") and err.value.errno == 28
    with pytest.raises(OSError) as err:
        save_checkpoint(small / "checkpoints", 2, {"w": torch.zeros(100_000)}, keep=1)
    assert err.value.errno == 28 and "iter_0000002.pt" in err.value.filename
    assert [p.name for p in (small / "checkpoints").iterdir()] == []  # no temp file left


@pytest.mark.timeout(120)
def test_unreachable_address_fails_within_its_bound_writing_nothing(experiment, tmp_path):
    spec = tmp_path / "spec.yaml"
    doc = yaml.safe_load(experiment.read_text())
    doc["sweep"] = {"name": "s", "axes": {"seed": [0]}}
    spec.write_text(yaml.safe_dump(doc))
    t0 = time.monotonic()
    proc = cli("sweep", spec, "--out", tmp_path / "out", "--address", "127.0.0.1:1")
    took = time.monotonic() - t0
    assert_one_line_error(proc, "--address 127.0.0.1:1", "cannot connect")
    assert took < CONNECT_TIMEOUT_S + 60  # the bound plus the interpreter's start on a loaded machine
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("address", ["::::", "host:", ":6379", "host:0", "host:99999", "a b:1"])
def test_malformed_address_is_one_line(experiment, tmp_path, address):
    spec = tmp_path / "spec.yaml"
    doc = yaml.safe_load(experiment.read_text())
    doc["sweep"] = {"name": "s", "axes": {"seed": [0]}}
    spec.write_text(yaml.safe_dump(doc))
    proc = cli("sweep", spec, "--out", tmp_path / "out", f"--address={address}")
    assert_one_line_error(proc, "--address", "HOST:PORT")
    assert not (tmp_path / "out").exists()


def test_address_parser():
    from bench.errors import UserError
    from bench.sweep.driver.cluster.ray_address import parse_address

    assert parse_address("auto") is None
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address("[fd00::5]:6379") == ("fd00::5", 6379)
    assert parse_address("head.example:1") == ("head.example", 1)
    for bad in ("::::", "[::1]", "fd00::5:6379", "x:-1", "x:1.5"):
        with pytest.raises(UserError):
            parse_address(bad)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_during_checkpoint_writing_then_resume_removes_temp_files(experiment, tmp_path):
    """SIGKILL a training run while it writes checkpoints (the temp file of a checkpoint on its way is left, as a
    killed writer leaves it), then resume: the run finishes and no temp file stays in checkpoints/."""
    run = tmp_path / "run"
    cfg = yaml.safe_load(experiment.read_text())
    cfg["train"].update({"iterations": 6, "checkpoint_every": 1, "keep_checkpoints": 2})
    path = tmp_path / "every.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = _start_train(path, run)
    ck = run / "checkpoints"
    # Kill as soon as a checkpoint's temp file is seen (a write in progress) after a first complete checkpoint.
    _kill_when(proc, lambda: (ck / "iter_0000001.pt").exists() and any(p.name.startswith(".iter_")
                                                                       for p in ck.iterdir()), poll_s=0.002)
    assert proc.returncode == -signal.SIGKILL, "the run finished before a checkpoint write was caught"
    # Whether or not the kill landed inside the write, plant the half-written file such a kill leaves.
    newest = sorted(p for p in ck.iterdir() if p.name.startswith("iter_"))[-1]
    half = ck / f".iter_{int(newest.stem[5:]) + 1:07d}.pt.k1ll.tmp"
    half.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    resumed = cli("train", path, "--out", run, "--no-progress", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert sorted(p.name for p in ck.iterdir() if p.name.startswith(".")) == []
    assert (run / "final.json").is_file() and not (run / ".ifa-bench.lock").exists()
    # eval --out to an unwritable place: one line naming it, after the evaluation ran.
    bad = tmp_path / "final.json" / "metrics.json"
    (tmp_path / "final.json").write_text("{}")
    proc = cli("eval", ck / "last.pt", "--config", path, "--out", bad, "--no-progress")
    assert_one_line_error(proc, str(tmp_path / "final.json"), "Not a directory")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("kind", ["under_file", "proc"])
def test_sweep_to_unwritable_out(experiment, tmp_path, tmpfs, kind):
    spec = tmp_path / "spec.yaml"
    doc = yaml.safe_load(experiment.read_text())
    doc["sweep"] = {"name": "s", "axes": {"seed": [0]}}
    spec.write_text(yaml.safe_dump(doc))
    out, reason = _unwritable(kind, tmp_path, tmpfs)
    assert_one_line_error(cli("sweep", spec, "--out", out / "sweep"), str(out), reason)
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_second_train_on_one_run_directory_refused_naming_the_holder(experiment, tmp_path):
    run = tmp_path / "run"
    cfg = yaml.safe_load(experiment.read_text())
    cfg["train"].update({"iterations": 400, "checkpoint_every": 200})
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "bench.cli"]
    first = subprocess.Popen([*cmd, "train", str(path), "--out", str(run), "--no-progress"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (run / ".ifa-bench.lock").exists() and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.1)
        second = cli("train", path, "--out", run, "--no-progress", "--resume")
        assert_one_line_error(second, str(run), f"PID {first.pid}", "in use")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    shutil.rmtree(run, ignore_errors=True)
