"""Start, join and stop Ray for a sweep, leaving nothing behind (docs/sweeps.md, "Processes, files and sockets").

Embedded (no --address): a single-node Ray bound to 127.0.0.1 wherever Ray 2.60 allows, with its temp/session
folder in a private folder named after the sweep folder (temp_dir_for), a watchdog (bench/sweep/driver/cluster/ray_reaper.py)
that ends Ray's processes when the driver ends however it ends, and a record of those processes in the sweep
folder (layout.RAY_SESSION) so the next start or --resume of the same sweep ends what an earlier one left.
Cluster (--address): the address is checked and probed (bench/sweep/driver/cluster/ray_address.py) before anything is written.
"""
from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Optional

from bench.files.json_records import read_json
from bench.files.atomic import write_json
from bench.sweep.driver.cluster.ray_reaper import (SESSION_VAR, TEMP_MARKER, end_processes, our_temp_dir,
                                                    remove_temp_dir,
                                                    temp_root)
from bench.sweep.folder import layout
REAPER_STOP_S = 15.0


def temp_dir_for(sweep_dir: Path) -> Path:
    """Ray's temp folder for the sweep at `sweep_dir`: ${RAY_TMPDIR:-/tmp}/ifa-ray-<12 hex of the sweep folder's path>.
    Not inside the sweep folder: Ray puts unix sockets under it and a socket path has at most 107 bytes."""
    return temp_root() / f"ifa-ray-{hashlib.sha256(str(Path(sweep_dir).resolve()).encode()).hexdigest()[:12]}"


# Ray makes its own temp folder world-writable (0777): it goes one level down, inside our private (0700) one
RAY_SUBDIR = "ray"
_LOOPBACK_VAR = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def loopback_env() -> tuple:
    """Make the embedded Ray's node address 127.0.0.1. ray.init(_node_ip_address="127.0.0.1") alone is turned into
    the host's external address (services.resolve_ip_for_localhost); with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 Ray
    takes the loopback address as the node's, as it does on macOS/Windows. Ray reads the variable when imported, so
    this runs before `import ray`; where Ray was imported already (in-process callers), its constant is set too.
    Returns what restore_env needs to undo it: the variable also refuses multi-node clusters, so a process (or any
    `ray start` it launches) that later joins a cluster must not keep it."""
    constants = sys.modules.get("ray._private.ray_constants")
    previous = (os.environ.get(_LOOPBACK_VAR), getattr(constants, "ENABLE_RAY_CLUSTER", None))
    os.environ[_LOOPBACK_VAR] = "0"
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False
    return previous


def restore_env(previous: tuple) -> None:
    """Undo loopback_env (after the embedded Ray has stopped)."""
    value, flag = previous
    if value is None:
        os.environ.pop(_LOOPBACK_VAR, None)
    else:
        os.environ[_LOOPBACK_VAR] = value
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = flag if flag is not None else (value != "0" if value is not None else True)


def end_leftovers(sweep_dir: Path) -> list[int]:
    """End the processes and remove the temp folder that an earlier embedded Ray of this sweep left (its driver and
    watchdog were killed). Call it only while holding the sweep folder's lock. Returns the PIDs it ended."""
    path = Path(sweep_dir) / layout.RAY_SESSION
    if path.is_symlink():  # not ours: never followed, only the link goes
        path.unlink()
        return []
    record = read_json(path)
    if record is None:
        return []
    record = record if isinstance(record, dict) else {}
    session = record.get("session") if isinstance(record.get("session"), str) else None
    # the record is not trusted: a process must carry the session marker, a folder ours (ray_reaper.ours/remove_temp_dir)
    temp_dir = our_temp_dir(record.get("temp_dir"), session) if session else None
    ended = end_processes(record.get("processes", []), session, temp_dir)
    if session:
        remove_temp_dir(record.get("temp_dir"), session)
    path.unlink(missing_ok=True)
    return ended


class EmbeddedRay:
    """ray.init of a local single-node Ray with its watchdog; stop() shuts both down and removes the temp folder."""

    def __init__(self, sweep_dir: Path):
        self.sweep_dir = Path(sweep_dir)
        self.temp_dir = temp_dir_for(self.sweep_dir)
        self._reaper: Optional[subprocess.Popen] = None
        self._env: Optional[tuple] = None
        self.session = secrets.token_hex(16)  # the marker of this Ray's processes and temp folder
        self._session_env = os.environ.get(SESSION_VAR)

    def start(self) -> None:
        self._env = loopback_env()
        import ray

        self._prepare_temp_dir()
        os.environ[SESSION_VAR] = self.session  # inherited by every Ray process and the watchdog
        record = self.sweep_dir / layout.RAY_SESSION
        write_json(record, {"driver_pid": os.getpid(), "temp_dir": str(self.temp_dir), "session": self.session,
                            "processes": []})
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "bench.sweep.driver.cluster.ray_reaper", str(os.getpid()), str(record)],
            stdin=subprocess.PIPE, text=True, start_new_session=True, cwd=str(Path(__file__).resolve().parents[4]),
        )
        try:
            ray.init(
                num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                logging_level="WARNING", _node_ip_address="127.0.0.1", _temp_dir=str(self.temp_dir / RAY_SUBDIR),
                object_store_memory=256 * 1024**2,  # trials pass configs and metrics only
            )
        except BaseException:
            self.stop()
            raise

    def _prepare_temp_dir(self) -> None:
        """A fresh temp folder, private to the user (0700, whatever the umask), marked as ours; an earlier one of
        ours is replaced, anything else at that path refused."""
        from bench.errors import UserError

        if os.path.lexists(self.temp_dir) and not remove_temp_dir(self.temp_dir):
            raise UserError(f"{self.temp_dir}: exists and was not made by ifa-bench (RAY_TMPDIR or the system temp "
                            f"folder); remove it or set RAY_TMPDIR to a folder of yours")
        temp_root().mkdir(mode=0o700, parents=True, exist_ok=True)
        self.temp_dir.mkdir(mode=0o700)
        os.chmod(self.temp_dir, 0o700)
        fd = os.open(self.temp_dir / TEMP_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.session + "\n")

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if self._reaper is not None:
            try:
                self._reaper.stdin.write("stop\n")
                self._reaper.stdin.close()
            except OSError:
                pass
            try:
                self._reaper.wait(timeout=REAPER_STOP_S)
            except subprocess.TimeoutExpired:
                self._reaper.kill()
                self._reaper.wait()
            self._reaper = None
        end_leftovers(self.sweep_dir)  # what the watchdog did not get to
        remove_temp_dir(self.temp_dir, self.session)
        if self._env is not None:
            restore_env(self._env)
            self._env = None
            if self._session_env is None:
                os.environ.pop(SESSION_VAR, None)
            else:
                os.environ[SESSION_VAR] = self._session_env


def join_cluster(address: str) -> None:
    import ray

    from bench.errors import UserError, one_line

    if ray.is_initialized():  # a sweep owns its process's Ray connection (in-process callers: tests, notebooks)
        ray.shutdown()
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=True, logging_level="WARNING")
    except ConnectionError as exc:  # `auto` without a cluster on this machine, or no Ray behind HOST:PORT
        raise UserError(f"--address {address}: cannot join a Ray cluster ({one_line(exc)})") from None
