"""train.amp: bf16 and train.channels_last train on CPU; fp16 stays CUDA-only (bench/engine/checks.py)."""
from __future__ import annotations

import json
import math

import pytest

from bench.errors import UserError
from tests.engine.train_helpers import tiny_config

SHORT = {"iterations": 3, "log_every": 1, "checkpoint_every": 3, "warmup_iters": 0, "loss": "ce"}


@pytest.mark.parametrize("options", [{"amp": "bf16"}, {"channels_last": True}, {"amp": "bf16", "channels_last": True}])
def test_cpu_bf16_and_channels_last_train(tmp_path, options, monkeypatch):
    import torch

    from bench.engine import trainer

    seen = []
    real_step = trainer._Trainer._step

    def look(module, args):  # what the model receives in training, and whether its weights are channels-last
        if module.training:
            seen.append(args[0].is_contiguous(memory_format=torch.channels_last)
                        and next(module.backbone.parameters()).is_contiguous(memory_format=torch.channels_last))

    def step(self, images, labels):
        if not getattr(self, "_hooked", False):
            self._hooked = True
            self.model.register_forward_pre_hook(look)
        return real_step(self, images, labels)

    original = trainer._autocast

    def autocast(amp, device):
        ctx = original(amp, device)
        seen.append(("autocast", getattr(ctx, "fast_dtype", None)))
        return ctx

    monkeypatch.setattr(trainer, "_autocast", autocast)
    monkeypatch.setattr(trainer._Trainer, "_step", step)
    cfg = tiny_config(tmp_path / "data", train={**SHORT, "device": "cpu", **options})
    final = trainer.train_experiment(cfg, tmp_path / "run", progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if '"train"' in line]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses) and math.isfinite(final["miou"])
    channels_last = [s for s in seen if not isinstance(s, tuple)]
    assert len(channels_last) >= 3
    assert all(channels_last) if options.get("channels_last") else not any(channels_last)
    dtypes = {s[1] for s in seen if isinstance(s, tuple)}
    assert dtypes == ({torch.bfloat16} if options.get("amp") else {None})


def test_fp16_is_refused_on_cpu(tmp_path):
    from bench.engine.trainer import train_experiment

    cfg = tiny_config(tmp_path / "data", train={**SHORT, "device": "cpu", "amp": "fp16"})
    with pytest.raises(UserError, match="train.amp: fp16 .* needs a CUDA device"):
        train_experiment(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
