"""What a backbone level looks like to a head: channels and stride (detectron2's ShapeSpec idea)."""
from typing import NamedTuple


class ShapeSpec(NamedTuple):
    channels: int
    stride: int
