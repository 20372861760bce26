"""bench/data/labels.py: the label encodings built directly (the module's tables are built at import, before a
mutant is switched on, so `make mutation MUTATE=labels` only sees these builders through calls like these)."""
import numpy as np
import pytest

from bench.data import labels
from bench.data.classes import CITYSCAPES_LABEL_ID_TO_TRAIN_ID
from bench.errors import UserError


def test_train_ids_maps_each_id_to_itself_and_255_to_ignore():
    enc = labels.train_ids(4, "four")
    assert enc.name == "four" and enc.valid_text == "0..3 or 255"
    assert enc.lut.dtype == np.uint8 and enc.lut.shape == (256,)
    assert enc.lut[:5].tolist() == [0, 1, 2, 3, 255] and enc.lut[255] == 255 and set(enc.lut[4:].tolist()) == {255}
    assert np.flatnonzero(enc.valid).tolist() == [0, 1, 2, 3, 255]
    assert not enc.lut.flags.writeable and not enc.valid.flags.writeable


def test_reduce_zero_label_ignores_0_and_shifts_the_rest_down():
    enc = labels.reduce_zero_label(4, "shifted")
    assert enc.name == "shifted" and enc.valid_text == "0..3 or 255"
    assert enc.lut[:5].tolist() == [255, 0, 1, 2, 255]
    assert np.flatnonzero(enc.valid).tolist() == [0, 1, 2, 3, 255]


def test_module_tables_equal_their_builders():
    for table, built in [
        (labels.ADE20K_LABELS, labels.reduce_zero_label(151, "ADE20K (0 = other, 1..150 = classes)")),
        (labels.PASCAL_CONTEXT_59_LABELS, labels.reduce_zero_label(60, "PASCAL Context 59 (0 = background, ignored)")),
        (labels.PASCAL_CONTEXT_60_LABELS, labels.train_ids(60, "PASCAL Context 60 (0 = background)")),
        (labels.CITYSCAPES_TRAIN_IDS, labels.train_ids(19, "Cityscapes labelTrainIds")),
    ]:
        assert (table.name, table.valid_text) == (built.name, built.valid_text)
        assert np.array_equal(table.lut, built.lut) and np.array_equal(table.valid, built.valid)
    enc = labels._encoding("ids", {7: 0, 8: 1, 3: 255}, "7, 8 or 3")
    assert enc.lut[[3, 7, 8, 9]].tolist() == [255, 0, 1, 255]
    assert np.flatnonzero(enc.valid).tolist() == [3, 7, 8, 255]
    assert labels.CITYSCAPES_LABEL_IDS.lut[[7, 26, 33, 0]].tolist() == [
        CITYSCAPES_LABEL_ID_TO_TRAIN_ID[7], CITYSCAPES_LABEL_ID_TO_TRAIN_ID[26], CITYSCAPES_LABEL_ID_TO_TRAIN_ID[33], 255]


def test_invalid_values_lists_each_bad_value_once_in_order():
    enc = labels.train_ids(3, "three")
    raw = np.array([[0, 2, 255, 9], [9, 3, 250, 1]], dtype=np.uint8)
    assert enc.invalid_values(raw) == [3, 9, 250]
    assert enc.invalid_values(np.array([[0, 255]], dtype=np.uint8)) == []
    assert enc.invalid_values(np.array([[255]], dtype=np.uint8)) == []


def test_to_train_ids_maps_and_names_the_file_and_at_most_8_bad_values():
    enc = labels.reduce_zero_label(3, "tiny")
    assert enc.to_train_ids(np.array([[0, 1, 2, 255]], dtype=np.uint8), "a.png").tolist() == [[255, 0, 1, 255]]
    with pytest.raises(UserError) as err:
        enc.to_train_ids(np.array([[3, 1]], dtype=np.uint8), "dir/b.png")
    assert str(err.value) == "dir/b.png: label values 3 out of range for tiny (expected 0..2 or 255)"
    many = np.arange(3, 13, dtype=np.uint8).reshape(2, 5)  # 10 bad values
    with pytest.raises(UserError) as err:
        enc.to_train_ids(many, "c.png")
    assert str(err.value) == ("c.png: label values 3, 4, 5, 6, 7, 8, 9, 10, ... out of range for tiny "
                              "(expected 0..2 or 255)")
    nine = np.arange(3, 12, dtype=np.uint8)[None]
    with pytest.raises(UserError, match=r"3, 4, 5, 6, 7, 8, 9, 10, \.\.\. out of range"):
        enc.to_train_ids(nine, "e.png")
    eight = np.arange(3, 11, dtype=np.uint8)[None]
    with pytest.raises(UserError, match=r"3, 4, 5, 6, 7, 8, 9, 10 out of range"):
        enc.to_train_ids(eight, "d.png")
