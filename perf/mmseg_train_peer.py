"""The engine against mmsegmentation 1.2.2's own training loop, same models, same batches, one run.

    make .venv-mmseg/.installed        # once (the parity checks' venv, never the project's)
    PYTHONPATH=$PWD .venv-mmseg/bin/python -m perf.mmseg_train_peer [--models fpn,pspnet] [--iters 10]
        [--rounds 2] [--crop 512 512] [--batch 2] [--out DIR]

Models: Semantic-FPN R-50 (ResNetV1c OS32, FPN 256/128, no auxiliary head) and PSPNet R-50-D8 (+ the auxiliary FCN,
weight 0.4), as tools/mmseg_parity/check_mmseg.py builds them, with the synthetic dataset's classes.
- mmseg: mmengine's Runner with mmseg's model (EncoderDecoder, its SegDataPreProcessor, its losses), an
  IterBasedTrainLoop, SGD (lr 0.01, momentum 0.9, wd 5e-4) with PolyLR, its default hooks (timer, logger every
  `log_every`, param scheduler; checkpoints only after the last iteration), fed from memory: the engine's own
  batches (the synthetic dataset through the engine's transforms, already normalised, so the preprocessor's mean
  is 0 and std 1). Timed by a hook at each iteration's end; CPU time of this process alongside.
- engine: bench.engine.trainer.train_experiment on the same model config and dataset (perf.train_throughput's
  engine side: its loader with 1 worker on CPU reads and transforms the same images; window timing from its
  metrics; data wait reported).
Both run under the malloc thresholds the engine sets on CPU (bench/host/allocator.py; process-wide, so set before
the first round). Rounds alternate mmseg and engine per model. Both skip their first logging window (warm-up). Writes
DIR/mmseg_train_peer.json (atomically).
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

from perf.train_throughput import ROOT, engine_batches, run_engine

MODELS = ("fpn", "pspnet")


def project_model(name: str) -> dict:
    if name == "fpn":
        return {"backbone": {"name": "resnet50", "stem": "v1c", "output_stride": 32},
                "head": {"name": "fpn", "channels": 256, "scale_channels": 128}, "aux_head": {"enabled": False}}
    return {"backbone": {"name": "resnet50", "stem": "v1c", "output_stride": 8}, "head": {"name": "ppm"},
            "aux_head": {"enabled": True}}


def experiment(args, name: str):
    from bench.config import ExperimentConfig
    from bench.data.classes import SYNTHETIC_CLASSES

    return ExperimentConfig.model_validate({
        "name": f"peer-{name}", "seed": 0,
        "data": {"dataset": "synthetic", "root": str(args.data), "generate": True, "synthetic_size": args.image,
                 "synthetic_train": args.images, "synthetic_val": 1, "crop_size": args.crop,
                 "scale_range": [0.5, 2.0], "num_workers": args.workers},
        "model": {"num_classes": len(SYNTHETIC_CLASSES), **project_model(name)},
        "train": {"iterations": args.log_every + args.iters, "batch_size": args.batch, "lr": 0.01,
                  "head_lr_mult": 1.0, "device": "cpu", "threads": args.threads, "log_every": args.log_every,
                  "checkpoint_every": args.log_every + args.iters, "deterministic": False},
        "measure": {"enabled": False},
    })


def mmseg_model(name: str, num_classes: int, crop) -> dict:
    sys.path.insert(0, str(ROOT / "tools" / "mmseg_parity"))
    import check_mmseg

    check_mmseg.NUM_CLASSES = num_classes  # its builders read the module constant
    mm, _ = check_mmseg.mmseg_configs()["FPN R-50" if name == "fpn" else "PSPNet R-50-D8"]
    mm = {**mm, "data_preprocessor": dict(type="SegDataPreProcessor", mean=[0.0] * 3, std=[1.0] * 3,
                                          bgr_to_rgb=False, pad_val=0, seg_pad_val=255, size=tuple(crop))}
    return mm


def mmseg_samples(batches) -> list:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    out = []
    for images, labels in batches:
        for x, y in zip(images, labels):
            sample = SegDataSample()
            sample.gt_sem_seg = PixelData(data=y[None].clone())
            sample.set_metainfo({"img_shape": tuple(x.shape[-2:]), "ori_shape": tuple(x.shape[-2:]),
                                 "pad_shape": tuple(x.shape[-2:])})
            out.append({"inputs": x.clone(), "data_samples": sample})
    return out


def run_mmseg(args, name: str, cfg, samples: list, work: Path) -> dict:
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader

    marks: list[tuple[float, float]] = []

    class Clock(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            marks.append((time.perf_counter(), time.process_time()))

    total = args.log_every + args.iters
    loader = DataLoader(samples[:total * args.batch], batch_size=args.batch, shuffle=False, num_workers=0,
                        collate_fn=lambda items: {"inputs": [i["inputs"] for i in items],
                                                  "data_samples": [i["data_samples"] for i in items]})
    torch.manual_seed(cfg.seed)
    runner = Runner(
        model=mmseg_model(name, cfg.model.num_classes, cfg.data.crop_size), work_dir=str(Path(tempfile.mkdtemp(dir=work, prefix="mmseg-"))),
        train_dataloader=loader, train_cfg=dict(type="IterBasedTrainLoop", max_iters=total, val_interval=10**9),
        optim_wrapper=dict(type="OptimWrapper", optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=5e-4)),
        param_scheduler=[dict(type="PolyLR", eta_min=1e-4, power=0.9, begin=0, end=total, by_epoch=False)],
        default_hooks=dict(timer=dict(type="IterTimerHook"),
                           logger=dict(type="LoggerHook", interval=args.log_every, log_metric_by_epoch=False),
                           param_scheduler=dict(type="ParamSchedulerHook"),
                           checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=total)),
        custom_hooks=[Clock()], default_scope="mmseg", randomness=dict(seed=cfg.seed),
        log_level="WARNING", env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend="gloo")))
    runner.train()
    (w0, c0), (w1, c1) = marks[args.log_every - 1], marks[-1]
    return {"ms": 1000 * (w1 - w0) / args.iters, "cpu_ms": 1000 * (c1 - c0) / args.iters}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.mmseg_train_peer", description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--crop", type=int, nargs=2, default=[512, 512])
    ap.add_argument("--image", type=int, nargs=2, default=[512, 1024], help="synthetic image size H W")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1, help="the engine's loader workers")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads, both sides")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.iters % args.log_every:
        ap.error(f"--iters {args.iters} must be a multiple of --log-every {args.log_every}")
    if args.data is None:
        args.data = ROOT / "runs" / "data" / "perf-{}x{}-{}".format(*args.image, args.images)
    torch.set_num_threads(args.threads)
    from bench.host.allocator import keep_freed_memory

    keep_freed_memory()  # what the engine sets for its process on CPU: both loops run under it from the first round
    from bench.measure.environment import environment
    from bench.results.provenance import provenance

    work = Path(tempfile.mkdtemp(prefix="mmseg-peer-"))
    load_start, t_start = os.getloadavg(), time.time()
    cases: dict[tuple[str, str], list] = {}
    for name in args.models.split(","):
        cfg = experiment(args, name)
        samples = mmseg_samples(engine_batches(cfg, args.log_every + args.iters))
        for r in range(args.rounds):
            for side in ("mmseg", "engine"):
                result = run_mmseg(args, name, cfg, samples, work) if side == "mmseg" else run_engine(cfg, work)
                cases.setdefault((name, side), []).append(result)
                print(f"[mmseg-peer] round {r + 1} {name} {side}: {result['ms']:.1f} ms/it, CPU {result['cpu_ms']:.1f}"
                      + (f", data wait {100 * result['data_wait_share']:.0f}%" if "data_wait_share" in result else ""),
                      flush=True)
    records, ratios = [], []
    for (name, side), rounds in cases.items():
        records.append({"model": name, "side": side, "ms_per_iter": statistics.median(r["ms"] for r in rounds),
                        "cpu_ms_per_iter": statistics.median(r["cpu_ms"] for r in rounds),
                        "ms_rounds": [r["ms"] for r in rounds], "cpu_ms_rounds": [r["cpu_ms"] for r in rounds]})
    for name in args.models.split(","):
        e, m = cases[(name, "engine")], cases[(name, "mmseg")]
        ratios.append({"model": name,
                       "engine_over_mmseg": statistics.median(a["ms"] / b["ms"] for a, b in zip(e, m)),
                       "engine_cpu_over_mmseg": statistics.median(a["cpu_ms"] / b["cpu_ms"] for a, b in zip(e, m))})
    import mmseg

    result = {"command": " ".join(["python", "-m", "perf.mmseg_train_peer", *sys.argv[1:]]),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "environment": {**environment("cpu"), **provenance(), "mmseg_version": mmseg.__version__,
                              "load_average_start": load_start, "load_average_end": os.getloadavg(),
                              "wall_s": round(time.time() - t_start, 1)},
              "records": records, "ratios": ratios}
    for q in ratios:
        print(f"[mmseg-peer] {q['model']}: engine / mmseg = {q['engine_over_mmseg']:.3f} wall, "
              f"{q['engine_cpu_over_mmseg']:.3f} CPU time")
    if args.out is not None:
        from bench.files.atomic import write_json

        print(f"[mmseg-peer] wrote {write_json(Path(args.out) / 'mmseg_train_peer.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
