"""Checking a dataset on disk: layout, pairing, readability, sizes and label values of every file.

Unlike the loader (which stops at the first problem), this collects every problem so one run lists them all.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.data.dataset import Sample
from bench.data.image_io import read_image, read_label
from bench.data.labels import IGNORE_INDEX
from bench.data.registry import dataset_classes, default_splits, get_spec, scan_split
from bench.errors import UserError


@dataclass
class SplitReport:
    split: str
    root: Path
    pairs: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sizes: Counter = field(default_factory=Counter)  # (H, W) -> images
    class_pixels: np.ndarray | None = None  # pixels per train id (length num_classes)
    ignore_pixels: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _SampleResult:
    problems: list[str]
    size: tuple[int, int] | None = None
    histogram: np.ndarray | None = None  # counts of train ids 0..255


def check_sample(sample: Sample) -> _SampleResult:
    """Every problem of one pair: unreadable image or label, size mismatch, out-of-range label values."""
    problems, image, raw = [], None, None
    try:
        image = read_image(sample.image)
    except UserError as exc:
        problems.append(str(exc))
    try:
        raw = read_label(sample.label)
    except UserError as exc:
        problems.append(str(exc))
    if raw is None:
        return _SampleResult(problems)
    if image is not None and image.shape[:2] != raw.shape:
        problems.append(f"{sample.label}: label size {raw.shape[0]}x{raw.shape[1]} does not match image "
                        f"{sample.image} ({image.shape[0]}x{image.shape[1]})")
    try:
        train_ids = sample.encoding.to_train_ids(raw, sample.label)
    except UserError as exc:
        problems.append(str(exc))
        return _SampleResult(problems, raw.shape)
    return _SampleResult(problems, raw.shape, np.bincount(train_ids.ravel(), minlength=256))


def verify_split(name: str, root, split: str, jobs: int | None = None, strict_counts: bool = False,
                 progress: bool = False, full: bool = False) -> SplitReport:
    spec = get_spec(name)
    scan = scan_split(name, root, split)
    num_classes = len(dataset_classes(name, root)[0])
    report = SplitReport(split, scan.root, pairs=len(scan.samples), problems=list(scan.problems))
    report.class_pixels = np.zeros(num_classes, dtype=np.int64)
    jobs = jobs or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # Pillow releases the GIL while decoding
        results = pool.map(check_sample, scan.samples)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(scan.samples), desc=f"verify {split}", unit="pair", leave=False)
        for result in results:
            report.problems.extend(result.problems)
            if result.size is not None:
                report.sizes[result.size] += 1
            if result.histogram is not None:
                report.class_pixels += result.histogram[:num_classes]
                report.ignore_pixels += int(result.histogram[IGNORE_INDEX])
    if name == "cityscapes":
        from bench.data.label_agreement import verify_agreement

        problems, note = verify_agreement(scan.root, split, full)
        report.problems.extend(problems)
        report.notes.extend([note] if note else [])
    expected = spec.full_counts.get(split)
    if expected is not None and report.pairs and report.pairs != expected:
        text = f"{scan.root}: split '{split}' has {report.pairs} pairs; the official release has {expected}"
        (report.problems if strict_counts else report.notes).append(text)
    return report


def verify_dataset(name: str, root, splits=None, jobs: int | None = None, strict_counts: bool = False,
                   progress: bool = False, full: bool = False) -> list[SplitReport]:
    """One report per split (default: the dataset's standard splits). UserError for an unknown dataset or a
    missing root (bad arguments), never for problems inside the dataset."""
    get_spec(name)
    if not Path(root).expanduser().is_dir():
        raise UserError(f"{root}: dataset root does not exist or is not a directory")
    return [verify_split(name, root, split, jobs, strict_counts, progress, full)
            for split in (splits or default_splits(name, root))]


def summarise(report: SplitReport, classes) -> str:
    """A few lines describing one split: pairs, problems, sizes, classes present, ignore share."""
    lines = [f"split {report.split}: {report.pairs} image/label pairs, {len(report.problems)} problems"
             f" ({report.root})"]
    if report.sizes:
        common = report.sizes.most_common(3)
        text = ", ".join(f"{h}x{w} ({n})" for (h, w), n in common)
        more = f", and {len(report.sizes) - 3} other sizes" if len(report.sizes) > 3 else ""
        lines.append(f"  sizes: {text}{more}")
    total = int(report.class_pixels.sum()) + report.ignore_pixels if report.class_pixels is not None else 0
    if total:
        present = report.class_pixels > 0
        missing = [c for c, p in zip(classes, present) if not p]
        listed = f" (missing: {', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''})" if missing else ""
        lines.append(f"  classes present: {int(present.sum())}/{len(classes)}{listed}; "
                     f"ignore: {100.0 * report.ignore_pixels / total:.1f}% of pixels")
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines)
