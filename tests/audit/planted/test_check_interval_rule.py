"""`check --ci` (issue 32, rows "intervals" and "check --ci"): the tolerance widens both ends of the interval, and the
level given is the level used, from the command line to the verdict. Real per-image statistics (the fixture of
tests/reports/regression/test_check_ci.py), real bootstrap, real command."""
import pandas as pd
import pytest

from bench.cli import main
from bench.engine.evaluation.bootstrap import Interval, PER_IMAGE_FILE, miou_from_sums, miou_interval, save_per_image
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.check import run_check
from reports.regression.published import load_published
from tests.reports.fixture import trial, write_sweep
from tests.reports.regression.test_check_ci import PPM, PUBLISHED, _per_image


def _sweep(tmp_path, quality):
    stats = _per_image(quality, seed=0)
    miou = float(miou_from_sums(stats[0].sum(0), stats[1].sum(0)))
    root = write_sweep(tmp_path, [trial(seed=0, miou=miou, **PPM)], per_class=False, curves=False)
    save_per_image(root / "trials" / "t000" / PER_IMAGE_FILE, *stats)
    return root, stats


def test_the_tolerance_widens_the_lower_end_too(tmp_path):
    """Catches: the tolerance widening only the upper end (Interval.contains or its caller): a published value just
    below the interval but inside the tolerance would fail `check --ci`. Here the interval lies above the published
    77.85; the row passes with a tolerance 0.01 more than the gap and fails with 0.01 less."""
    root, stats = _sweep(tmp_path, quality=0.89)
    ci = miou_interval([stats], level=95)
    gap = ci.low - PUBLISHED
    assert gap > 0.3  # the published value is below the interval
    results, published = read_results(root, CHECK_REQUIRED), load_published()
    inside = run_check(results, published, tolerance=gap + 0.01, ci=95)
    assert inside.exit_code == 0 and inside.matched.iloc[0]["verdict"] == "ok"
    outside = run_check(results, published, tolerance=gap - 0.01, ci=95)
    assert outside.exit_code == 1 and outside.matched.iloc[0]["verdict"] == "outside tolerance"


def test_interval_contains_widens_both_ends():
    """Interval.contains itself, on both sides and at the edges."""
    iv = Interval(estimate=50.0, low=48.0, high=52.0, level=95.0, replicates=10, seed=0)
    assert iv.contains(47.5, widen=0.5) and iv.contains(52.5, widen=0.5)
    assert not iv.contains(47.4, widen=0.5) and not iv.contains(52.6, widen=0.5)
    assert iv.contains(48.0) and iv.contains(52.0) and not iv.contains(47.99) and not iv.contains(52.01)


def test_check_ci_50_reports_and_judges_the_50_percent_interval(tmp_path, capsys):
    """Catches: the level fixed at 95 anywhere between `--ci` and the interval (bench/commands/check.py passing 95,
    run_check or model_interval ignoring the level): `check --ci 50` would report and judge the 95% interval. The
    published 77.85 lies inside the 95% interval and outside the 50% one, so with tolerance 0 the verdict differs."""
    root, stats = _sweep(tmp_path, quality=0.80)
    ci50, ci95 = miou_interval([stats], level=50), miou_interval([stats], level=95)
    assert ci95.contains(PUBLISHED) and not ci50.contains(PUBLISHED)
    out_csv = tmp_path / "rows.csv"
    code = main(["check", str(root), "--ci", "50", "--tolerance", "0", "--out", str(out_csv)])
    out = capsys.readouterr().out
    assert code == 1
    assert "inside the 50% bootstrap interval" in out and "95%" not in out
    row = pd.read_csv(out_csv).query("matched")
    assert len(row) == 1 and row.iloc[0]["verdict"] == "outside tolerance"
    assert (row.iloc[0]["ci_low"], row.iloc[0]["ci_high"]) == pytest.approx((ci50.low, ci50.high))
    assert f"[{ci50.low:.2f}, {ci50.high:.2f}]" in out
    # and at 95 the same row passes with the 95% interval
    assert main(["check", str(root), "--ci", "95", "--tolerance", "0"]) == 0
    assert f"[{ci95.low:.2f}, {ci95.high:.2f}]" in capsys.readouterr().out
