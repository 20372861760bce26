"""The latency pool's scheduling and arithmetic (bench.measure.processes.fresh_processes), in process: the pool
runs with an in-process stand-in for its fresh processes and a clock the stand-in advances
(tests/measure/pool_stand_in.py), so every time is exact. What is checked: the order of start-ups, turns and
closes in a slot; how long a slot lasts (the longest share of the span, on each model's own turns of the slot);
the time bound; slots added while a model is imprecise, for every model, up to the limit; blocks of time; and what
pooled_latency passes on. The same pool with real processes: tests/measure/test_fresh_processes.py."""
import pytest
import torch

from bench.measure.noise_rule import SE_THRESHOLD
from bench.measure.processes.fresh_processes import (TIMEOUT_S, LatencyJob, TurnTimer, pooled_latencies,
                                                     pooled_latency, relative_se)
from tests.measure.pool_stand_in import START_S, THREADS, WARMUP_S, Host, Scripted

UP = START_S + WARMUP_S  # one process's start-up: 0.75 s


def _pool(jobs, host, **kw):
    return pooled_latencies(jobs, process=host.process, clock=host.clock, **kw)


def _turns_per_slot(job) -> list[int]:
    counts: dict[int, int] = {}
    for t in job.turns:
        counts[t["slot"]] = counts.get(t["slot"], 0) + 1
    return [counts[s] for s in sorted(counts)]


def test_a_slot_starts_and_warms_up_every_process_before_any_turn_and_closes_them_after():
    host = Host()
    images = torch.zeros(1, 3, 4, 4)
    a = LatencyJob(Scripted("a", turn_s=1.0), images, warmup=2, runs=3, processes=2)
    b = LatencyJob(Scripted("b", turn_s=3.0), [images, "size"], warmup=0, runs=4, processes=2)
    b.load_before = -1.0  # taken once, when the pool began: kept
    seen = []
    stats_a, stats_b = _pool([a, b], host, se_threshold=1.0, timeout_s=77.0,
                             on_slot=lambda slot, jobs: seen.append((slot, jobs, len(host.events))))
    one_slot = [("start", "a"), ("answer", "a"), ("start", "b"), ("answer", "b"), ("call", "a"), ("call", "b"),
                ("close", "b"), ("close", "a")]
    assert host.order() == one_slot * 2  # no span: one round of turns per slot, two slots (the processes)
    assert seen == [(1, [a, b], 8), (2, [a, b], 16)]
    starts = [("start", "a", TurnTimer, (images,), 2, "latency", 77.0, True),
              ("start", "b", TurnTimer, (images, "size"), 0, "latency", 77.0, True)]
    assert host.steps("start") == starts * 2 and host.steps("call") == [("call", "a", 3), ("call", "b", 4)] * 2
    # a's turns start after both start-ups; the second slot's after a's and b's turns and both start-ups again
    assert a.turns == [{"at": 2 * UP, "duration_s": 1.0, "slot": 0, "times_ms": [100.0] * 3},
                       {"at": 2 * UP + 4.0 + 2 * UP, "duration_s": 1.0, "slot": 1, "times_ms": [100.0] * 3}]
    assert [(t["at"], t["duration_s"], t["slot"]) for t in b.turns] == [(2.5, 3.0, 0), (8.0, 3.0, 1)]
    assert (stats_a.processes, stats_a.runs, stats_a.span_s) == (2, 6, 8.0 - 1.5)
    assert (stats_b.processes, stats_b.runs, stats_b.span_s) == (2, 8, 11.0 - 2.5)
    assert a.threads == b.threads == stats_a.threads == THREADS
    assert isinstance(a.load_before, float) and isinstance(a.load_after, float) and isinstance(b.load_after, float)
    assert b.load_before == -1.0 == stats_b.loadavg_before
    assert a.cut_s is None and not stats_a.noisy and stats_a.bound_s is None


def test_the_pools_clock_starts_when_the_pool_does():
    host = Host(now=5000.0)
    a = LatencyJob(Scripted("a", turn_s=2.0), torch.zeros(1), processes=1)
    _pool([a], host, se_threshold=1.0)
    assert a.turns == [{"at": UP, "duration_s": 2.0, "slot": 0, "times_ms": [100.0] * 10}]


@pytest.mark.parametrize("share_a, share_b, turns", [
    # slot length 9 (a's 18 s over 2 processes); rounds of 4 s (a 1 s, then b 3 s): a's own turns of a slot cover
    # 1, 5, 9 s after 1, 2, 3 rounds, b's 3, 7, 11 s. a's cover the length exactly on the third round.
    ((18.0, 2), (3.0, 1), 3),
    # length 6 (both shares): b's turns cover it on the second round (7 s), a's only on the third (9 s)
    ((12.0, 2), (6.0, 1), 3),
    # length 10, b's share (a's is 1): a's turns cover it on the fourth round (13 s)
    ((2.0, 2), (10.0, 1), 4),
])
def test_a_slot_lasts_the_longest_share_of_the_span_on_each_models_own_turns(share_a, share_b, turns):
    host = Host()
    a = LatencyJob(Scripted("a", turn_s=1.0), torch.zeros(1), processes=share_a[1], span_s=share_a[0])
    b = LatencyJob(Scripted("b", turn_s=3.0), torch.zeros(1), processes=share_b[1], span_s=share_b[0])
    stats_a, stats_b = _pool([a, b], host, se_threshold=1.0)
    # two slots (a's processes), each counted from its own first turn, not from the pool's first
    assert _turns_per_slot(a) == _turns_per_slot(b) == [turns, turns]
    assert stats_a.span_s >= a.span_s and stats_b.span_s >= b.span_s


def test_the_bound_stops_the_slot_after_its_round_of_turns_and_cuts_the_models_not_done():
    host = Host()
    a = LatencyJob(Scripted("a", turn_s=1.0), torch.zeros(1), processes=1, span_s=100.0)
    b = LatencyJob(Scripted("b", turn_s=3.0), torch.zeros(1), processes=1, span_s=100.0)
    c = LatencyJob(Scripted("c", turn_s=2.0), torch.zeros(1), processes=1)  # no span: done after one turn
    # start-ups 3 x 0.75 s, rounds of 6 s: the second round ends exactly at the bound
    bound = 3 * UP + 2 * 6.0
    seen = []
    stats = _pool([a, b, c], host, se_threshold=1.0, max_s=bound, on_slot=lambda slot, jobs: seen.append(slot))
    assert seen == [1] and [_turns_per_slot(j) for j in (a, b, c)] == [[2], [2], [2]]
    assert (a.cut_s, b.cut_s, c.cut_s) == (bound, bound, None)
    assert [(s.noisy, s.bound_s) for s in stats] == [(True, bound), (True, bound), (False, None)]


def test_a_bound_just_after_a_round_lets_the_next_round_run():
    host = Host()
    a = LatencyJob(Scripted("a", turn_s=1.0), torch.zeros(1), processes=1, span_s=100.0)
    (stats,) = _pool([a], host, se_threshold=1.0, max_s=UP + 2.25)  # rounds end at 1.75, 2.75, 3.75 s
    assert _turns_per_slot(a) == [3] and a.cut_s == stats.bound_s == UP + 2.25


def test_a_bound_reached_in_a_later_slot_cuts_only_the_models_not_done():
    """Slots of 3.5 s (two start-ups, one round: no span): the bound is reached at the end of the second. a
    (alternating 100 and 130 ms) is still imprecise then; b (constant) is precise after its two processes."""
    host = Host()
    a = LatencyJob(Scripted("a", ms=lambda p, t: 100.0 + 30.0 * (p % 2)), torch.zeros(1), processes=2)
    b = LatencyJob(Scripted("b"), torch.zeros(1), processes=2)
    seen = []
    stats_a, stats_b = _pool([a, b], host, max_s=2 * (2 * UP + 2.0), on_slot=lambda slot, jobs: seen.append(slot))
    assert seen == [1, 2] and (a.cut_s, b.cut_s) == (7.0, None)
    assert (stats_a.noisy, stats_a.bound_s, stats_b.noisy, stats_b.bound_s) == (True, 7.0, False, None)


def test_a_pool_done_when_it_reaches_its_bound_is_not_cut():
    host = Host()
    a = LatencyJob(Scripted("a", turn_s=1.0), torch.zeros(1), processes=1)
    (stats,) = _pool([a], host, se_threshold=1.0, max_s=0.0)
    assert _turns_per_slot(a) == [1] and a.cut_s is None and stats.bound_s is None and not stats.noisy


def test_every_model_gets_slots_while_one_is_imprecise_until_it_is_precise():
    """a's slot medians 100, 110, 105 ms: a relative standard error of 4.8% after two slots (over the 3.5% limit),
    2.7% after three. b (constant) is done after its one process but takes turns in every slot."""
    host = Host()
    a = LatencyJob(Scripted("a", ms=lambda p, t: [100.0, 110.0, 105.0, 300.0][p]), torch.zeros(1), processes=2,
                   max_processes=4)
    b = LatencyJob(Scripted("b"), torch.zeros(1), processes=1)
    seen = []
    stats_a, stats_b = _pool([a, b], host, on_slot=lambda slot, jobs: seen.append(slot))
    assert seen == [1, 2, 3] and [t["slot"] for t in b.turns] == [0, 1, 2]
    assert stats_a.process_medians_ms == [100.0, 110.0, 105.0] and stats_a.rel_se == relative_se([100, 110, 105])
    assert SE_THRESHOLD > stats_a.rel_se and not stats_a.noisy
    assert stats_b.processes == 3 and stats_b.rel_se == 0.0 and not stats_b.noisy


def test_an_imprecise_model_grows_to_its_limit_and_is_noisy():
    """Slot medians alternating 100 and 130 ms never get under the limit: a grows to its max_processes (3), c
    without one to 4 x its processes; b, precise, takes part in every slot."""
    alternating = Scripted("a", ms=lambda p, t: 100.0 + 30.0 * (p % 2))
    a = LatencyJob(alternating, torch.zeros(1), processes=2, max_processes=3)
    b = LatencyJob(Scripted("b"), torch.zeros(1), processes=2, max_processes=2)
    stats_a, stats_b = _pool([a, b], Host())
    assert (stats_a.processes, stats_a.noisy, stats_b.processes, stats_b.noisy) == (3, True, 3, False)
    c = LatencyJob(Scripted("c", ms=alternating.ms), torch.zeros(1), processes=2)
    (stats_c,) = _pool([c], Host())
    assert stats_c.processes == 8 and stats_c.noisy


def test_blocks_of_time_see_a_slow_stretch_that_every_slot_shares():
    """Each slot: eight 4-s turns (its 32-s share of 64 s over 2 processes), the first four at 100 ms, the last four
    at 130 ms. Every slot's median is 115 ms, so over the slots the pool looks precise; over blocks of its time
    (97.5 s: 4 blocks of 24.375 s, counted from the first turn) it is not, so it grows to its limit."""
    host = Host()
    job = LatencyJob(Scripted("a", turn_s=4.0, ms=lambda p, t: 100.0 if t < 4 else 130.0), torch.zeros(1),
                     processes=2, span_s=64.0, max_processes=3)
    (stats,) = _pool([job], host)
    assert stats.process_medians_ms == [115.0, 115.0, 115.0] and stats.span_s == 97.5 and stats.blocks == 4
    # turns at 0, 4, ..., 28 s, then 32.75, ..., 60.75 s, then 65.5, ..., 93.5 s (the start-ups in between); the
    # turn at 48.75 s starts the third block exactly
    assert job.block_medians() == [100.0, 100.0, 130.0, 130.0]
    assert stats.rel_se == relative_se([100.0, 100.0, 130.0, 130.0]) and stats.noisy and stats.processes == 3


def test_pooled_latency_passes_every_setting_on():
    host = Host()
    x = torch.zeros(1)
    # slot medians 100, 110: 4.8%, under a limit of 5%; a 4-s share of the span (8 s over 2): four 1-s turns a slot
    model = Scripted("m", ms=lambda p, t: [100.0, 110.0, 105.0][p])
    s = pooled_latency(model, x, warmup=5, runs=2, processes=2, max_processes=5, span_s=8.0, se_threshold=0.05,
                       timeout_s=60.0, process=host.process, clock=host.clock)
    assert host.steps("start") == [("start", "m", TurnTimer, (x,), 5, "latency", 60.0, True)] * 2
    assert host.steps("call") == [("call", "m", 2)] * 8
    assert (s.processes, s.runs, s.warmup, s.span_s) == (2, 16, 5, UP + 4.0 + UP + 4.0 - UP)
    host = Host()
    imprecise = Scripted("m", ms=lambda p, t: 100.0 + 30.0 * (p % 2))
    s = pooled_latency(imprecise, x, processes=2, max_processes=3, se_threshold=0.0, process=host.process,
                       clock=host.clock)
    assert s.processes == 3 and s.noisy


def test_pooled_latencys_defaults():
    """warmup 3, 10 runs a turn, 3 processes (a constant model is precise at once), no span (one turn a slot), the
    module's timeout; an imprecise model grows to 4 x 3 processes."""
    host = Host()
    s = pooled_latency(Scripted("m"), torch.zeros(1), process=host.process, clock=host.clock)
    assert [e[4:7] for e in host.steps("start")] == [(3, "latency", TIMEOUT_S)] * 3 and TIMEOUT_S == 1800.0
    assert host.steps("call") == [("call", "m", 10)] * 3
    assert (s.warmup, s.runs, s.processes, s.bound_s) == (3, 30, 3, None)
    imprecise = Scripted("m", ms=lambda p, t: 100.0 + 30.0 * (p % 2))
    host = Host()
    s = pooled_latency(imprecise, torch.zeros(1), process=host.process, clock=host.clock)
    assert s.processes == 12 and s.noisy  # no max_processes: the limit is 4 x processes
