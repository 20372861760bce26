"""ifa/positional.py: what `make mutation MUTATE=positional` found unasserted."""
import pytest
import torch

from ifa.positional import LearnedPE, SinusoidalPE, sinusoidal_frequencies


def test_default_widths_are_the_released_24():
    sin, learned = SinusoidalPE(), LearnedPE()
    assert sin.out_dim == 26 and tuple(sin.freq.shape) == (2, 12) and isinstance(sin.freq, torch.nn.Parameter)
    assert learned.out_dim == 24
    assert tuple(learned.row_embed.shape) == tuple(learned.col_embed.shape) == (100, 12)
    assert sinusoidal_frequencies(8).dtype == torch.float32


def test_learned_pe_interpolates_linearly_between_table_entries():
    pe = LearnedPE(2, table_size=5)  # entries at -1, -0.5, 0, 0.5, 1
    with torch.no_grad():
        pe.row_embed.copy_(torch.tensor([[0.0], [10.0], [20.0], [30.0], [40.0]]))
        pe.col_embed.copy_(torch.tensor([[1.0], [2.0], [4.0], [8.0], [16.0]]))
    coord = torch.tensor([[-1.0, -1.0], [-0.5, 0.25], [0.6, 1.0], [1.0, -0.75]])  # (y, x)
    out = pe(coord)
    # [col(x), row(y)]
    assert out.flatten().tolist() == pytest.approx([1.0, 0.0, 6.0, 10.0, 16.0, 32.0, 1.5, 40.0])


def test_encoding_errors_name_the_width():
    with pytest.raises(ValueError, match=r"^pe_dim must be a multiple of 4 for the sinusoidal encoding, got 6$"):
        sinusoidal_frequencies(6)
    with pytest.raises(ValueError, match=r"^pe_dim must be even for the learned encoding, got 3$"):
        LearnedPE(3)
