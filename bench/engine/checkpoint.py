"""Training checkpoints: atomic writes, the newest-N retention, RNG state capture/restore, weights-only loads.

Layout: <run>/checkpoints/iter_0001200.pt (the last `keep` of them) and last.pt (a hard link to the newest;
a copy where links are not supported). Each file is a dict of tensors and plain values, so it loads with
torch.load(weights_only=True).
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from bench.files.atomic import replacing
from bench.files.links import link_or_copy
from bench.errors import UserError
from bench.files.unreadable import unreadable_reason
from bench.models.finite import require_finite

FORMAT = 1
LAST = "last.pt"
_NAME = re.compile(r"^iter_(\d+)\.pt$")


def checkpoint_name(iteration: int) -> str:
    return f"iter_{iteration:07d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(iteration, path) of every iter_*.pt, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(ckpt_dir: Path) -> Optional[Path]:
    found = list_checkpoints(ckpt_dir)
    return found[-1][1] if found else None


def _atomic_torch_save(obj, path: Path) -> None:
    # Through our own file object: torch.save to a path turns a full disk into "unexpected pos"; a file object
    # passes the OSError (ENOSPC, ...) through, and `replacing` names the checkpoint's path in it.
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as exc:  # the zip writer's complaint may hide the OSError it was raised over
                cause = _os_error_in(exc)
                if cause is None:
                    raise
                raise cause from None


def _os_error_in(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _link_last(path: Path) -> None:
    last = path.parent / LAST
    tmp = path.parent / f".{LAST}.{os.getpid()}.tmp"
    if tmp.exists():
        tmp.unlink()
    link_or_copy(path, tmp)
    os.replace(tmp, last)


def save_checkpoint(ckpt_dir: Path, iteration: int, state: dict, keep: int) -> Path:
    """Write iter_<iteration>.pt atomically, point last.pt at it, delete all but the newest `keep`."""
    path = ckpt_dir / checkpoint_name(iteration)
    _atomic_torch_save({"format": FORMAT, "iter": int(iteration), **state}, path)
    _link_last(path)
    for _, old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    for stale in ckpt_dir.glob(".*.tmp"):  # left by a process killed mid-write
        if stale.stat().st_mtime < path.stat().st_mtime - 60:
            stale.unlink(missing_ok=True)
    return path


def remove_partial_writes(ckpt_dir: Path) -> list[Path]:
    """Delete the temp files of writes that never finished (.iter_NNNNNNN.pt.XXXX.tmp, .last.pt.PID.tmp): left by a
    process killed mid-write. Only call it while holding the run's lock, when no other writer can be mid-write."""
    removed = []
    if ckpt_dir.is_dir():
        for stale in ckpt_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def load_checkpoint(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{path}: unreadable checkpoint ({unreadable_reason(exc)}); delete it to resume from an "
                        f"older one") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a checkpoint written by `ifa-bench train` (format {FORMAT})")
    if isinstance(state.get("model"), dict):
        require_finite(state["model"], path)
    return state


def capture_rng() -> dict:
    """The global RNG states (torch CPU and CUDA, numpy's legacy global, Python's) as weights-only-safe values."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
