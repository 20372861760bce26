"""A training run's directory: config.yaml, config_hash.txt, metrics.jsonl, checkpoints/, final.json."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

import yaml

from bench.files.atomic import json_safe, named, write_text
from bench.errors import UserError
from bench.files.no_follow import open_no_follow, read_text_no_follow


CONFIG, HASH, METRICS = "config.yaml", "config_hash.txt", "metrics.jsonl"
FINAL, CHECKPOINTS = "final.json", "checkpoints"


def existing_hash(out_dir: Path) -> Optional[str]:
    p = out_dir / HASH
    return p.read_text().strip() if p.is_file() else None


def check_run_dir(out_dir: Path, config_hash: str, resume: bool) -> None:
    """Refuse a directory that holds another run: a different config (always), or the same one without resume."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a directory")
    old = existing_hash(out_dir)
    if old is None:
        return
    if old != config_hash:
        raise UserError(f"{out_dir}: holds a run of another config (config hash {old}, this one is {config_hash}); "
                        f"choose another output directory")
    if not resume:
        raise UserError(f"{out_dir}: already holds a run of this config; resume it (--resume) or choose another "
                        f"output directory")


def write_config(out_dir: Path, cfg) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / CONFIG, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    write_text(out_dir / HASH, cfg.config_hash() + "\n")


class MetricsLog:
    """Append-only metrics.jsonl (one JSON object per line, flushed per record)."""

    def __init__(self, path: Path, upto_iter: Optional[int] = None, final_iter: Optional[int] = None):
        """upto_iter: resuming from that checkpoint; records of later iterations (written by the run that was
        interrupted, and about to be recomputed) and a torn last line are dropped first, and so is the final
        evaluation's record (iter == final_iter), which runs after the last checkpoint."""
        self.path = path
        if upto_iter is not None and (path.is_file() or path.is_symlink()):
            kept = []
            for line in read_text_no_follow(path).splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                it = int(rec.get("iter", 0)) if isinstance(rec, dict) else upto_iter + 1
                if it < upto_iter or (it == upto_iter and not (rec.get("kind") == "eval" and it == final_iter)):
                    kept.append(line)
            write_text(path, "".join(line + "\n" for line in kept))
        elif upto_iter is None:
            write_text(path, "")
        self._f = os.fdopen(open_no_follow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT), "a")  # never through a link

    def write(self, record: dict) -> None:
        try:
            self._f.write(json.dumps(json_safe(record), allow_nan=False) + "\n")
            self._f.flush()
        except OSError as exc:  # a full disk: name the file
            raise named(exc, self.path) from None

    def close(self) -> None:
        self._f.close()


def read_metrics(path: Path) -> list[dict]:
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
