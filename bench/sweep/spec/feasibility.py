"""Refuse a trial request that no Ray cluster node could ever grant, before anything runs.

Ray queues a request that does not fit and waits for resources forever (on a fixed cluster they never come). So
after connecting (embedded Ray or --address) the runner checks the sweep's per-trial request against what the alive
nodes report (ray.nodes()) and the cluster's totals (ray.cluster_resources()):

- one bundle (a trial's, or with workers > 1 one worker's: `cpus`, `gpus` and the `custom` resources) must fit
  on some single node: Ray never splits a bundle over nodes;
- every custom resource must exist somewhere;
- the trial's bundles together (workers x bundle, plus the coordinator's 0.01 CPU) must fit the cluster's nodes at
  once: Ray Train reserves them as one placement group, PACK or SPREAD (both soft in Ray Train: they prefer, but
  do not require, one node / distinct nodes), so the capacity that counts is how many whole bundles each node holds.

`check_request` is pure (nodes in, UserError out) so it is tested without a cluster; `check_cluster` reads Ray.
"""
from __future__ import annotations

import math

from bench.errors import UserError

COORDINATOR_CPU = 0.01  # the Tune function of a multi-worker trial (bench.sweep.driver.runner.trial_resources)
_EPS = 1e-9


def worker_bundle(res) -> dict[str, float]:
    """What one worker (or a single-worker trial) asks Ray for."""
    bundle = {"CPU": float(res.cpus)}
    if res.gpus > 0:
        bundle["GPU"] = float(res.gpus)
    for name, amount in (res.custom or {}).items():
        if amount > 0:
            bundle[name] = float(amount)
    return bundle


def _fmt(resources: dict[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in resources.items()) or "nothing"


def _holds(node: dict[str, float], bundle: dict[str, float]) -> int:
    """How many copies of `bundle` fit on `node` at once."""
    return min((math.floor(node.get(k, 0.0) / v + _EPS) for k, v in bundle.items() if v > 0), default=0)


def _summary(nodes: list[dict[str, float]]) -> str:
    keys = ["CPU", "GPU"]
    biggest = {k: max((n.get(k, 0.0) for n in nodes), default=0.0) for k in keys}
    total = {k: sum(n.get(k, 0.0) for n in nodes) for k in keys}
    return (f"the cluster has {len(nodes)} node(s), {_fmt(total)} in all; the largest node has "
            f"{biggest['CPU']:g} CPU, {biggest['GPU']:g} GPU")


def check_request(res, nodes: list[dict[str, float]], where: str) -> None:
    """Raise a one-line UserError when `res` (a sweep.spec.Resources) can never be scheduled on `nodes` (the
    resource dicts of the alive nodes)."""
    for name, amount in (res.custom or {}).items():
        if amount < 0:
            raise UserError(f"{where}: sweep.resources.custom.{name}: must be >= 0, got {amount:g}")
        if amount > 0 and not any(n.get(name, 0.0) > 0 for n in nodes):
            raise UserError(f"{where}: sweep.resources.custom.{name}: no node of the cluster has the custom "
                            f"resource {name!r} ({_summary(nodes)})")
    bundle = worker_bundle(res)
    unit = "one worker" if res.workers > 1 else "one trial"
    if not any(_holds(n, bundle) >= 1 for n in nodes):
        raise UserError(f"{where}: sweep.resources: {unit} needs {_fmt(bundle)} on one node, but no node has that "
                        f"({_summary(nodes)})")
    if res.workers > 1:
        # The coordinator's sliver of CPU needs a node with spare CPU beside the workers; ignore it unless the
        # workers take every CPU of every node (then Ray would wait for it).
        capacity = sum(_holds(n, bundle) for n in nodes)
        spare = sum(n.get("CPU", 0.0) - _holds(n, bundle) * bundle["CPU"] for n in nodes)
        if capacity < res.workers or (capacity == res.workers and spare + _EPS < COORDINATOR_CPU):
            short = (f"hold only {capacity} such worker(s)" if capacity < res.workers else
                     f"hold {capacity} such workers but then leave no CPU for the coordinator")
            raise UserError(
                f"{where}: sweep.resources: a trial needs {res.workers} workers x ({_fmt(bundle)}) at once (plus "
                f"{COORDINATOR_CPU:g} CPU for its coordinator), but the cluster's nodes {short} ({_summary(nodes)})")


def alive_nodes() -> list[dict[str, float]]:
    import ray

    return [dict(n.get("Resources") or {}) for n in ray.nodes() if n.get("Alive")]


def check_cluster(res, where: str) -> None:
    """check_request against the Ray runtime this process is connected to."""
    check_request(res, alive_nodes(), where)
