"""Kill tests for bench/data/label_agreement.py (issue 32's mutation pass): the exact problem lines for a size
mismatch and an out-of-range labelIds file, and the default (a sample, not every pair)."""
import numpy as np

from bench.data.label_agreement import SAMPLE, check_agreement, verify_agreement
from tests.audit.planted.test_label_agreement_void import _pair
from tests.data.test_label_agreement import _with_train_ids


def test_a_size_mismatch_names_both_files_and_both_sizes(tmp_path):
    tr, lab = _pair(tmp_path, np.full((4, 6), 7), np.zeros((5, 3)))
    assert check_agreement(tr, lab) == [f"{tr}: size 5x3 differs from {lab} (4x6)"]


def test_an_out_of_range_label_ids_file_is_named(tmp_path):
    raw = np.full((2, 2), 7)
    raw[1, 1] = 200  # no Cityscapes labelId
    tr, lab = _pair(tmp_path, raw, np.zeros((2, 2)))
    (problem,) = check_agreement(tr, lab)
    assert problem.startswith(f"{lab}: label values 200 out of range")


def test_verify_samples_by_default(tmp_path):
    _with_train_ids(tmp_path, SAMPLE + 2)
    problems, note = verify_agreement(tmp_path, "val")
    assert problems == [] and note == f"labelTrainIds vs labelIds: checked a sample of {SAMPLE} (--full: all) of " \
                                      f"{SAMPLE + 2} images that have both"
    assert verify_agreement(tmp_path, "val", full=True)[1].startswith("labelTrainIds vs labelIds: checked all of")
