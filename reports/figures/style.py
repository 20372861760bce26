"""How figures look: the `paper` preset (sizes and fonts for a journal column) and one colour and marker per
model, the same in every plot of a report.

Colours are Okabe-Ito (colour-blind safe), one hue per method, chosen so that no two methods of the usual set are
neighbours in hue (Semantic-FPN orange and OCR reddish purple, not orange and vermillion); models of one method on
different backbones get darker and lighter shades of its hue. Markers are per method, so that points of different
methods stay visible where they overlap."""
from __future__ import annotations

import colorsys
from contextlib import contextmanager
from typing import NamedTuple

import matplotlib

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}

# method display name (reports/names.py) -> (colour, marker)
METHOD_STYLE: dict[str, tuple[str, str]] = {
    "IFA (fused)": (OKABE_ITO["blue"], "o"),
    "IFA": (OKABE_ITO["blue"], "o"),
    "IFA (reference)": (OKABE_ITO["sky blue"], "s"),
    "Semantic-FPN": (OKABE_ITO["orange"], "^"),
    "PPM": (OKABE_ITO["bluish green"], "D"),
    "OCR": (OKABE_ITO["reddish purple"], "v"),
}
# methods the table does not name: the remaining Okabe-Ito colours (yellow is too light on white), then greys
SPARE = [(OKABE_ITO["vermillion"], "P"), (OKABE_ITO["black"], "X"), ("#777777", "*"), ("#444444", "h"),
         ("#AAAAAA", "p")]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*"]
# Published points: grey, and shapes no model uses, so that they never read as one of ours.
PUBLISHED_MARKERS = ["x", "+", "1", "2", "3", "4", "|", "_", "$\u2217$", "$\u2020$", "$\u2021$", "$\u00a7$"]


class Style(NamedTuple):
    color: tuple
    marker: str


class Preset(NamedTuple):
    """A figure size and its fonts, in inches and points at the size the figure is printed."""
    name: str
    width: float
    height: float  # of the axes area's figure before the legend; the legend never makes the axes shorter
    font: float  # axis labels, legend
    tick: float  # tick labels


MIN_FONT_PT = 7.0
PAPER_SINGLE = Preset("paper-single", 3.3, 2.4, 7.5, 7.0)  # one column of a two-column paper
PAPER_DOUBLE = Preset("paper-double", 6.9, 2.9, 8.0, 7.0)  # the full text width
PRESETS = {"single": PAPER_SINGLE, "double": PAPER_DOUBLE}


@contextmanager
def paper_fonts(preset: Preset):
    """Every text of figures made inside at least MIN_FONT_PT at the preset's size."""
    with matplotlib.rc_context({
        "font.size": preset.font, "axes.labelsize": preset.font, "axes.titlesize": preset.font,
        "xtick.labelsize": preset.tick, "ytick.labelsize": preset.tick, "legend.fontsize": preset.font - 0.5
        if preset.font - 0.5 >= MIN_FONT_PT else preset.font, "legend.title_fontsize": preset.font,
        "figure.titlesize": preset.font, "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
        "axes.linewidth": 0.6, "lines.linewidth": 1.0, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    }):
        yield


def _shade(hex_colour: str, k: int) -> tuple:
    """The k-th shade of a colour: 0 itself, then darker, lighter, darker still, ..."""
    r, g, b = matplotlib.colors.to_rgb(hex_colour)
    h, lightness, s = colorsys.rgb_to_hls(r, g, b)
    step = (k + 1) // 2 * (-1 if k % 2 else 1) * 0.16
    return colorsys.hls_to_rgb(h, min(max(lightness + step, 0.12), 0.85), s)


def model_styles(labels, methods=None) -> dict[str, Style]:
    """labels in report order -> Style. `methods` (parallel to labels, display names) picks the hue and marker;
    several models of one method get shades of its hue. Without methods every label is its own method."""
    labels = list(labels)
    methods = list(methods) if methods is not None else labels
    method_of = dict(zip(labels, methods))
    spare = iter(SPARE * (1 + len(labels) // len(SPARE)))
    base = {}
    for method in dict.fromkeys(method_of[label] for label in dict.fromkeys(labels)):
        base[method] = METHOD_STYLE.get(method) or next(spare)
    seen: dict[str, int] = {}
    styles = {}
    for label in dict.fromkeys(labels):
        method = method_of[label]
        colour, marker = base[method]
        k = seen.get(method, 0)
        seen[method] = k + 1
        styles[label] = Style(tuple(_shade(colour, k)), marker)
    return styles
