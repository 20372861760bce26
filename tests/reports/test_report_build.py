"""`build_report` on a fixture sweep: table contents, plot data, PNGs, report.md / index.html, partial sweeps."""
import re
import statistics

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reports.build import build_report
from reports.regression.published import DEFAULT_PATH
from tests.reports.fixture import CLASSES, default_trials, loss_at, trial, write_sweep


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("sweep"), default_trials())
    return build_report(root)


def test_summary_table_numbers(built):
    out = built.out_dir
    assert out == built.results.sweep_dir / "report"
    csv = pd.read_csv(out / "tables" / "summary_synthetic.csv").set_index("label")
    fused = [t["miou"] for t in default_trials() if t["head"] == "ifa" and t["formulation"] == "fused"]
    assert csv.loc["ifa resnet18 fused", "miou_mean"] == pytest.approx(statistics.mean(fused))
    assert csv.loc["ifa resnet18 fused", "miou_std"] == pytest.approx(statistics.stdev(fused))
    assert csv.loc["fpn resnet18", "n"] == 2 and csv.loc["fpn resnet18", "n_trials"] == 3
    assert pd.isna(csv.loc["ocr resnet18", "miou_mean"])
    md = (out / "tables" / "summary_synthetic.md").read_text()
    # bold: the best of each ranked column, ties included (both IFA rows have the best mIoU, 61.00)
    assert ("| IFA (fused) ResNet-18 | 3/3 | **61.00 ± 1.00** | **42.00 ± 2.00** | **10.00** | **5.00** | 50.0 | 300 |"
            in md)
    assert "| IFA (reference) ResNet-18 | 3/3 | **61.00 ± 0.50** | 41.00 ± 1.00 | 14.00 | **5.00** | 80.0 | 400 |" in md
    assert md.splitlines()[1] == "|---|--:|--:|--:|--:|--:|--:|--:|"  # numbers right-aligned
    assert "status" not in md.splitlines()[0] and "peak mem (MiB)" in md
    assert "| OCR ResNet-18 | 0/3 | — | — |" in md
    assert "| PPM ResNet-18 | 2/3 | 58.50 ± 0.71 |" in md and "| **40.0** |" in md
    tex = (out / "tables" / "summary_synthetic.tex").read_text()
    assert r"\bfseries 61.00 \pm 1.00" in tex and r"\toprule" in tex and r"{mIoU (\%)}" in tex
    assert r"\centering" in tex and r"\label{tab:summary_synthetic}" in tex
    assert (r"\begin{tabular}{lrS[table-format=2.2 +- 1.2]S[table-format=2.2 +- 1.2]S[table-format=2.2]"
            r"S[table-format=1.2]S[table-format=2.1]S[table-format=3]}") in tex and "status" not in tex
    html = (out / "tables" / "summary_synthetic.html").read_text()
    assert '<td class="num"><strong>61.00 ± 1.00</strong></td>' in html and '<td>IFA (fused) ResNet-18</td>' in html


def test_tradeoff_plot_data_and_pareto(built):
    gm = built.plot_data["tradeoff_gmacs_synthetic"].set_index("label")
    # ocr has no completed trial: not drawn. Costs: fused 10, fpn 12, reference 14, ppm 20 GMACs.
    assert sorted(gm.index) == ["fpn resnet18", "ifa resnet18 fused", "ifa resnet18 reference", "ppm resnet18"]
    assert gm["pareto"].to_dict() == {"ifa resnet18 fused": True, "fpn resnet18": False,
                                      "ifa resnet18 reference": False, "ppm resnet18": False}
    assert gm.loc["fpn resnet18", "miou_std"] == pytest.approx(statistics.stdev([55.0, 57.0]))
    lat = built.plot_data["tradeoff_latency_synthetic"].set_index("label")
    # latency: ppm 40 ms / 58.5, fpn 45 / 56, fused 50 / 61, reference 80 / 61
    assert lat["pareto"].to_dict() == {"ppm resnet18": True, "fpn resnet18": False, "ifa resnet18 fused": True,
                                       "ifa resnet18 reference": False}
    on_disk = pd.read_csv(built.out_dir / "plots" / "tradeoff_latency_synthetic.csv")
    assert on_disk.set_index("label")["cost"].to_dict() == lat["cost"].to_dict()


def test_pngs_are_real_images(built):
    for name in ("tradeoff_gmacs_synthetic", "tradeoff_latency_synthetic", "per_class_synthetic",
                 "curves_synthetic"):
        path = built.plots[name]
        assert path.stat().st_size > 15_000, name
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size[0] >= 500 and im.size[1] >= 250
            assert len(np.unique(np.asarray(im.convert("L")))) > 20  # not a blank canvas


def test_per_class_table_means(built):
    pc = built.per_class["synthetic"]
    assert list(pc.index) == CLASSES
    # only ifa fused and fpn have per-class rows (in the sweep's order); fpn's seed 2 failed
    assert list(pc.columns) == ["ifa resnet18 fused", "fpn resnet18"]
    fused = [t["class_iou"] for t in default_trials() if t["head"] == "ifa" and t.get("class_iou")]
    for i, cls in enumerate(CLASSES):
        assert pc.loc[cls, "ifa resnet18 fused"] == pytest.approx(statistics.mean(c[i] for c in fused))
    assert pc.loc["car", "fpn resnet18"] == pytest.approx(31.0)


def test_training_curves_data(built):
    curves = built.plot_data["curves_synthetic"]
    loss = curves[curves["kind"] == "loss"]
    first = loss[loss["label"] == "ifa resnet18 fused"]
    assert first["trial_id"].nunique() == 3
    row = first[(first["seed"] == 1) & (first["iter"] == 30)]
    assert row["value"].item() == pytest.approx(loss_at(30, 1))
    # the failed fpn trial's curve stops where it failed (iteration 40)
    failed = loss[(loss["label"] == "fpn resnet18") & (loss["status"] == "failed")]
    assert failed["iter"].max() == 40
    miou = curves[curves["kind"] == "miou"]
    assert set(miou["iter"]) == {50, 100}


def test_report_shows_partial_sweep(built):
    md = (built.out_dir / "report.md").read_text()
    assert built.status_counts == {"completed": 10, "failed": 2, "running": 1, "pending": 1, "missing": 1}
    assert "| synthetic | fpn resnet18 | 2 | failed | t008 | 1 | RuntimeError: loss is NaN at iteration 40 |" in md
    assert "| synthetic | ocr resnet18 | 0 | failed | t011 | 1 | MemoryError: cannot allocate 4.0 GiB |" in md
    assert "| synthetic | ppm resnet18 | 2 | missing |" in md
    assert "| cpu | fixture-cpu | 2.13.0 | 2.60.0 | float32 | 2 | 3.11.0 | fixture | 10 |" in md
    assert "Pareto frontier (max mIoU, min GMACs; ties respected): IFA (fused) ResNet-18." in md
    assert ("- synthetic: best mIoU: IFA (fused) ResNet-18 61.00 ± 1.00 (n=3), "
            "IFA (reference) ResNet-18 61.00 ± 0.50 (n=3)\n"
            "- synthetic: Pareto-optimal by GMACs: IFA (fused) ResNet-18\n"
            "- synthetic: Pareto-optimal by latency: PPM ResNet-18, IFA (fused) ResNet-18\n" in md)
    assert "No per-class IoU for: ifa resnet18 reference, ppm resnet18, ocr resnet18." in md
    status = pd.read_csv(built.out_dir / "tables" / "status.csv", keep_default_na=False)
    assert status["status"].tolist() == ["failed", "failed", "running", "pending", "missing"]


def test_index_html_links_existing_images(built):
    html = (built.out_dir / "index.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) == 4
    for rel in images:
        assert (built.out_dir / rel).is_file(), rel
    assert "MemoryError: cannot allocate 4.0 GiB" in html and "61.00 ± 1.00" in html


def test_rebuild_replaces_the_report_whole(tmp_path):
    root = write_sweep(tmp_path / "s", default_trials()[:3])
    out = tmp_path / "out"
    build_report(root, out)
    (out / "stale.txt").write_text("old")
    build_report(root, out)
    assert not (out / "stale.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "s"]  # no temp folders left


def test_published_points_and_check_section(tmp_path):
    cs = dict(dataset="cityscapes", stem="v1c", output_stride=8, iterations=40000, crop="512x1024",
              num_classes=19, backbone="resnet50", head="ppm", gmacs=300.0, latency_ms_median=900.0)
    root = write_sweep(tmp_path, [trial(seed=0, miou=77.5, **cs), trial(seed=1, miou=78.1, **cs)])
    rep = build_report(root, published=DEFAULT_PATH)
    pub = pd.read_csv(rep.out_dir / "plots" / "tradeoff_latency_cityscapes_published.csv")
    # Every published cityscapes row with fps appears at 1000/fps ms; none on the GMACs plot.
    row = pub[pub["label"].str.startswith("PSPNet R-50-D8 ")].sort_values("cost")
    assert row["cost"].round(3).tolist() == [round(1000 / 4.07, 3), round(1000 / 1.76, 3)]
    assert not (rep.out_dir / "plots" / "tradeoff_gmacs_cityscapes_published.csv").exists()
    check = pd.read_csv(rep.out_dir / "tables" / "published_check.csv")
    assert check[["metric", "published", "delta", "verdict"]].values.tolist() == [
        ["miou_ss", 77.85, -0.05, "ok"]]
    assert any("published rows give no GMACs" in n for n in rep.notes)


def test_sweep_without_completed_trials(tmp_path):
    trials = [trial(seed=0, status="pending"), trial(seed=1, status="running"),
              trial(head="fpn", seed=0, status="failed", error="ValueError: bad crop")]
    rep = build_report(write_sweep(tmp_path / "s", trials), tmp_path / "out")
    assert rep.status_counts == {"completed": 0, "failed": 1, "running": 1, "pending": 1, "missing": 1}
    assert "tradeoff_gmacs_synthetic" not in rep.plots  # nothing to draw
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| Semantic-FPN ResNet-18 | 0/2 | — | — |" in md and "ValueError: bad crop" in md
    assert "No completed trial recorded its environment." in md


def test_empty_results_file(tmp_path):
    rep = build_report(write_sweep(tmp_path, []))
    assert len(rep.models) == 0 and rep.status_counts["completed"] == 0
    assert "0 trials, 0 models" in (rep.out_dir / "report.md").read_text()


def test_mixed_devices_are_flagged(tmp_path):
    rows = [trial(seed=0, miou=50.0, gmacs=1.0, latency_ms_median=5.0),
            trial(head="fpn", seed=0, miou=40.0, gmacs=2.0, latency_ms_median=1.0)]
    root = write_sweep(tmp_path, rows)
    df = pd.read_csv(root / "results.csv")
    df.loc[df["head"] == "fpn", "device"] = "cuda"
    df.to_csv(root / "results.csv", index=False)
    rep = build_report(root)
    assert "synthetic: latencies were measured on several devices (cpu, cuda); compare them only within one device" \
        in rep.notes
    assert rep.plot_data["tradeoff_latency_synthetic"].set_index("label")["device"].to_dict() == {
        "ifa resnet18": "cpu", "fpn resnet18": "cuda"}


def test_latex_escapes_captions_and_cells():
    from reports.tables import latex

    tex = latex(pd.DataFrame({"model": ["ifa r18 train.lr=0.02"], "mIoU (%)": ["50.00 ± 1.00"]}),
                caption="pascal_context_59: 50% & more")
    assert r"\caption{pascal\_context\_59: 50\% \& more}" in tex
    assert r"ifa r18 train.lr=0.02 & 50.00 \pm 1.00 \\" in tex and r"{mIoU (\%)}" in tex


def test_single_scale_and_ms_flip_side_by_side(tmp_path):
    ms = dict(eval_scales="0.5,0.75,1.0,1.25,1.5,1.75", eval_flip=True)
    rows = [trial(seed=0, miou=60.0, gmacs=1.0), trial(seed=1, miou=62.0, gmacs=1.0),
            trial(seed=0, miou=63.0, gmacs=1.0, **ms), trial(seed=1, miou=64.0, gmacs=1.0, **ms),
            trial(head="fpn", seed=0, miou=50.0, gmacs=2.0), trial(head="fpn", seed=1, miou=52.0, gmacs=2.0)]
    rep = build_report(write_sweep(tmp_path, rows))
    table = rep.summaries["synthetic"].set_index("label")
    assert list(table.index) == ["ifa resnet18", "fpn resnet18"]
    assert table.loc["ifa resnet18", "miou_mean"] == 61.0 and table.loc["ifa resnet18", "miou_ms_flip_mean"] == 63.5
    assert pd.isna(table.loc["fpn resnet18", "miou_ms_flip_mean"])
    md = (rep.out_dir / "tables" / "summary_synthetic.md").read_text()
    assert md.splitlines()[0].startswith("| model | n | mIoU ss (%) | mIoU ms+flip (%) |")
    assert "| IFA (fused) ResNet-18 | 2/2 | **61.00 ± 1.41** | 63.50 ± 0.71 |" in md
