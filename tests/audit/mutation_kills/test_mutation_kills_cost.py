"""Kill tests for bench/sweep/cost/estimate.py (issue 32's mutation pass): the latency pool's expected size at its
boundaries, and the throughput read back from an earlier trial's metrics.jsonl, at exact values."""
import json
from types import SimpleNamespace

import pytest

from bench.sweep.cost import estimate
from bench.measure.noise_rule import BLOCK_S


def _m(processes=3, span_s=0.0, max_processes=None, latency=True):
    return SimpleNamespace(processes=processes, span_s=span_s, max_processes=max_processes, latency=latency)


def test_a_pool_can_grow_with_two_processes_or_two_blocks_of_span():
    assert estimate._pool_can_grow(_m(processes=2))
    assert not estimate._pool_can_grow(_m(processes=1))
    assert estimate._pool_can_grow(_m(processes=1, span_s=2 * BLOCK_S))
    assert not estimate._pool_can_grow(_m(processes=1, span_s=2 * BLOCK_S - 0.5))


def test_expected_slots_at_the_boundaries():
    assert estimate._expected_slots(_m(processes=0, span_s=100)) == 0.0
    assert estimate._expected_slots(_m(processes=1)) == 1.0  # cannot grow
    assert estimate._expected_slots(_m(processes=3)) == pytest.approx(3 * estimate.EXPECTED_POOL_FACTOR)  # 8.4
    assert estimate._expected_slots(_m(processes=3, span_s=1.0)) == 12.0  # 3 x 168, capped at 4 x 3
    assert estimate._expected_slots(_m(processes=3, span_s=60.0)) == pytest.approx(3 * 168 / 60)
    assert estimate._expected_slots(_m(processes=3, span_s=240.0)) == 3.0  # a long span does not shrink the pool
    assert estimate._expected_slots(_m(processes=3, max_processes=5)) == 5.0
    assert estimate.measure_span_s(SimpleNamespace(measure=_m(processes=3, span_s=60.0))) == pytest.approx(168.0)
    assert estimate.measure_span_s(SimpleNamespace(measure=_m(processes=3, span_s=60.0)), device="cuda") == 0.0


def _trial(tmp_path, rows):
    (tmp_path / "metrics.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))
    return estimate.cost_from_trial_dir(tmp_path)


def test_bad_lines_are_skipped_and_the_rest_is_read(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\nnot json\n[1, 2]\n{"b": 2}\n')
    assert estimate._read_jsonl(path) == [{"a": 1}, {"b": 2}]


def test_throughput_from_an_earlier_trials_metrics(tmp_path):
    noise = [{"kind": "note", "iter": 40, "time_s": 99.0}, {"kind": "train", "iter": "x", "time_s": 1.0},
             {"kind": "train", "iter": 50}, {"kind": "eval", "iter": 30, "eval_time_s": 9.0},
             {"num_images": 7, "eval_time_s": 70.0}]
    three = [{"kind": "train", "iter": 10, "time_s": 5.0}, {"kind": "train", "iter": 20, "time_s": 8.0},
             {"kind": "train", "iter": 30, "time_s": 10.0}, {"kind": "eval", "num_images": 4, "eval_time_s": 2.0}]
    cost = _trial(tmp_path, three + noise)
    assert cost.s_per_iter == pytest.approx(0.2)  # the first interval is warm-up: (10 - 8) / (30 - 20)
    assert (cost.eval_s_per_image, cost.val_images) == (0.5, 4)
    two = _trial(tmp_path, three[:2])
    assert two.s_per_iter == pytest.approx(0.3) and two.eval_s_per_image is None  # (8 - 5) / (20 - 10)
    assert _trial(tmp_path, three[:1]) is None
    assert _trial(tmp_path, [three[0], {"kind": "train", "iter": 10, "time_s": 6.0}]) is None
