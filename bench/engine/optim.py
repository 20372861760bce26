"""SGD with a separate learning rate for the heads, and the poly schedule with linear warm-up (mmseg's)."""
from __future__ import annotations

import torch

BACKBONE, HEADS = "backbone", "heads"


def param_groups(segmentor: torch.nn.Module, lr: float, head_lr_mult: float) -> list[dict]:
    """Two groups: the backbone's parameters at `lr`, everything else (head, auxiliary head, any extra module)
    at lr * head_lr_mult. Each group remembers its base lr as `initial_lr`."""
    backbone_ids = {id(p) for p in segmentor.backbone.parameters()}
    backbone = [p for p in segmentor.backbone.parameters() if p.requires_grad]
    heads = [p for p in segmentor.parameters() if id(p) not in backbone_ids and p.requires_grad]
    groups = []
    for name, params, group_lr in ((BACKBONE, backbone, lr), (HEADS, heads, lr * head_lr_mult)):
        if params:
            groups.append({"name": name, "params": params, "lr": group_lr, "initial_lr": group_lr})
    return groups


def build_optimizer(segmentor: torch.nn.Module, train_cfg) -> torch.optim.SGD:
    """SGD (momentum, weight decay on every parameter, as the release) over `param_groups`."""
    return torch.optim.SGD(param_groups(segmentor, train_cfg.lr, train_cfg.head_lr_mult), lr=train_cfg.lr,
                           momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay)


def poly_lr(base_lr: float, iteration: int, max_iters: int, power: float, min_lr: float = 0.0) -> float:
    """(base_lr - min_lr) * (1 - iteration / max_iters) ** power + min_lr (mmseg PolyLR; min_lr absolute)."""
    progress = min(max(iteration, 0), max_iters) / max_iters
    return (base_lr - min_lr) * (1.0 - progress) ** power + min_lr


def warmup_factor(iteration: int, warmup_iters: int, warmup_ratio: float) -> float:
    """mmseg's linear warm-up: the scheduled lr is multiplied by 1 - (1 - it / warmup_iters) * (1 - ratio),
    rising from `warmup_ratio` at iteration 0 to 1 at `warmup_iters`."""
    if warmup_iters <= 0 or iteration >= warmup_iters:
        return 1.0
    return 1.0 - (1.0 - iteration / warmup_iters) * (1.0 - warmup_ratio)


class PolyWarmupSchedule:
    """Sets each group's lr for the step about to run at `iteration` (0-based). Stateless apart from the config:
    the lr is a pure function of the iteration, so resuming needs only the iteration."""

    def __init__(self, optimizer: torch.optim.Optimizer, max_iters: int, power: float = 0.9, min_lr: float = 0.0,
                 warmup_iters: int = 0, warmup_ratio: float = 1e-6):
        self.optimizer = optimizer
        self.max_iters, self.power, self.min_lr = int(max_iters), float(power), float(min_lr)
        self.warmup_iters, self.warmup_ratio = int(warmup_iters), float(warmup_ratio)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])

    @classmethod
    def from_config(cls, optimizer, train_cfg) -> "PolyWarmupSchedule":
        return cls(optimizer, train_cfg.iterations, train_cfg.poly_power, train_cfg.min_lr,
                   train_cfg.warmup_iters, train_cfg.warmup_ratio)

    def lr_at(self, base_lr: float, iteration: int) -> float:
        return poly_lr(base_lr, iteration, self.max_iters, self.power, self.min_lr) * warmup_factor(
            iteration, self.warmup_iters, self.warmup_ratio)

    def step(self, iteration: int) -> list[float]:
        lrs = []
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(group["initial_lr"], iteration)
            lrs.append(group["lr"])
        return lrs

    def state_dict(self) -> dict:
        return {"max_iters": self.max_iters, "power": self.power, "min_lr": self.min_lr,
                "warmup_iters": self.warmup_iters, "warmup_ratio": self.warmup_ratio}

    def load_state_dict(self, state: dict) -> None:
        if int(state["max_iters"]) != self.max_iters:
            raise ValueError(f"schedule state for {state['max_iters']} iterations, this one has {self.max_iters}")
