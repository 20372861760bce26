"""Ties inside a stated resolution (reports/ranking.py) and what the report makes of them: the 0.5% GMACs rule at its
boundary, latency intervals, shared ranks, the tie-aware frontier, and a report whose latencies are all noisy."""
import numpy as np
import pandas as pd
import pytest

from reports.build import build_report
from reports.pareto import pareto_mask
from reports.ranking import REL_TIE, cost_ties, interval_ties, ranks, relative_ties
from tests.reports.fixture import trial, write_sweep


@pytest.mark.parametrize("other, tied", [(100.0, True), (100.02, True), (100.49, True), (100.51, False),
                                         (99.51, True), (99.49, False), (101.0, False),
                                         (100.5024, False)])  # 0.5% of the smaller (100), not of the larger
def test_gmacs_tie_at_half_a_percent_of_the_smaller(other, tied):
    assert REL_TIE == 0.005
    assert relative_ties([100.0, other])[0, 1] == tied
    assert relative_ties([other, 100.0])[0, 1] == tied  # symmetric
    assert cost_ties("params_m", [100.0, other])[0, 1] == tied  # params: the same rule


def test_missing_costs_tie_with_nothing():
    assert relative_ties([1.0, np.nan, np.nan]).tolist() == [[True, False, False], [False, False, False],
                                                             [False, False, False]]


@pytest.mark.parametrize("b, iqr_b, tied", [
    (55.0, 6.0, True),     # [48, 52] and [52, 58]: touching
    (55.01, 6.0, False),   # [52.01, 58.01]: apart
    (52.0, 0.0, True),     # no IQR: a point, inside
    (53.0, 0.0, False),
    (50.0, np.nan, True),  # no IQR, equal medians
])
def test_latencies_tie_when_their_iqr_intervals_overlap(b, iqr_b, tied):
    # model a: median 50 ms, IQR 4 ms -> interval 50 ± 2
    assert interval_ties([50.0, b], [2.0, iqr_b / 2])[0, 1] == tied
    assert cost_ties("latency_ms_median", [50.0, b], [2.0, iqr_b / 2])[1, 0] == tied


def test_tied_models_share_a_rank():
    gmacs = [10.0, 10.04, 12.0, 9.0, np.nan]  # 10 and 10.04: 0.4% apart
    assert ranks(gmacs, relative_ties(gmacs)).tolist() == [2, 2, 4, 1, 0]
    assert ranks(gmacs).tolist() == [2, 3, 4, 1, 0]  # without ties
    assert ranks([61.0, 61.0, 58.5], lower_is_better=False).tolist() == [1, 1, 3]


def test_frontier_keeps_tied_costs_with_equal_values_and_drops_the_worse_of_a_tie():
    cost = [2.298696, 2.299149, 3.33]  # OCR and PPM of the issue: 0.02% apart
    tied = relative_ties(cost)
    assert pareto_mask(cost, [37.5, 37.5, 45.2], tied).tolist() == [True, True, True]
    # the cheaper model by 0.02% no longer survives on cost alone: the tied, better one dominates it
    assert pareto_mask(cost, [37.39, 37.64, 45.2], tied).tolist() == [False, True, True]
    assert pareto_mask(cost, [37.39, 37.64, 45.2]).tolist() == [True, True, True]  # without the rule
    apart = [100.0, 100.51, 200.0]  # 0.51%: not tied, the cheaper one stays
    assert pareto_mask(apart, [37.39, 37.64, 45.2], relative_ties(apart)).tolist() == [True, True, True]
    close = [100.0, 100.49, 200.0]
    assert pareto_mask(close, [37.39, 37.64, 45.2], relative_ties(close)).tolist() == [False, True, True]


COSTS = dict(params_m=5.0, peak_mem_mb=300.0, latency_ms_iqr=2.0, measure_batch=1, measure_threads=1,
             measure_device="cpu", measure_dtype="float32")


def issue_demo(noisy=True, ocr_gmacs=2.298696):
    """The four heads of the issue's demo: OCR 0.02% cheaper than PPM in GMACs; every latency noisy or none."""
    rows = []
    for head, miou, gmacs, latency in (("ifa", 54.51, 3.5, 120.0), ("fpn", 45.20, 3.33, 90.0),
                                       ("ppm", 37.64, 2.299149, 80.0), ("ocr", 37.39, ocr_gmacs, 70.0)):
        rows.append(trial(head=head, miou=miou, gmacs=gmacs, latency_ms_median=latency, latency_noisy=noisy,
                          **COSTS))
    return rows


@pytest.fixture(scope="module")
def noisy_report(tmp_path_factory):
    return build_report(write_sweep(tmp_path_factory.mktemp("noisy"), issue_demo(), curves=False,
                                    per_class=False))


def test_every_latency_noisy_names_no_latency_frontier(noisy_report):
    md = (noisy_report.out_dir / "report.md").read_text()
    html = (noisy_report.out_dir / "index.html").read_text()
    assert "Pareto-optimal by latency" not in md and "Pareto-optimal by latency" not in html
    assert "synthetic: no latency ranking: every latency is noisy" in md
    assert "No latency frontier: every latency is noisy" in md
    data = noisy_report.plot_data["tradeoff_latency_synthetic"]
    assert not data["pareto"].any() and not data["ranked"].any() and (data["cost_rank"] == 0).all()
    svg = noisy_report.plots["tradeoff_latency_synthetic"].with_suffix(".svg").read_text()
    assert "Pareto frontier" not in svg and "noisy latency, not ranked" in svg  # drawn, marked, no frontier
    # no latency is bold in the table, and the ranking says why
    summary = (noisy_report.out_dir / "tables" / "summary_synthetic.md").read_text()
    assert "**70.0" not in summary and "70.0 †" in summary
    ranking = pd.read_csv(noisy_report.out_dir / "tables" / "ranking_synthetic.csv", keep_default_na=False)
    assert set(ranking["latency rank"]) == {"noisy"}


def test_gmacs_0_02_percent_apart_are_shown_tied(noisy_report):
    gm = noisy_report.plot_data["tradeoff_gmacs_synthetic"].set_index("name")
    assert gm.loc["PPM ResNet-18", "tied_with"] == "OCR ResNet-18"
    assert gm.loc["OCR ResNet-18", "cost_rank"] == gm.loc["PPM ResNet-18", "cost_rank"] == 1
    assert gm["pareto"].to_dict() == {"IFA (fused) ResNet-18": True, "Semantic-FPN ResNet-18": True,
                                      "PPM ResNet-18": True, "OCR ResNet-18": False}
    md = (noisy_report.out_dir / "report.md").read_text()
    assert ("synthetic: Pareto-optimal by GMACs: PPM ResNet-18 (tied with OCR ResNet-18), Semantic-FPN ResNet-18, "
            "IFA (fused) ResNet-18") in md
    summary = (noisy_report.out_dir / "tables" / "summary_synthetic.md").read_text()
    assert "| OCR ResNet-18 | 1/1 | 37.39 | — | **2.30** |" in summary  # both bold: the best GMACs, tied
    assert "| PPM ResNet-18 | 1/1 | 37.64 | — | **2.30** |" in summary
    ranking = pd.read_csv(noisy_report.out_dir / "tables" / "ranking_synthetic.csv", keep_default_na=False)
    assert ranking.set_index("model").loc[["PPM ResNet-18", "OCR ResNet-18"], "GMACs rank"].tolist() == [
        "1 (tied)", "1 (tied)"]
    assert "Ties: GMACs and parameters within 0.5% of the smaller value are tied" in md
    assert "Ties: GMACs and parameters within 0.5% of the smaller value are tied" in \
        (noisy_report.out_dir / "index.html").read_text()


def test_a_gmacs_gap_over_half_a_percent_ranks_apart_and_latency_ranks_when_not_noisy(tmp_path):
    rep = build_report(write_sweep(tmp_path, issue_demo(noisy=False, ocr_gmacs=2.299149 / 1.0051), curves=False,
                                   per_class=False))
    gm = rep.plot_data["tradeoff_gmacs_synthetic"].set_index("name")
    assert gm.loc["OCR ResNet-18", "tied_with"] == "" and gm.loc["OCR ResNet-18", "pareto"]
    assert gm.loc[["OCR ResNet-18", "PPM ResNet-18"], "cost_rank"].tolist() == [1, 2]
    md = (rep.out_dir / "report.md").read_text()
    # latencies 70, 80, 90, 120 ms with IQR 2: apart; OCR is the fastest, IFA the most accurate
    assert "synthetic: Pareto-optimal by latency: OCR ResNet-18, PPM ResNet-18, Semantic-FPN ResNet-18, " \
           "IFA (fused) ResNet-18" in md
