"""Prediction files: train-id maps written back in a dataset's own label encoding (Cityscapes labelIds, as the
official evaluator and test server read them), colourised maps and overlays, and the names the Cityscapes
submission expects."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.data.classes import CITYSCAPES_LABEL_ID_TO_TRAIN_ID
from bench.data.labels import IGNORE_INDEX

CITYSCAPES_IMAGE_SUFFIX = "_leftImg8bit"


def _inverse_lut(mapping: dict[int, int], fill: int) -> np.ndarray:
    lut = np.full(256, fill, dtype=np.uint8)
    for stored, train_id in mapping.items():
        lut[train_id] = stored
    return lut


# train id -> labelId (cityscapesScripts labels.py); ignore (255) -> 0 "unlabeled", which no metric counts
_CITYSCAPES_TO_LABEL_IDS = _inverse_lut(CITYSCAPES_LABEL_ID_TO_TRAIN_ID, 0)


def dataset_encoding(dataset: str, train_ids: np.ndarray) -> tuple[str, np.ndarray]:
    """(encoding name, the map in the dataset's own label encoding) of a train-id map (uint8 HxW)."""
    train_ids = np.asarray(train_ids, dtype=np.uint8)
    if dataset == "cityscapes":
        return "labelIds", _CITYSCAPES_TO_LABEL_IDS[train_ids]
    if dataset == "ade20k":  # files hold 0 = other, 1..150 = classes
        return "ade20k", np.where(train_ids == IGNORE_INDEX, 0, train_ids.astype(np.int32) + 1).astype(np.uint8)
    return "trainIds", train_ids.copy()


def colourise(train_ids: np.ndarray, palette) -> np.ndarray:
    """RGB uint8 HxWx3; ignore and ids beyond the palette are black."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)[:256]
    return lut[np.asarray(train_ids, dtype=np.uint8)]


def overlay(image: np.ndarray, colour: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    return (image.astype(np.float32) * (1 - alpha) + colour.astype(np.float32) * alpha).round().astype(np.uint8)


def image_stem(path) -> str:
    """The image's name without extension and without Cityscapes' `_leftImg8bit`."""
    stem = Path(path).stem
    return stem[:-len(CITYSCAPES_IMAGE_SUFFIX)] if stem.endswith(CITYSCAPES_IMAGE_SUFFIX) else stem


def cityscapes_result_path(out_dir: Path, image_path) -> Path:
    """OUT/{city}/{city}_{seq}_{frame}_leftImg8bit.png: the image's own name, which is what the test server expects
    and what the official evaluator's `{city}_{seq}_{frame}*.png` search finds."""
    image_path = Path(image_path)
    return Path(out_dir) / image_path.parent.name / f"{image_stem(image_path)}{CITYSCAPES_IMAGE_SUFFIX}.png"


def write_png(array: np.ndarray, path: Path) -> Path:
    from PIL import Image

    from bench.files.atomic import replacing

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = "L" if array.ndim == 2 else "RGB"
    with replacing(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array), mode=mode).save(tmp, format="PNG")
    return path
