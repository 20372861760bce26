"""Tune's side of the evaluation tasks (bench/sweep/tasks/eval_tasks.py): evaluations of finished trials start while
other trials train, and trials plus evaluations together stay within the sweep's concurrency.

- EvalCallback queues a trial's evaluations when it completes, and at the start of every step of Tune's loop
  starts queued evaluations into free slots (before Tune asks for new trials, so a finished trial's evaluations
  come before the next trial).
- BudgetedVariants is Tune's grid generator that also counts running evaluations: it hands Tune no new trial
  while live trials + running evaluations fill the concurrency (Tune's own max_concurrent_trials counts trials
  only).
Both are pickled with the Tune experiment, so they hold no state of their own: the queue is eval_tasks.active().
"""
from __future__ import annotations

from ray.tune import Callback
from ray.tune.search import BasicVariantGenerator

from bench.sweep.tasks import eval_tasks
_DONE = ("TERMINATED", "ERROR")


class BudgetedVariants(BasicVariantGenerator):
    handed = 0  # trials given to Tune so far (state: pickled with the generator)

    def next_trial(self):
        queue = eval_tasks.active()
        if queue is not None and self.handed < self.total_samples:
            # Tune calls this in a blocking loop (once a second) while no trial runs and none is handed out: the
            # queue must make progress here too, or evaluations that fill the budget would never be collected.
            queue.pump(live_trials=len(self._live_trials))
            if self.max_concurrent > 0 and len(self._live_trials) + queue.busy >= self.max_concurrent:
                return None
        trial = super().next_trial()
        self.handed += trial is not None
        return trial


class EvalCallback(Callback):
    def on_step_begin(self, iteration, trials, **info):
        queue = eval_tasks.active()
        if queue is not None:
            queue.pump(live_trials=sum(1 for t in trials if t.status not in _DONE))

    def on_trial_complete(self, iteration, trials, trial, **info):
        eval_tasks.on_trial_done(trial.config["trial"]["config_hash"])


def tune_options(queue, concurrency: int) -> dict:
    """TuneConfig arguments: unchanged without evaluations; with them, the budgeted generator instead of
    max_concurrent_trials (Tune ignores that when a generator is given)."""
    if queue is None:
        return {"max_concurrent_trials": concurrency}
    return {"search_alg": BudgetedVariants(max_concurrent=concurrency)}


def callbacks(queue) -> list:
    return [] if queue is None else [EvalCallback()]
