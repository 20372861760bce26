"""The latency pool (bench.measure.processes.fresh_processes) without processes: an in-process stand-in for its
`process` (what starts a model's process for a slot: FreshProcess) and a `clock` that the stand-in advances, so
that tests of the pool's scheduling and arithmetic run in milliseconds and give exact times.

A model is a `Scripted`: each turn lasts `turn_s` seconds of the clock and gives `runs` times of `ms(process,
turn)` milliseconds each (`process`: how many processes of this model were started before this one; `turn`: the
turn within this process). Starting a process costs START_S seconds and its warm-up WARMUP_S, as a fresh
interpreter's start-up does, so a slot's turns begin after every model's start-up. `Host.events` logs every step:
("start", model, func, inputs, warmup, what, timeout_s, serve), ("answer", model), ("call", model, runs),
("close", model). Times are binary fractions, so sums of them are exact."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

START_S = 0.5
WARMUP_S = 0.25
THREADS = 3  # what every turn reports as the process's intra-op threads


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(eq=False)
class Scripted:
    name: str
    turn_s: float = 1.0
    ms: Callable[[int, int], float] = lambda process, turn: 100.0
    started: int = 0  # processes started so far


class Host:
    """`process` and `clock` for pooled_latencies / pooled_latency."""

    def __init__(self, now: float = 1000.0):
        self.clock = Clock(now)
        self.events: list[tuple] = []

    def process(self, func, args, *, what, timeout_s, serve) -> _Process:
        return _Process(self, func, args, what, timeout_s, serve)

    def steps(self, kind: str) -> list[tuple]:
        return [e for e in self.events if e[0] == kind]

    def order(self) -> list[tuple[str, str]]:
        """(step, model) of every event, in order."""
        return [(e[0], e[1]) for e in self.events]


class _Process:
    """FreshProcess's interface (a context manager; answer() once it has warmed up; call(runs) for a turn)."""

    def __init__(self, host: Host, func, args, what, timeout_s, serve):
        model, inputs, warmup = args
        self.host, self.model = host, model
        host.events.append(("start", model.name, func, inputs, warmup, what, timeout_s, serve))
        host.clock.now += START_S
        self.number, self.turn = model.started, None
        model.started += 1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.host.events.append(("close", self.model.name))

    def answer(self) -> None:
        self.host.events.append(("answer", self.model.name))
        self.host.clock.now += WARMUP_S
        self.turn = 0

    def call(self, runs: int) -> dict:
        assert self.turn is not None, "a turn before the process answered (warmed up)"
        self.host.events.append(("call", self.model.name, runs))
        value = self.model.ms(self.number, self.turn)
        self.host.clock.now += self.model.turn_s
        self.turn += 1
        return {"times_ms": [value] * runs, "threads": THREADS}
