"""Dataset content checked before the first training iteration, not found at the final evaluation.

- every pair of the train split: both headers readable, label single-channel, label size == image size;
- every pair of the val split: fully decoded, sizes, and label values (bench/data/verify.py check_sample).
A passing check is remembered by a hash of the manifest (split, paths, file sizes and mtimes), so a repeated run
on unchanged files does not read them again. The marker lives in $IFA_BENCH_CACHE, else $XDG_CACHE_HOME/ifa-bench,
else ~/.cache/ifa-bench, under verified/.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from bench.data.dataset import SegDataset
from bench.data.verify import check_sample
from bench.errors import UserError

VERSION = "1"  # bump when the checks change, so older markers stop counting
_LABEL_MODES = {"L", "P", "1", "I", "I;16", "I;16B", "I;16L"}


def cache_dir() -> Path:
    explicit = os.environ.get("IFA_BENCH_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ifa-bench"


def manifest_hash(datasets: list[SegDataset]) -> str:
    digest = hashlib.sha256(f"ifa-bench preflight {VERSION}\n".encode())
    for ds in datasets:
        digest.update(f"{ds.name}\0{ds.split}\0{ds.num_classes}\n".encode())
        for sample in ds.samples:
            for path in (sample.image, sample.label):
                try:
                    st = os.stat(path)
                    digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
                except OSError:
                    digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _header(path: Path, what: str) -> tuple[tuple[int, int] | None, str | None, list[str]]:
    """((H, W), mode, problems) from the file's header only."""
    try:
        with Image.open(path) as img:
            return (img.size[1], img.size[0]), img.mode, []
    except FileNotFoundError:
        return None, None, [f"{path}: {what} file is missing"]
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for a bad header
        return None, None, [f"{path}: corrupt or unreadable {what} ({type(exc).__name__}: {exc})"]


def check_headers(sample) -> list[str]:
    image_size, _, problems = _header(sample.image, "image")
    label_size, mode, label_problems = _header(sample.label, "label")
    problems += label_problems
    if mode is not None and mode not in _LABEL_MODES:
        problems.append(f"{sample.label}: label must be a single-channel (L or P mode) PNG of ids, got mode {mode} "
                        f"(a colour visualisation?)")
    if image_size and label_size and image_size != label_size:
        problems.append(f"{sample.label}: label size {label_size[0]}x{label_size[1]} does not match image "
                        f"{sample.image} ({image_size[0]}x{image_size[1]})")
    return problems


def find_problems(train_set: SegDataset, val_set: SegDataset, jobs: int | None = None) -> list[str]:
    jobs = jobs or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # Pillow releases the GIL while decoding
        problems = [p for found in pool.map(check_headers, train_set.samples) for p in found]
        problems += [p for found in pool.map(check_sample, val_set.samples) for p in found.problems]
    return problems


def verify_before_training(train_set: SegDataset, val_set: SegDataset, jobs: int | None = None) -> bool:
    """UserError naming the first problem (and how many more). Returns True when it read the files, False when a
    marker showed that these exact files passed before."""
    marker = cache_dir() / "verified" / manifest_hash([train_set, val_set])
    if marker.is_file():
        return False
    problems = find_problems(train_set, val_set, jobs)
    if problems:
        more = f" (+{len(problems) - 1} more; `ifa-bench data verify` lists them all)" if len(problems) > 1 else ""
        raise UserError(f"data: {problems[0]}{more}")
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{train_set.root} {train_set.split}+{val_set.split}\n")
    except OSError:
        pass  # an unwritable cache only costs the next run another check
    return True
