"""The records of a sweep folder (paths: bench.sweep.folder.layout), each written atomically (temp file + rename)."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.files.atomic import write_json
from bench.files.json_records import read_json
from bench.sweep.folder import layout


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_done(trial_dir: Path) -> dict | None:
    """The trial's results row if it completed, else None."""
    rec = read_json(Path(trial_dir) / layout.RESULT)
    return rec if isinstance(rec, dict) and rec.get("row", {}).get("status") == "completed" else None


def read_failure(folder: Path) -> dict | None:
    """failure.json of a trial folder or a protocol folder."""
    rec = read_json(Path(folder) / layout.FAILURE)
    return rec if isinstance(rec, dict) else None


def write_failure(folder: Path, error: str, **fields: Any) -> None:
    """failure.json of a trial folder or a protocol folder: the last attempt's one-line error and what the caller
    knows of it (attempt, at, host, traceback; `final` for an evaluation that is not retried)."""
    write_json(Path(folder) / layout.FAILURE, {**fields, "error": error})


def clear_failure(folder: Path) -> None:
    (Path(folder) / layout.FAILURE).unlink(missing_ok=True)


def read_attempts(trial_dir: Path) -> int:
    rec = read_json(Path(trial_dir) / layout.ATTEMPTS)
    return int(rec.get("count", 0)) if isinstance(rec, dict) else 0


def bump_attempts(trial_dir: Path, info: dict) -> int:
    rec = read_json(Path(trial_dir) / layout.ATTEMPTS) or {"count": 0, "history": []}
    rec["count"] = int(rec.get("count", 0)) + 1
    rec.setdefault("history", []).append(info)
    write_json(Path(trial_dir) / layout.ATTEMPTS, rec)
    return rec["count"]


def clear_unfinished(trial_dir: Path) -> None:
    """Forget an unfinished trial's training state so that it starts over (a run without --resume)."""
    trial_dir = Path(trial_dir)
    if not trial_dir.is_dir() or read_done(trial_dir):
        return
    for name in (layout.CHECKPOINTS, layout.METRICS, layout.FINAL, layout.MEASURE, layout.FAILURE):
        p = trial_dir / name
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def read_measurement(sweep_dir: Path, key: str) -> dict | None:
    """The measurement phase's record of `key` (bench.sweep.tasks.measurement.measure_key), if stored."""
    rec = read_json(layout.measurement_path(sweep_dir, key))
    return rec if isinstance(rec, dict) and rec.get("measure_key") == key else None


def write_measurement(sweep_dir: Path, key: str, rec: dict) -> None:
    write_json(layout.measurement_path(sweep_dir, key), rec)


def read_eval_done(trial_dir: Path, protocol: str) -> dict | None:
    """The done record of one evaluation protocol of the trial, if it finished."""
    rec = read_json(layout.eval_dir(trial_dir, protocol) / layout.RESULT)
    return rec if isinstance(rec, dict) and rec.get("protocol") == protocol and "metrics" in rec else None


def trial_state(trial_dir: Path) -> str:
    """"done" (a done record), "started" (attempted, not done) or "new", as the dry run shows it."""
    return "done" if read_done(trial_dir) else ("started" if read_attempts(trial_dir) else "new")
