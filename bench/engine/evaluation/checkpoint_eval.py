"""One evaluation of a loaded model on a split, with the bootstrap interval over images: what `ifa-bench eval` and
the sweep's evaluation tasks (bench/sweep/tasks/eval_tasks.py) both run, so the numbers of the two agree exactly."""
from __future__ import annotations

from pathlib import Path

from bench.errors import UserError


def open_split(cfg, split: str | None, where) -> object:
    """The dataset of `split` (default: data.val_split); a one-line error when it has no images."""
    from bench.data import build_dataset

    split = split or cfg.data.val_split
    dataset = build_dataset(cfg.data, split)
    if len(dataset) == 0:
        raise UserError(f"{where}: data: split {split!r} has no images")
    return dataset


def evaluate_with_interval(model, cfg, eval_cfg, device, dataset, *, progress: bool = False, on_prediction=None):
    """(metrics with the miou_ci_* fields, per-image intersections, per-image unions) of `model` under `eval_cfg`."""
    from bench.data.transforms import EvalTransform
    from bench.engine.evaluation import bootstrap
    from bench.engine.evaluation.evaluate import evaluate

    result = evaluate(model, dataset, eval_cfg, cfg.model.num_classes, device, transform=EvalTransform(cfg.data),
                      ignore_index=cfg.train.ignore_index, default_crop_size=tuple(cfg.data.crop_size),
                      progress=progress, per_image=True, on_prediction=on_prediction)
    inter, union = result.pop("per_image_inter"), result.pop("per_image_union")
    result.update(bootstrap.interval_fields(inter, union))
    return result, inter, union


def save_per_image(path: Path, inter, union) -> None:
    from bench.engine.evaluation import bootstrap
    bootstrap.save_per_image(Path(path), inter, union)
