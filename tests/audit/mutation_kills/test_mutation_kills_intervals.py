"""Kill tests for reports/regression/intervals.py (issue 32's mutation pass): which trials an interval is made of,
and the exact reasons given when there is none. Real per-image files, real bootstrap."""
import pytest

from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE, miou_from_sums, miou_interval, paired_difference, save_per_image
from bench.errors import UserError
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.intervals import model_interval, paired
from tests.reports.fixture import trial, write_sweep
from tests.reports.regression.test_check_ci import PPM, _per_image


def _miou(stats):
    return float(miou_from_sums(stats[0].sum(0), stats[1].sum(0)))


def _sweep(tmp_path, specs):
    """specs: (status, per-image stats or None, extra trial fields) per trial t000, t001, ..."""
    trials = [trial(seed=i, status=status, miou=_miou(stats) if stats else None, **{**PPM, **extra})
              for i, (status, stats, extra) in enumerate(specs)]
    root = write_sweep(tmp_path, trials, per_class=False, curves=False)
    for i, (_, stats, _) in enumerate(specs):
        if stats is not None:
            save_per_image(root / "trials" / f"t{i:03d}" / PER_IMAGE_FILE, *stats)
    return read_results(root, CHECK_REQUIRED)


def test_a_failed_or_unknown_trial_is_skipped_and_the_next_ones_still_count(tmp_path):
    a, b = _per_image(0.8, seed=1), _per_image(0.7, seed=2)
    results = _sweep(tmp_path, [("failed", None, {}), ("completed", a, {}), ("completed", b, {})])
    got = model_interval(results, ["nope", "t000", "t001", "t002"], 95)
    want = miou_interval([a, b], level=95)
    assert (got.estimate, got.low, got.high) == pytest.approx((want.estimate, want.low, want.high))


def test_the_reasons_when_there_is_no_interval(tmp_path):
    a, short = _per_image(0.8, seed=1), _per_image(0.8, seed=2, n=20)
    results = _sweep(tmp_path, [("failed", None, {}), ("completed", a, {}), ("completed", short, {})])
    assert model_interval(results, ["t000"], 95) == "no completed trial"
    assert model_interval(results, ["t001", "t002"], 95) == (
        "the seeds were evaluated on different image sets ([(20, 19), (30, 19)])")


def test_paired_uses_the_level_and_names_the_key_and_the_reason(tmp_path):
    a, b, short = _per_image(0.8, seed=1), _per_image(0.7, seed=2), _per_image(0.8, seed=3, n=20)
    results = _sweep(tmp_path, [("completed", a, {}), ("completed", b, dict(head="fpn")), ("failed", None, {}),
                                ("completed", short, dict(head="ocr"))])
    got = paired(results, "t000", "t001", level=50)
    want = paired_difference([a], [b], level=50)
    assert got.level == 50 and (got.low, got.high) == pytest.approx((want.low, want.high))
    with pytest.raises(UserError) as err:
        paired(results, "t000", "t002", 95)
    assert str(err.value) == "--paired t002: no completed trial"
    with pytest.raises(UserError) as err:
        paired(results, "t000", "zzz", 95)
    assert str(err.value) == f"--paired: 'zzz' is neither a trial_id nor a config_hash of {results.sweep_dir}"
    for x, y in (("t000", "t003"), ("t003", "t000")):
        with pytest.raises(UserError) as err:
            paired(results, x, y, 95)
        assert str(err.value) == f"--paired: {x} and {y} were evaluated on different image sets"
