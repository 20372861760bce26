"""Label encodings: how the values stored in a dataset's label PNGs map to train ids (255 = ignore).

Each encoding is a 256-entry lookup table plus the set of values a valid file may hold, so a value the
dataset never writes (a colour PNG, a 16-bit map, a wrong dataset) is reported instead of silently ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bench.data.classes import CITYSCAPES_LABEL_ID_TO_TRAIN_ID, CITYSCAPES_MAX_LABEL_ID
from bench.errors import UserError

IGNORE_INDEX = 255


@dataclass(frozen=True, eq=False)
class LabelEncoding:
    name: str
    lut: np.ndarray = field(repr=False)  # uint8[256]: stored value -> train id
    valid: np.ndarray = field(repr=False)  # bool[256]: values a file may hold
    valid_text: str = ""  # human-readable form of `valid`, for messages

    def invalid_values(self, raw: np.ndarray) -> list[int]:
        counts = np.bincount(raw.ravel(), minlength=256)
        return [int(v) for v in np.flatnonzero((counts > 0) & ~self.valid)]

    def to_train_ids(self, raw: np.ndarray, path) -> np.ndarray:
        """Map a stored label map (uint8 HxW) to train ids; UserError naming `path` on out-of-range values."""
        bad = self.invalid_values(raw)
        if bad:
            shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
            raise UserError(f"{path}: label values {shown} out of range for {self.name} "
                            f"(expected {self.valid_text})")
        return self.lut[raw]


def _encoding(name: str, mapping: dict[int, int], valid_text: str) -> LabelEncoding:
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    valid = np.zeros(256, dtype=bool)
    for stored, train_id in mapping.items():
        lut[stored] = train_id
        valid[stored] = True
    valid[IGNORE_INDEX] = True
    lut.setflags(write=False)
    valid.setflags(write=False)
    return LabelEncoding(name, lut, valid, valid_text)


def train_ids(num_classes: int, name: str) -> LabelEncoding:
    """Files already hold train ids 0..num_classes-1 (255 ignore)."""
    return _encoding(name, {i: i for i in range(num_classes)}, f"0..{num_classes - 1} or 255")


def reduce_zero_label(num_stored: int, name: str) -> LabelEncoding:
    """Files hold 0 (unlabelled/background -> ignore) and 1..num_stored-1 (-> 0..num_stored-2)."""
    mapping = {0: IGNORE_INDEX, **{i: i - 1 for i in range(1, num_stored)}}
    return _encoding(name, mapping, f"0..{num_stored - 1} or 255")


CITYSCAPES_TRAIN_IDS = train_ids(19, "Cityscapes labelTrainIds")
CITYSCAPES_LABEL_IDS = _encoding(
    "Cityscapes labelIds",
    {i: CITYSCAPES_LABEL_ID_TO_TRAIN_ID.get(i, IGNORE_INDEX) for i in range(CITYSCAPES_MAX_LABEL_ID + 1)},
    f"0..{CITYSCAPES_MAX_LABEL_ID} or 255",
)
ADE20K_LABELS = reduce_zero_label(151, "ADE20K (0 = other, 1..150 = classes)")
PASCAL_CONTEXT_60_LABELS = train_ids(60, "PASCAL Context 60 (0 = background)")
PASCAL_CONTEXT_59_LABELS = reduce_zero_label(60, "PASCAL Context 59 (0 = background, ignored)")
