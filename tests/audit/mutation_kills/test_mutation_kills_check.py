"""reports/regression/check.py (matching and verdicts): what `make mutation MUTATE=check` found unasserted."""
import copy
import math

import numpy as np
import pytest

from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE, miou_from_sums, miou_interval, save_per_image
from bench.errors import UserError
from reports.regression.check import _fmt, _same, run_check
from reports.load import CHECK_REQUIRED, read_results
from tests.audit.test_planted_bugs import IFA, PUBLISHED_IFA
from tests.reports.fixture import trial, write_sweep


def _run(tmp_path, trials, published, **kw):
    root = write_sweep(tmp_path, trials, per_class=False, curves=False)
    return run_check(read_results(root, CHECK_REQUIRED), published, **kw)


def test_matched_row_carries_every_column(tmp_path):
    res = _run(tmp_path, [trial(seed=0, miou=78.0, **IFA), trial(seed=1, miou=78.5, **IFA)], [PUBLISHED_IFA])
    assert (res.metric, res.tolerance, res.min_seeds, res.ci, res.exit_code) == ("miou_ss", 1.0, 1, None, 0)
    row = res.matched.iloc[0].to_dict()
    floats = {k: row.pop(k) for k in ("reproduced", "reproduced_std", "delta", "ci_low", "ci_high")}
    assert floats["reproduced"] == pytest.approx(78.25) and floats["delta"] == pytest.approx(-0.6)
    assert floats["reproduced_std"] == pytest.approx(math.sqrt(0.125))
    assert math.isnan(floats["ci_low"]) and math.isnan(floats["ci_high"])
    assert row == {
        "label": "ifa resnet50", "dataset": "cityscapes", "head": "ifa", "backbone": "resnet50",
        "stem": "deep", "output_stride": "32", "iterations": "37200", "crop": "769x769", "batch_size": "8",
        "eval_mode": "whole", "eval_scales": "1", "eval_flip": False, "n": 2, "status": "completed",
        "published": 78.85, "within_tolerance": True, "verdict": "ok", "counts": True, "kind": "published",
        "published_method": "FPN + IFA", "published_backbone": "ResNet-50", "published_dataset": "cityscapes_val",
        "source": "test row", "assumed": "",
    }


def test_unmatched_reasons_name_what_is_missing(tmp_path):
    no_metric = copy.deepcopy(PUBLISHED_IFA)
    del no_metric["miou_ss"]
    res = _run(tmp_path, [trial(seed=0, miou=78.0, **IFA)], [no_metric])
    assert res.unmatched["reason"].tolist() == ["the matching published row(s) give no miou_ss"]
    assert len(res.matched) == 0 and res.exit_code == 0

    other_head = copy.deepcopy(PUBLISHED_IFA)
    other_head["match"]["head"] = "fpn"
    res = _run(tmp_path / "b", [trial(seed=0, miou=78.0, **IFA)], [other_head])
    assert res.unmatched["reason"].tolist() == ["no published FPN + IFA on cityscapes_val row"]

    res = _run(tmp_path / "c", [trial(seed=0, miou=78.0, **dict(IFA, head="fcn"))], [PUBLISHED_IFA])
    assert res.unmatched["reason"].tolist() == ["no published method mapped to head 'fcn'"]

    flipped = dict(IFA, eval_scales="1.0", eval_flip=True)
    res = _run(tmp_path / "d", [trial(seed=0, miou=78.0, **flipped)], [PUBLISHED_IFA])
    assert res.unmatched["reason"].tolist() == ["evaluated at scales 1.0 with flip=True, not the miou_ss protocol"]

    no_backbone = copy.deepcopy(PUBLISHED_IFA)
    no_backbone["match"]["backbone"] = None
    res = _run(tmp_path / "e", [trial(seed=0, miou=78.0, **IFA)], [no_backbone])
    assert res.unmatched["reason"].tolist() == [
        "no published FPN + IFA on cityscapes_val row with a backbone mapped to resnet50 (deep stem, OS32)"]


def test_keys_the_source_does_not_state_match_anything(tmp_path):
    loose = copy.deepcopy(PUBLISHED_IFA)
    for key in ("stem", "output_stride", "iterations", "crop", "batch_size"):
        loose["match"][key] = None
    res = _run(tmp_path, [trial(seed=0, miou=70.0, **dict(IFA, stem="v1c", iterations=1000, batch_size=2))],
               [loose])
    assert res.matched["published"].tolist() == [78.85] and res.matched["verdict"].tolist() == ["outside tolerance"]
    assert res.exit_code == 1


def test_value_formatting_and_matching_rules():
    assert [_fmt(32.0), _fmt(0.5), _fmt(math.nan), _fmt(None), _fmt(8), _fmt("769x769")] == \
        ["32", "0.5", "", "", "8", "769x769"]
    assert _same(None, "anything") and _same(32, 32.0) and _same("32", 32.0) and not _same(16, 32.0)


def test_bad_arguments_name_the_option(tmp_path):
    results = read_results(write_sweep(tmp_path, [trial(seed=0, miou=78.0, **IFA)], per_class=False, curves=False),
                           CHECK_REQUIRED)
    with pytest.raises(UserError, match=r"^--metric: unknown metric 'miou' \(known: miou_ss, miou_ms_flip\)$"):
        run_check(results, [PUBLISHED_IFA], metric="miou")
    for bad in (-0.5, math.inf, math.nan):
        with pytest.raises(UserError, match=r"^--tolerance: must be a finite number >= 0, got "):
            run_check(results, [PUBLISHED_IFA], tolerance=bad)
    assert run_check(results, [PUBLISHED_IFA], tolerance=0.0).matched["verdict"].tolist() == ["outside tolerance"]


MS_FLIP = dict(IFA, eval_scales="0.5,0.75,1.0,1.25,1.5,1.75", eval_flip=True)


def test_multi_scale_flip_row_keeps_its_protocol_and_an_empty_assumption(tmp_path):
    published = copy.deepcopy(PUBLISHED_IFA)
    published["miou_ms_flip"] = published.pop("miou_ss")
    del published["match"]["assumed"]  # a row whose source states everything
    res = _run(tmp_path, [trial(seed=0, miou=79.5, **MS_FLIP)], [published], metric="miou_ms_flip")
    row = res.matched.iloc[0]
    assert (row["eval_scales"], row["eval_flip"], row["verdict"]) == ("0.5,0.75,1,1.25,1.5,1.75", True, "ok")
    assert row["assumed"] == "" and isinstance(row["assumed"], str)


def test_frames_keep_their_columns_and_types_when_all_match(tmp_path):
    res = _run(tmp_path, [trial(seed=0, miou=78.0, **IFA)], [PUBLISHED_IFA])
    assert len(res.unmatched) == 0 and res.unmatched.columns.tolist() == [
        "label", "dataset", "head", "backbone", "stem", "output_stride", "iterations", "crop", "batch_size",
        "eval_mode", "eval_scales", "eval_flip", "n", "status", "reason"]
    assert res.matched["within_tolerance"].dtype == bool


def test_large_integral_floats_are_written_without_exponent():
    assert (_fmt(1_000_000.0), _fmt(160000.0)) == ("1000000", "160000")


def test_unmatched_reasons_mark_unknown_values_with_a_question_mark(tmp_path):
    reasons = [_run(tmp_path / k, [trial(seed=0, miou=78.0, **dict(IFA, **{k: ""}))], [PUBLISHED_IFA])
               .unmatched["reason"].tolist() for k in ("stem", "crop", "eval_scales")]
    assert reasons == [
        ["no published FPN + IFA on cityscapes_val row with a backbone mapped to resnet50 (? stem, OS32)"],
        ["no published FPN + IFA on cityscapes_val resnet50 (deep stem, OS32) row with 37200 iterations, crop ?, "
         "batch 8 (published: 37200 it/769x769)"],
        ["evaluated at scales ? with flip=False, not the miou_ss protocol"]]


def _two_seed_sweep(tmp_path):
    """Two seeds of IFA with per-image statistics, and the 95% interval of their mean computed here."""
    stats = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        union = rng.integers(800, 1200, size=(30, 19))
        q = np.clip(0.78 + rng.normal(0, 0.15, size=(30, 1)) + rng.normal(0, 0.05, size=(30, 19)), 0, 1)
        stats.append((np.floor(union * q).astype(np.int64), union))
    trials = [trial(seed=s, miou=float(miou_from_sums(i.sum(0), u.sum(0))), **IFA) for s, (i, u) in enumerate(stats)]
    root = write_sweep(tmp_path, trials, per_class=False, curves=False)
    for s, (i, u) in enumerate(stats):
        save_per_image(root / "trials" / f"t{s:03d}" / PER_IMAGE_FILE, i, u)
    return read_results(root, CHECK_REQUIRED), miou_interval(stats, level=95)


def test_ci_interval_covers_every_seed_of_the_model(tmp_path):
    results, ci = _two_seed_sweep(tmp_path)
    row = run_check(results, [PUBLISHED_IFA], ci=95).matched.iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_ci_widening_is_the_tolerance_not_a_point_more(tmp_path):
    results, ci = _two_seed_sweep(tmp_path)
    published = dict(PUBLISHED_IFA, miou_ss=ci.high + 1.5)  # outside by tolerance + 0.5
    res = run_check(results, [published], tolerance=1.0, ci=95)
    assert res.matched.iloc[0]["verdict"] == "outside tolerance" and res.exit_code == 1
    assert not res.matched.iloc[0]["within_tolerance"]
