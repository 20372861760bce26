"""Issue 10, classes 6, 16 and 17 on a real embedded Ray: two sweeps on one folder, a SIGKILLed driver after which
no Ray process of the sweep remains, loopback-only listening sockets, and leftovers ended by recorded PIDs."""
from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bench.sweep.driver.cluster.ray_reaper import SESSION_VAR, TEMP_MARKER
from bench.sweep.driver.cluster.ray_session import RAY_SUBDIR, end_leftovers, temp_dir_for
from bench.sweep.folder.layout import RAY_SESSION as RECORD
from tests.sweep.conftest import tiny_experiment, write_spec

BIN = Path(sys.executable).parent / "ifa-bench"


def _cli() -> list[str]:
    return [str(BIN)] if BIN.exists() else [sys.executable, "-m", "bench.cli"]


def _alive(pid: int, create_time: float) -> bool:
    try:
        p = psutil.Process(pid)
        return abs(p.create_time() - create_time) < 0.01 and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_driver_leaves_no_ray_process_and_sockets_are_loopback(tmp_path, data_root):
    spec = write_spec(tmp_path / "spec.yaml", tiny_experiment(data_root, iterations=400, checkpoint_every=200,
                                                              measure=False),
                      {"name": "procs", "axes": {"seed": [0]}, "resources": {"cpus": 1}})
    out = tmp_path / "out"
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([*_cli(), "sweep", str(spec), "--out", str(out)], stdout=log, stderr=subprocess.STDOUT)
    record_path = out / RECORD
    procs: list[dict] = []
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and driver.poll() is None:
            try:
                procs = json.loads(record_path.read_text())["processes"]
            except (OSError, ValueError, KeyError):
                procs = []
            names = {psutil.Process(p["pid"]).name() for p in procs if _alive(p["pid"], p["create_time"])}
            if "raylet" in names and any((out / "trials").glob("*/metrics.jsonl")):
                break
            time.sleep(1)
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()
        time.sleep(2)
        procs = json.loads(record_path.read_text())["processes"]
        temp_dir = Path(json.loads(record_path.read_text())["temp_dir"])
        assert temp_dir == temp_dir_for(out) and temp_dir.is_dir()
        assert str(temp_dir).startswith(os.environ.get("RAY_TMPDIR", "/tmp"))

        # 17: every listening socket of the sweep's processes (the driver's included) is on loopback.
        pids = {p["pid"] for p in procs} | {driver.pid}
        listening = [(c.pid, c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
                     if c.status == psutil.CONN_LISTEN and c.pid in pids]
        owners = {psutil.Process(pid).name() for pid, _, _ in listening}
        assert {"gcs_server", "raylet"} <= owners, listening
        assert [s for s in listening if not _is_loopback(s[1])] == []

        # 6: a second sweep on the same folder is refused at once, naming the first one's PID.
        t0 = time.monotonic()
        second = subprocess.run([*_cli(), "sweep", str(spec), "--out", str(out)], capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 2 and f"PID {driver.pid}" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert time.monotonic() - t0 < 60
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        log.close()

    # 16: nothing of that Ray session survives the driver (the watchdog ends it within seconds).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p["pid"], p["create_time"]) for p in procs):
        time.sleep(0.5)
    survivors = [(p["pid"], psutil.Process(p["pid"]).name()) for p in procs if _alive(p["pid"], p["create_time"])]
    for pid, _ in survivors:  # never leave them to the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert survivors == []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (temp_dir.exists() or record_path.exists()):
        time.sleep(0.5)
    assert not temp_dir.exists() and not record_path.exists()


def _our_temp_dir(out: Path, session: str) -> Path:
    """The temp folder an embedded Ray of ours made for the sweep at `out` (EmbeddedRay._prepare_temp_dir)."""
    temp = temp_dir_for(out)
    (temp / "session_x").mkdir(parents=True)
    (temp / TEMP_MARKER).write_text(session + "\n")
    return temp


@pytest.mark.timeout(60)
def test_next_start_ends_what_an_earlier_session_left(tmp_path):
    """The record of an earlier embedded session whose driver and watchdog were both killed: its processes are
    ended and its temp folder removed; a PID now used by another process (other start time) is left alone."""
    out = tmp_path / "sweep"
    out.mkdir()
    session = "ab" * 16
    orphan = subprocess.Popen(["sleep", "120"], start_new_session=True, env=dict(os.environ, **{SESSION_VAR: session}))
    bystander = subprocess.Popen(["sleep", "120"], start_new_session=True,
                                 env=dict(os.environ, **{SESSION_VAR: session}))
    temp = _our_temp_dir(out, session)
    try:
        ct = psutil.Process(orphan.pid).create_time()
        other_ct = psutil.Process(bystander.pid).create_time() - 1000  # as if the PID were reused since
        (out / RECORD).write_text(json.dumps({
            "driver_pid": 1, "temp_dir": str(temp), "session": session,
            "processes": [{"pid": orphan.pid, "create_time": ct}, {"pid": bystander.pid, "create_time": other_ct}],
        }))
        assert end_leftovers(out) == [orphan.pid]
        assert orphan.wait(timeout=10) is not None
        assert bystander.poll() is None
        assert not temp.exists() and not (out / RECORD).exists()
        assert end_leftovers(out) == []  # nothing recorded: nothing to do
    finally:
        for p in (orphan, bystander):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)


@pytest.mark.timeout(60)
def test_a_planted_record_kills_nothing_and_deletes_nothing(tmp_path):
    """Issue 28: a .ray_session.json naming a process without our session marker (or with another session's), a
    folder outside our temp root, our own temp folder under another session's id, or a link to a folder: nothing is
    ended and nothing removed."""
    out = tmp_path / "sweep"
    out.mkdir()
    session = "cd" * 16
    plain = subprocess.Popen(["sleep", "120"], start_new_session=True)  # not started by us
    other = subprocess.Popen(["sleep", "120"], start_new_session=True, env=dict(os.environ, **{SESSION_VAR: "ef" * 16}))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    (precious / TEMP_MARKER).write_text(session + "\n")  # even with our marker: not under our temp root
    ours_other_session = _our_temp_dir(out, "12" * 16)
    try:
        records = [
            {"session": session, "temp_dir": str(precious),
             "processes": [{"pid": p.pid, "create_time": psutil.Process(p.pid).create_time()} for p in (plain, other)]},
            {"session": session, "temp_dir": str(ours_other_session), "processes": []},
            {"temp_dir": str(ours_other_session),  # no session: nothing is ours
             "processes": [{"pid": plain.pid, "create_time": psutil.Process(plain.pid).create_time()}]},
        ]
        for record in records:
            (out / RECORD).write_text(json.dumps(record))
            assert end_leftovers(out) == []
        link = tmp_path / "linked"
        link.symlink_to(precious)
        (out / RECORD).write_text(json.dumps({"session": session, "temp_dir": str(link), "processes": []}))
        assert end_leftovers(out) == []
        assert plain.poll() is None and other.poll() is None
        assert (precious / "thesis.tex").read_text() == "years of work" and ours_other_session.is_dir()
    finally:
        for p in (plain, other):
            p.kill()
            p.wait(timeout=10)


@pytest.mark.timeout(60)
def test_ray_temp_folder_leaves_room_for_unix_sockets(tmp_path):
    deep = tmp_path / ("x" * 150) / "sweep"
    temp = temp_dir_for(deep)
    # Ray's longest socket path: <temp>/session_YYYY-MM-DD_HH-MM-SS_ffffff_PID/sockets/plasma_store
    longest = temp / RAY_SUBDIR / "session_2026-11-25_23-59-59_999999_4194304" / "sockets" / "plasma_store"
    assert len(str(longest).encode()) <= 107
    assert temp_dir_for(deep) == temp and temp_dir_for(tmp_path / "other") != temp


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigterm_ends_a_sweep_like_ctrl_c_without_a_stack_dump(tmp_path, data_root):
    """Issue 28: SIGTERM to a sweep printed a 4-line C++ stack dump (Ray's failure-signal handler). It now ends the
    sweep as Ctrl-C does: exit 130, the --resume line, no dump."""
    spec = write_spec(tmp_path / "spec.yaml", tiny_experiment(data_root, iterations=400, checkpoint_every=200,
                                                              measure=False),
                      {"name": "term", "axes": {"seed": [0]}, "resources": {"cpus": 1}})
    out = tmp_path / "out"
    driver = subprocess.Popen([*_cli(), "sweep", str(spec), "--out", str(out)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline and driver.poll() is None and not any((out / "trials").glob("*/metrics.jsonl")):
            time.sleep(1)
        assert driver.poll() is None
        driver.send_signal(signal.SIGTERM)
        output = driver.communicate(timeout=180)[0].decode(errors="replace")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
    assert driver.returncode == 130, output[-3000:]
    assert "--resume" in output and "SIGTERM received" not in output and "@ 0x" not in output, output[-3000:]
