"""Tiny datasets in the real file layouts, for tests (helpers of other areas may reuse them).

Each builder writes random images and random block-structured label maps and returns, per split, a list of
`FixtureSample(image, label, raw)` where `raw` is the label array exactly as stored in the file, so a test
can derive the expected train ids independently of the code under test.

    make_cityscapes(root, n_train=2, n_val=1, size=(32, 64), label_kind="trainIds")  # or "labelIds"
    make_ade20k(root, n_train=2, n_val=1, size=(32, 64), nested=True)   # root/ADEChallengeData2016/...
    make_pascal_context(root, n_train=2, n_val=1, size=(32, 64), nested=True)  # root/VOCdevkit/VOC2010/...

Breaking helpers: `corrupt_png`, `write_label`, `write_image`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class FixtureSample:
    image: Path
    label: Path
    raw: np.ndarray  # the stored label values (uint8 HxW)


def random_image(rng: np.random.Generator, size) -> np.ndarray:
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def block_label(rng: np.random.Generator, size, values, block: int = 8) -> np.ndarray:
    """Label map of block x block tiles, each filled with one of `values` (every value appears when the map
    has enough tiles)."""
    h, w = size
    gh, gw = -(-h // block), -(-w // block)
    values = np.asarray(values, dtype=np.uint8)
    tiles = values[np.arange(gh * gw) % len(values)]
    rng.shuffle(tiles)
    return np.kron(tiles.reshape(gh, gw), np.ones((block, block), np.uint8))[:h, :w].astype(np.uint8)


def write_image(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, quality=95) if path.suffix == ".jpg" else Image.fromarray(array).save(path)
    return path


def write_label(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode="L").save(path)
    return path


def corrupt_png(path: Path) -> Path:
    """Keep the header, cut the data: opening works, decoding fails."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: max(60, len(data) // 3)])
    return Path(path)


CITYSCAPES_TRAIN_ID_VALUES = list(range(19)) + [255]
CITYSCAPES_LABEL_ID_VALUES = list(range(34))
LABEL_FILE = {"trainIds": "labelTrainIds", "labelIds": "labelIds"}


def make_cityscapes(root, n_train=2, n_val=1, size=(32, 64), label_kind="trainIds", seed=0,
                    cities=("aachen", "bochum")) -> dict[str, list[FixtureSample]]:
    """root/leftImg8bit/{split}/{city}/{city}_{seq:06d}_000019_leftImg8bit.png + gtFine/..._gtFine_label{kind}.png"""
    assert label_kind in ("trainIds", "labelIds")
    root, rng = Path(root), np.random.default_rng(seed)
    values = CITYSCAPES_TRAIN_ID_VALUES if label_kind == "trainIds" else CITYSCAPES_LABEL_ID_VALUES
    out = {}
    for split, n in (("train", n_train), ("val", n_val)):
        out[split] = []
        for i in range(n):
            city = cities[i % len(cities)]
            stem = f"{city}_{i:06d}_000019"
            img = write_image(random_image(rng, size), root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
            raw = block_label(rng, size, values, block=4)
            lab = write_label(raw, root / "gtFine" / split / city / f"{stem}_gtFine_{LABEL_FILE[label_kind]}.png")
            out[split].append(FixtureSample(img, lab, raw))
    return out


def make_ade20k(root, n_train=2, n_val=1, size=(32, 64), nested=True, seed=0) -> dict[str, list[FixtureSample]]:
    """root[/ADEChallengeData2016]/{images,annotations}/{training,validation}/ADE_{split}_{i:08d}.jpg|.png"""
    root, rng = Path(root), np.random.default_rng(seed)
    base = root / "ADEChallengeData2016" if nested else root
    out = {}
    for split, sub, n in (("train", "training", n_train), ("val", "validation", n_val)):
        out[split] = []
        for i in range(n):
            stem = f"ADE_{sub[:5] if sub == 'training' else 'val'}_{i + 1:08d}"
            img = write_image(random_image(rng, size), base / "images" / sub / f"{stem}.jpg")
            raw = block_label(rng, size, list(range(151)), block=4)
            lab = write_label(raw, base / "annotations" / sub / f"{stem}.png")
            out[split].append(FixtureSample(img, lab, raw))
    return out


def make_pascal_context(root, n_train=2, n_val=1, size=(32, 64), nested=True,
                        seed=0) -> dict[str, list[FixtureSample]]:
    """root[/VOCdevkit/VOC2010]/JPEGImages/ID.jpg, SegmentationClassContext/ID.png (0..59, 0 = background),
    ImageSets/SegmentationContext/{train,val}.txt"""
    root, rng = Path(root), np.random.default_rng(seed)
    base = root / "VOCdevkit" / "VOC2010" if nested else root
    out = {}
    for split, n, year in (("train", n_train, 2008), ("val", n_val, 2009)):
        out[split], ids = [], []
        for i in range(n):
            image_id = f"{year}_{i:06d}"
            ids.append(image_id)
            img = write_image(random_image(rng, size), base / "JPEGImages" / f"{image_id}.jpg")
            raw = block_label(rng, size, list(range(60)), block=4)
            lab = write_label(raw, base / "SegmentationClassContext" / f"{image_id}.png")
            out[split].append(FixtureSample(img, lab, raw))
        lists = base / "ImageSets" / "SegmentationContext"
        lists.mkdir(parents=True, exist_ok=True)
        (lists / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
    # a VOC image outside the Context lists must not be picked up
    write_image(random_image(rng, size), base / "JPEGImages" / "2010_999999.jpg")
    return out
