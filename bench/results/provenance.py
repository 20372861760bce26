"""Which code produced a result: the package version, the git commit and whether tracked files differed from it.

From `git` when ifa-bench runs from a checkout (the folder above `bench/` holds `.git`), else from the installed
package's metadata (a `pip install git+...` records its commit in direct_url.json; a wheel or sdist records none, so
`git_commit` is "" and `git_dirty` unknown). Torch-free; the result is computed once per process.
"""
from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

PACKAGE = "ifa-bench"
UNKNOWN_VERSION = "unknown"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds bench/


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # a source tree that was never installed
        return UNKNOWN_VERSION


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def from_checkout(root: Path) -> dict | None:
    """{git_commit, git_dirty} of the checkout at `root`, or None when it is not one (or git is missing).
    Dirty: a tracked file differs from the commit (untracked files, e.g. runs/, do not count)."""
    if not (root / ".git").exists():  # a folder in a normal clone, a file in a worktree
        return None
    head = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if head is None or status is None:
        return None
    return {"git_commit": head.strip(), "git_dirty": bool(status.strip())}


def from_metadata() -> dict:
    """The commit pip recorded for a VCS install (direct_url.json's vcs_info); "" and unknown dirtiness otherwise."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        text = distribution(PACKAGE).read_text("direct_url.json")
    except PackageNotFoundError:
        text = None
    try:
        commit = (json.loads(text).get("vcs_info") or {}).get("commit_id", "") if text else ""
    except (ValueError, AttributeError):
        commit = ""
    return {"git_commit": str(commit or ""), "git_dirty": None}


@functools.lru_cache(maxsize=None)
def _cached() -> tuple:
    found = from_checkout(_SOURCE_ROOT) or from_metadata()
    return package_version(), found["git_commit"], found["git_dirty"]


def provenance() -> dict:
    """{"ifa_bench_version", "git_commit", "git_dirty"}: git_dirty is True/False, or None when unknown."""
    version, commit, dirty = _cached()
    return {"ifa_bench_version": version, "git_commit": commit, "git_dirty": dirty}


def version_line() -> str:
    """What `ifa-bench --version` prints, e.g. "0.1.0 (git 34f6889c1a2b, dirty)"."""
    p = provenance()
    if not p["git_commit"]:
        return f"{p['ifa_bench_version']} (git commit unknown)"
    state = {True: ", dirty", False: "", None: ", dirty state unknown"}[p["git_dirty"]]
    return f"{p['ifa_bench_version']} (git {p['git_commit'][:12]}{state})"
