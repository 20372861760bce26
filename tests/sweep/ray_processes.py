"""A Ray cluster of separate `ray start` processes on this machine, for tests: a head that only schedules (and
serves the job API on 127.0.0.1) and worker nodes, each with a custom resource. Every process the cluster starts
carries a marker in its environment, so cleanup ends exactly those processes, by PID, whatever happened; `ray stop`
is never used (it would stop every Ray on the machine)."""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

MARKER = "IFA_BENCH_TEST_CLUSTER"
NODE_MARKER = "IFA_BENCH_TEST_NODE"  # the node's name, in the environment of the processes a node's `ray start` makes


def ray_exe() -> str:
    return shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"


class ProcessCluster:
    def __init__(self, base: Path, env: dict):
        self.base = base
        self.marker = secrets.token_hex(8)
        # Ray 2.60 token auth: one token for the nodes, the drivers and the job client, in the environment; a private
        # HOME keeps ~/.ray/auth_token and ~/.aws of the user out of it.
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**env, MARKER: self.marker, "HOME": str(home), "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}
        self.env.pop("RAY_ADDRESS", None)
        self.env.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # set, it refuses a second node; a user's shell has not
        self.temp_dir = Path(f"/tmp/rc{self.marker[:6]}")  # short: Ray's socket paths have at most 107 bytes
        self.port = self.dashboard_port = None
        self.blocking: dict[str, subprocess.Popen] = {}  # node name -> its `ray start --block` process
        self.node_temp: dict[str, Path] = {}

    def _start(self, args: list[str], what: str) -> None:
        log = self.base / f"{what}.log"
        for attempt in (1, 2):  # Ray waits a fixed 30 s for a new raylet to register: a busy machine can miss it
            done = subprocess.run([ray_exe(), "start", *args], env=self.env, stdout=log.open("w"),
                                  stderr=subprocess.STDOUT, timeout=150)
            if done.returncode == 0 or "timed out during startup" not in log.read_text() or attempt == 2:
                break
            if what == "head":
                self.shutdown()  # what the failed start left (by PID); the next start begins afresh
        assert done.returncode == 0, f"ray start ({what}) failed:\n{log.read_text()[-3000:]}"

    @staticmethod
    def _agent_ports() -> list[str]:
        """Ports of its own for each node's agents. Ray's defaults are fixed numbers (52365, ...), so with several
        nodes on one machine the first agent to start takes them: under load a worker node's agent could win the
        head's job-API agent port, and every `ray job submit` then failed with "No available agent"."""
        from tests.sweep.s3_server import free_port

        return ["--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]

    def start_head(self, port: int, dashboard_port: int) -> None:
        self.port, self.dashboard_port = port, dashboard_port
        self._start([
            *self._agent_ports(),
            "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "0",
            "--resources", json.dumps({"head": 1}), "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(dashboard_port), "--temp-dir", str(self.temp_dir), "--disable-usage-stats",
            "--system-config", json.dumps({"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                                           "health_check_failure_threshold": 3}),
        ], "head")

    def _node_args(self, name: str, cpus: int) -> list[str]:
        return [*self._agent_ports(), "--address", f"127.0.0.1:{self.port}", "--node-ip-address", "127.0.0.1",
                "--num-cpus", str(cpus), "--resources", json.dumps({name: 1})]

    def add_node(self, name: str, cpus: int = 1) -> None:
        self._start(self._node_args(name, cpus), name)

    def add_blocking_node(self, name: str, cpus: int = 1, timeout_s: float = 150) -> None:
        """A worker node as `ray start --block` (the form docs/cluster.md gives for nodes started by hand and the
        Slurm script uses): the `ray start` process stays as the parent of the node's processes, and when one of them
        dies (a killed raylet) it kills the others and exits. The node has a temp folder and a marker of its own, so
        node_processes finds exactly its processes."""
        temp = Path(f"{self.temp_dir}{name[-1]}")
        self.node_temp[name] = temp
        log = self.base / f"{name}.log"
        proc = subprocess.Popen([ray_exe(), "start", *self._node_args(name, cpus), "--temp-dir", str(temp), "--block"],
                                env={**self.env, NODE_MARKER: name}, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.blocking[name] = proc
        wait_for(lambda: proc.poll() is not None or "will now block forever" in log.read_text(), timeout_s,
                 f"ray start --block ({name})")
        assert proc.poll() is None, f"ray start --block ({name}) exited:\n{log.read_text()[-3000:]}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def job_address(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def processes(self) -> list[psutil.Process]:
        mine = []
        for p in psutil.process_iter(["pid"]):
            try:
                if p.environ().get(MARKER) == self.marker:
                    mine.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return mine

    def node_processes(self, name: str) -> list[psutil.Process]:
        """The live processes of worker node `name` (started by add_blocking_node or by hand with its marker): its
        marker in their environment, or its temp folder in their command line or open files (Ray's agents and workers
        overwrite the memory /proc shows as environment and command line with their titles)."""
        temp = str(self.node_temp.get(name, f"/nonexistent/{name}")) + "/"
        found = []
        for p in psutil.process_iter(["pid"]):
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    continue
                env = p.environ()
                if (env.get(MARKER) == self.marker and env.get(NODE_MARKER) == name) or any(
                        temp in a for a in p.cmdline()) or any(f.path.startswith(temp) for f in p.open_files()):
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def kill_node_of(self, pid: int) -> int:
        """SIGKILL the raylet that started process `pid` and every process under it: the node is gone, as when a
        machine dies. Returns the raylet's PID."""
        proc = psutil.Process(pid)
        raylet = next((p for p in proc.parents() if "raylet" in p.name()), None)
        assert raylet is not None, f"no raylet above PID {pid}"
        victims = [raylet, *raylet.children(recursive=True)]
        for p in victims:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=10)
        return raylet.pid

    def shutdown(self) -> list[int]:
        """End every process of this cluster by PID (TERM, then KILL); remove its temp folder."""
        procs = self.processes()
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=10)
        for proc in self.blocking.values():  # reaped: ended above with the rest, or exited by itself
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for temp in (self.temp_dir, *self.node_temp.values()):
            shutil.rmtree(temp, ignore_errors=True)
        return [p.pid for p in procs]


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")


@contextlib.contextmanager
def head_and_two_nodes(folder: Path, blocking: bool = False):
    """A head and two worker nodes ("node_a", "node_b"; started with `ray start --block` when `blocking`), in this
    process's environment; shut down after, with a check that no process of theirs outlived it."""
    from tests.sweep.s3_server import free_port

    c = ProcessCluster(folder, dict(os.environ))
    try:
        c.start_head(free_port(), free_port())
        for name in ("node_a", "node_b"):
            (c.add_blocking_node if blocking else c.add_node)(name)
        yield c
    finally:
        c.shutdown()
        assert not c.processes(), "processes of the test cluster outlived it"
