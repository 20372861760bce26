"""One colour and marker per model, the same in every plot of a report."""
from __future__ import annotations

from typing import NamedTuple

import seaborn as sns

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]
# Published points: grey, and shapes no model uses, so that they never read as one of ours.
PUBLISHED_MARKERS = ["x", "+", "1", "2", "3", "4", "|", "_", "$\u2217$", "$\u2020$", "$\u2021$", "$\u00a7$"]


class Style(NamedTuple):
    color: tuple
    marker: str


def model_styles(labels) -> dict[str, Style]:
    """labels in report order -> Style. Colour-blind palette up to 10 models, then tab20; the marker cycles
    with a different period, so no two of up to 120 models share both."""
    labels = list(dict.fromkeys(labels))
    palette = sns.color_palette("colorblind" if len(labels) <= 10 else "tab20", max(len(labels), 1))
    return {label: Style(tuple(palette[i % len(palette)]), MARKERS[i % len(MARKERS)])
            for i, label in enumerate(labels)}
