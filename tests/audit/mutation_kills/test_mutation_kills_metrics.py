"""bench/engine/evaluation/metrics.py: what `make mutation MUTATE=metrics` found unasserted."""
import math
import warnings

import numpy as np

from bench.engine.evaluation.metrics import metrics_from_confusion


def test_an_empty_confusion_gives_nan_means_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" / 0/0: undefined numbers are never computed
        m = metrics_from_confusion(np.zeros((3, 3), dtype=np.int64))
    assert math.isnan(m["miou"]) and math.isnan(m["macc"]) and math.isnan(m["aacc"])
    assert np.isnan(m["iou"]).all() and np.isnan(m["acc"]).all()


def test_a_single_labelled_pixel_gives_a_defined_pixel_accuracy():
    m = metrics_from_confusion(np.array([[1, 0], [0, 0]]))
    assert m["aacc"] == 100.0 and m["miou"] == 100.0 and m["macc"] == 100.0
    assert metrics_from_confusion(np.array([[0, 1], [0, 0]]))["aacc"] == 0.0
