"""`data verify`'s labelIds/labelTrainIds agreement on void pixels (issue 32, row "label agreement"): a trainIds file
that gives void pixels (labelIds 0-6, 9, 10, ...; trainId 255) a class must be reported, as any other disagreement."""
import numpy as np

from bench.data.label_agreement import check_agreement
from tests.data.fixtures import write_label


def _pair(tmp_path, label_ids: np.ndarray, train_ids: np.ndarray):
    folder = tmp_path / "gtFine" / "val" / "lindau"
    stem = "lindau_000000_000019_gtFine"
    lab = write_label(label_ids.astype(np.uint8), folder / f"{stem}_labelIds.png")
    tr = write_label(train_ids.astype(np.uint8), folder / f"{stem}_labelTrainIds.png")
    return tr, lab


def test_a_train_ids_file_that_labels_void_pixels_is_reported(tmp_path):
    """Catches: void pixels skipped by the comparison (the official evaluator ignores them, but the loader trains on
    the trainIds file, so a class there is a wrong training label). labelIds 0 (unlabeled) and 4 (static) map to
    255; the trainIds file says road (0) on the two void pixels only."""
    label_ids = np.full((4, 6), 7, dtype=np.uint8)  # road everywhere ...
    label_ids[0, 0] = 0  # ... but two void pixels
    label_ids[2, 3] = 4
    good = np.zeros((4, 6), dtype=np.uint8)
    good[0, 0] = good[2, 3] = 255
    tr, lab = _pair(tmp_path, label_ids, good)
    assert check_agreement(tr, lab) == []
    _pair(tmp_path, label_ids, np.zeros((4, 6), dtype=np.uint8))  # void labelled as road
    (problem,) = check_agreement(tr, lab)
    assert "at 2 of 24 pixels" in problem and "first at row 0, column 0: trainId 0, labelIds give 255" in problem


def test_a_class_written_as_void_is_reported_too(tmp_path):
    """The other direction: a real class (car, labelId 26 -> trainId 13) written as 255 in the trainIds file."""
    label_ids = np.full((3, 3), 26, dtype=np.uint8)
    tr, lab = _pair(tmp_path, label_ids, np.full((3, 3), 13, dtype=np.uint8))
    assert check_agreement(tr, lab) == []
    bad = np.full((3, 3), 13, dtype=np.uint8)
    bad[1, 2] = 255
    _pair(tmp_path, label_ids, bad)
    (problem,) = check_agreement(tr, lab)
    assert "at 1 of 9 pixels (first at row 1, column 2: trainId 255, labelIds give 13)" in problem
