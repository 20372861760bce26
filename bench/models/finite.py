"""Refuse weights that hold NaN or ±inf: evaluating them gives plausible-looking but meaningless numbers."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

import torch

from bench.errors import UserError


def first_non_finite(state: Mapping[str, object]) -> Optional[str]:
    """Name of the first floating-point tensor (in the state's order) with a NaN or infinite element."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def require_finite(state: Mapping[str, object], path: str | Path, what: str = "checkpoint") -> None:
    name = first_non_finite(state)
    if name is not None:
        tensor = state[name]
        bad = int((~torch.isfinite(tensor)).sum())
        raise UserError(f"{path}: {what} tensor {name!r} has {bad} non-finite value(s) (NaN or inf) of "
                        f"{tensor.numel()}; refusing to use it")
