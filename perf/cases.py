"""Benchmark cases as plain (JSON-serialisable) specs, and how to build a runnable call from one.

A spec is a dict; `build(spec)` returns a `Built` with `call()` (one measured unit of work), the modules it
runs (for MAC counting) and a description. The same spec is rebuilt in a fresh process for peak memory.
Kinds:
- "head_infer": IFA head alone, eval, on random features shaped like the released deep-stem ResNet-50
  (256/512/1024/2048 channels at strides 4..32) for an `image` size; `query` is the query grid (None: stride 4).
- "head_train": one training step of the head alone: forward, cross-entropy at the logits' grid against random
  labels, backward (parameter gradients zeroed first). The released recipe upsamples logits to the crop before
  the loss; that costs the same for both formulations and is left out to keep the comparison about the head.
- "model_infer": a whole segmentor from `bench.models.build_segmentor` (backbone + head), eval, on an image.
- "gemm": an fp32 (or `dtype`) matrix product, to measure the machine's GEMM rate in the same run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

# The released IFA backbone's feature shapes (deep-stem ResNet-50, output stride 32).
RELEASED_LEVELS = {"c2": (256, 4), "c3": (512, 8), "c4": (1024, 16), "c5": (2048, 32)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Built:
    call: Callable[[], object]
    module: Optional[nn.Module]
    inputs: tuple
    description: str
    batch: int
    extra: dict = field(default_factory=dict)


def level_sizes(image: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Feature map sizes of a stride-s level for an input of `image` (ceil: padded stride-2 convs)."""
    return {k: (-(-image[0] // s), -(-image[1] // s)) for k, (_, s) in RELEASED_LEVELS.items()}


def random_features(image, batch: int, device, dtype, channels_last: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = {}
    for name, (h, w) in level_sizes(tuple(image)).items():
        c = RELEASED_LEVELS[name][0]
        # ReLU-like, as backbone outputs are
        x = torch.randn(batch, c, h, w, generator=g).relu_().to(device=device, dtype=dtype)
        out[name] = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    return out


def build_ifa_head(spec: dict, device, dtype) -> nn.Module:
    from ifa import IFAHead, ShapeSpec

    shapes = {k: ShapeSpec(c, s) for k, (c, s) in RELEASED_LEVELS.items()}
    opts = dict(spec.get("head_options", {}))
    head = IFAHead(shapes, spec["classes"], formulation=spec.get("formulation", "fused"), **opts)
    torch.manual_seed(0)
    for m in head.modules():  # trained-looking BatchNorm statistics
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.1, 0.1)
    return head.to(device=device, dtype=dtype)


def _autocast(device, dtype):
    if dtype in (torch.bfloat16, torch.float16):
        return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
    return torch.autocast(device_type=torch.device(device).type, enabled=False)


def build(spec: dict) -> Built:
    device = torch.device(spec.get("device", "cpu"))
    dtype = DTYPES[spec.get("dtype", "fp32")]
    # Low precision runs under autocast with fp32 weights (the usual mixed-precision recipe).
    param_dtype = torch.float32
    channels_last = bool(spec.get("channels_last", False))
    batch = int(spec.get("batch", 1))
    kind = spec["kind"]

    if kind == "gemm":
        m, k, n = spec["mnk"]
        g = torch.Generator().manual_seed(0)
        a = torch.randn(m, k, generator=g).to(device, dtype)
        b = torch.randn(k, n, generator=g).to(device, dtype)
        out = torch.empty(m, n, device=device, dtype=dtype)
        return Built(lambda: torch.mm(a, b, out=out), None, (a, b), f"GEMM {m}x{k} @ {k}x{n} {spec.get('dtype', 'fp32')}",
                     1, {"macs": m * k * n})

    if kind in ("head_infer", "head_train"):
        head = build_ifa_head(spec, device, param_dtype)
        feats = random_features(spec["image"], batch, device, param_dtype, channels_last)
        query = tuple(spec["query"]) if spec.get("query") else None
        desc = f"IFA head {spec.get('formulation', 'fused')} {spec['image'][0]}x{spec['image'][1]} b{batch}"
        if query:
            desc += f" query {query[0]}x{query[1]}"
        if kind == "head_infer":
            head.eval()

            def call():
                with torch.inference_mode(), _autocast(device, dtype):
                    return head(feats, query)

            return Built(call, head, (feats, query), desc, batch)
        head.train()
        grid = query or level_sizes(tuple(spec["image"]))["c2"]
        target = torch.randint(0, spec["classes"], (batch, *grid), generator=torch.Generator().manual_seed(1)).to(device)

        def step():
            head.zero_grad(set_to_none=True)
            with _autocast(device, dtype):
                logits = head(feats, query)
                loss = F.cross_entropy(logits.float(), target)
            loss.backward()
            return loss

        return Built(step, head, (feats, query), "train step " + desc, batch)

    if kind == "model_infer":
        from bench.config.model import BackboneConfig, ModelConfig
        from bench.models import build_segmentor

        head_cfg = {"name": spec["head"], **spec.get("head_options", {})}
        cfg = ModelConfig.model_validate({
            "num_classes": spec["classes"],
            "backbone": BackboneConfig(name="resnet50", stem="deep").model_dump(),
            "head": head_cfg,
        })
        torch.manual_seed(0)
        model = build_segmentor(cfg).to(device).eval()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        images = torch.randn(batch, 3, *spec["image"], generator=torch.Generator().manual_seed(0)).to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)

        def call():
            with torch.inference_mode(), _autocast(device, dtype):
                return model(images)

        return Built(call, model, (images,), f"{spec['head']} segmentor {spec['image'][0]}x{spec['image'][1]} b{batch}", batch)

    raise ValueError(f"unknown benchmark kind {kind!r}")
