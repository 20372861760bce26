"""SegDataset: a list of (image, label) files of one split with the dataset's label encoding and classes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from bench.data.image_io import read_image, read_label
from bench.data.labels import IGNORE_INDEX, LabelEncoding
from bench.errors import UserError


@dataclass(frozen=True)
class Sample:
    image: Path
    label: Path
    encoding: LabelEncoding


class SegDataset:
    """Random-access split of a segmentation dataset.

    `load(i)` returns `(image uint8 HxWx3 RGB, label uint8 HxW of train ids, 255 = ignore)`; problems with the
    files (missing, corrupt, size mismatch, out-of-range values) raise UserError naming the file.
    """

    ignore_index = IGNORE_INDEX

    def __init__(self, name: str, split: str, root: Path, samples: Sequence[Sample],
                 classes: Sequence[str], palette: Sequence[Sequence[int]]):
        if len(classes) != len(palette):
            raise ValueError(f"{name}: {len(classes)} classes but {len(palette)} palette colours")
        self.name = name
        self.split = split
        self.root = Path(root)
        self.samples = list(samples)
        self.classes = tuple(classes)
        self.palette = [tuple(int(c) for c in colour) for colour in palette]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return f"SegDataset({self.name!r}, split={self.split!r}, {len(self)} images, root={str(self.root)!r})"

    def image_path(self, i: int) -> str:
        return str(self.samples[i].image)

    def label_path(self, i: int) -> str:
        return str(self.samples[i].label)

    def load_label(self, i: int) -> np.ndarray:
        sample = self.samples[i]
        return sample.encoding.to_train_ids(read_label(sample.label), sample.label)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        sample = self.samples[i]
        image = read_image(sample.image)
        label = self.load_label(i)
        if image.shape[:2] != label.shape:
            raise UserError(f"{sample.label}: label size {label.shape[0]}x{label.shape[1]} does not match "
                            f"image {sample.image} ({image.shape[0]}x{image.shape[1]})")
        return image, label
