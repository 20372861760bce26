"""`check --ci`: a row fails only when the published value is outside the bootstrap interval widened by the tolerance;
`check --paired`: a paired bootstrap between two trials. The fixture trials carry per_image.npz like real ones."""
import numpy as np
import pytest

from bench.cli import main
from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE, miou_from_sums, miou_interval, save_per_image
from reports.regression.check import run_check
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.published import DEFAULT_PATH, load_published
from tests.reports.fixture import trial, write_sweep

PPM = dict(dataset="cityscapes", head="ppm", backbone="resnet50", stem="v1c", output_stride=8, iterations=40000,
           crop="512x1024", num_classes=19)
PUBLISHED = 77.85  # mmseg PSPNet R-50-D8 512x1024 40k, single scale (reports/published.yaml)


def _per_image(quality: float, seed: int, n=30, classes=19):
    rng = np.random.default_rng(seed)
    union = rng.integers(800, 1200, size=(n, classes))
    hardness = rng.normal(0, 0.15, size=(n, 1))  # some images are hard for every class: a wide interval
    q = np.clip(quality + hardness + rng.normal(0, 0.05, size=(n, classes)), 0, 1)
    inter = np.floor(union * q).astype(np.int64)
    return inter, union


def _sweep(tmp_path, quality):
    stats = _per_image(quality, seed=0)
    miou = float(miou_from_sums(stats[0].sum(0), stats[1].sum(0)))
    root = write_sweep(tmp_path, [trial(seed=0, miou=miou, **PPM)], per_class=False, curves=False)
    save_per_image(root / "trials" / "t000" / PER_IMAGE_FILE, *stats)
    return root, miou_interval([stats], level=95)


def test_published_inside_the_interval_passes_though_outside_the_tolerance(tmp_path):
    root, ci = _sweep(tmp_path, quality=0.80)
    assert ci.low < PUBLISHED < ci.high and abs(ci.estimate - PUBLISHED) > 1.0  # the two rules disagree here
    results, published = read_results(root, CHECK_REQUIRED), load_published()
    assert run_check(results, published, tolerance=1.0).exit_code == 1
    res = run_check(results, published, tolerance=1.0, ci=95)
    assert res.exit_code == 0 and res.matched.iloc[0]["verdict"] == "ok"
    assert (res.matched.iloc[0]["ci_low"], res.matched.iloc[0]["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_published_outside_the_widened_interval_fails(tmp_path):
    root, ci = _sweep(tmp_path, quality=0.70)
    assert ci.high + 1.0 < PUBLISHED
    res = run_check(read_results(root, CHECK_REQUIRED), load_published(), tolerance=1.0, ci=95)
    assert res.exit_code == 1 and res.matched.iloc[0]["verdict"] == "outside tolerance"
    # the tolerance widens the interval: wide enough, the same row passes
    res = run_check(read_results(root, CHECK_REQUIRED), load_published(), tolerance=PUBLISHED - ci.high + 0.01, ci=95)
    assert res.exit_code == 0


def test_missing_per_image_statistics_fail_the_row_with_the_reason(tmp_path):
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.8, **PPM)], per_class=False, curves=False)
    res = run_check(read_results(root, CHECK_REQUIRED), load_published(), ci=95)
    assert res.exit_code == 1 and "no per-image statistics" in res.matched.iloc[0]["verdict"]


def test_cli_states_the_rule(tmp_path, capsys):
    root, _ = _sweep(tmp_path, quality=0.80)
    assert main(["check", str(root), "--against", str(DEFAULT_PATH), "--ci", "95"]) == 0
    out = capsys.readouterr().out
    assert "95% bootstrap interval" in out and "widened by ±1" in out
    assert main(["check", str(root), "--against", str(DEFAULT_PATH)]) == 1
    assert "|reproduced - published| <= 1" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", "100", "nan", "-5"])
def test_cli_refuses_bad_levels(tmp_path, capsys, bad):
    root, _ = _sweep(tmp_path, quality=0.80)
    assert main(["check", str(root), "--ci", bad]) == 2
    assert "--ci" in capsys.readouterr().err


def test_paired(tmp_path, capsys):
    a, b = _per_image(0.75, seed=0), _per_image(0.75, seed=0)
    b = (np.floor(b[0] * 0.9).astype(np.int64), b[1])  # the same images, 10% fewer hits everywhere
    trials = [trial(seed=0, miou=float(miou_from_sums(a[0].sum(0), a[1].sum(0))), **PPM),
              trial(seed=0, miou=float(miou_from_sums(b[0].sum(0), b[1].sum(0))), **dict(PPM, head="fpn"))]
    root = write_sweep(tmp_path, trials, per_class=False, curves=False)
    save_per_image(root / "trials" / "t000" / PER_IMAGE_FILE, *a)
    save_per_image(root / "trials" / "t001" / PER_IMAGE_FILE, *b)
    assert main(["check", str(root), "--paired", "t000", "t001"]) == 0
    out = capsys.readouterr().out
    assert "significant (the interval excludes 0)" in out and "not significant" not in out
    assert main(["check", str(root), "--paired", "t000", "t000"]) == 0
    assert "not significant" in capsys.readouterr().out
    assert main(["check", str(root), "--paired", "t000", "nope"]) == 2
