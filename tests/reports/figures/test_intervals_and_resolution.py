"""Bootstrap intervals in the report's tables and trade-off plots, the check rule it states, and the plot of
accuracy against IFA's query resolution (only when the models differ in it)."""
import numpy as np
import pandas as pd
import pytest

from reports.build import build_report
from reports.regression.published import DEFAULT_PATH
from tests.reports.fixture import trial, write_sweep

COSTS = dict(gmacs=10.0, params_m=5.0, latency_ms_median=50.0, peak_mem_mb=300.0)


def stride_trials():
    """IFA at query strides 4, 2, 1 (one seed each, with intervals) and an FPN, which has no stride."""
    rows = [trial(head="ifa", ifa_query_stride=s, ifa_query="label" if s == 1 else "upsample", miou=m,
                  boundary_iou=b, miou_ci_low=m - 1.5, miou_ci_high=m + 1.25, **{**COSTS, "gmacs": g})
            for s, m, b, g in ((4, 60.0, 40.0, 10.0), (2, 61.0, 43.0, 12.0), (1, 61.5, 45.0, 20.0))]
    rows.append(trial(head="fpn", miou=55.0, boundary_iou=30.0, **COSTS))
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_report(write_sweep(tmp_path_factory.mktemp("sweep"), stride_trials(), curves=False,
                                    per_class=False))


def test_intervals_render_in_every_table_format(built):
    tables = built.out_dir / "tables"
    md = (tables / "summary_synthetic.md").read_text()
    # the interval in a column of its own, right-aligned; "—" where a model has none
    assert md.splitlines()[0].startswith("| model | n | mIoU (%) | 95% interval | boundary IoU (%) |")
    assert md.splitlines()[1].startswith("|---|--:|--:|--:|")
    assert "| IFA (fused) ResNet-18 query-stride=2 | 1/1 | 61.00 | [59.50, 62.25] | 43.00 |" in md
    assert "| Semantic-FPN ResNet-18 | 1/1 | 55.00 | — | 30.00 |" in md
    tex = (tables / "summary_synthetic.tex").read_text()
    # the mean an siunitx S column, the interval a right-aligned text column beside it
    assert r"& 61.00 & [59.50, 62.25] & 43.00 &" in tex
    assert r"\begin{tabular}{lrS[table-format=2.2]rS[table-format=2.2]" in tex
    html = (tables / "summary_synthetic.html").read_text()
    assert '<td class="num">61.00</td><td class="num">[59.50, 62.25]</td>' in html
    numeric = pd.read_csv(tables / "summary_synthetic.csv").set_index("label")
    assert numeric.loc["ifa resnet18 query-stride=1", ["miou_ci_low", "miou_ci_high"]].tolist() == [60.0, 62.75]
    assert "95% bootstrap interval" in (built.out_dir / "index.html").read_text()


def test_tradeoff_plot_draws_the_interval_and_says_so(built):
    data = built.plot_data["tradeoff_gmacs_synthetic"].set_index("label")
    assert data.loc["ifa resnet18 query-stride=4", ["ci_low", "ci_high"]].tolist() == [58.5, 61.25]
    assert np.isnan(data.loc["fpn resnet18", "ci_low"])
    svg = built.plots["tradeoff_gmacs_synthetic"].with_suffix(".svg").read_text()
    assert "95% bootstrap interval (val images)" in svg


def test_resolution_plot_when_the_strides_differ(built):
    data = built.plot_data["resolution_synthetic"]
    assert data["model"].unique().tolist() == ["ifa resnet18"]  # one line: the stride is the x axis
    assert data["query_stride"].tolist() == [4, 2, 1]
    assert data["resolution"].tolist() == [0.25, 0.5, 1.0]
    assert data["miou_mean"].tolist() == [60.0, 61.0, 61.5]
    assert data["boundary_iou_mean"].tolist() == [40.0, 43.0, 45.0]
    assert data["gmacs"].tolist() == [10.0, 12.0, 20.0]
    png = built.plots["resolution_synthetic"]
    assert png.is_file() and png.with_suffix(".pdf").is_file()
    svg = png.with_suffix(".svg").read_text()
    assert "IFA query resolution" in svg and "1/1 (label)" in svg and "eval_mode=whole" in svg
    assert "Accuracy vs IFA query resolution" in (built.out_dir / "index.html").read_text()
    on_disk = pd.read_csv(built.out_dir / "plots" / "resolution_synthetic.csv")
    assert on_disk["query_stride"].tolist() == [4, 2, 1]


@pytest.mark.parametrize("strides", [(), (4, 4)])
def test_no_resolution_plot_when_the_strides_do_not_differ(tmp_path, strides):
    rows = [trial(head="ifa", seed=i, miou=60.0 + i, **COSTS, **({"ifa_query_stride": s} if s else {}))
            for i, s in enumerate(strides or (None, None))]
    rep = build_report(write_sweep(tmp_path, rows, curves=False, per_class=False))
    assert not any(name.startswith("resolution_") for name in rep.plots)
    assert "query resolution" not in (rep.out_dir / "index.html").read_text()


def test_report_states_the_check_rule(tmp_path):
    cs = dict(dataset="cityscapes", stem="v1c", output_stride=8, iterations=40000, crop="512x1024",
              num_classes=19, backbone="resnet50", head="ppm")
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.5, **cs)], curves=False, per_class=False)
    plain = build_report(root, tmp_path / "plain", published=DEFAULT_PATH)
    assert "Check rule: a row passes when |reproduced - published| &lt;= 1" in (plain.out_dir / "index.html").read_text()
    with_ci = build_report(root, tmp_path / "ci", published=DEFAULT_PATH, ci=95)
    html = (with_ci.out_dir / "index.html").read_text()
    assert "Check rule: a row passes when the published value lies inside the 95% bootstrap interval" in html
    assert with_ci.checks["miou_ss"].ci == 95
