"""`make gpu-check`: issue 27's table for both IFA formulations on one GPU (perf/gpu_table.py: the head in fp32, TF32 and
bf16, the five whole models, a training step; host time, kernels and device time per call; the acceptance checks,
PASS/FAIL), in at most 5 minutes. `--dry-run` runs the same table on the CPU at small sizes (no GPU needed; the
numbers mean nothing there). It needs nothing beyond torch, the project and (optionally) nvidia-ml-py.

`--paths` (`make gpu-paths`) instead exercises every CUDA path of the suite, longer; its steps, each guarded on its
own so that one failure does not hide the others:
- ifa_heads:   fused vs reference IFA head at 1024x2048 (released deep-stem R-50 feature shapes, 19 classes),
               same state_dict, fp32 and bf16 autocast; outputs must agree. Timings here and in channels_last use the
               suite's latency rule (CUDA events, a warm-up of 1 s, rounds until two agree within 5%).
- measure:     the measurement layer (`bench.measure.model.measure_model`) on CUDA: CUDA-event latency, CUDA peak memory.
- channels_last: a whole IFA segmentor (R-50 deep stem) in channels-last vs contiguous memory: same logits, timings.
- amp_bf16, amp_fp16: training steps of the real engine (`train_experiment`) under autocast (fp16 with GradScaler).
- ddp_nccl:    a 1-process NCCL process group and a DDP (+SyncBatchNorm) training run through the engine.
- measure_cli: `ifa-bench measure --config experiments/synthetic.yaml --all --device cuda --out FILE`, the CLI
               measuring exactly the model a config builds, each row appended as soon as it is measured.
- sweep_gpu:   an embedded-Ray sweep of one model x 2 seeds whose trials request {"GPU": 1}: the model is
               measured once on the GPU, in the measurement phase, before either trial starts training.

Without a GPU (and without --dry-run) it prints why and exits 0. Exit 1 when a step failed or, on a GPU, an acceptance
check failed. `--out FILE` writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
IMAGE = (1024, 2048)


def _stats(times: list[float]) -> dict:
    from bench.measure.latency import iqr

    return {"median_ms": round(statistics.median(times), 3), "min_ms": round(min(times), 3),
            "iqr_ms": round(iqr(times), 3), "runs": len(times)}


def _timed(model, *inputs) -> dict:
    """The suite's own latency rule (bench.measure.latency): a warm-up of 1 s at least, then rounds of CUDA-event
    timings until two consecutive rounds agree within 5%; `noisy` when they never did. A fixed 3 warm-ups and 10
    runs gave the same model 29.8 ms in one step and 38.2 ms in the next (round 8)."""
    from bench.measure.latency import DEFAULT_ROUNDS, measure_latency

    s = measure_latency(model, inputs, warmup=3, runs=10, rounds=DEFAULT_ROUNDS)
    return {"median_ms": round(s.median_ms, 3), "min_ms": round(s.min_ms, 3), "iqr_ms": round(s.iqr_ms, 3),
            "runs": s.runs, "rounds": s.rounds, "noisy": s.noisy}


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _first_wait(model, *inputs) -> str | None:
    """The first operation of a forward that makes the host wait for the GPU (torch's sync debug mode), or None.
    The fused head's host-built indices are copied without blocking since round 9 (ifa.head.to_device)."""
    from bench.errors import one_line

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        model(*inputs)
        return None
    except RuntimeError as exc:
        return one_line(exc)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def step_ifa_heads(device) -> dict:
    from perf.cases import RELEASED_LEVELS, random_features
    from ifa import IFAHead, ShapeSpec

    shapes = {k: ShapeSpec(c, s) for k, (c, s) in RELEASED_LEVELS.items()}
    torch.manual_seed(0)
    ref = IFAHead(shapes, 19, formulation="reference")
    for m in ref.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.1, 0.1)
    fused = IFAHead(shapes, 19, formulation="fused")
    fused.load_state_dict(ref.state_dict())
    ref, fused = ref.to(device).eval(), fused.to(device).eval()
    feats = random_features(IMAGE, 1, device, torch.float32, channels_last=False)
    out = {"image": f"{IMAGE[0]}x{IMAGE[1]}", "batch": 1}
    with torch.inference_mode():
        y_ref, y_fused = ref(feats), fused(feats)
        out["rel_diff_fp32"] = _rel_diff(y_fused, y_ref)
        out["argmax_agree_fp32"] = float((y_fused.argmax(1) == y_ref.argmax(1)).float().mean())
        for name, head in (("reference", ref), ("fused", fused)):
            out[f"{name}_fp32"] = _timed(head, feats)
            out[f"{name}_waits_for_gpu"] = _first_wait(head, feats)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            y_bf16 = fused(feats)
            out["fused_bf16"] = _timed(fused, feats)
            out["reference_bf16"] = _timed(ref, feats)
        out["rel_diff_bf16_vs_fp32"] = _rel_diff(y_bf16, y_ref)
    out["speedup_fp32"] = round(out["reference_fp32"]["median_ms"] / out["fused_fp32"]["median_ms"], 2)
    out["speedup_bf16"] = round(out["reference_bf16"]["median_ms"] / out["fused_bf16"]["median_ms"], 2)
    ok = out["rel_diff_fp32"] < 1e-3 and out["argmax_agree_fp32"] > 0.999
    return {"ok": ok, **out}


def _segmentor(head: dict, classes: int = 19):
    from bench.config.model import ModelConfig
    from bench.models import build_segmentor

    cfg = ModelConfig.model_validate({"num_classes": classes, "backbone": {"name": "resnet50", "stem": "deep"},
                                      "head": head})
    torch.manual_seed(0)
    return build_segmentor(cfg)


def _without_tf32(call):
    """The comparison runs in true fp32 (cuDNN's TF32 convolutions differ by ~1e-3 between memory layouts)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return call()
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def step_measure(device) -> dict:
    from bench.measure.model import measure_model
    rec = measure_model(_segmentor({"name": "ifa", "formulation": "fused"}), input_size=IMAGE, device=device,
                        warmup=3, runs=10)
    keep = {k: v for k, v in rec.items() if isinstance(v, (int, float, str, bool)) or v is None}
    ok = bool(rec.get("latency_ms_median")) and bool(rec.get("peak_mem_mb"))
    return {"ok": ok, **keep}


def step_models(device) -> dict:
    """Whole deep-stem R-50 segmentors at 1024x2048, fp32 (default TF32 settings), batch 1: IFA in both
    formulations and the three baselines, interleaved so that clocks and caches treat them alike."""
    from bench.measure.latency import time_cuda_runs, warm_up
    from bench.measure.noise_rule import CUDA_WARMUP_S

    images = torch.randn(1, 3, *IMAGE, generator=torch.Generator().manual_seed(0)).to(device)
    heads = {"ifa_reference": {"name": "ifa", "formulation": "reference"},
             "ifa_fused": {"name": "ifa", "formulation": "fused"}, "fpn": {"name": "fpn"}, "ppm": {"name": "ppm"},
             "ocr": {"name": "ocr"}}
    models = {k: _segmentor(v).to(device).eval() for k, v in heads.items()}
    times = {k: [] for k in models}
    with torch.inference_mode():
        for m in models.values():  # each warmed up for 1 s at least, as bench.measure.latency does on CUDA
            warm_up(m, (images,), 1, CUDA_WARMUP_S, device)
        for _ in range(10):
            for k, m in models.items():
                times[k] += time_cuda_runs(m, (images,), 1, device)
    return {"ok": True, **{k: _stats(v) for k, v in times.items()}}


def step_channels_last(device) -> dict:
    model = _segmentor({"name": "ifa", "formulation": "fused"}).to(device).eval()
    images = torch.randn(1, 3, *IMAGE, generator=torch.Generator().manual_seed(0)).to(device)
    out = {}
    with torch.inference_mode():
        y = _without_tf32(lambda: model(images))
        out["contiguous"] = _timed(model, images)
        model_cl = model.to(memory_format=torch.channels_last)
        images_cl = images.contiguous(memory_format=torch.channels_last)
        y_cl = _without_tf32(lambda: model_cl(images_cl))
        out["channels_last"] = _timed(model_cl, images_cl)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out["channels_last_bf16"] = _timed(model_cl, images_cl)
    out["rel_diff_no_tf32"] = _rel_diff(y_cl, y)
    out["tf32_default"] = {"cudnn": torch.backends.cudnn.allow_tf32, "matmul": torch.backends.cuda.matmul.allow_tf32}
    out["speedup_channels_last"] = round(out["contiguous"]["median_ms"] / out["channels_last"]["median_ms"], 2)
    return {"ok": out["rel_diff_no_tf32"] < 1e-4, **out}


def _experiment(work: Path, **train):
    """The synthetic demo experiment, shortened, on CUDA."""
    from bench.config.experiment_file import load_experiment

    sets = [f"data.root={work / 'data'}", "train.iterations=6", "train.checkpoint_every=3", "train.log_every=1",
            "train.device=cuda", "train.warmup_iters=1"] + [f"train.{k}={v}" for k, v in train.items()]
    return load_experiment(ROOT / "experiments" / "synthetic.yaml", sets)


def _train(work: Path, name: str, **train) -> dict:
    from bench.engine import train_experiment

    losses = []
    cfg = _experiment(work, **train)
    t0 = time.perf_counter()
    final = train_experiment(cfg, work / name, on_report=lambda r: losses.append(r.get("loss"))
                             if r.get("kind") == "train" else None, progress=False)
    losses = [x for x in losses if x is not None]
    finite = all(x == x and abs(x) != float("inf") for x in losses)
    on_cuda = str((final.get("environment") or {}).get("device", "")).startswith("cuda")
    return {"ok": finite and bool(losses) and on_cuda, "losses": [round(x, 4) for x in losses], "miou": final.get("miou"),
            "device": (final.get("environment") or {}).get("device"),
            "world_size": final.get("world_size"), "wall_s": round(time.perf_counter() - t0, 1)}


def step_amp(work: Path, amp: str) -> dict:
    return _train(work, f"amp_{amp}", amp=amp)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def step_ddp_nccl(work: Path) -> dict:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), RANK="0", WORLD_SIZE="1",
                      LOCAL_RANK="0")
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        buf = torch.ones(4, device="cuda")
        dist.all_reduce(buf)
        res = _train(work, "ddp_nccl")
        res["backend"] = dist.get_backend()
        res["all_reduce_ok"] = bool(buf.eq(1).all())
        res["ok"] = res["ok"] and res["backend"] == "nccl" and res["all_reduce_ok"]
        return res
    finally:
        dist.destroy_process_group()
        for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
            os.environ.pop(k, None)


def _plain_rows(df, keep: tuple) -> list[dict]:
    """The `keep` columns of each row, NaN as None (for the JSON)."""
    import pandas as pd

    return [{k: (None if pd.isna(r.get(k)) else r.get(k)) for k in keep} for r in df.to_dict("records")]


def step_measure_cli(work: Path) -> dict:
    import subprocess

    import pandas as pd

    out_csv = work / "measure_cli.csv"
    cmd = [sys.executable, "-m", "bench.cli", "measure", "--config", str(ROOT / "experiments" / "synthetic.yaml"),
           "--all", "--device", "cuda", "--out", str(out_csv), "--format", "json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    res = {"exit_code": proc.returncode, "wall_s": round(time.perf_counter() - t0, 1),
           "stderr_tail": proc.stderr[-600:]}
    if proc.returncode != 0 or not out_csv.exists():
        return {"ok": False, **res}
    rows = pd.read_csv(out_csv)
    keep = ("head", "formulation", "gmacs", "params_m", "latency_ms_median", "latency_ms_iqr", "peak_mem_mb",
            "measure_input", "measure_device", "measure_device_name")
    res["rows"] = _plain_rows(rows, keep)
    res["ok"] = len(rows) == 5 and bool((rows["measure_device"] == "cuda").all()) \
        and bool(rows["latency_ms_median"].notna().all())
    return res


def step_sweep_gpu(work: Path) -> dict:
    import pandas as pd
    import yaml

    from bench.config import read_yaml

    from bench.sweep.driver.runner import run_sweep
    from bench.sweep.spec.trials import load_sweep

    base = read_yaml(ROOT / "experiments" / "synthetic.yaml")
    base["data"]["root"] = str(work / "sweep_data")
    base["train"].update(iterations=6, checkpoint_every=3, warmup_iters=1, device="cuda")
    base["sweep"] = {"name": "gpu-check", "axes": {"head": ["ifa"], "seed": [0, 1]},
                     "resources": {"cpus": 2, "gpus": 1}, "max_failures": 0}
    exp = work / "gpu_sweep.yaml"
    exp.write_text(yaml.safe_dump(base))
    t0 = time.perf_counter()
    df = run_sweep(load_sweep(exp), work / "sweep", stream=sys.stdout)
    keep = ("status", "device", "device_name", "miou", "latency_ms_median", "latency_ms_iqr", "gmacs",
            "measure_key", "measure_device", "measure_device_name", "measure_started_at", "measure_finished_at",
            "train_time_s")
    rows = _plain_rows(df, keep)
    # The shared measurement must end before any attempt of either trial starts training (attempts.json).
    starts = [pd.Timestamp(a["train_started_at"]) for h in df["config_hash"]
              for a in json.loads((work / "sweep" / "trials" / h / "attempts.json").read_text())["history"]]
    measured_before = bool(starts) and all(
        r["measure_finished_at"] is not None and pd.Timestamp(r["measure_finished_at"]) <= min(starts) for r in rows)
    one_measurement = len({r["measure_key"] for r in rows}) == 1 and len({r["latency_ms_median"] for r in rows}) == 1
    ok = (len(rows) == 2 and all(r["status"] == "completed" and str(r["device"]).startswith("cuda")
                                 and r["measure_device"] == "cuda" for r in rows)
          and one_measurement and measured_before)
    return {"ok": ok, "one_measurement_for_both_seeds": one_measurement,
            "measured_before_training": measured_before, "rows": rows,
            "wall_s": round(time.perf_counter() - t0, 1)}


def _conditions() -> dict:
    p = torch.cuda.get_device_properties(0)
    return {"gpu": torch.cuda.get_device_name(0), "capability": f"{p.major}.{p.minor}",
            "memory_gib": round(p.total_memory / 2**30, 1), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "python": sys.version.split()[0]}


TABLE_BUDGET_S = 240.0  # parts that would start later are skipped: the run ends within 5 minutes with the imports


def _cpu_conditions() -> dict:
    import platform

    return {"gpu": None, "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": sys.version.split()[0]}


def table_main(args) -> int:
    from perf.gpu_table import Sizes, format_table, run

    dry = args.dry_run
    device = torch.device("cpu") if dry else torch.device("cuda", 0)
    report = {"conditions": _cpu_conditions() if dry else _conditions(), "dry_run": dry}
    print(f"gpu-check{' (dry run on the CPU: small sizes, numbers mean nothing)' if dry else ''} on",
          json.dumps(report["conditions"]), flush=True)
    t0 = time.perf_counter()
    report["table"] = run(device, Sizes.dry_run() if dry else Sizes(), args.budget)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(format_table(report["table"]), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
    errors = [k for k in ("head", "models", "train") if "error" in report["table"][k]]
    failed = [c["check"] for c in report["table"]["acceptance"] if c["result"] != "PASS"]
    print(f"gpu-check: {report['seconds']} s; " + (f"errors in: {', '.join(errors)}; " if errors else "")
          + f"acceptance {len(report['table']['acceptance']) - len(failed)}/{len(report['table']['acceptance'])} PASS")
    return 1 if errors or (failed and not dry) else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--dry-run", action="store_true", help="the table on the CPU at small sizes (no GPU needed)")
    ap.add_argument("--budget", type=float, default=TABLE_BUDGET_S, help="seconds after which table parts are skipped")
    ap.add_argument("--paths", action="store_true", help="exercise every CUDA path of the suite instead of the table")
    ap.add_argument("--only", nargs="*", default=None, help="with --paths: run only these steps")
    args = ap.parse_args(argv)
    if args.dry_run:
        return table_main(args)
    if not torch.cuda.is_available():
        print("gpu-check: skipped: no CUDA device is available (torch "
              f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'})")
        return 0
    if not args.paths:
        return table_main(args)
    device = torch.device("cuda", 0)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    steps = {
        "ifa_heads": lambda: step_ifa_heads(device),
        "measure": lambda: step_measure(device),
        "models": lambda: step_models(device),
        "channels_last": lambda: step_channels_last(device),
        "amp_bf16": lambda: step_amp(work, "bf16"),
        "amp_fp16": lambda: step_amp(work, "fp16"),
        "ddp_nccl": lambda: step_ddp_nccl(work),
        "measure_cli": lambda: step_measure_cli(work),
        "sweep_gpu": lambda: step_sweep_gpu(work),
    }
    report = {"conditions": _conditions(), "steps": {}}
    print("gpu-check on", json.dumps(report["conditions"]), flush=True)
    for name, fn in steps.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        try:
            res = fn()
        except Exception as exc:  # noqa: BLE001 - every step reports, whatever breaks
            res = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
        res["seconds"] = round(time.perf_counter() - t0, 1)
        report["steps"][name] = res
        torch.cuda.empty_cache()
        brief = {k: v for k, v in res.items() if k not in ("traceback", "losses")}
        print(f"{'PASS' if res['ok'] else 'FAIL'}  {name}: {json.dumps(brief, default=str)}", flush=True)
        if not res["ok"] and "traceback" in res:
            print(res["traceback"], flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str))
    failed = [k for k, v in report["steps"].items() if not v["ok"]]
    print(f"gpu-check: {len(report['steps']) - len(failed)}/{len(report['steps'])} steps passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
