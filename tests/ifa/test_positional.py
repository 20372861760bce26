"""Positional encodings: the released frequency matrix, output layout, learnability."""
import math

import pytest
import torch

from ifa.positional import LearnedPE, RawCoordPE, SinusoidalPE, build_positional, sinusoidal_frequencies


def test_released_frequencies():
    m = sinusoidal_frequencies(24)
    assert m.shape == (2, 12)
    f = [2 ** (6 * k / 5) for k in range(6)]  # n = 6: 1, 2.297, 5.278, 12.13, 27.86, 64
    assert m[0, :6].tolist() == pytest.approx(f) and m[1, 6:].tolist() == pytest.approx(f)
    assert m[0, 6:].abs().sum() == 0 and m[1, :6].abs().sum() == 0
    assert f[0] == 1 and f[-1] == pytest.approx(64)


def test_sinusoidal_layout_and_values():
    pe = SinusoidalPE(24, learnable_freq=True)
    assert pe.out_dim == 26 and isinstance(pe.freq, torch.nn.Parameter)
    c = torch.tensor([[0.5, -0.25]])
    out = pe(c)[0]
    assert out.shape == (26,)
    assert out[:2].tolist() == pytest.approx([0.5, -0.25])
    f = [2 ** (6 * k / 5) for k in range(6)]
    expected_arg = [0.5 * x for x in f] + [-0.25 * x for x in f]
    assert out[2:14].tolist() == pytest.approx([math.sin(a) for a in expected_arg], abs=1e-6)
    assert out[14:].tolist() == pytest.approx([math.cos(a) for a in expected_arg], abs=1e-6)


def test_fixed_frequencies_are_a_buffer():
    pe = SinusoidalPE(8, learnable_freq=False)
    assert "freq" in dict(pe.named_buffers()) and not list(pe.parameters())
    with pytest.raises(ValueError, match="multiple of 4"):
        SinusoidalPE(10)


def test_learned_and_raw():
    pe = LearnedPE(24)
    c = torch.tensor([[-1.0, 1.0], [1.0, -1.0]])
    out = pe(c)
    assert out.shape == (2, 24)
    # [col(x), row(y)] at the table ends
    assert torch.allclose(out[0, :12], pe.col_embed[-1]) and torch.allclose(out[0, 12:], pe.row_embed[0])
    out.sum().backward()
    assert pe.col_embed.grad is not None
    assert torch.equal(RawCoordPE()(c), c)
    assert build_positional("none", 24, True).out_dim == 2
    with pytest.raises(ValueError):
        build_positional("fourier", 24, True)
