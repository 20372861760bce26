"""bench/host/budget.py (sizes that cannot fit) and bench/models/finite.py (non-finite weights)."""
import pytest
import torch

from bench.host.budget import (MAX_ITERATIONS, available_bytes, eval_bytes, forward_bytes, require_fits, stem_channels,
                          synth_bytes)
from bench.config.model import BackboneConfig
from bench.errors import UserError
from bench.models.finite import first_non_finite, require_finite


def test_estimates_grow_with_size_batch_and_training():
    one = forward_bytes(1, 100, 100)
    assert forward_bytes(2, 100, 100) == 2 * one and forward_bytes(1, 200, 100) == 2 * one
    assert forward_bytes(1, 100, 100, training=True) > one
    assert forward_bytes(1, 100, 100, stem=64) > one
    # ResNet-50 at 1024x2048: stays under docs/measurement.md's measured 649 MiB forward peak
    assert forward_bytes(1, 1024, 2048, stem=stem_channels(BackboneConfig())) < 649 * 2**20
    assert eval_bytes(100, 100, [1.0, 2.0], 10) > eval_bytes(100, 100, [1.0], 10)
    assert eval_bytes(100, 100, [1.0], 10, window=(500, 500)) > eval_bytes(100, 100, [1.0], 10)
    assert synth_bytes(10, 10) == 100 * synth_bytes(1, 1)


def test_stem_channels_follow_width_and_stem():
    assert stem_channels(BackboneConfig()) == 64
    assert stem_channels(BackboneConfig(stem="v1c")) == 32
    assert stem_channels(BackboneConfig(width=0.5)) == 32


def test_require_fits_against_real_free_memory():
    free = available_bytes()
    assert free > 0
    require_fits(1024, "--input 16x16")
    with pytest.raises(UserError, match=r"--input 99999x99999: needs at least [\d,.]+ GiB of memory, "
                                        r"[\d,.]+ GiB available in RAM"):
        require_fits(free * 4 + 2**40, "--input 99999x99999")


def test_iterations_bound_is_in_the_config():
    from bench.config.experiment import TrainConfig

    TrainConfig(iterations=MAX_ITERATIONS)
    with pytest.raises(Exception, match="less than or equal to 1000000000"):
        TrainConfig(iterations=MAX_ITERATIONS + 1)


def test_first_non_finite_tensor_is_named(tmp_path):
    state = {"a": torch.zeros(3), "steps": torch.tensor(5), "b": torch.zeros(2), "c": torch.zeros(2)}
    assert first_non_finite(state) is None
    state["b"][1] = float("inf")
    state["c"][0] = float("nan")
    assert first_non_finite(state) == "b"
    with pytest.raises(UserError, match=r"w\.pt: checkpoint tensor 'b' has 1 non-finite value\(s\)"):
        require_finite(state, tmp_path / "w.pt")


def test_resume_checkpoint_with_nan_is_refused(tmp_path):
    from bench.engine import checkpoint as ckpt

    path = ckpt.save_checkpoint(tmp_path, 3, {"model": {"w": torch.tensor([1.0, float("nan")])}}, keep=2)
    with pytest.raises(UserError, match=r"tensor 'w' has 1 non-finite"):
        ckpt.load_checkpoint(path)
