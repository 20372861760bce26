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
the next run. `sweep --remeasure noisy|all` measures stored models again (those marked noisy, or all) and
rewrites the completed trials' rows with the new records.

The task streams a progress line per fresh process of the pool to the driver's terminal (model, process, running
median, standard error; a Ray streaming generator, so it works on a cluster), and `measure.max_phase_s` bounds the
pool's time: the models it cuts short are marked noisy with that reason (bench.measure.noise_rule.noise_reason).

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

from bench.config.experiment import model_for_hashing
from bench.config.formulation import head_ran_as, trial_device_type
from bench.config.query_stride import query_mode
from bench.errors import UserError, typed_line
from bench.measure.ifa_on_gpu import fused_on_gpu_note
from bench.sweep.folder import layout, records
from bench.sweep.spec.trials import Resources
from bench.results.text_table import plural
RESERVE_TIMEOUT_S = 600.0  # waiting for the node to be free of other Ray work
RUN_TIMEOUT_S = 3600.0  # one model's measurement (1024x2048 on CPU, 3 rounds of 10 runs, fits with room)
# measure settings that bound the phase rather than define the measurement: not in its key (a record cut short by the
# bound is re-taken with --remeasure noisy)
UNKEYED_MEASURE = ("max_phase_s",)
REMEASURE = ("noisy", "all")


def device_kind(payload: dict) -> str:
    """"cuda" when the trial trains on a GPU (and does not pin the CPU), else "cpu"."""
    return trial_device_type(payload["cfg"]["train"].get("device", "auto"), payload["resources"]["gpus"])


def measure_threads(payload: dict) -> int:
    """The intra-op threads one trial of this config trains with: what its model runs with in deployment here."""
    return Resources(**payload["resources"]).threads(payload["cfg"]["train"].get("threads"))


def measure_key(payload: dict) -> str:
    cfg = payload["cfg"]
    kind = device_kind(payload)
    model = cfg["model"]
    if model["head"].get("name") == "ifa":  # keyed by the formulation that runs there: `auto` shares its key
        model = {**model, "head": {**model["head"], "formulation": head_ran_as(model["head"], kind)}}
    measure = {k: v for k, v in cfg["measure"].items() if k not in UNKEYED_MEASURE}
    what = {"model": model_for_hashing(model), "measure": measure, "device": kind, "threads": measure_threads(payload)}
    query = query_mode(cfg["model"]["head"]["name"], cfg.get("eval", {}).get("ifa_query", "upsample"),
                       cfg.get("eval", {}).get("ifa_query_stride"))
    if query is not None:  # only a query off IFA's own grid changes the cost (older keys stay as they were)
        what["ifa_query"] = list(query)
    blob = json.dumps(what, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]




def progress_line(label: str, slot: int, job) -> str:
    """One line per fresh process of a model's latency pool: its running median and standard error so far."""
    import statistics

    times = [t for turn in job.turns for t in turn["times_ms"]]
    se = job.rel_se()
    median = f"{statistics.median(times):.1f} ms" if times else "-"
    return (f"{label}: process {slot}, median so far {median}, SE {'-' if se is None else f'{se * 100:.1f}%'}, "
            f"{job.span():.0f} of {job.span_s:g} s")


def _run_measurements(models: list[tuple[dict, str]], kind: str, threads: int, cwd: str | None,
                      progress=None, labels: list[str] | None = None) -> list[dict]:
    """Runs in the Ray task, on the reserved node: every (config, key) of the phase, taking turns in one CPU latency
    pool (bench.measure.measure_models), one record each, in order. `progress(line)` gets progress_line's lines."""
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
    specs, label_of, device, bound = [], {}, torch.device("cpu"), None
    with ExitStack() as stack:
        for i, (cfg_json, key) in enumerate(models):
            cfg = ExperimentConfig.model_validate(cfg_json)
            device = resolve_device(cfg.train.device, "train.device") if kind == "cuda" else torch.device("cpu")
            bound = cfg.measure.max_phase_s if bound is None else bound  # the sweep's, the same for every model
            (planned,) = plan(cfg)
            segmentor = stack.enter_context(planned_segmentor(planned))
            specs.append(ModelToMeasure(segmentor, **planned.measure_kwargs()))
            label_of[id(segmentor)] = labels[i] if labels else key

        def on_slot(slot, jobs):
            for job in jobs:
                if progress is not None:
                    progress(progress_line(label_of.get(id(job.model), "?"), slot, job))

        records = measure_models(specs, device=device, max_pool_s=bound, on_slot=on_slot)
    try:
        import ray

        # outside a Ray task (tests run this body in-process) get_runtime_context() would start a local Ray
        node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - informational only
        node_id = ""
    for record, (_, key) in zip(records, models):
        record.update(measure_key=key, measure_node=socket.gethostname(), measure_node_id=node_id)
    return records


def _measurement_stream(models: list[tuple[dict, str]], kind: str, threads: int, cwd: str | None,
                        labels: list[str]):
    """The Ray task's body: _run_measurements in a thread, yielding its progress lines (str) as they come, then its
    records (a list)."""
    import queue
    import threading

    lines: "queue.Queue[str | None]" = queue.Queue()
    out: dict = {}

    def work() -> None:
        try:
            out["records"] = _run_measurements(models, kind, threads, cwd, progress=lines.put, labels=labels)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the generator, where Ray reports it
            out["error"] = exc
        finally:
            lines.put(None)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    while (line := lines.get()) is not None:
        yield line
    worker.join()
    if "error" in out:
        raise out["error"]
    yield out["records"]


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


def measure_in(pg, bundle: dict, todo: list[tuple[str, dict]], *, run_timeout_s: float = RUN_TIMEOUT_S,
               on_progress=None) -> list[dict]:
    """Run the measurement of every (key, payload) of `todo` as one task taking the whole reserved bundle (their
    models taking turns in the latency pool), `run_timeout_s` per model; `on_progress(line)` gets the task's progress
    lines as they come. Raises UserError on a timeout or a failure."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    task = ray.remote(_measurement_stream).options(
        num_cpus=bundle["CPU"], num_gpus=bundle.get("GPU", 0), max_retries=0, num_returns="streaming",
        scheduling_strategy=PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0),
    )
    p0 = todo[0][1]  # device and threads are the sweep's, the same for every model
    stream = task.remote([(p["cfg"], key) for key, p in todo], device_kind(p0), measure_threads(p0), p0.get("cwd"),
                         [p["trial_id"] for _, p in todo])
    what = ", ".join(f"{p['trial_id']} ({key})" for key, p in todo)
    limit = run_timeout_s * len(todo)
    deadline = time.monotonic() + limit
    measured = None
    try:
        while True:
            ready, _ = ray.wait([stream], timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                raise ray.exceptions.GetTimeoutError(what)
            try:
                item = ray.get(next(stream))
            except StopIteration:
                break
            if isinstance(item, str):
                if on_progress is not None:
                    on_progress(item)
            else:
                measured = item
        return measured
    except ray.exceptions.GetTimeoutError:
        ray.cancel(stream, force=True)
        raise UserError(f"measurement of {what} took longer than {limit:g} s; no trial was started") from None
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        raise UserError(f"measurement of {what} failed: {typed_line(cause)}"[:500]) from None


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


def to_measure(payloads: list[dict], sweep_dir: Path, remeasure: str | None = None
               ) -> tuple[dict[str, dict], list[tuple[str, dict]], dict[str, dict]]:
    """(the first payload of every measured key, the (key, payload) pairs to measure now, the stored records kept).
    A key is measured when it has no stored record, or with `remeasure` "all", or "noisy" and its record is noisy."""
    if remeasure not in (None, *REMEASURE):
        raise UserError(f"--remeasure: expected one of {', '.join(REMEASURE)}, got {remeasure!r}")
    first: dict[str, dict] = {}
    for p in payloads:
        if p["cfg"]["measure"].get("enabled", True):
            first.setdefault(measure_key(p), p)
    todo, kept = [], {}
    for key, p in first.items():
        rec = records.read_measurement(sweep_dir, key)
        if rec is None or remeasure == "all" or (remeasure == "noisy" and rec.get("latency_noisy")):
            todo.append((key, p))
        else:
            kept[key] = rec
    return first, todo, kept


def rewrite_done_rows(payloads: list[dict], sweep_dir: Path, measured: dict[str, dict]) -> int:
    """Completed trials whose model was just measured again: their results row and measure.json take the new record
    (the rest of the row stays as trained). Returns how many were rewritten."""
    from bench.files.atomic import write_json
    from bench.results.schema import ENVIRONMENT, MEASUREMENTS

    n = 0
    for p in payloads:
        rec = measured.get(measure_key(p)) if p["cfg"]["measure"].get("enabled", True) else None
        trial_dir = Path(p["trial_dir"])
        done = records.read_done(trial_dir) if rec is not None else None
        if done is None:
            continue
        done["row"].update({k: rec.get(k) for k in MEASUREMENTS})
        done["row"].update({k: rec[k] for k in ENVIRONMENT if k in rec})
        write_json(trial_dir / layout.MEASURE, rec)
        write_json(trial_dir / layout.RESULT, done)
        n += 1
    return n


def run_phase(payloads: list[dict], sweep_dir: Path, name: str, stream=None, *, remeasure: str | None = None,
              reserve_timeout_s: float = RESERVE_TIMEOUT_S, run_timeout_s: float = RUN_TIMEOUT_S) -> dict[str, dict]:
    """Measure every distinct model of `payloads` that has no stored measurement yet (with `remeasure`, also the
    stored ones it selects: to_measure). Ray must be running.
    Returns {measure_key: record} for every key of `payloads` whose config has measurement enabled."""
    stream = stream or sys.stdout
    first, todo, out = to_measure(payloads, sweep_dir, remeasure)
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
        measured = measure_in(pg, bundle, todo, run_timeout_s=run_timeout_s,
                              on_progress=lambda line: print(f"[{name}]   {line}", file=stream, flush=True))
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
