"""The sweep's measurement phase: each distinct model is measured once, alone on its node, before any trial trains.

Latency measured beside a training trial measures the trial, not the model (issue 9: the same model 4x apart). So
the runner measures first, in a Ray task that runs inside a placement group reserving every CPU (and, for a GPU
sweep, a GPU) of one node. Ray does not grant that reservation while any other task or trial holds a CPU there, and
grants no CPU there to anything else while it is held; the runner starts the Tune trials only after the last
measurement, so no measurement overlaps training (the results rows carry the timestamps that show it).

One measurement per key: a hash of the model config, the measure settings, the device kind and the thread count
(and, when IFA is evaluated off its own grid, its query mode: the model is measured as it is evaluated), not the
seed or the training settings, so the seeds of a model share one measurement. It is stored as
<sweep>/measurements/<key>.json, so a rerun or --resume never measures that model again.

One task measures every model still to measure, the models taking turns in one CPU latency pool (A B C, A B C, ...;
bench.measure.processes.fresh_processes.pooled_latencies): the host's speed drifts in stretches of about ten seconds, and
models measured one after the other would each see a different stretch of it, which can invert a ranking of similar
models. The records are stored when that task ends; a phase that is interrupted measures all its models again on
the next run.

Nothing waits forever: reserving the node and running the measurement each have a timeout, and an expired one
is a one-line error before any trial starts.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench.config.query_stride import query_mode
from bench.errors import UserError
from bench.measure.ifa_on_gpu import fused_on_gpu_note
from bench.sweep.folder import records
from bench.sweep.spec.trials import Resources
from bench.results.text_table import plural
RESERVE_TIMEOUT_S = 600.0  # waiting for the node to be free of other Ray work
RUN_TIMEOUT_S = 3600.0  # one model's measurement (1024x2048 on CPU, 3 rounds of 10 runs, fits with room)


def device_kind(payload: dict) -> str:
    """"cuda" when the trial trains on a GPU (and does not pin the CPU), else "cpu"."""
    res = payload["resources"]
    return "cuda" if res["gpus"] > 0 and payload["cfg"]["train"].get("device", "auto") != "cpu" else "cpu"


def measure_threads(payload: dict) -> int:
    """The intra-op threads one trial of this config trains with: what its model runs with in deployment here."""
    return Resources(**payload["resources"]).threads(payload["cfg"]["train"].get("threads"))


def measure_key(payload: dict) -> str:
    cfg = payload["cfg"]
    what = {"model": cfg["model"], "measure": cfg["measure"], "device": device_kind(payload),
            "threads": measure_threads(payload)}
    query = query_mode(cfg["model"]["head"]["name"], cfg.get("eval", {}).get("ifa_query", "upsample"),
                       cfg.get("eval", {}).get("ifa_query_stride"))
    if query is not None:  # only a query off IFA's own grid changes the cost (older keys stay as they were)
        what["ifa_query"] = list(query)
    blob = json.dumps(what, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]




def _run_measurements(models: list[tuple[dict, str]], kind: str, threads: int, cwd: str | None) -> list[dict]:
    """Runs in the Ray task, on the reserved node: every (config, key) of the phase, taking turns in one CPU latency
    pool (bench.measure.measure_models), one record each, in order."""
    import os
    import socket
    from contextlib import ExitStack

    import torch

    from bench.config import ExperimentConfig
    from bench.engine.evaluation.inference import planned_segmentor
    from bench.host.device import resolve_device
    from bench.measure.model import ModelToMeasure, measure_models
    from bench.measure.plan import plan

    if cwd and Path(cwd).is_dir():
        os.chdir(cwd)
    torch.set_num_threads(threads)
    specs, device = [], torch.device("cpu")
    with ExitStack() as stack:
        for cfg_json, _ in models:
            cfg = ExperimentConfig.model_validate(cfg_json)
            device = resolve_device(cfg.train.device, "train.device") if kind == "cuda" else torch.device("cpu")
            (planned,) = plan(cfg)
            segmentor = stack.enter_context(planned_segmentor(planned))
            specs.append(ModelToMeasure(segmentor, **planned.measure_kwargs()))
        records = measure_models(specs, device=device)
    try:
        import ray

        # outside a Ray task (tests run this body in-process) get_runtime_context() would start a local Ray
        node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - informational only
        node_id = ""
    for record, (_, key) in zip(records, models):
        record.update(measure_key=key, measure_node=socket.gethostname(), measure_node_id=node_id)
    return records


def pick_node(cpus: float, gpus: float) -> dict:
    """The node to measure on: the alive node that can hold a trial, with the most CPUs (then the lowest id)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    fit = [n for n in nodes if n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus]
    if not fit:
        raise UserError(f"measurement: no node of the cluster has {cpus:g} CPUs and {gpus:g} GPUs")
    return sorted(fit, key=lambda n: (-n["Resources"]["CPU"], n["NodeID"]))[0]


def node_bundle(node: dict, kind: str) -> dict:
    """Every CPU of the node (and one GPU for a GPU measurement), pinned to it by its node:<ip> resource."""
    res = node["Resources"]
    bundle = {"CPU": res["CPU"], f"node:{node['NodeManagerAddress']}": 0.001}
    if kind == "cuda":
        bundle["GPU"] = 1
    return bundle


@contextmanager
def reserved_node(node: dict, kind: str, timeout_s: float = RESERVE_TIMEOUT_S):
    """A placement group holding every CPU of `node` (and a GPU for kind "cuda"); released on exit."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    bundle = node_bundle(node, kind)
    pg = placement_group([bundle], strategy="STRICT_PACK", name="sweep-measurement")
    try:
        ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
        if not ready:
            raise UserError(
                f"measurement: could not reserve all {bundle['CPU']:g} CPUs{' and a GPU' if kind == 'cuda' else ''} "
                f"of node {node['NodeManagerAddress']} within {timeout_s:g} s (other Ray work holds them); "
                f"no trial was started"
            )
        yield pg, bundle
    finally:
        remove_placement_group(pg)


def measure_in(pg, bundle: dict, todo: list[tuple[str, dict]], *, run_timeout_s: float = RUN_TIMEOUT_S) -> list[dict]:
    """Run the measurement of every (key, payload) of `todo` as one task taking the whole reserved bundle (their
    models taking turns in the latency pool), `run_timeout_s` per model. Raises UserError on a timeout or a failure."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    task = ray.remote(_run_measurements).options(
        num_cpus=bundle["CPU"], num_gpus=bundle.get("GPU", 0), max_retries=0,
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0),
    )
    p0 = todo[0][1]  # device and threads are the sweep's, the same for every model
    ref = task.remote([(p["cfg"], key) for key, p in todo], device_kind(p0), measure_threads(p0), p0.get("cwd"))
    what = ", ".join(f"{p['trial_id']} ({key})" for key, p in todo)
    try:
        return ray.get(ref, timeout=run_timeout_s * len(todo))
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise UserError(f"measurement of {what} took longer than {run_timeout_s * len(todo):g} s; "
                        f"no trial was started") from None
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise UserError(f"measurement of {what} failed: {type(cause).__name__}: {first}"[:500]) from None


def describe(rec: dict) -> str:
    """One line for the console: the numbers and, loudly, whether the latency is noisy."""
    from bench.measure.noise_rule import noise_reason

    parts = []
    if isinstance(rec.get("latency_ms_median"), (int, float)):
        iqr = rec.get("latency_ms_iqr") or 0.0
        spread = iqr / rec["latency_ms_median"] * 100 if rec["latency_ms_median"] else 0.0
        span = rec.get("latency_span_s")
        over = f" over {span:.0f} s" if isinstance(span, (int, float)) and span == span else ""
        pooled = (f", {rec['latency_processes']} processes{over}, SE {rec['latency_se_pct']:.1f}%"
                  if rec.get("latency_processes") and rec.get("latency_se_pct") is not None else "")
        parts.append(f"latency {rec['latency_ms_median']:.2f} ms (min {rec['latency_ms_min']:.2f}, "
                     f"IQR {spread:.0f}% of median, {rec.get('latency_runs')} runs{pooled})")
    if isinstance(rec.get("gmacs"), (int, float)):
        parts.append(f"{rec['gmacs']:.2f} GMACs, {rec['params_m']:.2f} M params")
    load = (rec.get("loadavg_before"), rec.get("loadavg_after"))
    if all(isinstance(v, (int, float)) for v in load):
        parts.append(f"load {load[0]:.2f}->{load[1]:.2f}")
    text = ", ".join(parts) or "measured"
    if rec.get("latency_noisy"):
        text += f"  WARNING: latency is noisy ({noise_reason(rec)})"
    return text


def run_phase(payloads: list[dict], sweep_dir: Path, name: str, stream=None, *,
              reserve_timeout_s: float = RESERVE_TIMEOUT_S, run_timeout_s: float = RUN_TIMEOUT_S) -> dict[str, dict]:
    """Measure every distinct model of `payloads` that has no stored measurement yet. Ray must be running.
    Returns {measure_key: record} for every key of `payloads` whose config has measurement enabled."""
    stream = stream or sys.stdout
    out: dict[str, dict] = {}
    first: dict[str, dict] = {}
    for p in payloads:
        if p["cfg"]["measure"].get("enabled", True):
            first.setdefault(measure_key(p), p)
    todo = []
    for key, p in first.items():
        rec = records.read_measurement(sweep_dir, key)
        if rec is not None:
            out[key] = rec
        else:
            todo.append((key, p))
    if first and not todo:
        print(f"[{name}] {plural(len(first), 'model measurement')} already stored (kept)", file=stream, flush=True)
    if not todo:
        return out
    p0 = todo[0][1]  # resources and device are the sweep's, the same for every trial
    kind = device_kind(p0)
    node = pick_node(p0["resources"]["cpus"], p0["resources"]["gpus"] if kind == "cuda" else 0)
    t0 = time.time()
    print(f"[{name}] measuring {plural(len(todo), 'model')} alone on node {node['NodeManagerAddress']} "
          f"(all its CPUs reserved) before any trial trains"
          f"{', their latency runs taking turns' if len(todo) > 1 else ''}", file=stream, flush=True)
    with reserved_node(node, kind, reserve_timeout_s) as (pg, bundle):
        measured = measure_in(pg, bundle, todo, run_timeout_s=run_timeout_s)
    for (key, p), rec in zip(todo, measured):
        records.write_measurement(sweep_dir, key, rec)
        out[key] = rec
        print(f"[{name}]   {p['trial_id']} (key {key}, {plural(measure_threads(p), 'thread')}): {describe(rec)}",
              file=stream, flush=True)
        note = fused_on_gpu_note(p["cfg"]["model"]["head"], kind)
        if note:
            print(f"[{name}]     note: {note}", file=stream, flush=True)
    print(f"[{name}] measurement phase: {time.time() - t0:.1f} s", file=stream, flush=True)
    return out
