"""TensorBoard events beside metrics.jsonl (<run>/tensorboard/), stepped by training iteration: every loss term,
the learning rates, and the eval metrics. `tensorboard --logdir RUN_OR_SWEEP_DIR` shows them (docs/training.md)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

EVENTS_DIR = "tensorboard"
EVAL_SCALARS = ("miou", "macc", "aacc", "boundary_iou")


class EventWriter:
    def __init__(self, run_dir: Path, purge_step: Optional[int] = None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: a resumed run hides the events a crash left past its last checkpoint
        self._writer = SummaryWriter(log_dir=str(Path(run_dir) / EVENTS_DIR), purge_step=purge_step)

    def write(self, record: dict) -> None:
        step = record.get("iter")
        if step is None:
            return
        if record.get("kind") == "train":
            for key, value in record.items():
                if key == "loss" or key.startswith("loss_"):
                    self._scalar(f"train/{key}", value, step)
            self._scalar("train/lr", record.get("lr"), step)
            self._scalar("train/lr_head", record.get("lr_head"), step)
        elif record.get("kind") == "eval":
            for key in EVAL_SCALARS:
                self._scalar(f"eval/{key}", record.get(key), step)

    def _scalar(self, tag: str, value, step: int) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._writer.add_scalar(tag, float(value), int(step))

    def close(self) -> None:
        self._writer.close()
