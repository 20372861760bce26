"""Device names from the command line or the config ("auto", "cpu", "cuda", "cuda:1") -> torch.device."""
from __future__ import annotations

import torch

from bench.errors import UserError


def resolve_device(name: str, key: str = "--device") -> torch.device:
    """`auto` picks CUDA when available; asking for CUDA without one is a UserError naming `key`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{key}: cuda requested but no CUDA device is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"{key}: unknown device {name!r}") from None
