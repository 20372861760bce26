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


class CPUSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm synchronised over the ranks for CPU training (torch's SyncBatchNorm, and DDP with it, refuse CPU
    tensors): in training under DDP the per-channel sum, sum of squares and count are all-reduced with the
    differentiable all_reduce, so the statistics and their gradients are those of the global batch. Any input
    rank >= 2; eval mode (and a single process) is plain BatchNorm."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_dist()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_full((1,), float(x.numel() // c))])
        total = all_reduce(local)
        n = total[-1]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * n / (n - 1).clamp_min(1), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Every BatchNorm (1d/2d/3d, not frozen ones) -> CPUSyncBatchNorm sharing its parameters and statistics."""
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, (torch.nn.SyncBatchNorm, CPUSyncBatchNorm)):
        new = CPUSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        if module.track_running_stats:
            new.running_mean, new.running_var = module.running_mean, module.running_var
            new.num_batches_tracked = module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module


def wrap_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Under DDP: BatchNorm -> SyncBatchNorm (torch's on CUDA, CPUSyncBatchNorm on CPU), then
    DistributedDataParallel. Otherwise the model itself."""
    if not is_dist():
        return model
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    else:
        model = convert_sync_batchnorm(model)
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
