"""A watchdog beside the sweep driver that ends the embedded Ray's processes when the driver ends, however it ends.

Ray 2.60 ties its GCS and raylet to the driver (PR_SET_PDEATHSIG), but the agents the raylet starts
(ray::DashboardAgent, ray::RuntimeEnvAgent) and idle workers outlive a SIGKILLed driver, re-parented to PID 1.
This process (its own session, so a Ctrl-C or a kill of the driver's process group does not reach it) samples the
driver's descendants every POLL_S seconds into the sweep folder's record (layout.RAY_SESSION), and when the driver
is gone, or says `stop` on stdin (or closes it), kills every recorded process still alive and removes Ray's temp
folder. The record lets a later start of the same sweep end what is left if this watchdog was killed too.

Run as: python -m bench.sweep.driver.cluster.ray_reaper DRIVER_PID RECORD_JSON
"""
from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import stat
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.errors import UserError
from bench.files.atomic import write_json
from bench.files.no_follow import read_text_no_follow

SESSION_VAR = "IFA_BENCH_RAY_SESSION"  # set in the environment of every process of an embedded Ray of ours
TEMP_MARKER = ".ifa-bench-ray"  # in an embedded Ray's temp folder: the session id of the Ray that made it
TEMP_NAME = re.compile(r"ifa-ray-[0-9a-f]{12}")

POLL_S = 0.5
TERM_GRACE_S = 1.0


def _key(p: psutil.Process) -> tuple[int, float]:
    return p.pid, p.create_time()


def temp_root() -> Path:
    """Where the embedded Rays' temp folders go: ${RAY_TMPDIR:-/tmp}."""
    return Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir())


def ours(p: psutil.Process, session: str | None, temp_dir: Path | None = None) -> bool:
    """A process this project started for the session `session`: the user's own, and either with our session
    marker in its environment (EmbeddedRay sets it before Ray starts and Ray's processes inherit it), or holding a
    file open inside that session's private temp folder (`temp_dir`, checked by our_temp_dir: Ray's agents rewrite
    their process title over the memory /proc shows as their environment). A record is not trusted."""
    if not session:
        return False
    try:
        if p.uids().real != os.getuid():
            return False
        try:
            if p.environ().get(SESSION_VAR) == session:
                return True
        except (psutil.Error, OSError):
            pass
        inside = str(temp_dir).rstrip("/") + "/" if temp_dir else None
        return bool(inside) and any(f.path.startswith(inside) for f in p.open_files())
    except (psutil.Error, OSError):
        return False


def end_processes(procs: list[dict], session: str | None, temp_dir: Path | None = None,
                  grace_s: float = TERM_GRACE_S) -> list[int]:
    """SIGTERM, then SIGKILL after grace_s, every recorded {pid, create_time} still alive that is ours (`ours`);
    a reused PID, another user's process or one without our session's marker is left alone."""
    alive = []
    for rec in procs if isinstance(procs, list) else ():
        try:
            p = psutil.Process(int(rec["pid"]))
            if (abs(p.create_time() - float(rec["create_time"])) < 0.01 and p.pid != os.getpid()
                    and ours(p, session, temp_dir)):
                alive.append(p)
        except (psutil.Error, KeyError, ValueError, TypeError):
            continue
    for p in alive:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, still = psutil.wait_procs(alive, timeout=grace_s)
    for p in still:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(still, timeout=grace_s)
    return [p.pid for p in alive]


def our_temp_dir(path, session: str | None = None) -> Path | None:
    """`path` if an embedded Ray of ours made it: a real folder (not a link) named ifa-ray-<12 hex> directly under
    temp_root(), the user's own, holding our marker (with `session`'s id when given); else None."""
    if not path:
        return None
    path = Path(path)
    try:
        info = os.lstat(path)
        if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or not TEMP_NAME.fullmatch(path.name)
                or path.parent.resolve() != temp_root().resolve()):
            return None
        marker = read_text_no_follow(path / TEMP_MARKER).strip()
    except (OSError, UnicodeDecodeError, UserError):
        return None
    if not marker or (session is not None and marker != session):
        return None
    return path.parent.resolve() / path.name


def remove_temp_dir(path, session: str | None = None) -> bool:
    """Remove an embedded Ray's temp folder, only if it is ours (our_temp_dir)."""
    ours_ = our_temp_dir(path, session)
    if ours_ is None:
        return False
    shutil.rmtree(ours_, ignore_errors=True)
    return True


def watch(driver_pid: int, record_path: Path) -> None:
    record = json.loads(read_text_no_follow(record_path))
    session = os.environ.get(SESSION_VAR)
    driver = psutil.Process(driver_pid)
    seen: dict[int, float] = {int(r["pid"]): float(r["create_time"]) for r in record.get("processes", [])}
    stdin_open = True
    while True:
        try:
            kids = driver.children(recursive=True) if driver.is_running() else None
        except psutil.Error:
            kids = None
        if kids is None:
            break
        new = False
        for k in kids:
            try:
                pid, ct = _key(k)
            except psutil.Error:
                continue
            if pid != os.getpid() and seen.get(pid) != ct:
                seen[pid], new = ct, True
        if new:
            record["processes"] = [{"pid": p, "create_time": c} for p, c in sorted(seen.items())]
            write_json(record_path, record)
        if stdin_open:
            ready, _, _ = select.select([sys.stdin], [], [], POLL_S)
            if ready:
                line = sys.stdin.readline()
                if not line or line.strip() == "stop":
                    break
                stdin_open = bool(line)
        else:
            time.sleep(POLL_S)
    end_processes([{"pid": p, "create_time": c} for p, c in seen.items()], session,
                  our_temp_dir(record.get("temp_dir"), session) if session else None)
    if session:
        remove_temp_dir(record.get("temp_dir"), session)
    record_path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver's Ctrl-C is the driver's; we clean up after it
    watch(int(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
