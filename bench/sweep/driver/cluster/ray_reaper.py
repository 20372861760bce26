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
import select
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil

from bench.files.atomic import write_json

POLL_S = 0.5
TERM_GRACE_S = 1.0


def _key(p: psutil.Process) -> tuple[int, float]:
    return p.pid, p.create_time()


def end_processes(procs: list[dict], grace_s: float = TERM_GRACE_S) -> list[int]:
    """SIGTERM, then SIGKILL after grace_s, every {pid, create_time} still alive (a reused PID is left alone)."""
    alive = []
    for rec in procs:
        try:
            p = psutil.Process(int(rec["pid"]))
            if abs(p.create_time() - float(rec["create_time"])) < 0.01 and p.pid != os.getpid():
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


def watch(driver_pid: int, record_path: Path) -> None:
    record = json.loads(record_path.read_text())
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
    end_processes([{"pid": p, "create_time": c} for p, c in seen.items()])
    temp_dir = record.get("temp_dir")
    if temp_dir:
        shutil.rmtree(temp_dir, ignore_errors=True)
    record_path.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver's Ctrl-C is the driver's; we clean up after it
    watch(int(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
