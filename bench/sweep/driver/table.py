"""Build the results table from the spec's trials and the records in their directories.

Status of a trial (a row for every trial of the spec, never a gap):
  completed  its done record (trials/<hash>/result.json) exists;
  failed     it failed for good in this run (error = its last attempt's error);
  running    it is running now, or it started and was interrupted (the next `--resume` continues it);
  pending    it never started.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from bench.results.row import CFG_PREFIX, base_row, write_tables
from bench.results.schema import CONFIG, IDENTITY
from bench.sweep.folder import layout, records
from bench.sweep.spec.payload import spec_from_payload


def build_rows(sweep_dir: Path, sweep_name: str, payloads: list[dict], *, running: Iterable[str] = (),
               failed: dict[str, str] | None = None) -> tuple[list[dict], list[dict]]:
    running, failed = set(running), dict(failed or {})
    rows, per_class = [], []
    for p in payloads:
        trial = spec_from_payload(p)
        trial_dir = layout.trial_dir(Path(sweep_dir), trial.config_hash)
        attempts = records.read_attempts(trial_dir)
        done = records.read_done(trial_dir)
        if done is not None:
            row = dict(done["row"])
            # identity and config columns follow the current spec (a rerun may add axes); results stay as recorded
            fresh = base_row(trial, sweep_name, "completed", attempts=attempts)
            for k in IDENTITY + CONFIG + [c for c in fresh if c.startswith(CFG_PREFIX)]:
                if k not in ("status", "error"):
                    row[k] = fresh[k]
            row = {k: v for k, v in row.items() if not k.startswith(CFG_PREFIX) or k in fresh}
            rows.append(row)
            for pc in done.get("per_class_iou", []):
                per_class.append({**pc, "trial_id": trial.trial_id})
        elif trial.config_hash in failed:
            rows.append(base_row(trial, sweep_name, "failed", error=failed[trial.config_hash], attempts=attempts))
        elif trial.config_hash in running or attempts > 0:
            rows.append(base_row(trial, sweep_name, "running", attempts=attempts))
        else:
            rows.append(base_row(trial, sweep_name, "pending", attempts=attempts))
    if any(p.get("protocols") for p in payloads):  # `evaluate:`: one row per (trial, protocol)
        from bench.sweep.driver.protocol_rows import expand

        rows, per_class = expand(payloads, rows, per_class)
    return rows, per_class


def write_table(sweep_dir: Path, sweep_name: str, payloads: list[dict], *, running: Iterable[str] = (),
                failed: dict[str, str] | None = None):
    rows, per_class = build_rows(sweep_dir, sweep_name, payloads, running=running, failed=failed)
    return write_tables(sweep_dir, rows, per_class)
