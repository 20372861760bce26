"""The `paper` preset at column width: every text in the exported PDF at least 7 pt (read back from the PDF with
pdfplumber), no title inside, a legend never taller than the axes, names as papers write them, one colour-blind-safe
hue and one marker per method."""
import itertools
import math

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pdfplumber
import pytest

from reports.build import build_report
from reports.figures import plots
from reports.figures.style import METHOD_STYLE, MIN_FONT_PT, OKABE_ITO, PAPER_DOUBLE, PAPER_SINGLE
from reports.regression.published import DEFAULT_PATH
from tests.reports.fixture import twelve_model_trials, write_sweep


def pdf_text_sizes(path):
    """(character, size in pt) of every character on the PDF's first page, with the page width and its text. The
    size is the glyph box across the writing direction, at any angle: a glyph box of advance w and size h turned by
    t spans w|cos t| + h|sin t| across and w|sin t| + h|cos t| up (pdfplumber's own `size` is the box's height,
    the advance for text turned by 90 degrees)."""
    with pdfplumber.open(path) as pdf:
        page = pdf.pages[0]
        sizes = []
        for c in page.chars:
            a, b = c["matrix"][:2]
            scale = math.hypot(a, b)
            cos, sin = abs(a) / scale, abs(b) / scale
            adv = c["adv"] * scale
            if cos >= sin:
                size = (c["y1"] - c["y0"] - adv * sin) / cos
            else:
                size = (c["x1"] - c["x0"] - adv * cos) / sin
            sizes.append((c["text"], size))
        return sizes, float(page.width), page.extract_text()


@pytest.fixture(scope="module")
def twelve(tmp_path_factory):
    return build_report(write_sweep(tmp_path_factory.mktemp("twelve"), twelve_model_trials()), published=DEFAULT_PATH)


@pytest.mark.parametrize("name", ["tradeoff_gmacs_cityscapes_column", "tradeoff_latency_cityscapes_column",
                                  "tradeoff_latency_cityscapes", "curves_cityscapes", "per_class_cityscapes"])
def test_every_text_in_the_pdf_is_at_least_7_pt(twelve, name):
    sizes, width, text = pdf_text_sizes(twelve.out_dir / "plots" / f"{name}.pdf")
    expected = PAPER_SINGLE.width if name.endswith("_column") else PAPER_DOUBLE.width
    assert width == pytest.approx(expected * 72, abs=0.5)  # the single-column export is 3.3 in wide
    assert len(sizes) > 200
    small = sorted({(ch, round(s, 2)) for ch, s in sizes if s < MIN_FONT_PT - 0.01})
    assert not small, f"{name}: text under {MIN_FONT_PT} pt: {small[:10]}"
    assert "mIoU vs" not in text and "cityscapes:" not in text  # no title inside the figure


def test_the_size_check_sees_small_and_turned_text(tmp_path):
    """The reader measures what it should: a 6-pt tick label and a 6.5-pt turned axis label are caught."""
    fig, ax = plt.subplots(figsize=(3.3, 2.4))
    ax.set_ylabel("turned label", fontsize=6.5)
    ax.set_xlabel("upright label", fontsize=9)
    ax.tick_params(labelsize=6)
    ax.text(0.2, 0.5, "at thirty degrees", fontsize=6.8, rotation=30)
    fig.savefig(tmp_path / "x.pdf")
    plt.close(fig)
    sizes, _, _ = pdf_text_sizes(tmp_path / "x.pdf")
    found = {round(s, 1) for _, s in sizes}
    assert found == {6.0, 6.5, 6.8, 9.0}


@pytest.mark.parametrize("preset", [PAPER_SINGLE, PAPER_DOUBLE], ids=lambda p: p.name)
def test_legend_never_taller_than_the_axes_and_names_as_papers_write_them(twelve, preset, monkeypatch):
    captured = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: captured.setdefault("fig", fig))
    data = twelve.plot_data["tradeoff_latency_cityscapes"]
    plots.plot_tradeoff(data, "latency_ms_median", twelve.out_dir / "x.png", styles=twelve.styles, preset=preset)
    fig = captured["fig"]
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        (legend,) = fig.legends
        (ax,) = fig.axes
        assert legend.get_window_extent(renderer).height <= ax.get_window_extent(renderer).height + 1
        assert fig.get_size_inches()[0] == preset.width
        assert not ax.get_title() and not fig._suptitle
        labels = [t.get_text() for t in legend.get_texts()]
        assert "IFA (fused) ResNet-50 OS32 backbone.width=0.5" in labels
        assert "OCR ResNet-101 OS8 backbone.width=1.0 †" in labels
        assert not any(label.startswith(("ifa ", "fpn ", "ppm ", "ocr ")) for label in labels)
        assert "horizontal bar: IQR of the timing runs" in labels
        assert ax.get_ylabel() == "mIoU (%), mean of 3 seeds"
    finally:
        plt.close(fig)


def test_mean_over_seeds_only_when_there_are_several():
    assert plots.miou_axis_label([1, 1]) == "mIoU (%)"
    assert plots.miou_axis_label([3, 3]) == "mIoU (%), mean of 3 seeds"
    assert plots.miou_axis_label([1, 3]) == "mIoU (%), mean over seeds (n: table)"


def test_one_okabe_ito_hue_and_one_marker_per_method():
    methods = ["IFA (fused)", "IFA (reference)", "Semantic-FPN", "PPM", "OCR"]
    colours = [METHOD_STYLE[m][0] for m in methods]
    assert set(colours) <= set(OKABE_ITO.values()) and len(set(colours)) == len(methods)
    assert len({METHOD_STYLE[m][1] for m in methods}) == len(methods)
    # Semantic-FPN and OCR are not the orange/vermillion pair; no two methods are near in hue and lightness
    assert {METHOD_STYLE["Semantic-FPN"][0], METHOD_STYLE["OCR"][0]} != {OKABE_ITO["orange"], OKABE_ITO["vermillion"]}
    for a, b in itertools.combinations(colours, 2):
        ra, rb = mcolors.to_rgb(a), mcolors.to_rgb(b)
        assert sum((x - y) ** 2 for x, y in zip(ra, rb)) ** 0.5 > 0.25, (a, b)
