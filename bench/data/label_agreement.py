"""Cityscapes ships two label files per image: *_gtFine_labelIds.png (what the official evaluator reads) and
*_gtFine_labelTrainIds.png (made by cityscapesScripts' createTrainIdLabelImgs, what the loader prefers). A stale or
zeroed trainIds file would be trained and scored on silently, so `data verify` checks that the two agree wherever
both exist: on an evenly spaced sample of pairs by default, on every pair with --full."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.image_io import read_label
from bench.data.labels import CITYSCAPES_LABEL_IDS
from bench.data.layouts import CITYSCAPES_LABEL_IDS_SUFFIX, CITYSCAPES_TRAIN_IDS_SUFFIX
from bench.errors import UserError

SAMPLE = 16  # pairs checked without --full


def label_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    """(labelTrainIds, labelIds) files of a split that both exist, sorted."""
    gt_dir = Path(root) / "gtFine" / split
    if not gt_dir.is_dir():
        return []
    pairs = []
    for train_ids in sorted(gt_dir.glob(f"*/*{CITYSCAPES_TRAIN_IDS_SUFFIX}")):
        label_ids = train_ids.with_name(train_ids.name[:-len(CITYSCAPES_TRAIN_IDS_SUFFIX)] + CITYSCAPES_LABEL_IDS_SUFFIX)
        if label_ids.is_file():
            pairs.append((train_ids, label_ids))
    return pairs


def sample_pairs(pairs: list, full: bool) -> list:
    """All pairs (full), else at most SAMPLE of them evenly spaced over the sorted list (first and last included)."""
    if full or len(pairs) <= SAMPLE:
        return list(pairs)
    picks = np.linspace(0, len(pairs) - 1, SAMPLE).round().astype(int)
    return [pairs[i] for i in sorted(set(picks.tolist()))]


def check_agreement(train_ids_path: Path, label_ids_path: Path) -> list[str]:
    """Problems of one pair: unreadable files, different sizes, or pixels where labelIds -> trainId differs."""
    try:
        stored = read_label(train_ids_path)
        expected = CITYSCAPES_LABEL_IDS.to_train_ids(read_label(label_ids_path), label_ids_path)
    except UserError as exc:
        return [str(exc)]
    if stored.shape != expected.shape:
        return [f"{train_ids_path}: size {stored.shape[0]}x{stored.shape[1]} differs from {label_ids_path} "
                f"({expected.shape[0]}x{expected.shape[1]})"]
    wrong = stored != expected
    count = int(wrong.sum())
    if not count:
        return []
    y, x = (int(v[0]) for v in np.nonzero(wrong))
    return [f"{train_ids_path}: disagrees with {label_ids_path} at {count} of {wrong.size} pixels (first at row {y}, "
            f"column {x}: trainId {int(stored[y, x])}, labelIds give {int(expected[y, x])}); the loader reads the "
            f"labelTrainIds file, the official evaluator the labelIds one: regenerate it with cityscapesScripts' "
            f"createTrainIdLabelImgs"]


def verify_agreement(root: Path, split: str, full: bool = False) -> tuple[list[str], str | None]:
    """(problems, a note saying how many pairs were checked, or None when no image has both files)."""
    pairs = label_pairs(root, split)
    if not pairs:
        return [], None
    checked = sample_pairs(pairs, full)
    problems = [p for train_ids, label_ids in checked for p in check_agreement(train_ids, label_ids)]
    scope = "all" if len(checked) == len(pairs) else f"a sample of {len(checked)} (--full: all)"
    return problems, f"labelTrainIds vs labelIds: checked {scope} of {len(pairs)} images that have both"
