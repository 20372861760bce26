"""The model-zoo page: its counts are what `ifa-bench measure` reports (IFA included); one row per published row."""
import json
from pathlib import Path

from bench.cli import main
from bench.config.experiment_file import load_experiment
from tools.model_zoo.generate import count, how_matched, render

SYNTHETIC = Path(__file__).resolve().parents[2] / "experiments" / "synthetic.yaml"


def test_ifa_counts_equal_ifa_bench_measure(capsys):
    # An IFA recipe at a small size: the zoo's count and `ifa-bench measure --config` agree to the MAC.
    params, gmacs = count(load_experiment(SYNTHETIC, []).model, (64, 128))
    assert main(["measure", "--config", str(SYNTHETIC), "--input", "64x128", "--no-latency", "--no-memory",
                 "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["head"] == "ifa" and gmacs > 0
    assert gmacs == row["gmacs"]
    assert params == round(row["params_m"] * 1e6)  # both without the auxiliary head (training-only)


def test_render_has_one_row_per_published_row_and_says_why_not():
    rows = [{"dataset": "cityscapes_val", "method": "OCRNet", "backbone": "HRNetV2p-W18", "iterations": 40000,
             "miou_ss": 77.72, "kind": "published", "match": {"crop": "512x1024"}, "recipe": "cityscapes_ocr_hrnet (t)",
             "no_recipe": "", "size": (1024, 2048), "params": 12_080_036, "gmacs": 100.0},
            {"dataset": "ade20k_val", "method": "PSPNet", "backbone": "R-50-D8", "iterations": 80000,
             "miou_ss": 41.13, "kind": "published", "match": {"crop": "512x512"}, "recipe": "",
             "no_recipe": "no recipe in experiments/ trains ppm", "size": (512, 512), "params": 1e6, "gmacs": 1.0}]
    text = render(rows)
    table = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == 2
    assert "| cityscapes_ocr_hrnet (t) | 1024x2048 | 12.08 | 100.0 |" in table[0]
    assert table[1].endswith("| no recipe in experiments/ trains ppm |")
    assert "1 of 2 published rows have a recipe." in text


def test_each_published_row_says_how_check_matches_it():
    from reports.regression.published import load_published
    from tools.model_zoo.recipes import recipe_for, recipe_trials

    published, trials = load_published(), recipe_trials()
    lines = [how_matched(r, recipe_for(r, trials), trials) for r in published]
    assert all(line.startswith("on head ") for line in lines), lines
    assert "assumed: the source states no backbone" in lines[0]
    hrnet = next(i for i, r in enumerate(published) if r["backbone"] == "HRNetV2p-W18")
    assert lines[hrnet].endswith("; any stem, output_stride, batch_size (not stated by the source)")
    ppm = next(r for r in published if r["method"] == "PSPNet")
    assert how_matched(ppm, None, [t for t in trials if t["head"] != "ppm"]).startswith(
        "no match: no recipe in experiments/ trains ppm on resnet50")
