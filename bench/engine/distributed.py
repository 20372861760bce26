"""torch.distributed helpers: who am I, the device a rank uses, DDP + SyncBatchNorm wrapping, reductions.

The engine never starts processes itself: it runs DDP when torch.distributed is already initialised with
world size > 1 (Ray Train's TorchTrainer does that), or initialises it from torchrun's environment
(`maybe_init_from_env`): NCCL when the rank has a GPU, gloo otherwise.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def maybe_init_from_env(device_type: str) -> bool:
    """Initialise the default process group from torchrun's variables (WORLD_SIZE > 1, MASTER_ADDR, ...) when
    nobody has; returns whether this call did it (the caller then destroys it)."""
    if not dist.is_available() or dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend)
    return True


def rank_device(device_type: str) -> torch.device:
    """cuda:<current device> for a CUDA rank (Ray Train and torchrun set it per local rank), else cpu."""
    if device_type == "cuda":
        if is_dist():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_initialized() else 0)
    return torch.device("cpu")


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Under DDP: BatchNorm -> SyncBatchNorm, then DistributedDataParallel. Otherwise the model itself."""
    if not is_dist():
        return model
    model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """Element-wise mean of a small tensor over ranks (for logging; every rank must call it)."""
    if not is_dist():
        return values
    buf = values.detach().clone()
    if dist.get_backend() == "nccl" and buf.device.type != "cuda":
        buf = buf.to(torch.device("cuda", torch.cuda.current_device()))
    elif dist.get_backend() == "gloo" and buf.device.type != "cpu":
        buf = buf.cpu()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return (buf / dist.get_world_size()).to(values.device)


def barrier() -> None:
    if is_dist():
        dist.barrier()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's boolean, on every rank."""
    if not is_dist():
        return flag
    on = device if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([int(flag)], device=on)
    dist.broadcast(t, src=0)
    return bool(t.item())
