"""Published reference numbers (reports/published.yaml): loading, validation and the normalised match keys."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bench.config.loading import error_key, read_yaml
from bench.config.strict_numbers import refuse_bool_numbers
from bench.errors import UserError
from reports.mapping import BACKBONES, DATASETS, HEADS, METRICS, parse_batch, parse_crop

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "published.yaml"
KINDS = ("published", "reproduction")
MATCH_KEYS = ("dataset", "head", "backbone", "stem", "output_stride", "iterations", "crop", "batch_size")
NUMBERS = METRICS + ("fps", "train_mem_gb", "iterations")


def derive_match(row: dict) -> dict:
    """The match keys that reports/mapping.py gives a published row (without any `assumed` override)."""
    inv_dataset = {v: k for k, v in DATASETS.items()}
    inv_head = {v: k for k, v in HEADS.items()}
    bb = BACKBONES.get((row.get("method"), row.get("backbone")))
    return {
        "dataset": inv_dataset.get(row.get("dataset")),
        "head": inv_head.get(row.get("method")),
        "backbone": bb.backbone if bb else None,
        "stem": bb.stem if bb else None,
        "output_stride": bb.output_stride if bb else None,
        "iterations": row.get("iterations"),
        "crop": parse_crop(row.get("crop")),
        "batch_size": parse_batch(row.get("crop")),
    }


class PublishedNumbers(BaseModel):
    """The numbers of a published row, through a schema: finite, in range, no booleans (`miou_ss: true` is not 1)."""
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)
    _no_bool_numbers = model_validator(mode="before")(classmethod(refuse_bool_numbers))

    miou_ss: Optional[float] = Field(None, ge=0, le=100)
    miou_ms_flip: Optional[float] = Field(None, ge=0, le=100)
    fps: Optional[float] = Field(None, gt=0)
    train_mem_gb: Optional[float] = Field(None, gt=0)
    iterations: Optional[int] = Field(None, gt=0)


def _check_numbers(row: dict, where: str) -> None:
    try:
        PublishedNumbers.model_validate(row)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"{where}.{error_key(first, row)}: {first['msg']}") from None


def load_published(path: Optional[Path] = None) -> list[dict]:
    """Rows of a published.yaml, each with a complete `match` block (derived from the mapping when absent)."""
    path = Path(path) if path else DEFAULT_PATH
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise UserError(f"{path}: expected a mapping with a list under 'results'")
    rows = []
    for i, row in enumerate(doc["results"]):
        where = f"{path}: results[{i}]"
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a mapping")
        for key in ("dataset", "method", "backbone", "kind", "source"):
            if not row.get(key):
                raise UserError(f"{where}.{key}: missing")
        if row["kind"] not in KINDS:
            raise UserError(f"{where}.kind: {row['kind']!r} is not one of {', '.join(KINDS)}")
        for key in NUMBERS:
            if key in row and not isinstance(row[key], (int, float)):
                raise UserError(f"{where}.{key}: expected a number, got {row[key]!r}")
        _check_numbers(row, where)
        match = derive_match(row)
        given = row.get("match") or {}
        if not isinstance(given, dict):
            raise UserError(f"{where}.match: expected a mapping")
        unknown = set(given) - set(MATCH_KEYS) - {"assumed", "unmatchable"}
        if unknown:
            raise UserError(f"{where}.match.{sorted(unknown)[0]}: unknown key")
        match.update(given)
        rows.append({**row, "match": match, "row_index": i})
    return rows


def published_frame(rows: list[dict]) -> pd.DataFrame:
    """Flat frame: the original fields plus `match_<key>` columns."""
    flat = []
    for row in rows:
        rec = {k: v for k, v in row.items() if k != "match"}
        rec.update({f"match_{k}": v for k, v in row["match"].items()})
        flat.append(rec)
    return pd.DataFrame(flat)
