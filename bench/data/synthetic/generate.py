"""The synthetic dataset on disk: deterministic generation in the Cityscapes layout, plus its meta file.

root/
  synthetic.json                                   classes, palette, seed, size, split counts, generator version
  leftImg8bit/{split}/synth/synth_{i:06d}_000019_leftImg8bit.png
  gtFine/{split}/synth/synth_{i:06d}_000019_gtFine_labelTrainIds.png

Image i of a split depends only on (seed, split name, i): more images extend a split without changing
the first ones. Generation writes to a temporary sibling directory and renames it into place under a file
lock, so concurrent processes (Ray trials, DDP ranks) never see a half-written dataset.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from bench.files.atomic import dir_mode
from bench.data.classes import SYNTHETIC_CLASSES, SYNTHETIC_PALETTE
from bench.data.synthetic.scene import render_scene
from bench.errors import UserError

GENERATOR_VERSION = 1
META_FILE = "synthetic.json"
CITY = "synth"
DEFAULT_SEED = 0


def sample_stem(index: int) -> str:
    return f"{CITY}_{index:06d}_000019"


def _split_code(split: str) -> int:
    return int.from_bytes(hashlib.sha256(split.encode()).digest()[:4], "little")


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _split_code(split), index]))


def describe(seed: int, size: tuple[int, int], counts: dict[str, int]) -> dict:
    """The parameters that determine the dataset's bytes (what synthetic.json records)."""
    return {"seed": int(seed), "size": [int(size[0]), int(size[1])],
            "splits": {k: int(v) for k, v in counts.items()}, "generator_version": GENERATOR_VERSION}


def read_meta(root: Path) -> dict | None:
    """The meta file's content, or None if root holds no synthetic dataset. UserError if it is malformed."""
    path = Path(root) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
        classes, palette = meta["classes"], meta["palette"]
        ok = (isinstance(classes, list) and all(isinstance(c, str) for c in classes) and len(palette) == len(classes)
              and all(len(c) == 3 for c in palette) and isinstance(meta["splits"], dict))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable synthetic meta file ({type(exc).__name__}: {exc})") from None
    if not ok:
        raise UserError(f"{path}: malformed synthetic meta file (classes/palette/splits)")
    return meta


def _write_png(array: np.ndarray, path: Path) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=6)


def _write_split(base: Path, seed: int, split: str, count: int, size: tuple[int, int]) -> None:
    img_dir, gt_dir = base / "leftImg8bit" / split / CITY, base / "gtFine" / split / CITY
    img_dir.mkdir(parents=True)
    gt_dir.mkdir(parents=True)
    for i in range(count):
        image, label = render_scene(scene_rng(seed, split, i), *size)
        _write_png(image, img_dir / f"{sample_stem(i)}_leftImg8bit.png")
        _write_png(label, gt_dir / f"{sample_stem(i)}_gtFine_labelTrainIds.png")


@contextmanager
def _lock(path: Path):
    """An flock on `path`, removed again on the way out (success or failure), so no `.NAME.lock` stays behind.
    Removal happens while holding the lock; a waiter that then wakes on the removed file retries on a new one."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the atomic rename alone still keeps the result whole
        yield
        return
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
        except BaseException:
            fh.close()
            raise
        fh.close()  # the holder removed it after we opened it: lock the new one
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            fh.close()  # closing releases the flock


def _check_matches(root: Path, meta: dict, wanted: dict) -> None:
    have = {k: meta.get(k) for k in wanted}
    if have != wanted:
        raise UserError(f"{root / META_FILE}: holds a synthetic dataset made with {json.dumps(have)} but "
                        f"{json.dumps(wanted)} was asked for; use another root or delete this one")


def generate_synthetic(root, *, seed: int = DEFAULT_SEED, size: tuple[int, int] = (128, 256),
                       counts: dict[str, int] | None = None) -> Path:
    """Write the dataset under `root` unless it is already there (with the same parameters). Returns root.

    UserError if root holds something else: a synthetic dataset with other parameters, or other files.
    """
    root = Path(root).expanduser()
    counts = dict(counts or {"train": 64, "val": 16})
    if not counts or any(n < 1 for n in counts.values()) or min(size) < 16:
        raise UserError(f"{root}: synthetic dataset needs at least one image per split and a size of at "
                        f"least 16x16 (got {counts}, {size[0]}x{size[1]})")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UserError(f"{root}: the synthetic dataset's seed must be a non-negative integer, got {seed!r}")
    from bench.host.budget import require_fits, synth_bytes

    require_fits(synth_bytes(*size), f"{root}: synthetic image size {size[0]}x{size[1]}")
    bad = [s for s in counts if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", s)]
    if bad:
        raise UserError(f"{root}: split names must be plain directory names, got {bad}")
    wanted = describe(seed, size, counts)
    meta = read_meta(root)
    if meta is not None:
        _check_matches(root, meta, wanted)
        return root
    first_missing = next((d for d in reversed([root.parent, *root.parent.parents]) if not d.exists()), None)
    try:
        return _generate_locked(root, seed, size, counts, wanted)
    except OSError as exc:  # read-only or full disk, permissions: the user's environment, not a bug
        _remove_empty(root.parent, first_missing)
        raise UserError(f"{root}: cannot write the synthetic dataset ({type(exc).__name__}: {exc})") from None
    except BaseException:
        _remove_empty(root.parent, first_missing)
        raise


def _remove_empty(leaf: Path, top: Path | None) -> None:
    """Undo the parent directories a failed generation created (leaf up to top), where they are still empty."""
    if top is None:
        return
    for d in [leaf, *leaf.parents]:
        try:
            d.rmdir()
        except OSError:
            return
        if d == top:
            return


def _generate_locked(root: Path, seed: int, size, counts: dict, wanted: dict) -> Path:
    root.parent.mkdir(parents=True, exist_ok=True)
    with _lock(root.parent / f".{root.name}.lock"):
        meta = read_meta(root)  # another process may have finished while we waited
        if meta is not None:
            _check_matches(root, meta, wanted)
            return root
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise UserError(f"{root}: exists and is not a synthetic dataset (no {META_FILE}); "
                            f"choose another root or remove it")
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        try:
            for split, count in counts.items():
                _write_split(tmp, seed, split, count, size)
            meta = {"format": "ifa-bench synthetic (Cityscapes layout, labelTrainIds)", **wanted,
                    "classes": list(SYNTHETIC_CLASSES), "palette": [list(c) for c in SYNTHETIC_PALETTE],
                    "thin_classes": ["pole", "wire"]}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
            os.chmod(tmp, dir_mode())  # mkdtemp makes it private
            if root.is_dir():
                root.rmdir()  # empty (checked above); rename cannot replace a directory on every OS
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return root
