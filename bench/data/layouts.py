"""Finding the (image, label) pairs of a split in each dataset's real directory layout.

A scan never raises for problems inside the dataset: it returns the pairs it could form and a list of
problems ("<path>: <what>"), so `ifa-bench data verify` can list all of them and the loader can refuse.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.data.dataset import Sample
from bench.data.labels import (ADE20K_LABELS, CITYSCAPES_LABEL_IDS, CITYSCAPES_TRAIN_IDS, LabelEncoding,
                               PASCAL_CONTEXT_59_LABELS, PASCAL_CONTEXT_60_LABELS)

CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit.png"
CITYSCAPES_TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
CITYSCAPES_LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
ADE20K_SPLIT_DIRS = {"train": "training", "val": "validation"}
ADE20K_IMAGE_EXTS = (".jpg", ".jpeg", ".png")


@dataclass
class Scan:
    root: Path  # the resolved dataset directory
    split: str
    samples: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan_cityscapes(root: Path, split: str, train_id_encoding: LabelEncoding = CITYSCAPES_TRAIN_IDS) -> Scan:
    """root/leftImg8bit/{split}/{city}/X_leftImg8bit.png with root/gtFine/{split}/{city}/X_gtFine_labelTrainIds.png
    (preferred) or X_gtFine_labelIds.png (converted to train ids when loaded)."""
    scan = Scan(root, split)
    img_dir, gt_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for d, what in ((img_dir, "images"), (gt_dir, "labels")):
        if not d.is_dir():
            scan.problems.append(f"{d}: missing directory of {what} for split '{split}'")
    images = sorted(img_dir.glob(f"*/*{CITYSCAPES_IMAGE_SUFFIX}")) if img_dir.is_dir() else []
    labels = {p.relative_to(gt_dir).as_posix() for suffix in (CITYSCAPES_TRAIN_IDS_SUFFIX, CITYSCAPES_LABEL_IDS_SUFFIX)
              for p in gt_dir.glob(f"*/*{suffix}")} if gt_dir.is_dir() else set()
    stems = set()
    for img in images:
        stem = f"{img.parent.name}/{img.name[:-len(CITYSCAPES_IMAGE_SUFFIX)]}"
        stems.add(stem)
        train_ids, label_ids = stem + CITYSCAPES_TRAIN_IDS_SUFFIX, stem + CITYSCAPES_LABEL_IDS_SUFFIX
        if train_ids in labels:
            scan.samples.append(Sample(img, gt_dir / train_ids, train_id_encoding))
        elif label_ids in labels:
            scan.samples.append(Sample(img, gt_dir / label_ids, CITYSCAPES_LABEL_IDS))
        else:
            scan.problems.append(f"{img}: no label (expected {gt_dir / train_ids} or {gt_dir / label_ids})")
    for label in sorted(labels):
        stem = label.rsplit("_gtFine_", 1)[0]
        if stem not in stems:
            expected = img_dir / (stem + CITYSCAPES_IMAGE_SUFFIX)
            scan.problems.append(f"{gt_dir / label}: orphan label, no image {expected}")
    return scan


def ade20k_base(root: Path) -> Path:
    """Accept the directory holding ADEChallengeData2016 or ADEChallengeData2016 itself."""
    nested = root / "ADEChallengeData2016"
    return nested if nested.is_dir() else root


def scan_ade20k(root: Path, split: str) -> Scan:
    """ADEChallengeData2016/{images,annotations}/{training,validation}/X.jpg|X.png (train/val accepted)."""
    base = ade20k_base(root)
    sub = ADE20K_SPLIT_DIRS.get(split, split)
    scan = Scan(base, split)
    img_dir, ann_dir = base / "images" / sub, base / "annotations" / sub
    for d, what in ((img_dir, "images"), (ann_dir, "annotations")):
        if not d.is_dir():
            scan.problems.append(f"{d}: missing directory of {what} for split '{split}'")
    images = {p.stem: p for p in img_dir.iterdir() if p.suffix.lower() in ADE20K_IMAGE_EXTS} if img_dir.is_dir() else {}
    labels = {p.stem: p for p in ann_dir.glob("*.png")} if ann_dir.is_dir() else {}
    for stem in sorted(images):
        if stem in labels:
            scan.samples.append(Sample(images[stem], labels[stem], ADE20K_LABELS))
        else:
            scan.problems.append(f"{images[stem]}: no label (expected {ann_dir / (stem + '.png')})")
    for stem in sorted(set(labels) - set(images)):
        scan.problems.append(f"{labels[stem]}: orphan label, no image {img_dir / (stem + '.jpg')}")
    return scan


def pascal_context_base(root: Path) -> Path:
    """Accept the directory holding VOCdevkit, or VOCdevkit/VOC2010 itself."""
    for candidate in (root / "VOCdevkit" / "VOC2010", root / "VOC2010"):
        if candidate.is_dir():
            return candidate
    return root


def scan_pascal_context(root: Path, split: str, num_classes: int) -> Scan:
    """VOC2010/ImageSets/SegmentationContext/{split}.txt lists ids; JPEGImages/ID.jpg and
    SegmentationClassContext/ID.png (labels 0..59, 0 = background) are the pairs (mmseg's convention)."""
    base = pascal_context_base(root)
    encoding = PASCAL_CONTEXT_59_LABELS if num_classes == 59 else PASCAL_CONTEXT_60_LABELS
    scan = Scan(base, split)
    list_file = base / "ImageSets" / "SegmentationContext" / f"{split}.txt"
    img_dir, ann_dir = base / "JPEGImages", base / "SegmentationClassContext"
    for d, what in ((img_dir, "images"), (ann_dir, "labels")):
        if not d.is_dir():
            scan.problems.append(f"{d}: missing directory of {what}")
    if not list_file.is_file():
        scan.problems.append(f"{list_file}: missing split list for split '{split}'")
        return scan
    try:
        ids = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        scan.problems.append(f"{list_file}: unreadable split list ({exc})")
        return scan
    seen = set()
    for image_id in ids:
        if image_id in seen:
            scan.problems.append(f"{list_file}: id {image_id} listed more than once")
            continue
        seen.add(image_id)
        img, ann = img_dir / f"{image_id}.jpg", ann_dir / f"{image_id}.png"
        img_ok, ann_ok = img.is_file(), ann.is_file()
        if not img_ok:
            scan.problems.append(f"{img}: missing image listed in {list_file.name}")
        if not ann_ok:
            scan.problems.append(f"{ann}: missing label for {image_id} listed in {list_file.name}")
        if img_ok and ann_ok:
            scan.samples.append(Sample(img, ann, encoding))
    return scan
