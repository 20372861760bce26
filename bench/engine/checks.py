"""Checks of an experiment that the typed config cannot make alone (devices, paths, dataset agreement).
They all run before the run directory is created, so a bad config leaves nothing behind."""
from __future__ import annotations

from pathlib import Path

from bench.host.device import resolve_device
from bench.errors import UserError


def resolve_device_type(train_cfg) -> str:
    """'cuda' or 'cpu' for train.device (auto: CUDA when available); refuses CUDA-only options on CPU."""
    device_type = resolve_device(train_cfg.device, "train.device").type
    if train_cfg.amp == "fp16" and device_type != "cuda":
        raise UserError("train.amp: fp16 mixed precision needs a CUDA device (training runs on CPU); set train.amp: "
                        "bf16 (CPU autocast) or none")
    return device_type


def check_static(cfg, world_size: int = 1) -> None:
    """Checks that need no dataset: paths, seeds, schedule and batch consistency."""
    t, d = cfg.train, cfg.data
    if cfg.seed < 0:
        raise UserError(f"seed: must be a non-negative integer, got {cfg.seed}")
    root = Path(d.root).expanduser()
    if not (d.dataset == "synthetic" and d.generate) and not root.is_dir():
        hint = " (or set data.generate: true to write the synthetic dataset there)" if d.dataset == "synthetic" else ""
        raise UserError(f"data.root: {d.root} does not exist or is not a directory{hint}")
    if d.dataset != "synthetic" and d.generate:
        raise UserError(f"data.generate: only the synthetic dataset can be generated, not {d.dataset}")
    if t.min_lr > t.lr:
        raise UserError(f"train.min_lr: {t.min_lr} is larger than train.lr ({t.lr})")
    if t.batch_size % world_size:
        raise UserError(f"train.batch_size: {t.batch_size} is not divisible by the {world_size} distributed workers")
    if t.warmup_iters > t.iterations:
        raise UserError(f"train.warmup_iters: {t.warmup_iters} is longer than train.iterations ({t.iterations})")
    _require_fits(cfg, world_size)
    pretrained = cfg.model.backbone.pretrained
    if pretrained is not None and not Path(pretrained).expanduser().is_file():
        raise UserError(f"model.backbone.pretrained: {pretrained}: no such file")


def check_dataset(cfg, dataset) -> None:
    """The model predicts the dataset's classes."""
    if cfg.model.num_classes != dataset.num_classes:
        raise UserError(f"model.num_classes: {cfg.model.num_classes}, but {cfg.data.dataset} at {cfg.data.root} has "
                        f"{dataset.num_classes} classes")
    if len(dataset) == 0:
        raise UserError(f"data.root: split '{dataset.split}' of {cfg.data.root} has no images")


def _require_fits(cfg, world_size: int) -> None:
    """One training step of the per-worker batch at the crop size must fit (a lower bound, bench/host/budget.py)."""
    from bench.host.budget import forward_bytes, require_fits, stem_channels

    t, d = cfg.train, cfg.data
    per_worker = max(1, t.batch_size // world_size)
    device = resolve_device(t.device, "train.device")
    require_fits(forward_bytes(per_worker, *d.crop_size, training=True, stem=stem_channels(cfg.model.backbone)),
                 f"train.batch_size {t.batch_size} at data.crop_size {d.crop_size[0]}x{d.crop_size[1]}",
                 device if device.type == "cuda" else None)
