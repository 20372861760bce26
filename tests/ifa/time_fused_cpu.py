"""CPU timing of the IFA head's eval forward (not a test): fused vs reference, deep-stem R-50 level shapes.

    PYTHONPATH=$PWD python tests/ifa/time_fused_cpu.py [--image 512x1024] [--repeats 5] [--threads 1]
        [--baseline DIR]   # also time a copy of an older `ifa` package, imported as `ifa_base` from DIR

Prints, per head, the min and median over repeats (ms) of one call after a warm-up call, and the ratios to the
reference formulation of the same run. On a shared machine take the min (other processes only add time).
"""
from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import time

import torch

CHANNELS = {"c2": 256, "c3": 512, "c4": 1024, "c5": 2048}
STRIDES = {"c2": 4, "c3": 8, "c4": 16, "c5": 32}


def deep_stem_grid(side: int) -> list[int]:
    """c2..c5 sides of a deep-stem ResNet: stride-2 conv, 3x3/2 ceil-mode max-pool, then three stride-2 stages."""
    s = -(-side // 2)
    s = -(-(s + 2 - 3) // 2) + 1
    out = [s]
    for _ in range(3):
        s = (s + 2 - 3) // 2 + 1
        out.append(s)
    return out


def features(image: tuple[int, int], batch: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    hs, ws = deep_stem_grid(image[0]), deep_stem_grid(image[1])
    return {k: torch.randn(batch, CHANNELS[k], h, w, generator=g) for k, h, w in zip(CHANNELS, hs, ws)}


def make_head(pkg, formulation: str):
    torch.manual_seed(0)
    shapes = {k: pkg.ShapeSpec(CHANNELS[k], STRIDES[k]) for k in CHANNELS}
    return pkg.IFAHead(shapes, 19, formulation=formulation).eval()


def time_call(head, feats) -> float:
    with torch.no_grad():
        t = time.perf_counter()
        head(feats)
        return (time.perf_counter() - t) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="512x1024")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--baseline", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    image = tuple(int(v) for v in args.image.split("x"))
    feats = features(image, args.batch)
    pkgs = [("new", importlib.import_module("ifa"))]
    if args.baseline:
        sys.path.insert(0, args.baseline)
        pkgs.insert(0, ("base", importlib.import_module("ifa_base")))
    heads = {}
    for name, pkg in pkgs:
        for form in ("reference", "fused"):
            heads[f"{name}/{form}"] = make_head(pkg, form)
    for h in heads.values():
        time_call(h, feats)  # warm-up: plans, caches
    results = {k: [] for k in heads}
    for _ in range(args.repeats):  # interleaved, so that load changes hit every head alike
        for k, h in heads.items():
            results[k].append(time_call(h, feats))
    print(f"image {args.image} batch {args.batch} threads {args.threads} c2 grid {tuple(feats['c2'].shape[-2:])}")
    for k, ts in results.items():
        ref = min(results[k.split('/')[0] + "/reference"])
        print(f"{k:16s} min {min(ts):9.1f} ms  median {statistics.median(ts):9.1f} ms  "
              f"reference/this (min) {ref / min(ts):5.2f}")
    if args.baseline:
        print(f"base fused / new fused (min): {min(results['base/fused']) / min(results['new/fused']):.2f}")


if __name__ == "__main__":
    main()
