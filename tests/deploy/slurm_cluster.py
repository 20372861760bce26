"""A Slurm cluster on this host under a temp dir, for tests: munged, slurmctld and slurmd (Debian's slurm-wlm 22.05),
configured with ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, select/cons_tres with CR_CPU and no cgroups,
ports picked free and every file (key, sockets, state, spool, logs) inside the temp dir. The daemons run in the
foreground as children of the test and are ended by PID. Needs root (slurmd starts jobs as their user).

One node by default, on loopback. With `second_node=True` a second slurmd runs in a network namespace of its own
(`ip netns`, joined to this host's by a veth pair with addresses 10.231.0.1 and .2, both only in these two
namespaces), so its jobs' processes have their own network stack: a second node, sharing this host's file system
and process table."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scancel", "scontrol", "sinfo", "srun")


def missing_reason() -> str | None:
    """Why a one-host Slurm cannot be started here (None: it can)."""
    absent = [exe for exe in (*DAEMONS, *CLIENTS) if shutil.which(exe) is None]
    if absent:
        return (f"Slurm is not installed ({', '.join(absent)} not on PATH): `make check-slurm` installs Debian's "
                "slurm-wlm and munge and runs this test")
    if os.geteuid() != 0:
        return "a one-host Slurm needs root (slurmd starts jobs as their user); run `make check-slurm` as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OneHostSlurm:
    NETNS, HOST_IF, NS_IF = "ifa-slurm-n2", "ifa-sl-h", "ifa-sl-n"
    HOST_ADDR, NS_ADDR = "10.231.0.1", "10.231.0.2"

    def __init__(self, base: Path, cpus: int = 2, second_node: bool = False):
        self.base = base
        self.cpus = cpus
        self.node = "ifanode"
        self.second_node = second_node
        self.nodes = [self.node] + (["ifanode2"] if second_node else [])
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = base / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        for var in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_")) and k != "SLURM_CONF"]:
            del self.env[var]  # a test run inside a Slurm job must not leak that job's settings into ours

    def _write_config(self) -> None:
        b = self.base
        for sub in ("munge", "state", "log", *(f"spool/{n}" for n in self.nodes)):
            (b / sub).mkdir(parents=True, exist_ok=True)
        (b / "munge").chmod(0o700)
        key = b / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host = socket.gethostname()
        ctl_addr = self.HOST_ADDR if self.second_node else "127.0.0.1"
        node_lines = f"NodeName={self.node} NodeHostname={host} NodeAddr={ctl_addr} CPUs={self.cpus} " \
                     f"Port={_free_port()} State=UNKNOWN\n"
        if self.second_node:
            node_lines += f"NodeName=ifanode2 NodeHostname={host} NodeAddr={self.NS_ADDR} CPUs={self.cpus} " \
                          f"Port={_free_port()} State=UNKNOWN\n"
        self.conf.write_text(f"""\
ClusterName=ifatest
SlurmctldHost={host}({ctl_addr})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={b}/munge/munge.socket
CredType=cred/munge
SlurmctldPort={_free_port()}
StateSaveLocation={b}/state
SlurmdSpoolDir={b}/spool/%n
SlurmctldPidFile={b}/slurmctld.pid
SlurmdPidFile={b}/slurmd-%n.pid
SlurmctldLogFile={b}/log/slurmctld.log
SlurmdLogFile={b}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
KillWait=10
{node_lines}PartitionName=debug Nodes={",".join(self.nodes)} Default=YES MaxTime=INFINITE State=UP
""")

    def _daemon(self, name: str, args: list[str], key: str | None = None, netns: str | None = None) -> None:
        key = key or name
        log = (self.base / "log" / f"{key}.out").open("w")
        # nsenter switches only the network namespace (`ip netns exec` also remounts /sys, without cgroups there)
        prefix = ["nsenter", f"--net=/var/run/netns/{netns}"] if netns else []
        self.procs[key] = subprocess.Popen([*prefix, name, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def _ip(self, *args: str, netns: str | None = None, check: bool = True) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        subprocess.run([*prefix, "ip", *args], check=check, capture_output=True, timeout=30)

    def _make_netns(self) -> None:
        self._remove_netns()
        self._ip("netns", "add", self.NETNS)
        self._ip("link", "add", self.HOST_IF, "type", "veth", "peer", "name", self.NS_IF)
        self._ip("link", "set", self.NS_IF, "netns", self.NETNS)
        self._ip("addr", "add", f"{self.HOST_ADDR}/24", "dev", self.HOST_IF)
        self._ip("link", "set", self.HOST_IF, "up")
        self._ip("addr", "add", f"{self.NS_ADDR}/24", "dev", self.NS_IF, netns=self.NETNS)
        self._ip("link", "set", self.NS_IF, "up", netns=self.NETNS)
        self._ip("link", "set", "lo", "up", netns=self.NETNS)

    def _remove_netns(self) -> None:
        self._ip("link", "del", self.HOST_IF, check=False)
        self._ip("netns", "del", self.NETNS, check=False)

    def start(self, timeout_s: float = 90) -> None:
        if self.second_node:
            self._make_netns()
        self._write_config()
        b = self.base
        self._daemon("munged", ["-F", "--force", f"--key-file={b}/munge/munge.key", f"--socket={b}/munge/munge.socket",
                                f"--pid-file={b}/munge/munged.pid", f"--log-file={b}/log/munged.log",
                                f"--seed-file={b}/munge/munged.seed"])
        self._wait(lambda: (b / "munge" / "munge.socket").exists(), 30, "munged's socket")
        self._daemon("slurmctld", ["-D", "-i", "-f", str(self.conf)])
        self._daemon("slurmd", ["-D", "-N", self.node, "-f", str(self.conf)])
        if self.second_node:
            self._daemon("slurmd", ["-D", "-N", "ifanode2", "-f", str(self.conf)], key="slurmd2", netns=self.NETNS)
        self._wait(lambda: self.run("sinfo", "-h", "-o", "%t", check=False).split() == ["idle"],
                   timeout_s, f"nodes {self.nodes} idle in sinfo")

    def _wait(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                       + self.logs())
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}:\n" + self.logs())

    def logs(self, tail: int = 40) -> str:
        out = []
        for f in sorted((self.base / "log").glob("*")):
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def run(self, *args: str, check: bool = True, **kw) -> str:
        done = subprocess.run(list(args), env={**self.env, **kw.pop("env", {})}, capture_output=True, text=True,
                              timeout=60, **kw)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def submit(self, script: Path, *args: str, sbatch_options: list[str], env: dict, cwd: Path) -> str:
        job_env = {**self.env, **env}
        done = subprocess.run(["sbatch", "--parsable", *sbatch_options, str(script), *args], env=job_env, cwd=cwd,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"sbatch failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        text = self.run("scontrol", "-o", "show", "job", job_id)
        return dict(item.split("=", 1) for item in text.split() if "=" in item)

    def wait(self, job_ids: list[str], timeout_s: float) -> dict[str, dict[str, str]]:
        """Wait until every job has ended; its scontrol record (JobState, ExitCode, ...) per job id."""
        finished = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED")
        deadline = time.monotonic() + timeout_s
        while True:
            records = {j: self.job(j) for j in job_ids}
            if all(r.get("JobState") in finished for r in records.values()):
                return records
            if time.monotonic() > deadline:
                for j in job_ids:
                    self.run("scancel", j, check=False)
                raise TimeoutError(f"jobs {job_ids} still running after {timeout_s:g} s: "
                                   + ", ".join(f"{j}={r.get('JobState')}" for j, r in records.items()))
            time.sleep(2)

    def stop(self) -> None:
        """End the daemons by PID (slurmd first), TERM then KILL after 10 s."""
        for name in ("slurmd2", "slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self.second_node:
            self._remove_netns()

    def alive(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is None]
