"""Training throughput: the engine's step against the plainest loop that trains the same model, head by head.

    python -m perf.train_throughput [--device cpu|cuda] [--heads ifa_fused,ifa_reference,fpn,ppm,ocr]
        [--iters 10] [--rounds 3] [--workers N] [--variants channels_last,bf16] [--compile] [--out DIR] [--smoke]

Sizes: CPU resnet18 at width 0.5, 256x256 crops of 256x512 synthetic images, batch 2; `--device cuda` the released
recipe (deep-stem ResNet-50 OS32 multi-grid, released head widths, 769x769 crops of 1024x2048 images, batch 2,
photometric distortion, every host core a loader worker). Both sides train on the synthetic dataset in Cityscapes
layout (bench/data/synthetic), written once under --data (default runs/data/perf-<size>).

For each head, each round (rounds interleave the sides, so drifting load hits them alike):
- engine: `bench.engine.trainer.train_experiment` as `ifa-bench train` runs it (its DataLoader with
  `data.num_workers` workers, its schedule, logging every `log_every`, metrics.jsonl, TensorBoard), log_every +
  iters iterations. The first logging window is the warm-up; the others' records give the step time without
  evaluation and checkpoints (window_s / window_iters) and the time spent waiting for the loader (data_wait_s).
  The first iteration (start-up, compilation) is reported apart (first_iter_s). The progress bar is off.
- plain: the same model (same seed), the same batches (the engine's own sample stream, built before timing and
  kept in memory), the same loss (weighted cross-entropy of every output resized to the label) and optimizer
  (bench.engine.optim.build_optimizer), under the same determinism setting and, on CPU, the engine's malloc
  thresholds (bench/host/allocator.py, process-wide, set before the first round); no hooks, no logging, no schedule.
  log_every warm-up + iters iterations.
- variants (--variants): the plain loop with channels-last weights and inputs, or under bf16 autocast.
- --compile: the engine again with model.compile: true; its first iteration (compilation) is reported apart.
Reported per case: ms per iteration (wall; median over rounds), CPU ms per iteration (this process, all threads:
far less sensitive than wall time to other processes on the cores; the engine's loader workers are other
processes, so with workers >= 1 it is the step's own cost), images/s, the data-wait share (engine), peak memory
(CUDA: max_memory_allocated; CPU: growth of this process's RSS high-water mark, reset before each case, so
loader workers are not counted and the allocator's cache from earlier cases can hide growth), first_iter_s.
Ratios: engine / plain per head, and (engine - data wait) / plain, the engine's own overhead when the loader is
not hidden behind compute (on 2 CPU cores it never is). Writes DIR/train_throughput.json (atomically).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
HEADS = {
    "ifa_fused": {"name": "ifa", "formulation": "fused"},
    "ifa_reference": {"name": "ifa", "formulation": "reference"},
    "fpn": {"name": "fpn"},
    "ppm": {"name": "ppm"},
    "ocr": {"name": "ocr"},
}
CPU_SMALL = {"backbone": {"name": "resnet18", "stem": "deep", "width": 0.5},
             "heads": {"ifa": {"channels": 64, "mlp": [128, 64, 64]}, "fpn": {"channels": 64, "scale_channels": 64},
                       "ppm": {"channels": 64}, "ocr": {"channels": 64, "key_channels": 32, "region_channels": 32}},
             "aux": {"channels": 64}, "image": [256, 512], "crop": [256, 256], "photometric": True}
RELEASED = {"backbone": {"name": "resnet50", "stem": "deep", "output_stride": 32, "multi_grid": [2, 2, 4]},
            "heads": {"ifa": {"channels": 256, "mlp": [512, 256, 256]}, "fpn": {}, "ppm": {}, "ocr": {}},
            "aux": {"channels": 256}, "image": [1024, 2048], "crop": [769, 769], "photometric": True}
SMOKE = {**CPU_SMALL, "image": [64, 128], "crop": [64, 64]}


def experiment(args, head_key: str, sizes: dict, compile_model: bool = False):
    """The ExperimentConfig both sides train."""
    from bench.config import ExperimentConfig
    from bench.data.classes import SYNTHETIC_CLASSES

    head = {**HEADS[head_key]}
    head.update(sizes["heads"].get(head["name"], {}))
    return ExperimentConfig.model_validate({
        "name": f"throughput-{head_key}", "seed": 0,
        "data": {"dataset": "synthetic", "root": str(args.data), "generate": True,
                 "synthetic_size": sizes["image"], "synthetic_train": args.images, "synthetic_val": 1,
                 "crop_size": args.crop or sizes["crop"], "scale_range": [0.5, 2.0],
                 "photometric": sizes["photometric"], "num_workers": args.workers},
        "model": {"num_classes": len(SYNTHETIC_CLASSES), "backbone": sizes["backbone"], "head": head,
                  "aux_head": sizes["aux"], "compile": compile_model},
        "train": {"iterations": args.log_every + args.iters, "batch_size": args.batch, "lr": 0.01, "device": args.device,
                  "threads": args.threads, "deterministic": args.deterministic, "log_every": args.log_every,
                  "checkpoint_every": args.log_every + args.iters},
        "measure": {"enabled": False},
    })


# -- peak memory --------------------------------------------------------------------------------------------------
class Peak:
    def __init__(self, device: torch.device):
        from bench.measure.memory import reset_rss_peak, rss_bytes

        self.device = device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            self.before = torch.cuda.memory_allocated(device)
            self.method = "cuda_max_memory_allocated"
        else:
            self.method = "rss_hwm_clear_refs" if reset_rss_peak() else "rss_lifetime_hwm"
            self.before = rss_bytes()

    def mb(self) -> float:
        from bench.measure.memory import rss_peak_bytes

        if self.device.type == "cuda":
            return (torch.cuda.max_memory_allocated(self.device) - self.before) / 2**20
        return (rss_peak_bytes() - self.before) / 2**20


# -- the engine ---------------------------------------------------------------------------------------------------
def run_engine(cfg, work: Path) -> dict:
    from bench.engine.trainer import train_experiment

    records = []

    def keep(record):
        if record["kind"] == "train":
            records.append({**record, "cpu_s": time.process_time()})

    out = Path(tempfile.mkdtemp(dir=work, prefix="engine-"))
    peak = Peak(torch.device(cfg.train.device))
    train_experiment(cfg, out, progress=False, on_report=keep)
    peak_mb = peak.mb()
    first = next((r["first_iter_s"] for r in records if "first_iter_s" in r), None)
    timed = records[1:]  # the first window is the warm-up (the first iteration is never in a window)
    window = sum(r["window_s"] for r in timed)
    iters = sum(r["window_iters"] for r in timed)
    data = sum(r["data_wait_s"] for r in timed)
    cpu = timed[-1]["cpu_s"] - records[0]["cpu_s"]
    return {"ms": 1000 * window / iters, "cpu_ms": 1000 * cpu / iters, "data_wait_share": data / window,
            "data_wait_ms": 1000 * data / iters, "peak_mb": peak_mb, "peak_method": peak.method,
            "first_iter_s": first}


# -- the plain loop -----------------------------------------------------------------------------------------------
def engine_batches(cfg, count: int) -> list:
    """The first `count` batches of the engine's sample stream (the same images, crops and flips)."""
    from bench.data import build_dataset
    from bench.data.transforms import TrainTransform
    from bench.engine.sampling import IterationBatches, TrainSamples, collate

    samples = TrainSamples(build_dataset(cfg.data, cfg.data.train_split), TrainTransform(cfg.data), cfg.seed,
                           cfg.train.batch_size)
    return [collate([samples[key] for key in keys])[:2]
            for keys in IterationBatches(0, count, cfg.train.batch_size)]


class Plain:
    """A segmentor trained by the minimal loop. Built once per head; rounds continue training it."""

    def __init__(self, cfg, batches, device: torch.device, variant: str = ""):
        from bench.engine.optim import build_optimizer
        from bench.models import build_segmentor

        torch.manual_seed(cfg.seed)
        self.model = build_segmentor(cfg.model).to(device).train()
        self.channels_last = variant == "channels_last"
        self.bf16 = variant == "bf16"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, cfg.train)
        self.weights = dict(self.model.loss_weights)
        self.align = {"main": bool(getattr(self.model.head, "align_corners", False)),
                      "aux": bool(getattr(self.model.aux_head, "align_corners", False))}
        pin = device.type == "cuda"
        self.batches = [(x.pin_memory() if pin else x, y.pin_memory() if pin else y) for x, y in batches]
        self.device = device

    def step(self, images, labels):
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            outputs = self.model(images)
        loss = 0.0
        for key, logits in outputs.items():
            logits = F.interpolate(logits.float(), size=labels.shape[-2:], mode="bilinear",
                                   align_corners=self.align.get(key, False))
            loss = loss + self.weights[key] * F.cross_entropy(logits, labels, ignore_index=255)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def run(self, warmup: int, iters: int) -> dict:
        peak = Peak(self.device)
        for x, y in self.batches[:warmup]:  # as many warm-up iterations as the engine's untimed first window
            self.step(x, y)
        sync(self.device)
        t0, c0 = time.perf_counter(), time.process_time()
        for x, y in self.batches[warmup:warmup + iters]:
            self.step(x, y)
        sync(self.device)
        return {"ms": 1000 * (time.perf_counter() - t0) / iters, "cpu_ms": 1000 * (time.process_time() - c0) / iters,
                "peak_mb": peak.mb(), "peak_method": peak.method}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the run ------------------------------------------------------------------------------------------------------
def run(args) -> dict:
    from bench.measure.environment import environment
    from bench.results.provenance import provenance

    device = torch.device(args.device)
    sizes = SMOKE if args.smoke else RELEASED if device.type == "cuda" else CPU_SMALL
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(args.deterministic, warn_only=device.type == "cuda")
    if device.type == "cpu":  # the engine fixes malloc's thresholds for the process; both sides run under them
        from bench.host.allocator import keep_freed_memory

        keep_freed_memory()
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = args.deterministic
        torch.backends.cudnn.benchmark = not args.deterministic
    work = Path(tempfile.mkdtemp(prefix="train-throughput-"))
    heads = args.heads.split(",")
    variants = [v for v in args.variants.split(",") if v]
    load_start, t_start = os.getloadavg(), time.time()
    cases: dict[tuple[str, str], dict] = {}
    plains: dict[tuple[str, str], Plain] = {}
    for h in heads:
        cfg = experiment(args, h, sizes)
        batches = engine_batches(cfg, args.log_every + args.iters)
        for v in ["", *variants]:
            plains[h, v] = Plain(cfg, batches, device, v)
    for r in range(args.rounds):
        for h in heads:
            sides = [("engine", lambda h=h: run_engine(experiment(args, h, sizes), work))]
            if args.compile:
                sides.append(("engine_compiled", lambda h=h: run_engine(experiment(args, h, sizes, True), work)))
            sides += [("plain" + (f"_{v}" if v else ""), plains[h, v].run) for v in ["", *variants]]
            for side, call in sides:
                result = call() if side.startswith("engine") else call(args.log_every, args.iters)
                case = cases.setdefault((h, side), {"head": h, "side": side, "rounds": []})
                case["rounds"].append(result)
                print(f"[train-throughput] round {r + 1} {h} {side}: {result['ms']:.1f} ms/it, "
                      f"CPU {result['cpu_ms']:.1f} ms/it"
                      + (f", data wait {100 * result['data_wait_share']:.0f}%" if "data_wait_share" in result else ""),
                      flush=True)
    records = [summarise(c, args.batch) for c in cases.values()]
    cfg0 = experiment(args, heads[0], sizes)
    return {
        "command": " ".join(["python", "-m", "perf.train_throughput", *sys.argv[1:]]),
        "settings": {"device": device.type, "backbone": sizes["backbone"], "image": sizes["image"],
                     "crop": list(cfg0.data.crop_size), "batch": args.batch, "iters": args.iters,
                     "rounds": args.rounds, "workers": args.workers, "threads": torch.get_num_threads(),
                     "deterministic": args.deterministic, "log_every": args.log_every,
                     "photometric": sizes["photometric"], "train_images": args.images},
        "environment": {**environment(device), **provenance(), "load_average_start": load_start,
                        "load_average_end": os.getloadavg(), "wall_s": round(time.time() - t_start, 1)},
        "records": records,
        "ratios": ratios(records),
    }


def summarise(case: dict, batch: int) -> dict:
    rounds = case["rounds"]
    ms = statistics.median(r["ms"] for r in rounds)
    out = {"head": case["head"], "side": case["side"], "ms_per_iter": ms, "images_per_s": 1000 * batch / ms,
           "ms_rounds": [r["ms"] for r in rounds], "cpu_ms_per_iter": statistics.median(r["cpu_ms"] for r in rounds),
           "cpu_ms_rounds": [r["cpu_ms"] for r in rounds], "peak_mb": max(r["peak_mb"] for r in rounds),
           "peak_method": rounds[0]["peak_method"]}
    if "data_wait_share" in rounds[0]:
        out["data_wait_share"] = statistics.median(r["data_wait_share"] for r in rounds)
        out["ms_per_iter_without_data_wait"] = statistics.median(r["ms"] - r["data_wait_ms"] for r in rounds)
        out["first_iter_s"] = [r["first_iter_s"] for r in rounds]
    return out


def ratios(records: list[dict]) -> list[dict]:
    """Per head and round-paired: engine / plain (median of the rounds' ratios), and without the data wait."""
    by = {(r["head"], r["side"]): r for r in records}
    out = []
    for (head, side), rec in by.items():
        plain = by.get((head, "plain"))
        if plain is None or side == "plain":
            continue
        row = {"head": head, "side": side,
               "over_plain": statistics.median(a / b for a, b in zip(rec["ms_rounds"], plain["ms_rounds"])),
               "cpu_over_plain": statistics.median(a / b for a, b in zip(rec["cpu_ms_rounds"],
                                                                         plain["cpu_ms_rounds"]))}
        if "ms_per_iter_without_data_wait" in rec:
            row["without_data_wait_over_plain"] = rec["ms_per_iter_without_data_wait"] / plain["ms_per_iter"]
        out.append(row)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.train_throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--heads", default=",".join(HEADS))
    ap.add_argument("--iters", type=int, default=None, help="timed iterations per round (default 10; smoke 2)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3; smoke 1)")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--crop", type=int, nargs=2, default=None, help="H W (default: 256 256 CPU, 769 769 CUDA)")
    ap.add_argument("--workers", type=int, default=None,
                    help="engine loader workers (default: 1 on CPU, so the engine process's CPU time is its own; "
                         "every core on CUDA)")
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op threads (default: 1 on CPU, with the 1 loader worker on the other core of a "
                         "2-core host; under contention several OpenMP threads spin and inflate CPU time; CUDA: torch's)")
    ap.add_argument("--images", type=int, default=16, help="synthetic training images")
    ap.add_argument("--log-every", type=int, default=10, help="the engine's train.log_every")
    ap.add_argument("--nondeterministic", dest="deterministic", action="store_false",
                    help="train.deterministic false on both sides (cudnn.benchmark on CUDA)")
    ap.add_argument("--variants", default="", help="plain-loop variants: channels_last,bf16")
    ap.add_argument("--compile", action="store_true", help="also the engine with model.compile: true")
    ap.add_argument("--data", type=Path, default=None, help="synthetic dataset folder (written if missing)")
    ap.add_argument("--out", type=Path, default=None, help="write DIR/train_throughput.json")
    ap.add_argument("--smoke", action="store_true", help="64x64 crops, 2 iterations, 1 round: checks the harness")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error(f"--device cuda: no CUDA device here (torch {torch.__version__})")
    if args.iters is None:
        args.iters = 2 if args.smoke else 10
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 3
    if args.workers is None:
        args.workers = (os.cpu_count() or 1) if args.device == "cuda" else 1
    if args.smoke:
        args.log_every = min(args.log_every, args.iters)
    if args.iters % args.log_every:
        ap.error(f"--iters {args.iters} must be a multiple of --log-every {args.log_every} (whole timed windows)")
    if args.data is None:
        sizes = SMOKE if args.smoke else RELEASED if args.device == "cuda" else CPU_SMALL
        args.data = ROOT / "runs" / "data" / "perf-{}x{}-{}".format(*sizes["image"], args.images)
    result = run(args)
    for r in result["records"]:
        print(f"[train-throughput] {r['head']:14s} {r['side']:16s} {r['ms_per_iter']:8.1f} ms/it "
              f"{r['images_per_s']:6.2f} img/s peak {r['peak_mb']:.0f} MiB"
              + (f" data wait {100 * r['data_wait_share']:.1f}%" if "data_wait_share" in r else ""))
    for q in result["ratios"]:
        print(f"[train-throughput] {q['head']:14s} {q['side']:16s} / plain = {q['over_plain']:.3f} wall, "
              f"{q['cpu_over_plain']:.3f} CPU time"
              + (f" (without data wait {q['without_data_wait_over_plain']:.3f})"
                 if "without_data_wait_over_plain" in q else ""))
    if args.out is not None:
        from bench.files.atomic import write_json

        path = write_json(Path(args.out) / "train_throughput.json", result)
        print(f"[train-throughput] wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
