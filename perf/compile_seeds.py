"""Compiled against eager over seeds, beside eager against eager on another CPU's kernels (the noise floor).

    python -m perf.compile_seeds [--heads ifa,fpn] [--seeds 0,1,2,3,4]
        [--variants eager,eager_avx2,compiled,compiled_eval]
        [--runs runs/compile-seeds] [--cache DIR] [--jobs 1] [--out DIR]

Each (head, seed, variant) is one `ifa-bench train experiments/synthetic.yaml` in its own process: the demo's
config with the head as its sweep sets it (the `sweep.axes.head` entry of that name), that seed, one intra-op
thread (as the sweep's one CPU per trial). A run whose final.json exists under --runs is reused, not rerun.
Variants:
- eager: the demo as it is.
- eager_avx2: the same eager code on the kernels a CPU without AVX-512 runs (ATen, oneDNN and MKL limited to AVX2:
  ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS). Another legitimate kernel set for the same
  arithmetic: how far eager moves from eager when only the summation order changes.
- compiled: `model.compile: true` (inductor's cache: --cache).
- compiled_eval: `model.compile: eval` (training eager, evaluation compiled).
Reported per head and variant against eager, over the seeds both have: the differences in mIoU, their mean, sample
standard deviation, the 95% Student-t interval of the mean, and the exact two-sided sign-flip p-value (every
assignment of signs to the paired differences; with 5 seeds the smallest possible is 2/32 = 0.0625).
Writes DIR/compile_seeds.json atomically.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "synthetic.yaml"
VARIANTS = ("eager", "eager_avx2", "compiled", "compiled_eval")
COMPILE = {"compiled": "true", "compiled_eval": "eval"}
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}
# Student t, 0.975 quantile, by degrees of freedom (1..10)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def sweep_heads() -> dict[str, dict]:
    """{head name: its model.head entry in the demo's sweep}."""
    from bench.config.loading import read_yaml

    entries = read_yaml(CONFIG)["sweep"]["axes"]["head"]
    return {(e if isinstance(e, str) else e["name"]): ({"name": e} if isinstance(e, str) else e) for e in entries}


def command(head: dict, seed: int, variant: str, out: Path, cache: Path) -> tuple[list[str], dict]:
    """The train command line and its environment."""
    cmd = [sys.executable, "-m", "bench.cli", "train", str(CONFIG), "--out", str(out), "--no-progress",
           "--set", f"model.head={json.dumps(head)}", "--set", f"seed={seed}", "--set", "train.threads=1"]
    if variant in COMPILE:
        cmd += ["--set", f"model.compile={COMPILE[variant]}", "--set", f"model.compile_cache={cache}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(AVX2 if variant == "eager_avx2" else {})}
    return cmd, env


def train(head_name: str, head: dict, seed: int, variant: str, runs: Path, cache: Path) -> dict:
    out = runs / f"{head_name}-s{seed}-{variant}"
    final = out / "final.json"
    if not final.exists():
        cmd, env = command(head, seed, variant, out, cache)
        t0 = time.time()
        with open(f"{out}.log", "w") as log:
            done = subprocess.run(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        print(f"[compile-seeds] {out.name}: exit {done.returncode} in {time.time() - t0:.0f} s", flush=True)
        if done.returncode != 0:
            return {"head": head_name, "seed": seed, "variant": variant, "error": f"exit {done.returncode}: {out}.log"}
    result = json.loads(final.read_text())
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    first = next((r["first_iter_s"] for r in metrics if "first_iter_s" in r), None)
    return {"head": head_name, "seed": seed, "variant": variant, "miou": result["miou"],
            "train_time_s": result["train_time_s"], "first_iter_s": first, "run_dir": str(out),
            "git_commit": result["provenance"].get("git_commit"), "git_dirty": result["provenance"].get("git_dirty")}


def paired(runs: list[dict], head: str, variant: str) -> dict:
    """`variant` minus eager over the seeds both have."""
    by = {(r["variant"], r["seed"]): r["miou"] for r in runs if r["head"] == head and "miou" in r}
    seeds = sorted(s for v, s in by if v == variant and ("eager", s) in by)
    diffs = [by[variant, s] - by["eager", s] for s in seeds]
    out = {"head": head, "variant": variant, "seeds": seeds, "differences": [round(d, 4) for d in diffs]}
    if len(diffs) < 2:
        return out
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    half = T975.get(len(diffs) - 1, 1.96) * sd / len(diffs) ** 0.5
    flips = [sum(s * d for s, d in zip(signs, diffs)) for signs in itertools.product((1, -1), repeat=len(diffs))]
    p = sum(abs(f) >= abs(sum(diffs)) - 1e-12 for f in flips) / len(flips)
    return {**out, "mean": round(mean, 4), "sd": round(sd, 4), "mean_abs": round(statistics.mean(map(abs, diffs)), 4),
            "ci95": [round(mean - half, 4), round(mean + half, 4)], "ci95_contains_0": mean - half <= 0 <= mean + half,
            "sign_flip_p": round(p, 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.compile_seeds", description=__doc__.splitlines()[0])
    ap.add_argument("--heads", default="ifa")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--variants", default="eager,eager_avx2,compiled")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "compile-seeds", help="run directories (reused)")
    ap.add_argument("--cache", type=Path, default=Path("~/.cache/ifa-bench/inductor").expanduser(),
                    help="model.compile_cache of the compiled runs")
    ap.add_argument("--jobs", type=int, default=1, help="runs at a time (each one thread)")
    ap.add_argument("--out", type=Path, default=None, help="write DIR/compile_seeds.json")
    ap.add_argument("--note", default="", help="conditions to record with the numbers")
    args = ap.parse_args(argv)
    known = sweep_heads()
    heads, variants = args.heads.split(","), args.variants.split(",")
    if not set(heads) <= set(known):
        ap.error(f"--heads: {','.join(sorted(set(heads) - set(known)))} not in {CONFIG.name}'s sweep ({','.join(known)})")
    if not set(variants) <= set(VARIANTS) or "eager" not in variants:
        ap.error(f"--variants {args.variants}: eager and any of {','.join(VARIANTS[1:])}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds {args.seeds!r}: comma-separated integers expected")
    args.runs.mkdir(parents=True, exist_ok=True)
    load_start, t_start = os.getloadavg(), time.time()
    jobs = [(h, known[h], s, v, args.runs, args.cache) for h in heads for s in seeds for v in variants]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda job: train(*job), jobs))
    comparisons = [paired(runs, h, v) for h in heads for v in variants if v != "eager"]
    for c in comparisons:
        stats = (f"mean {c['mean']:+.2f}, sd {c['sd']:.2f}, 95% CI [{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}], "
                 f"sign-flip p {c['sign_flip_p']:.3f}") if "mean" in c else "fewer than 2 seeds"
        print(f"[compile-seeds] {c['head']} {c['variant']} - eager: {[f'{d:+.2f}' for d in c['differences']]}; {stats}")
    import torch

    result = {"command": " ".join(["python", "-m", "perf.compile_seeds", *sys.argv[1:]]), "config": str(CONFIG),
              "note": args.note, "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "cpu_count": os.cpu_count(), "load_average_start": load_start, "load_average_end": os.getloadavg(),
              "wall_s": round(time.time() - t_start, 1), "runs": runs, "comparisons": comparisons}
    if args.out is not None:
        from bench.files.atomic import write_json

        print(f"[compile-seeds] wrote {write_json(args.out / 'compile_seeds.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
