"""The training input pipeline alone at Cityscapes size: samples/s per worker, decode vs transform.

    python -m perf.loader_throughput [--size 1024 2048] [--samples 12] [--rounds 2] [--workers 0,1,2] [--out DIR]

The synthetic dataset in Cityscapes layout (bench/data/synthetic) at --size (written once under --data, default
runs/data/perf-1024x2048-8), read by the engine's own pieces: SegDataset.load (PNG decode of image and label) and
TrainTransform with the released recipe's data section (crop 769x769, base size 1024x2048, scale 0.5-2.0, flip,
cat_max_ratio 1; photometric distortion on and off, and each `--variants` data option), on the engine's sample
stream (bench.engine.sampling: the same images and augmentation draws for every variant).
- per worker: one process, one thread (a loader worker's torch threads are 1): decode ms and transform ms per
  sample, their sum, samples/s = 1000 / (decode + transform); cases interleaved per round, medians over samples.
  The same medians in CPU time (process_time) beside them: far less sensitive to other jobs on a shared host; and
  the mean transform CPU time (a step applied to some samples only, as the colour steps of the photometric
  distortion, moves the mean where it may not move the median).
- --workers: the engine's DataLoader (TrainSamples, IterationBatches, collate, batch 2) with N workers,
  samples/s over --samples samples after the first batch (0: in the main process).
Writes DIR/loader_throughput.json (atomically).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {"crop_size": [769, 769], "base_size": [1024, 2048], "scale_range": [0.5, 2.0], "flip": True,
          "cat_max_ratio": 1.0}


def data_config(args, **options):
    from bench.config.experiment import DataConfig

    return DataConfig.model_validate({"dataset": "synthetic", "root": str(args.data), "generate": True,
                                      "synthetic_size": args.size, "synthetic_train": args.images,
                                      "synthetic_val": 1, "num_workers": 0, **RECIPE, **options})


def per_worker(dataset, transform, keys, seed: int, batch: int) -> dict:
    from bench.engine.sampling import sample_index, sample_rng
    from bench.measure.latency import time_wall_and_cpu

    out = {"decode_ms": [], "transform_ms": [], "decode_cpu_ms": [], "transform_cpu_ms": []}
    cpu = torch.device("cpu")
    for it, slot in keys:
        i = sample_index(seed, it, slot, batch, len(dataset))
        loaded = []
        decode = time_wall_and_cpu(lambda: loaded.extend(dataset.load(i)), cpu)  # noqa: B023 (called at once)
        trans = time_wall_and_cpu(lambda: transform(*loaded, sample_rng(seed, it, slot)), cpu)  # noqa: B023
        for key, value in zip(("decode_ms", "decode_cpu_ms", "transform_ms", "transform_cpu_ms"), (*decode, *trans)):
            out[key].append(value)
    return out


def loader_rate(cfg, workers: int, samples: int, seed: int, batch: int = 2) -> float:
    from torch.utils.data import DataLoader

    from bench.data import build_dataset
    from bench.data.transforms import TrainTransform
    from bench.engine.sampling import IterationBatches, TrainSamples, collate

    ds = TrainSamples(build_dataset(cfg, "train"), TrainTransform(cfg), seed, batch)
    iters = 1 + samples // batch
    loader = DataLoader(ds, batch_sampler=IterationBatches(0, iters, batch), num_workers=workers,
                        collate_fn=collate, prefetch_factor=2 if workers else None)
    it = iter(loader)
    next(it)  # start-up and the first batch
    t0 = time.perf_counter()
    n = sum(x.shape[0] for x, _, _ in it)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.loader_throughput", description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=[1024, 2048])
    ap.add_argument("--images", type=int, default=8, help="synthetic training images")
    ap.add_argument("--samples", type=int, default=12, help="samples per case and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="", help="also time the engine's DataLoader with these worker counts")
    ap.add_argument("--variants", default="crop_first", help="data options compared with the default pipeline")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--smoke", action="store_true", help="256x512 images, 2 samples, 1 round")
    args = ap.parse_args(argv)
    if args.smoke:
        args.size, args.samples, args.rounds, args.images = [256, 512], 2, 1, 2
    if args.data is None:
        args.data = ROOT / "runs" / "data" / "perf-{}x{}-{}".format(*args.size, args.images)
    torch.set_num_threads(1)  # as in a loader worker
    from bench.data import build_dataset
    from bench.data.transforms import TrainTransform
    from bench.measure.environment import environment
    from bench.results.provenance import provenance

    load_start, t_start = os.getloadavg(), time.time()
    cases = {}
    for photometric in (False, True):
        for variant in ["", *[v for v in args.variants.split(",") if v]]:
            options = {"photometric": photometric, **({variant: True} if variant else {})}
            name = ("photometric" if photometric else "no_photometric") + (f"+{variant}" if variant else "")
            cases[name] = data_config(args, **options)
    dataset = build_dataset(next(iter(cases.values())), "train")  # writes the dataset on first use
    seed, batch = 0, 2
    results = {name: {} for name in cases}
    for r in range(args.rounds):
        keys = [(r * args.samples // batch + k // batch, k % batch) for k in range(args.samples)]
        for name, cfg in cases.items():
            out = per_worker(dataset, TrainTransform(cfg), keys, seed, batch)
            for k, v in out.items():
                results[name].setdefault(k, []).extend(v)
            print(f"[loader] round {r + 1} {name}: decode {statistics.median(out['decode_ms']):.0f} ms, "
                  f"transform {statistics.median(out['transform_ms']):.0f} ms "
                  f"(CPU {statistics.median(out['transform_cpu_ms']):.0f} ms)", flush=True)
    records = []
    for name, res in results.items():
        d, t = statistics.median(res["decode_ms"]), statistics.median(res["transform_ms"])
        dc, tc = statistics.median(res["decode_cpu_ms"]), statistics.median(res["transform_cpu_ms"])
        records.append({"case": name, "decode_ms": d, "transform_ms": t, "samples_per_s_per_worker": 1000 / (d + t),
                        "decode_images_per_s": 1000 / d, "decode_cpu_ms": dc, "transform_cpu_ms": tc,
                        "transform_cpu_ms_mean": statistics.fmean(res["transform_cpu_ms"]),
                        "samples": len(res["decode_ms"])})
        print(f"[loader] {name:28s} decode {d:6.1f} ms  transform {t:6.1f} ms  -> {1000 / (d + t):5.2f} samples/s "
              f"per worker (CPU: decode {dc:6.1f} ms, transform {tc:6.1f} ms)")
    loaders = []
    for w in [int(x) for x in args.workers.split(",") if x]:
        for name in ("photometric", *[n for n in cases if n.startswith("photometric+")]):
            rate = loader_rate(cases[name], w, args.samples, seed)
            loaders.append({"case": name, "workers": w, "samples_per_s": rate})
            print(f"[loader] DataLoader {name} workers={w}: {rate:.2f} samples/s", flush=True)
    result = {"command": " ".join(["python", "-m", "perf.loader_throughput", *sys.argv[1:]]),
              "settings": {"size": args.size, "images": args.images, "samples": args.samples, "rounds": args.rounds,
                           "recipe": RECIPE, "threads": 1},
              "environment": {**environment("cpu"), **provenance(), "cpu_count": os.cpu_count(), "load_average_start": load_start,
                              "load_average_end": os.getloadavg(), "wall_s": round(time.time() - t_start, 1)},
              "records": records, "data_loader": loaders}
    if args.out is not None:
        from bench.files.atomic import write_json

        print(f"[loader] wrote {write_json(Path(args.out) / 'loader_throughput.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
