"""A sweep's folder and the per-trial records in it, all written atomically (temp file + rename).

    <sweep>/sweep.yaml                 the spec this folder was last run with (resolved)
    <sweep>/results.csv, .parquet      one row per trial (bench.results.schema)
    <sweep>/per_class_iou.csv
    <sweep>/tune/                      Ray Tune's experiment state (Tuner.restore reads it)
    <sweep>/trials/<config_hash>/      one trial, stable across retries and reruns:
        config.yaml, config_hash.txt, metrics.jsonl, checkpoints/, final.json   (the engine's run directory)
        measure.json                   the measurement record
        attempts.json                  how many times the trial started, and where
        failure.json                   the last attempt's error (removed when the trial completes)
        result.json                    the "done" record: the trial's results row; the sweep never reruns it
        trial.log                      the trial's log
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from bench.files.atomic import write_text

TRIALS = "trials"
RESULT = "result.json"
FAILURE = "failure.json"
ATTEMPTS = "attempts.json"
MEASURE = "measure.json"
LOG = "trial.log"


def trial_dir(sweep_dir: Path, config_hash: str) -> Path:
    return Path(sweep_dir) / TRIALS / config_hash


def atomic_write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def read_done(tdir: Path) -> dict | None:
    """The trial's results row if it completed, else None."""
    rec = read_json(Path(tdir) / RESULT)
    return rec if isinstance(rec, dict) and rec.get("row", {}).get("status") == "completed" else None


def read_failure(tdir: Path) -> dict | None:
    rec = read_json(Path(tdir) / FAILURE)
    return rec if isinstance(rec, dict) else None


def read_attempts(tdir: Path) -> int:
    rec = read_json(Path(tdir) / ATTEMPTS)
    return int(rec.get("count", 0)) if isinstance(rec, dict) else 0


def bump_attempts(tdir: Path, info: dict) -> int:
    rec = read_json(Path(tdir) / ATTEMPTS) or {"count": 0, "history": []}
    rec["count"] = int(rec.get("count", 0)) + 1
    rec.setdefault("history", []).append(info)
    atomic_write_json(Path(tdir) / ATTEMPTS, rec)
    return rec["count"]


def clear_unfinished(tdir: Path) -> None:
    """Forget an unfinished trial's training state so that it starts over (a run without --resume)."""
    tdir = Path(tdir)
    if not tdir.is_dir() or read_done(tdir):
        return
    for name in ("checkpoints", "metrics.jsonl", "final.json", MEASURE, FAILURE):
        p = tdir / name
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
