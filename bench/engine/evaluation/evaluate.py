"""Evaluate a segmentor on a dataset: confusion matrix + boundary IoU sums over every image, then metrics.

Under torch.distributed each rank evaluates images rank, rank + world, ... and the integer sums are
all-reduced, so every rank returns the same numbers. See docs/evaluation.md for the protocols.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from bench.engine.evaluation.boundary import boundary_stats
from bench.engine.evaluation.inference import (default_stride, ifa_query_mode, model_device, predict_labels, query_stride_of,
                                    unwrap)
from bench.engine.evaluation.metrics import confusion_matrix, metrics_from_confusion, per_class_dict

Transform = Callable[..., tuple]


class _EvalItems(Dataset):
    """Normalised image tensor (3, H, W) and int64 label (H, W) for the given dataset indices."""

    def __init__(self, dataset, indices: Sequence[int], transform: Optional[Transform]):
        self.dataset, self.indices, self.transform = dataset, list(indices), transform

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        i = self.indices[k]
        if self.transform is not None:
            image, label = self.dataset.load(i)
            image, label = self.transform(image, label)
        else:
            item = self.dataset[i]
            image, label = (item["image"], item["label"]) if isinstance(item, dict) else item[:2]
        image, label = torch.as_tensor(image), torch.as_tensor(label)
        if not image.is_floating_point() or image.dim() != 3 or image.shape[0] != 3:
            raise TypeError(f"dataset item {i}: expected a normalised float (3, H, W) image, got "
                            f"{tuple(image.shape)} {image.dtype}; pass transform=EvalTransform(...)")
        return image, label.long(), i


def _first(batch):
    return batch[0]


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    if _dist_info()[1] == 1:
        return tensor
    backend = dist.get_backend()
    on = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    buf = tensor.to(on)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(tensor.device)


def protocol(eval_cfg, crop: Optional[tuple[int, int]] = None) -> dict:
    """The evaluation protocol as flat result columns (bench/results/schema.py names)."""
    out = {
        "eval_mode": eval_cfg.mode,
        "eval_scales": ",".join(str(float(s)) for s in eval_cfg.scales),
        "eval_flip": bool(eval_cfg.flip),
        "ifa_query": eval_cfg.ifa_query,
        "boundary_dilation_ratio": float(eval_cfg.boundary_dilation_ratio),
    }
    if eval_cfg.mode == "slide":
        stride = tuple(eval_cfg.stride) if eval_cfg.stride else default_stride(crop)
        out["eval_crop"] = f"{crop[0]}x{crop[1]}"
        out["eval_stride"] = f"{stride[0]}x{stride[1]}"
    return out


def describe(proto: dict) -> str:
    """One line, e.g. 'slide 769x769 stride 513x513, scales 1.0, no flip, IFA query: label'."""
    mode = proto["eval_mode"]
    if mode == "slide":
        mode = f"slide {proto['eval_crop']} stride {proto['eval_stride']}"
    flip = "flip" if proto["eval_flip"] else "no flip"
    stride = proto.get("ifa_query_stride")
    query = f" at stride {stride}" if stride is not None else ""
    return f"{mode}, scales {proto['eval_scales']}, {flip}, IFA query: {proto['ifa_query']}{query}"


def evaluate(model: torch.nn.Module, dataset, eval_cfg, num_classes: int, device=None, *,
             transform: Optional[Transform] = None, class_names: Optional[Sequence[str]] = None,
             ignore_index: int = 255, default_crop_size: Optional[tuple[int, int]] = None,
             num_workers: int = 0, progress: bool = False, per_image: bool = False,
             on_prediction=None) -> dict:
    """Metrics of `model` on `dataset` under the protocol `eval_cfg` (bench.config.experiment.EvalConfig).

    dataset: either items are (image tensor, label tensor) pairs already normalised, or `transform` is given
    and is applied to `dataset.load(i)` (e.g. bench.data.transforms.EvalTransform(data_cfg)).
    device: where inference runs (default: the model's); the model is moved there if it is elsewhere.
    default_crop_size: the slide window when eval_cfg.crop_size is unset (the training crop, data.crop_size).
    Returns miou, macc, aacc, boundary_iou (percent), per_class_iou / per_class_acc / per_class_boundary_iou
    ({class_name: percent}, NaN where undefined), num_images, eval_time_s, the protocol columns (with
    `ifa_query_stride`: the stride IFA was queried at, 1 = label resolution, None for heads that cannot be queried)
    and a one-line `protocol` description. The model's train/eval mode and query_at_output are restored afterwards.
    per_image: also return `per_image_inter` and `per_image_union`, (images, classes) int64 numpy arrays of each
    image's class intersections and unions in dataset order (bench.engine.evaluation.bootstrap's input).
    on_prediction: called as on_prediction(dataset index, train-id prediction (H, W) tensor) for every image.
    """
    net = unwrap(model)  # DDP's forward would synchronise ranks that run different numbers of windows
    device = torch.device(device) if device is not None else model_device(net)
    if model_device(net) != device:
        net.to(device)
    crop = tuple(eval_cfg.crop_size) if eval_cfg.crop_size else (
        tuple(default_crop_size) if default_crop_size else None)
    if eval_cfg.mode == "slide" and crop is None:
        raise ValueError("eval.crop_size: slide mode needs a window size (set eval.crop_size or data.crop_size)")
    names = list(class_names) if class_names is not None else list(
        getattr(dataset, "classes", None) or [str(c) for c in range(num_classes)])
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for num_classes={num_classes}")

    if transform is None and not hasattr(dataset, "__getitem__"):
        raise TypeError(f"{type(dataset).__name__} has no items; pass transform=EvalTransform(data_cfg) so that "
                        "evaluate() can apply it to dataset.load(i)")
    rank, world = _dist_info()
    items = _EvalItems(dataset, range(rank, len(dataset), world), transform)
    loader = DataLoader(items, batch_size=1, shuffle=False, num_workers=num_workers, collate_fn=_first)
    conf = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    b_inter = torch.zeros(num_classes, dtype=torch.int64, device=device)
    b_union = torch.zeros(num_classes, dtype=torch.int64, device=device)
    img_inter = torch.zeros(len(dataset) if per_image else 0, num_classes, dtype=torch.int64, device=device)
    img_union = torch.zeros_like(img_inter)
    seen = 0
    was_training = net.training
    net.eval()
    start = time.perf_counter()
    iterator = loader
    if progress and rank == 0:
        from tqdm import tqdm
        iterator = tqdm(loader, desc="eval", total=len(items), dynamic_ncols=True)
    try:
        with ifa_query_mode(net, eval_cfg.ifa_query, getattr(eval_cfg, "ifa_query_stride", None)), \
                torch.inference_mode():
            query_stride = query_stride_of(net)
            for image, label, index in iterator:
                label = label.to(device)
                pred = predict_labels(net, image.unsqueeze(0), tuple(label.shape), mode=eval_cfg.mode,
                                      scales=eval_cfg.scales, flip=eval_cfg.flip, crop=crop,
                                      stride=eval_cfg.stride, window_batch=eval_cfg.batch_size)[0]
                if on_prediction is not None:
                    on_prediction(int(index), pred)
                try:
                    image_conf = confusion_matrix(pred, label, num_classes, ignore_index)
                except ValueError as exc:
                    raise ValueError(f"dataset item {index}: {exc}") from None
                conf += image_conf
                if per_image:
                    diag = image_conf.diagonal()
                    img_inter[index] = diag
                    img_union[index] = image_conf.sum(0) + image_conf.sum(1) - diag
                i, u = boundary_stats(pred, label, num_classes, ignore_index, eval_cfg.boundary_dilation_ratio)
                b_inter += i
                b_union += u
                seen += 1
    finally:
        net.train(was_training)

    packed = _all_reduce(torch.cat([conf.flatten(), b_inter, b_union,
                                    torch.tensor([seen], dtype=torch.int64, device=device)]))
    n2 = num_classes * num_classes
    conf = packed[:n2].reshape(num_classes, num_classes).cpu()
    b_inter = packed[n2:n2 + num_classes].cpu().numpy().astype(np.float64)
    b_union = packed[n2 + num_classes:n2 + 2 * num_classes].cpu().numpy().astype(np.float64)
    num_images = int(packed[-1])

    extra = {}
    if per_image:  # each rank filled its own images' rows; the sum over ranks is the whole table
        extra = {"per_image_inter": _all_reduce(img_inter).cpu().numpy(),
                 "per_image_union": _all_reduce(img_union).cpu().numpy()}
    m = metrics_from_confusion(conf)
    b_iou = np.full(num_classes, np.nan)
    ok = b_union > 0
    b_iou[ok] = b_inter[ok] / b_union[ok] * 100.0
    finite = b_iou[~np.isnan(b_iou)]
    proto = {**protocol(eval_cfg, crop), "ifa_query_stride": query_stride}
    return {
        "miou": m["miou"],
        "macc": m["macc"],
        "aacc": m["aacc"],
        "boundary_iou": float(finite.mean()) if finite.size else math.nan,
        "per_class_iou": per_class_dict(m["iou"], names),
        "per_class_acc": per_class_dict(m["acc"], names),
        "per_class_boundary_iou": per_class_dict(b_iou, names),
        "num_images": num_images,
        "eval_time_s": time.perf_counter() - start,
        **proto,
        "protocol": describe(proto),
        **extra,
    }
