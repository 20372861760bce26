"""The latency noise rule (time rounds until two consecutive steady rounds agree, else mark it noisy) and
conditions_text."""
import time

import pytest
import torch
from torch import nn

from bench.measure.model import RECORD_KEYS, measure_model
from bench.measure import latency as latency_mod
from bench.measure.conditions import conditions_text
from bench.measure.latency import NOISE_THRESHOLD, iqr, measure_latency, spread_of
from tests.measure.tiny_models import TinySegmentor


class _Bimodal(nn.Module):
    """Alternates 2 ms and 20 ms calls: IQR/median far above 10% however loaded the machine is."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        time.sleep(0.002 if self.calls % 2 else 0.020)
        return x


def test_iqr_and_spread():
    assert iqr([1, 2, 3, 4, 5]) == pytest.approx(2.0)
    assert spread_of([10, 10, 10, 10]) == 0.0
    assert spread_of([10, 11, 12, 13, 14]) == pytest.approx(2 / 12)


def test_noisy_rounds_are_repeated_then_marked():
    model = _Bimodal()
    stats = measure_latency(model, torch.zeros(1), warmup=1, runs=6, rounds=3)
    assert model.calls == 1 + 3 * 6  # warm-up once, then every round, since none was steady
    assert stats.rounds == 3 and stats.noisy and stats.runs == 6 and len(stats.times_ms) == 6
    assert stats.iqr_ms == pytest.approx(iqr(stats.times_ms)) and stats.spread > NOISE_THRESHOLD
    assert stats.min_ms == min(stats.times_ms) and stats.loadavg_before is not None and stats.loadavg_after >= 0


def _scripted(monkeypatch, rounds):
    rounds = iter(rounds)
    monkeypatch.setattr(latency_mod, "time_cpu_runs", lambda model, inputs, runs: next(rounds))


def test_two_consecutive_steady_rounds_that_agree_settle_it_and_the_later_is_kept(monkeypatch):
    # The timer is scripted here so that the selection rule is checked exactly; the real timer is covered above.
    _scripted(monkeypatch, [[10.0, 30.0, 10.0, 30.0], [10.0, 10.5, 10.2, 10.1], [10.4, 10.6, 10.3, 10.5]])
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=0, runs=4, rounds=3)
    assert stats.rounds == 3 and not stats.noisy and stats.median_ms == pytest.approx(10.45)
    # one steady round alone does not settle it: a noisy round in between restarts the count
    _scripted(monkeypatch, [[10.0, 10.1, 10.0, 10.1], [10.0, 30.0, 10.0, 30.0], [10.0, 10.1, 10.0, 10.1],
                            [10.1, 10.0, 10.1, 10.0]])
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=0, runs=4, rounds=5)
    assert stats.rounds == 4 and not stats.noisy


def test_steady_rounds_whose_medians_move_are_not_settled(monkeypatch):
    """A slow start (clocks still rising) looks steady within each round; only the next round shows it. Seen on an
    H200: 29.5 ms with an IQR of 4%, then 20.6 ms for the same model a minute later."""
    _scripted(monkeypatch, [[29.0, 29.5, 29.4, 29.6], [20.5, 20.6, 20.7, 20.6], [20.4, 20.6, 20.6, 20.5]])
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=0, runs=4, rounds=5)
    assert stats.rounds == 3 and not stats.noisy and stats.median_ms == pytest.approx(20.55)
    # still moving when the rounds run out: the latest steady round is reported, marked noisy
    _scripted(monkeypatch, [[30.0] * 4, [25.0] * 4, [21.0] * 4])
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=0, runs=4, rounds=3)
    assert stats.rounds == 3 and stats.noisy and stats.median_ms == 21.0
    # every round noisy: the steadiest is reported, marked noisy
    _scripted(monkeypatch, [[10.0, 30.0, 10.0, 30.0], [10.0, 20.0, 10.0, 20.0], [5.0, 50.0, 5.0, 50.0]])
    stats = measure_latency(nn.Identity(), torch.zeros(1), warmup=0, runs=4, rounds=3)
    assert stats.rounds == 3 and stats.noisy and stats.times_ms == [10.0, 20.0, 10.0, 20.0]
    # one round only: the IQR test alone
    _scripted(monkeypatch, [[30.0] * 4])
    assert not measure_latency(nn.Identity(), torch.zeros(1), warmup=0, runs=4, rounds=1).noisy


class _SlowStart(nn.Module):
    """40 ms calls for the first `slow` calls, 20 ms after: a device still coming up to speed, with the real timer."""

    def __init__(self, slow: int):
        super().__init__()
        self.calls, self.slow = 0, slow

    def forward(self, x):
        self.calls += 1
        time.sleep(0.040 if self.calls <= self.slow else 0.020)
        return x


def test_a_slow_start_is_timed_through_to_the_steady_speed():
    model = _SlowStart(slow=7)  # warm-up 1 and the whole first round of 6 are slow
    stats = measure_latency(model, torch.zeros(1), warmup=1, runs=6, rounds=5)
    assert stats.rounds >= 3 and stats.median_ms < 30.0


def test_a_round_goes_on_in_batches_of_runs_until_it_has_lasted_round_min_s():
    stats = measure_latency(_SlowStart(slow=0), torch.zeros(1), warmup=0, runs=2, rounds=1, round_min_s=0.2)
    assert stats.runs >= 6 and stats.runs % 2 == 0 and len(stats.times_ms) == stats.runs
    assert measure_latency(_SlowStart(slow=0), torch.zeros(1), warmup=0, runs=2, rounds=1).runs == 2  # CPU: no minimum


def test_warm_up_lasts_at_least_warmup_s():
    model = _SlowStart(slow=0)
    t0 = time.perf_counter()
    measure_latency(model, torch.zeros(1), warmup=1, runs=1, rounds=1, warmup_s=0.3)
    assert model.calls >= 1 + 0.3 / 0.020 * 0.5 and time.perf_counter() - t0 >= 0.3
    model = _SlowStart(slow=0)
    measure_latency(model, torch.zeros(1), warmup=0, runs=1, rounds=1, warmup_s=0.3)
    assert model.calls == 1  # warmup 0: no warm-up at all


def test_measure_model_states_its_conditions():
    rec = measure_model(TinySegmentor(), input_size=(16, 24), warmup=1, runs=3)
    assert list(rec) == RECORD_KEYS
    assert rec["measure_batch"] == 1 and rec["measure_dtype"] == "float32" and rec["measure_device"] == "cpu"
    assert rec["measure_threads"] == torch.get_num_threads() and rec["measure_device_name"] == rec["device_name"]
    assert rec["measure_started_at"] < rec["measure_finished_at"]
    assert rec["latency_runs"] == 3 and rec["latency_ms_min"] <= rec["latency_ms_median"]
    assert isinstance(rec["latency_noisy"], bool) and rec["latency_ms_iqr"] >= 0
    threads = "1 CPU thread" if rec["measure_threads"] == 1 else f"{rec['measure_threads']} CPU threads"
    assert conditions_text(rec) == f"16x24, batch 1, fp32, {threads}"


def test_conditions_text():
    row = {"measure_input": "1024x2048", "measure_batch": 1, "measure_dtype": "float32", "measure_threads": 2,
           "measure_device": "cpu", "measure_device_name": "AMD EPYC"}
    assert conditions_text(row) == "1024x2048, batch 1, fp32, 2 CPU threads"
    row.update(measure_device="cuda", measure_device_name="NVIDIA H200", measure_dtype="bfloat16")
    assert conditions_text(row) == "1024x2048, batch 1, bf16, NVIDIA H200"
    # rows from before the measure_* columns: fall back to device/threads/dtype; NaN is "not recorded"
    old = {"measure_input": "256x512", "measure_batch": float("nan"), "dtype": "float32", "device": "cpu",
           "threads": 1.0}
    assert conditions_text(old) == "256x512, fp32, 1 CPU thread"
    assert conditions_text({}) == ""
