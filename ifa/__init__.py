"""Implicit Feature Alignment head: coordinates, positional encodings, query MLP, head (reference + fused)."""
from .coords import AxisSampling, axis_sampling, cell_centers, nearest_cells, neighbour_slots, relative_coords
from .head import FORMULATIONS, IFAHead
from .mlp import QueryMLP, fold_batchnorm
from .positional import LearnedPE, RawCoordPE, SinusoidalPE, build_positional, sinusoidal_frequencies
from .shape_spec import ShapeSpec

__all__ = [
    "AxisSampling", "axis_sampling", "cell_centers", "nearest_cells", "neighbour_slots", "relative_coords",
    "FORMULATIONS", "IFAHead", "QueryMLP", "fold_batchnorm", "LearnedPE", "RawCoordPE", "SinusoidalPE",
    "build_positional", "sinusoidal_frequencies", "ShapeSpec",
]
