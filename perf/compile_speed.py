"""torch.compile against eager in one process: the training step and the evaluation forward, head by head.

    python -m perf.compile_speed [--heads ifa_fused,ifa_reference] [--modes whole,head] [--phases train,eval]
        [--eval-sizes 128x256,256x512] [--rounds 6] [--iters 5] [--threads 1] [--out DIR] [--smoke]

Sizes: those of perf/train_throughput.py on the CPU (deep-stem resnet18 at width 0.5, CPU-sized head widths); the
training step on the engine's own batches (256x256 crops, batch 2, its loss and optimizer: that module's plain
loop); the evaluation forward on one image of each --eval-sizes (the demo's validation images are 128x256, its
measurement input 256x512) under torch.inference_mode, as evaluation and latency measurement run it.

Cases, built from the same seed in this process (dynamo's caches reset before each head and phase, so each
compiles as in a fresh process): eager; `whole`, the segmentor compiled by bench.host.compiled
(exactly what `model.compile: true` does); `head`, only the head and auxiliary head compiled, with the same
inductor settings. Each case is called once (compilation: `first_s`, reported apart; cold or warm depends on
TORCHINDUCTOR_CACHE_DIR) and warmed up, then the cases are timed in interleaved rounds (the order reversed every
other round, so drifting load from other processes hits them alike). Reported: ms per call (wall and this
process's CPU time; medians over rounds) and each case's ratio to eager (median of the round-paired ratios).
Writes DIR/compile_speed.json atomically.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from bench.measure.latency import time_wall_and_cpu
from perf.train_throughput import CPU_SMALL, HEADS, SMOKE, Plain, engine_batches, experiment

ROOT = Path(__file__).resolve().parents[1]
MODES = ("whole", "head")


def compile_case(model: torch.nn.Module, cfg, mode: str) -> None:
    """`model` compiled in place as `mode` says (eager: unchanged)."""
    from bench.host.compiled import maybe_compile

    compiled = cfg.model.model_copy(update={"compile": True})
    if mode == "whole":
        maybe_compile(model, compiled)
    elif mode == "head":
        for part in (model.head, model.aux_head):
            if part is not None:
                maybe_compile(part, compiled)


def train_cases(args, head_key: str, sizes: dict, modes: list[str]) -> dict:
    """{mode: (call, first_s)}: one training step of the plain loop per call, on the engine's batches."""
    cfg = experiment(args, head_key, sizes)
    batches = engine_batches(cfg, args.warmup + 1)
    cases = {}
    for mode in modes:
        plain = Plain(cfg, batches, torch.device("cpu"))
        compile_case(plain.model, cfg, mode)
        t0 = time.perf_counter()
        plain.step(*batches[0])
        first = time.perf_counter() - t0
        for x, y in batches[1:]:
            plain.step(x, y)
        x, y = batches[-1]
        cases[mode] = (lambda plain=plain, x=x, y=y: plain.step(x, y), first)
    return cases


def eval_cases(args, head_key: str, sizes: dict, modes: list[str], size: tuple[int, int]) -> dict:
    """{mode: (call, first_s)}: one evaluation forward of one image per call."""
    from bench.models import build_segmentor

    cfg = experiment(args, head_key, sizes)
    image = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    cases = {}
    for mode in modes:
        torch.manual_seed(cfg.seed)
        model = build_segmentor(cfg.model).eval()
        compile_case(model, cfg, mode)

        def call(model=model):
            with torch.inference_mode():
                model(image)

        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
        for _ in range(args.warmup):
            call()
        cases[mode] = (call, first)
    return cases


def time_rounds(cases: dict, rounds: int, iters: int) -> dict:
    """{mode: {"ms": [...], "cpu_ms": [...]}} per round, the cases interleaved."""
    modes = list(cases)
    times = {m: {"ms": [], "cpu_ms": []} for m in modes}
    for r in range(rounds):
        for mode in modes if r % 2 == 0 else modes[::-1]:
            call = cases[mode][0]
            ms, cpu_ms = time_wall_and_cpu(lambda: [call() for _ in range(iters)], torch.device("cpu"))
            times[mode]["ms"].append(ms / iters)
            times[mode]["cpu_ms"].append(cpu_ms / iters)
    return times


def records(head: str, phase: str, size, cases: dict, times: dict) -> list[dict]:
    eager = times["eager"]
    out = []
    for mode, t in times.items():
        out.append({
            "head": head, "phase": phase, "size": list(size), "mode": mode, "first_s": round(cases[mode][1], 2),
            "ms": statistics.median(t["ms"]), "cpu_ms": statistics.median(t["cpu_ms"]),
            "ms_rounds": t["ms"], "cpu_ms_rounds": t["cpu_ms"],
            "over_eager": statistics.median(a / b for a, b in zip(t["ms"], eager["ms"])),
            "cpu_over_eager": statistics.median(a / b for a, b in zip(t["cpu_ms"], eager["cpu_ms"])),
        })
    return out


def run(args) -> dict:
    from bench.measure.environment import environment
    from bench.results.provenance import provenance

    sizes = SMOKE if args.smoke else CPU_SMALL
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(args.deterministic)  # as the engine's default train.deterministic
    modes = ["eager", *args.modes]
    load_start, t_start = os.getloadavg(), time.time()
    out = []
    for head in args.heads:
        runs = [("train", args.crop or sizes["crop"])] if "train" in args.phases else []
        runs += [("eval", size) for size in args.eval_sizes] if "eval" in args.phases else []
        for phase, size in runs:
            # dynamo's caches from the previous group would make this one's graphs shape-dynamic (the parameters'
            # or the image's shape differ): each group compiles as a fresh process would
            torch._dynamo.reset()
            cases = (train_cases(args, head, sizes, modes) if phase == "train"
                     else eval_cases(args, head, sizes, modes, size))
            new = records(head, phase, size, cases, time_rounds(cases, args.rounds, args.iters))
            out += new
            for r in new:
                print(f"[compile-speed] {r['head']:14s} {r['phase']:5s} {'x'.join(map(str, r['size'])):8s} "
                      f"{r['mode']:6s} {r['ms']:8.1f} ms (CPU {r['cpu_ms']:7.1f})  /eager {r['over_eager']:.3f} "
                      f"(CPU {r['cpu_over_eager']:.3f})  first call {r['first_s']:.1f} s", flush=True)
    return {
        "command": " ".join(["python", "-m", "perf.compile_speed", *sys.argv[1:]]),
        "settings": {"backbone": sizes["backbone"], "heads": {h: HEADS[h] for h in args.heads},
                     "train_crop": list(args.crop or sizes["crop"]), "batch": args.batch, "eval_batch": 1,
                     "eval_sizes": [list(s) for s in args.eval_sizes], "rounds": args.rounds, "iters": args.iters,
                     "warmup": args.warmup, "threads": torch.get_num_threads(), "deterministic": args.deterministic,
                     "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR")},
        "environment": {**environment(torch.device("cpu")), **provenance(), "load_average_start": load_start,
                        "load_average_end": os.getloadavg(), "wall_s": round(time.time() - t_start, 1)},
        "records": out,
    }


def _size(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.compile_speed", description=__doc__.splitlines()[0])
    ap.add_argument("--heads", default="ifa_fused,ifa_reference")
    ap.add_argument("--modes", default=",".join(MODES), help="compiled cases besides eager: whole,head")
    ap.add_argument("--phases", default="train,eval")
    ap.add_argument("--eval-sizes", default="128x256,256x512", help="HxW of the evaluation image, comma-separated")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iters", type=int, default=5, help="calls per case per round")
    ap.add_argument("--warmup", type=int, default=3, help="calls after the first, before timing")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=2, help="training batch")
    ap.add_argument("--crop", type=int, nargs=2, default=None, help="training crop H W (default 256 256)")
    ap.add_argument("--images", type=int, default=16, help="synthetic training images")
    ap.add_argument("--nondeterministic", dest="deterministic", action="store_false")
    ap.add_argument("--data", type=Path, default=None, help="synthetic dataset folder (written if missing)")
    ap.add_argument("--out", type=Path, default=None, help="write DIR/compile_speed.json")
    ap.add_argument("--smoke", action="store_true", help="64x64 crops, 64x128 evaluation, 1 round of 1 call")
    args = ap.parse_args(argv)
    args.heads = args.heads.split(",")
    args.modes = [m for m in args.modes.split(",") if m]
    args.phases = args.phases.split(",")
    for name, values, allowed in (("--heads", args.heads, HEADS), ("--modes", args.modes, MODES),
                                  ("--phases", args.phases, ("train", "eval"))):
        if not set(values) <= set(allowed):
            ap.error(f"{name}: {','.join(sorted(set(values) - set(allowed)))} not one of {','.join(allowed)}")
    try:
        args.eval_sizes = [_size(s) for s in args.eval_sizes.split(",")]
    except ValueError:
        ap.error(f"--eval-sizes {args.eval_sizes!r}: HxW[,HxW...] expected, e.g. 128x256")
    if args.smoke:
        args.rounds, args.iters, args.warmup, args.eval_sizes = 1, 1, 1, [(64, 128)]
    # what experiment() and engine_batches() read (perf/train_throughput.py): one logging window of batches
    args.device, args.workers, args.log_every = "cpu", 0, args.warmup + 1
    if args.data is None:
        sizes = SMOKE if args.smoke else CPU_SMALL
        args.data = ROOT / "runs" / "data" / "perf-{}x{}-{}".format(*sizes["image"], args.images)
    result = run(args)
    if args.out is not None:
        from bench.files.atomic import write_json

        print(f"[compile-speed] wrote {write_json(Path(args.out) / 'compile_speed.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
