"""`model.compile`: torch.compile (inductor) applied in place, with a cache folder that survives the node.

`true` compiles the model for training, evaluation and latency; `eval` for evaluation and latency only: the model
is compiled in place as for `true`, and each training forward runs it eagerly (`training_forward`), so training
computes exactly what an eager run computes. On the CPU that is where compile pays (docs/performance.md).

`Module.compile()` keeps the module itself (its state_dict keys, attributes such as IFA's query mode, DDP wrapping),
so checkpoints of compiled and eager runs are interchangeable. The cache: `model.compile_cache`, else
TORCHINDUCTOR_CACHE_DIR if the environment sets it, else ~/.cache/ifa-bench/inductor (inductor's own default is
under /tmp, which a cluster's nodes do not share and clean between jobs).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

from torch import nn

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
EVAL_ONLY = "eval"  # model.compile: evaluation and latency compiled, training eager
DEFAULT_CACHE = Path("~/.cache/ifa-bench/inductor")


def compile_cache_dir(configured: Optional[Path]) -> Path:
    if configured is not None:
        return Path(configured).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return DEFAULT_CACHE.expanduser()


def maybe_compile(model: nn.Module, model_cfg) -> nn.Module:
    """`model` compiled in place when `model_cfg.compile` is set (true or eval; returned for chaining), else
    unchanged. Training under `eval` goes through `training_forward`."""
    if not getattr(model_cfg, "compile", False):
        return model
    cache = compile_cache_dir(model_cfg.compile_cache)
    cache.mkdir(parents=True, exist_ok=True)
    os.environ[CACHE_ENV] = str(cache)  # read by inductor when it first compiles in this process (and its workers)
    import torch._inductor.config as inductor_config

    # Dropout through torch's own kernel and generator, as eager draws it: inductor's generated random numbers
    # would give every dropout layer other masks than eager's, so a compiled run would train differently.
    inductor_config.fallback_random = True
    model.compile(backend="inductor")
    return model


def training_forward(model: nn.Module, model_cfg):
    """Context for a training forward of `model`: eager under `model.compile: eval`, else the model as it is."""
    return uncompiled(model) if getattr(model_cfg, "compile", False) == EVAL_ONLY else contextlib.nullcontext()


def forget_compiled_graphs() -> None:
    """Drop every graph dynamo compiled in this process, and what it remembers of the shapes it saw, so that the next
    compiled call compiles as in a fresh process. Without it, a compiled model run at other shapes before (another
    model of the same classes, or this one) is compiled shape-dynamic (torch's automatic dynamic shapes), and its
    latency depends on what ran before it (perf/compile_history.py: 0.95-1.05x). Other compiled models stay
    compiled; they compile again on their next call."""
    import torch._dynamo

    torch._dynamo.reset()


def is_compiled(model: nn.Module) -> bool:
    return getattr(model, "_compiled_call_impl", None) is not None


def uncompiled(model: nn.Module):
    """Context: `model` runs eagerly for the duration (fvcore tracing, pickling into a fresh process, a training
    step under `model.compile: eval`)."""

    @contextlib.contextmanager
    def ctx():
        saved = getattr(model, "_compiled_call_impl", None)
        model._compiled_call_impl = None
        try:
            yield model
        finally:
            model._compiled_call_impl = saved

    return ctx()
