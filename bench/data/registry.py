"""The supported datasets: their classes, layouts and standard splits; `build_dataset` from a DataConfig."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

from bench.data import classes as C
from bench.data.dataset import SegDataset
from bench.data.labels import train_ids
from bench.data.layouts import Scan, scan_ade20k, scan_cityscapes, scan_pascal_context
from bench.data.synthetic.generate import DEFAULT_SEED, META_FILE, generate_synthetic, read_meta
from bench.errors import UserError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    classes: tuple[str, ...]
    palette: list
    scan: Callable[[Path, str], Scan]
    splits: tuple[str, ...]  # the standard labelled splits
    full_counts: dict  # images per split in the official release (informational)
    layout: str  # one line for messages and docs


def _scan_synthetic(root: Path, split: str) -> Scan:
    meta = read_meta(root)
    num_classes = len(meta["classes"]) if meta else len(C.SYNTHETIC_CLASSES)
    scan = scan_cityscapes(root, split, train_ids(num_classes, "synthetic labelTrainIds"))
    if meta is None:
        scan.problems.insert(0, f"{root / META_FILE}: missing (not a synthetic dataset written by "
                                f"`ifa-bench data synth`)")
    elif split in meta["splits"] and meta["splits"][split] != len(scan.samples):
        scan.problems.append(f"{root}: split '{split}' has {len(scan.samples)} images but {META_FILE} "
                             f"records {meta['splits'][split]}")
    return scan


DATASETS: dict[str, DatasetSpec] = {
    "cityscapes": DatasetSpec(
        "cityscapes", C.CITYSCAPES_CLASSES, C.CITYSCAPES_PALETTE, scan_cityscapes, ("train", "val"),
        {"train": 2975, "val": 500},
        "leftImg8bit/{split}/{city}/*_leftImg8bit.png + gtFine/{split}/{city}/*_gtFine_labelTrainIds.png "
        "(or *_gtFine_labelIds.png)"),
    "ade20k": DatasetSpec(
        "ade20k", C.ADE20K_CLASSES, C.ADE20K_PALETTE, scan_ade20k, ("train", "val"),
        {"train": 20210, "val": 2000},
        "ADEChallengeData2016/{images,annotations}/{training,validation}/*.jpg|*.png"),
    "pascal_context_59": DatasetSpec(
        "pascal_context_59", C.PASCAL_CONTEXT_59_CLASSES, C.PASCAL_CONTEXT_59_PALETTE,
        partial(scan_pascal_context, num_classes=59), ("train", "val"), {"train": 4996, "val": 5104},
        "VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,ImageSets/SegmentationContext/{split}.txt}"),
    "pascal_context_60": DatasetSpec(
        "pascal_context_60", C.PASCAL_CONTEXT_60_CLASSES, C.PASCAL_CONTEXT_60_PALETTE,
        partial(scan_pascal_context, num_classes=60), ("train", "val"), {"train": 4996, "val": 5104},
        "VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,ImageSets/SegmentationContext/{split}.txt}"),
    "synthetic": DatasetSpec(
        "synthetic", C.SYNTHETIC_CLASSES, C.SYNTHETIC_PALETTE, _scan_synthetic, ("train", "val"), {},
        "Cityscapes layout (city 'synth', labelTrainIds) + synthetic.json"),
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise UserError(f"dataset '{name}': unknown (choose from {', '.join(DATASETS)})") from None


def scan_split(name: str, root, split: str) -> Scan:
    """Pairs and layout problems of one split (an empty split is a problem). UserError if root is missing."""
    spec = get_spec(name)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: dataset root does not exist or is not a directory")
    scan = spec.scan(root, split)
    if not scan.samples:
        scan.problems.append(f"{scan.root}: split '{split}' is empty (no image/label pairs found; "
                             f"expected layout {spec.layout})")
    return scan


def default_splits(name: str, root) -> tuple[str, ...]:
    """The splits `verify` checks by default: the standard ones, or those a synthetic dataset records."""
    if name == "synthetic":
        meta = read_meta(Path(root).expanduser())
        if meta is not None:
            return tuple(meta["splits"])
    return get_spec(name).splits


def dataset_classes(name: str, root) -> tuple[tuple[str, ...], list]:
    spec = get_spec(name)
    if name == "synthetic":
        meta = read_meta(Path(root).expanduser())
        if meta is not None:
            return tuple(meta["classes"]), [tuple(c) for c in meta["palette"]]
    return spec.classes, spec.palette


def open_dataset(name: str, root, split: str) -> SegDataset:
    """A split of a dataset on disk; UserError listing the layout problems if it is incomplete."""
    scan = scan_split(name, root, split)
    if scan.problems:
        more = f" (and {len(scan.problems) - 1} more problems)" if len(scan.problems) > 1 else ""
        raise UserError(f"{scan.problems[0]}{more}; run `ifa-bench data verify {root} --dataset {name} "
                        f"--split {split}` to list them")
    classes, palette = dataset_classes(name, root)
    return SegDataset(name, split, scan.root, scan.samples, classes, palette)


def build_dataset(cfg, split: str) -> SegDataset:
    """The `split` of the dataset a DataConfig names. For `synthetic` with `generate: true`, the dataset is
    written under cfg.root first if it is not there (seed 0, cfg.synthetic_size, synthetic_train images in
    cfg.train_split and synthetic_val in cfg.val_split)."""
    if cfg.dataset == "synthetic" and cfg.generate:
        if min(cfg.synthetic_size) < 16:
            raise UserError(f"data.synthetic_size: {cfg.synthetic_size[0]}x{cfg.synthetic_size[1]} is too small "
                            f"(at least 16x16)")
        counts = {cfg.train_split: cfg.synthetic_train}
        counts.setdefault(cfg.val_split, cfg.synthetic_val)
        generate_synthetic(cfg.root, seed=DEFAULT_SEED, size=tuple(cfg.synthetic_size), counts=counts)
    elif cfg.dataset == "synthetic" and not Path(cfg.root).expanduser().is_dir():
        raise UserError(f"{cfg.root}: no synthetic dataset here; set data.generate: true or run "
                        f"`ifa-bench data synth {cfg.root}`")
    return open_dataset(cfg.dataset, cfg.root, split)
