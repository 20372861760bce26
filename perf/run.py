"""IFA head and segmentor benchmark: `python -m perf.run --out DIR [--smoke] [--device cuda] [--dtype bf16]`.

Everything in one run, reported as ratios between cases measured side by side:
- latency: cases of a group are built together and timed round-robin in this process (reference, fused,
  reference, fused, ...), so drifting load from other processes hits both alike; median of `runs`.
  CPU: perf_counter; CUDA: CUDA events, synchronised.
- peak memory: each case again in a fresh subprocess (`perf.probe`), see there for the method.
- MACs: fvcore via bench.measure.macs.count_macs at batch 1, times the batch.
- the machine's GEMM rate, measured at the start and the end of the run; achieved GMAC/s of every case as a
  fraction of it, and of the fused head's MLP GEMMs (torch.profiler, aten::linear events).
Writes DIR/bench.json and DIR/bench.md (atomically).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from bench.measure.latency import time_wall_and_cpu
from perf.cases import Built, build
from perf.report import targets, write_outputs

FULL = {
    "image_city": [1024, 2048], "image_ade": [512, 512], "crop": [769, 769], "image_model": [512, 1024],
    "query_full": [1024, 2048], "gemm": [4096, 1024, 1024], "runs": 5, "warmup": 1, "runs_slow": 1,
}
SMOKE = {
    "image_city": [64, 128], "image_ade": [64, 64], "crop": [65, 65], "image_model": [64, 64],
    "query_full": [64, 128], "gemm": [256, 256, 256], "runs": 2, "warmup": 1, "runs_slow": 1,
}


def plan(p: dict, device: str, dtype: str, channels_last: bool, smoke: bool) -> list[dict]:
    """Groups of cases: {"group", "cases": [spec, ...], "runs", "memory": bool}."""
    base = {"device": device, "dtype": dtype, "channels_last": channels_last}

    def head(kind, formulation, image, batch, classes, query=None, **extra):
        return {**base, "kind": kind, "formulation": formulation, "image": image, "batch": batch,
                "classes": classes, "query": query, **extra}

    groups = [{"group": "gemm_start", "cases": [{**base, "kind": "gemm", "mnk": p["gemm"], "channels_last": False}],
               "runs": p["runs"], "memory": False}]
    for image, classes, tag in ((p["image_city"], 19, "cityscapes"), (p["image_ade"], 150, "ade20k")):
        for batch in ((1,) if smoke and tag == "ade20k" else (1, 2)):
            groups.append({"group": f"infer_{tag}_b{batch}",
                           "cases": [head("head_infer", f, image, batch, classes) for f in ("reference", "fused")],
                           "runs": p["runs"], "memory": True})
    groups.append({"group": "train_crop_b2",
                   "cases": [head("head_train", f, p["crop"], 2, 19) for f in ("reference", "fused")],
                   "runs": p["runs"], "memory": True})
    groups.append({"group": "query_full_label_b1",
                   "cases": [head("head_infer", f, p["image_city"], 1, 19, query=p["query_full"],
                                  count_macs=(f == "fused")) for f in ("reference", "fused")],
                   "runs": p["runs_slow"], "memory": True})
    if device == "cuda" or smoke:
        # low-precision and channels-last code paths (on CPU only exercised by --smoke)
        variants = [dict(dtype="bf16"), dict(channels_last=True)]
        groups.append({"group": "variants_cityscapes_b1",
                       "cases": [{**head("head_infer", f, p["image_city"], 1, 19), **v}
                                 for v in variants for f in ("reference", "fused")],
                       "runs": p["runs"], "memory": False})
    models = [{**base, "kind": "model_infer", "head": h, "image": p["image_model"], "batch": 1, "classes": 19,
               "head_options": {"formulation": "fused"} if h == "ifa" else {}} for h in ("ifa", "fpn", "ppm", "ocr")]
    groups.append({"group": "models_b1", "cases": models, "runs": p["runs"], "memory": True})
    groups.append({"group": "gemm_end", "cases": [{**base, "kind": "gemm", "mnk": p["gemm"], "channels_last": False}],
                   "runs": p["runs"], "memory": False})
    return groups


def time_round_robin(builts: list[Built], device, warmup: int, runs: int) -> list[list[tuple[float, float]]]:
    for b in builts:
        for _ in range(warmup):
            b.call()
    times = [[] for _ in builts]
    for _ in range(runs):
        for i, b in enumerate(builts):
            times[i].append(time_wall_and_cpu(b.call, device))
    return times


def count_gmacs(spec: dict) -> Optional[float]:
    """fvcore GMACs of one call at batch 1, times the batch (inference: the forward)."""
    if spec["kind"] == "gemm":
        m, k, n = spec["mnk"]
        return m * k * n / 1e9
    if not spec.get("count_macs", True):
        return None
    from bench.measure.macs import count_macs
    one = {**spec, "batch": 1, "dtype": "fp32", "kind": "head_infer" if spec["kind"] == "head_train" else spec["kind"]}
    b = build(one)
    b.module.eval()
    return count_macs(b.module, b.inputs).gmacs * spec["batch"]


def probe_memory(spec: dict, threads: int, timeout_s: float = 1200) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run(
        [sys.executable, "-m", "perf.probe", json.dumps({**spec, "threads": threads})],
        capture_output=True, text=True, timeout=timeout_s, env=env, cwd=Path(__file__).resolve().parents[1],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mlp_gemm_rate(spec: dict) -> dict:
    """Achieved GMAC/s of the fused head's linear layers, from torch.profiler's aten::linear events.

    Classified by shape: 2-D inputs are the MLP's later layers, 4-D inputs with the first layer's width are the
    per-level projections (the fused first layer), other 4-D ones the reductions, 3-D ones the PE tiles."""
    from torch.profiler import ProfilerActivity, profile

    b = build(spec)
    b.call()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        b.call()
    width = b.module.mlp.linears[0].out_features
    acc: dict[str, list[float]] = {}
    for evt in prof.events():
        if evt.name != "aten::linear" or not evt.input_shapes:
            continue
        x, w = evt.input_shapes[0], evt.input_shapes[1]
        macs = 1
        for d in x[:-1]:
            macs *= d
        macs *= w[0] * w[1]
        if len(x) == 2:
            part = "mlp_tail"
        elif len(x) == 4 and w[0] == width:
            part = "first_layer_projection"
        elif len(x) == 4:
            part = "reductions"
        else:
            part = "pe_tiles"
        a = acc.setdefault(part, [0.0, 0.0])
        a[0] += macs
        a[1] += evt.cpu_time_total / 1e6
    out = {part: {"gmacs": m / 1e9, "seconds": s, "gmac_per_s": m / 1e9 / s if s else None} for part, (m, s) in acc.items()}
    mlp = [acc[k] for k in ("first_layer_projection", "mlp_tail") if k in acc]
    if mlp:
        m, s = sum(a[0] for a in mlp), sum(a[1] for a in mlp)
        out["mlp"] = {"gmacs": m / 1e9, "seconds": s, "gmac_per_s": m / 1e9 / s}
    return out


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    p = copy.deepcopy(SMOKE if args.smoke else FULL)
    if args.runs:
        p["runs"] = args.runs
    groups = plan(p, device.type, args.dtype, args.channels_last, args.smoke)
    if args.only:
        keep = set(args.only.split(",")) | {"gemm_start", "gemm_end"}
        groups = [g for g in groups if g["group"] in keep]
    records = []
    t_start = time.time()
    for g in groups:
        specs = g["cases"]
        builts = [build(s) for s in specs]
        times = time_round_robin(builts, device, p["warmup"] if g["runs"] > 1 or not args.smoke else 0, g["runs"])
        del builts
        for spec, ts in zip(specs, times):
            wall, cpu = [t for t, _ in ts], [c for _, c in ts]
            rec = {"group": g["group"], "spec": spec, "description": build_description(spec),
                   "times_ms": wall, "cpu_times_ms": cpu, "median_ms": statistics.median(wall), "min_ms": min(wall),
                   "median_cpu_ms": statistics.median(cpu), "runs": len(ts)}
            try:
                rec["gmacs"] = count_gmacs(spec) if spec["kind"] != "head_train" else None
            except Exception as exc:  # noqa: BLE001 - counting is informative, never fatal
                rec["gmacs"], rec["gmacs_error"] = None, f"{type(exc).__name__}: {exc}"
            if g["memory"] and not args.no_memory and not (args.smoke and g["group"] not in SMOKE_MEMORY):
                rec.update(probe_memory(spec, args.threads))
            records.append(rec)
            print(f"[bench] {rec['description']}: {rec['median_ms']:.1f} ms"
                  + (f", peak {rec['peak_mb']:.0f} MiB" if "peak_mb" in rec else ""), flush=True)
    gemm = [r for r in records if r["spec"]["kind"] == "gemm"]
    gemm_rate = max(r["gmacs"] / (r["median_ms"] / 1e3) for r in gemm)
    for r in records:
        if r.get("gmacs") and r["spec"]["kind"] != "gemm":
            r["gmac_per_s"] = r["gmacs"] / (r["median_ms"] / 1e3)
            r["fraction_of_gemm"] = r["gmac_per_s"] / gemm_rate
    mlp_spec = next((r["spec"] for r in records if r["group"].startswith("infer_cityscapes_b1")
                     and r["spec"]["formulation"] == "fused"), None)
    mlp_rate = mlp_gemm_rate(mlp_spec) if device.type == "cpu" and mlp_spec else {}
    for part in mlp_rate.values():
        if part.get("gmac_per_s"):
            part["fraction_of_gemm"] = part["gmac_per_s"] / gemm_rate
    from bench.measure.environment import environment
    from bench.results.provenance import provenance

    result = {
        "command": " ".join([os.path.basename(sys.executable), "-m", "perf.run", *sys.argv[1:]]),
        "smoke": args.smoke,
        "environment": {**environment(device, torch.float32), **provenance(), "dtype_requested": args.dtype,
                        "load_average_start": LOAD_START, "load_average_end": os.getloadavg(),
                        "wall_s": time.time() - t_start},
        "gemm_rate_gmac_per_s": gemm_rate,
        "gemm_rates": [r["gmacs"] / (r["median_ms"] / 1e3) for r in gemm],
        "records": records,
        "mlp_gemm": mlp_rate,
    }
    result["ratios"] = ratios(records)
    result["targets"] = targets(result)
    return result


SMOKE_MEMORY = {"infer_cityscapes_b1"}  # a fresh process per probe costs ~2 s
LOAD_START = os.getloadavg()


def build_description(spec: dict) -> str:
    kind = spec["kind"]
    if kind == "gemm":
        return "GEMM {}x{}x{}".format(*spec["mnk"])
    size = "x".join(map(str, spec["image"]))
    tail = f" {spec['dtype']}" + (" channels-last" if spec.get("channels_last") else "")
    if kind == "model_infer":
        return f"{spec['head']} segmentor {size} b{spec['batch']}{tail}"
    q = f" query {'x'.join(map(str, spec['query']))}" if spec.get("query") else ""
    what = "train step" if kind == "head_train" else "inference"
    return f"IFA head {spec['formulation']} {what} {size} b{spec['batch']}{q}{tail}"


def ratios(records: list[dict]) -> list[dict]:
    """reference / fused per group and variant: speed-up (latency ratio) and memory ratio (fused / reference)."""
    out = []
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in records:
        s = r["spec"]
        if s["kind"] not in ("head_infer", "head_train"):
            continue
        key = (r["group"], s["dtype"], bool(s.get("channels_last")))
        by_key.setdefault(key, {})[s["formulation"]] = r
    for (group, dtype, cl), pair in by_key.items():
        if {"reference", "fused"} <= pair.keys():
            ref, fused = pair["reference"], pair["fused"]
            row = {"group": group, "dtype": dtype, "channels_last": cl,
                   "speedup": ref["median_ms"] / fused["median_ms"],
                   "speedup_cpu_time": ref["median_cpu_ms"] / fused["median_cpu_ms"]}
            if "peak_mb" in ref and "peak_mb" in fused and ref["peak_mb"] > 0:
                row["memory_ratio"] = fused["peak_mb"] / ref["peak_mb"]
            out.append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.run", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="output directory (bench.json, bench.md)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 2 runs: checks the harness in seconds")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--runs", type=int, default=None, help="timed runs per case (default 5; smoke 2)")
    ap.add_argument("--only", default="", help="comma-separated group names to run (GEMM groups always run)")
    ap.add_argument("--no-memory", action="store_true", help="skip the fresh-process peak-memory probes")
    args = ap.parse_args(argv)
    result = run(args)
    write_outputs(result, args.out)
    print(f"[bench] wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
