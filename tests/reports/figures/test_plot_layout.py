"""Trade-off plots stay readable at 4 and at 12 models with long labels: no two texts overlap, none is clipped;
every model keeps one colour across plots; every figure is written as PNG (300 dpi), PDF and SVG."""
import itertools

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text
from PIL import Image

from reports.figures import plots
from reports.figures.style import PAPER_DOUBLE, PAPER_SINGLE
from reports.build import build_report
from reports.regression.published import DEFAULT_PATH
from tests.reports.fixture import default_trials, twelve_model_trials, write_sweep


def _texts(fig):
    """(text, window extent) of every text drawn: titles, axis labels, legend entries, and the tick labels of
    ticks inside the view limits (matplotlib keeps labels of ticks outside them, undrawn)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tick_texts, drawn = set(), []
    for ax in fig.axes:
        for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = min(lo, hi), max(lo, hi)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    tick_texts.add(id(label))
                    if ax.get_visible() and label.get_visible() and label.get_text().strip() and \
                            lo - 1e-9 * abs(hi) <= tick.get_loc() <= hi + 1e-9 * abs(hi):
                        drawn.append(label)
    for t in fig.findobj(Text):
        if id(t) in tick_texts or not t.get_visible() or not t.get_text().strip():
            continue
        if t.axes is not None and not t.axes.get_visible():
            continue
        drawn.append(t)
    return [(t.get_text(), t.get_window_extent(renderer)) for t in drawn]


def _assert_no_overlap_or_clipping(fig, name):
    texts = [(s, b) for s, b in _texts(fig)]
    assert len(texts) > 10, name
    box = fig.bbox
    for text, bb in texts:
        assert bb.x0 >= box.x0 - 0.5 and bb.x1 <= box.x1 + 0.5 and bb.y0 >= box.y0 - 0.5 and bb.y1 <= box.y1 + 0.5, \
            f"{name}: {text!r} clipped at {bb} (figure {box})"
    for (ta, a), (tb, b) in itertools.combinations(texts, 2):
        assert not a.overlaps(b), f"{name}: {ta!r} overlaps {tb!r}"


@pytest.fixture(scope="module")
def twelve(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("twelve"), twelve_model_trials())
    return build_report(root, published=DEFAULT_PATH)


def _redraw(report, name, preset=PAPER_DOUBLE):
    """The figure behind a plot, drawn again from the data the report wrote (same function, same styles)."""
    data = report.plot_data[name]
    captured = {}
    original = plots._save

    def keep(fig, path):
        captured["fig"] = fig
        return path

    plots._save = keep
    try:
        cost = "gmacs" if "gmacs" in name else "latency_ms_median"
        pub = None
        if cost != "gmacs" and (report.out_dir / "plots" / f"{name}_published.csv").is_file():
            import pandas as pd
            pub = pd.read_csv(report.out_dir / "plots" / f"{name}_published.csv")
        plots.plot_tradeoff(data, cost, report.out_dir / "x.png", pub, styles=report.styles,
                            xlabel=f"latency (ms), median, {report.conditions['cityscapes']}", preset=preset)
    finally:
        plots._save = original
    return captured["fig"]


@pytest.mark.parametrize("preset", [PAPER_DOUBLE, PAPER_SINGLE], ids=lambda p: p.name)
@pytest.mark.parametrize("name", ["tradeoff_gmacs_cityscapes", "tradeoff_latency_cityscapes"])
def test_twelve_models_no_text_overlaps(twelve, name, preset):
    assert len(twelve.plot_data[name]) == 12
    fig = _redraw(twelve, name, preset)
    try:
        _assert_no_overlap_or_clipping(fig, name)
    finally:
        plt.close(fig)


def test_four_models_no_text_overlaps(tmp_path):
    report = build_report(write_sweep(tmp_path, default_trials()))
    data = report.plot_data["tradeoff_latency_synthetic"]
    assert len(data) == 4
    captured = {}
    original = plots._save
    plots._save = lambda fig, path: captured.setdefault("fig", fig)
    try:
        plots.plot_tradeoff(data, "latency_ms_median", tmp_path / "x.png", styles=report.styles)
    finally:
        plots._save = original
    _assert_no_overlap_or_clipping(captured["fig"], "4 models")
    plt.close(captured["fig"])


def test_overlap_check_can_fail():
    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "a long label here")
    ax.text(0.52, 0.5, "another long label")
    with pytest.raises(AssertionError, match="overlaps"):
        _assert_no_overlap_or_clipping(fig, "deliberate")
    plt.close(fig)


def test_twelve_model_check_fails_when_its_labels_are_forced_to_overlap(twelve, monkeypatch):
    def piled(fig, handles, preset):  # the plot's own legend entries, each drawn over the one before
        fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=7.5, labelspacing=-1.0)

    monkeypatch.setattr(plots, "_legend", piled)
    fig = _redraw(twelve, "tradeoff_latency_cityscapes")
    try:
        with pytest.raises(AssertionError, match="overlaps"):
            _assert_no_overlap_or_clipping(fig, "piled legend")
    finally:
        plt.close(fig)


def test_one_colour_per_model_and_conditions_in_titles(twelve):
    assert len(set(s.color for s in twelve.styles.values())) == 12
    assert twelve.conditions["cityscapes"] == "1024x2048, batch 1, fp32, 2 CPU threads"
    svg = (twelve.out_dir / "plots" / "tradeoff_latency_cityscapes.svg").read_text()
    assert "latency (ms), median, 1024x2048, batch 1, fp32, 2 CPU threads" in svg
    assert "noisy latency, not ranked" in svg  # the resnet101 OCR row is marked
    assert "horizontal bar: IQR of the timing runs" in svg  # the latency bars are explained
    gmacs = (twelve.out_dir / "plots" / "tradeoff_gmacs_cityscapes.svg").read_text()
    assert "GMACs (fvcore), input 1024x2048, batch 1" in gmacs and "thread" not in gmacs  # GMACs: no threads
    assert "horizontal bar" not in gmacs


def test_table_files_state_the_conditions_and_the_noisy_mark(twelve):
    """A table copied alone (LaTeX into a paper, Markdown, HTML) keeps the conditions of its costs and what † means."""
    note = ("Costs measured at 1024x2048, batch 1, fp32, 2 CPU threads; † latency noisy: do not rank on it; bold: the "
            "best value and every value tied with it (GMACs, params within 0.5%; latencies whose median ± IQR/2 "
            "intervals overlap; noisy latencies not ranked)")
    tables = twelve.out_dir / "tables"
    tex_note = note.replace("%", r"\%").replace("†", r"\dag{}").replace("±", r"$\pm$")
    assert r"\caption{cityscapes: models. " + tex_note + "}" in (tables / "summary_cityscapes.tex").read_text()
    assert (tables / "summary_cityscapes.md").read_text().rstrip().endswith(note)
    assert f"<caption>cityscapes: models. {note}</caption>" in (tables / "summary_cityscapes.html").read_text()
    assert "Costs measured" not in (tables / "per_class_cityscapes.tex").read_text()  # no costs there


def test_every_plot_in_three_formats(twelve):
    for name, png in twelve.plots.items():
        with Image.open(png) as im:
            dpi = im.info.get("dpi", (0, 0))
            assert round(dpi[0]) == 300, name
        assert png.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-", name
        assert "<svg" in png.with_suffix(".svg").read_text()[:2000], name
