"""`make mutation` for modules mutmut cannot reach: cosmic-ray, which rewrites the source file on disk per mutant.

mutmut 3 mutates through trampolines and skips decorated functions, so the bodies of @triton.jit kernels (whose
real source triton reads with `inspect`) are out of its reach. cosmic-ray writes each mutant into the file itself,
runs the test command, and puts the file back. Here that happens in a scratch copy of the tree (mutants/<name>-<i>/:
the tracked and untracked, not ignored, files), one per mutated file, and the tests run there with that copy first
on PYTHONPATH, so a mutant left behind by an interrupted run never touches the worktree, and the tests' own worker
processes (spawned, they inherit PYTHONPATH and the working directory) import the mutant too.

Each file of a module is one cosmic-ray session (init, the operator filter, exec with its local distributor) with
its own tests; up to `jobs` files run at the same time. Per module, mutation-results/<name>/ gets statuses.json
({mutant: status}: killed, timeout, survived, error, not checked), run.json and survivors.txt (each undetected
mutant's diff). Mutant names: path:line:operator#occurrence.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SCRATCH = Path("mutants")


@dataclass(frozen=True)
class CosmicModule:
    files: tuple[tuple[str, tuple[str, ...]], ...]  # (file, the tests run for its mutants)
    operators: tuple[str, ...]  # cosmic-ray operator names (regular expressions, whole name) that are run
    path: str = ""  # what the summary shows in its file column
    timeout_s: float = 180.0  # per mutant (cosmic-ray counts a timeout as killed; it is reported as timeout)

    def in_scope(self, mutant: str) -> bool:  # statuses.json holds only in-scope mutants
        return True


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = Path(f)
        if src.is_file() and not src.is_symlink():
            (dest / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / src)


def _config(module: CosmicModule, file: str, tests: tuple[str, ...]) -> str:
    keep = "|".join(f"(?:{op})" for op in module.operators)
    test_command = " ".join([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests])
    return "\n".join([
        "[cosmic-ray]", f"module-path = {json.dumps(file)}", f"timeout = {module.timeout_s}",
        "excluded-modules = []", f"test-command = {json.dumps(test_command)}",
        "[cosmic-ray.distributor]", 'name = "local"',
        "[cosmic-ray.filters.operators-filter]",
        # the filter skips operators that match; everything but the listed ones is skipped
        f"exclude-operators = [{json.dumps(f'^(?!(?:{keep})$)')}]", ""])


def _cr(*args: str) -> list[str]:
    return [sys.executable, "-m", "cosmic_ray.cli", *args]


def _start(name: str, index: int, module: CosmicModule, env: dict, log) -> subprocess.Popen:
    file, tests = module.files[index]
    scratch = (SCRATCH / f"{name}-{index}").resolve()
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    _copy_tree(scratch)
    (scratch / "cosmic-ray.toml").write_text(_config(module, file, tests))
    env = {**env, "PYTHONPATH": str(scratch)}
    script = " && ".join([
        " ".join(_cr("init", "cosmic-ray.toml", "session.sqlite")),
        f"{sys.executable} -m cosmic_ray.tools.filters.operators_filter session.sqlite cosmic-ray.toml",
        " ".join(_cr("exec", "cosmic-ray.toml", "session.sqlite"))])
    return subprocess.Popen(["bash", "-c", script], cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    """Interrupt a session (cosmic-ray records each mutant as it finishes, and its exec resumes what is left)."""
    for sig, wait in ((signal.SIGINT, 60), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _status(result: dict | None) -> str | None:
    """None: out of scope (an operator the filter skipped)."""
    if result is None:
        return "not checked"
    outcome = result["worker_outcome"]
    if outcome == "skipped":
        return None
    if outcome != "normal":
        return "error"  # the mutation could not be made or the worker failed: not counted as detected
    if result["test_outcome"] == "killed":
        return "timeout" if result["output"] == "timeout" else "killed"
    return "survived" if result["test_outcome"] == "survived" else "error"


def collect(name: str, index: int, env: dict, folder: Path) -> tuple[dict[str, str], list[str]]:
    """{mutant: status} and the survivors' diffs of one file's session (its full dump kept as session-<i>.jsonl)."""
    scratch = SCRATCH / f"{name}-{index}"
    if not (scratch / "session.sqlite").exists():
        return {}, []
    dump = subprocess.run(_cr("dump", "session.sqlite"), cwd=scratch, env=env, capture_output=True, text=True)
    (folder / f"session-{index}.jsonl").write_text(dump.stdout)
    statuses, diffs = {}, []
    for line in dump.stdout.splitlines():
        item, result = json.loads(line)
        status = _status(result)
        if status is None:
            continue
        m = item["mutations"][0]
        key = f"{m['module_path']}:{m['start_pos'][0]}:{m['operator_name'].removeprefix('core/')}#{m['occurrence']}"
        statuses[key] = status
        if status not in ("killed", "timeout"):
            diffs.append(f"## {status}: {key}\n{(result or {}).get('diff') or '(not run)'}\n")
    return statuses, diffs


def run_module(name: str, module: CosmicModule, results: Path, budget: float, jobs: int) -> dict:
    folder = results / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("TRITON_INTERPRET", None)  # the kernel tests set it in their own workers
    start, deadline = time.monotonic(), time.monotonic() + budget
    pending, running, finished, elapsed = list(range(len(module.files))), {}, True, {}
    logs = []
    while pending or running:
        while pending and len(running) < jobs:
            i = pending.pop(0)
            logs.append(open(folder / f"cosmic-ray-{i}.log", "wb"))
            running[i] = (_start(name, i, module, env, logs[-1]), time.monotonic())
        for i, (proc, began) in list(running.items()):
            if proc.poll() is not None:
                elapsed[module.files[i][0]] = round(time.monotonic() - began, 1)
                del running[i]
        if time.monotonic() > deadline:
            finished = False
            for i, (proc, began) in running.items():
                _stop(proc)
                elapsed[module.files[i][0]] = round(time.monotonic() - began, 1)
            running.clear()
            break
        time.sleep(2)
    for f in logs:
        f.close()
    statuses, diffs = {}, []
    for i in range(len(module.files)):
        s, d = collect(name, i, env, folder)
        statuses.update(s)
        diffs += d
    (folder / "statuses.json").write_text(json.dumps(statuses, indent=1, sort_keys=True) + "\n")
    (folder / "survivors.txt").write_text("\n".join(diffs))
    total = round(time.monotonic() - start, 1)
    info = {"module": name, "path": module.path, "tool": "cosmic-ray", "operators": list(module.operators),
            "tests": {f: list(t) for f, t in module.files}, "jobs": jobs, "budget_s": budget,
            "elapsed_s": total, "elapsed_per_file_s": elapsed, "finished": finished,
            "load_average": os.getloadavg(), "ended": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(SCRATCH, ignore_errors=True)
    print(f"{name}: {total:.0f} s{'' if finished else ' (budget reached, interrupted)'}", flush=True)
    return info
