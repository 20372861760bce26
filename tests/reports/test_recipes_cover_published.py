"""Every published row is reproduced by a recipe (experiments/*.yaml) that `check` matches, or explained."""
from reports.check import run_check
from reports.load import CHECK_REQUIRED, read_results
from reports.published import load_published
from reports.recipes import recipe_for, recipe_trials, why_no_recipe
from tests.reports.fixture import trial, write_sweep

KEYS = ("dataset", "head", "backbone", "stem", "output_stride", "iterations", "crop", "batch_size")


def _published_id(dataset, method, backbone, iterations, crop):
    return (dataset, method, backbone, str(iterations), crop)


def test_all_41_published_rows_match_a_recipe_or_are_explained(tmp_path):
    published, trials = load_published(), recipe_trials()
    assert len(published) == 41
    # A results table with one completed run of every recipe trial, evaluated both ways.
    rows = []
    for t in trials:
        base = {k: t[k] for k in KEYS}
        rows.append(trial(**base, miou=50.0, num_classes=t["config"].model.num_classes))
        rows.append(trial(**base, miou=50.0, num_classes=t["config"].model.num_classes,
                          eval_scales="0.5,0.75,1.0,1.25,1.5,1.75", eval_flip=True))
    results = read_results(write_sweep(tmp_path, rows, per_class=False, curves=False), CHECK_REQUIRED)
    matched = set()
    for metric in ("miou_ss", "miou_ms_flip"):
        df = run_check(results, published, metric=metric, include_reproductions=True).matched
        matched |= {_published_id(r.published_dataset, r.published_method, r.published_backbone, r.iterations, r.crop)
                    for r in df.itertuples()}
    explained, hrnet_matched = {}, 0
    for i, row in enumerate(published):
        key = _published_id(row["dataset"], row["method"], row["backbone"], row["match"]["iterations"],
                            row["match"]["crop"])
        if recipe_for(row, trials) is not None:
            assert key in matched, f"row {i} has a recipe but check does not match it: {key}"
            hrnet_matched += row["backbone"].startswith("HRNetV2p")
        else:
            explained[i] = why_no_recipe(row, trials)
            assert explained[i], i
    assert hrnet_matched == 15  # every OCRNet-HRNetV2p row (Cityscapes 40k/80k/160k, ADE20K 80k/160k)
    assert all(reason.startswith(("no recipe", "recipes train")) for reason in explained.values())
    assert len(explained) + 15 + 2 <= 41  # the two IFA rows match the released recipe


def test_the_reason_names_what_no_recipe_has():
    published = load_published()
    ppm_769 = next(r for r in published if r["method"] == "PSPNet" and r["match"]["crop"] == "769x769")
    assert why_no_recipe(ppm_769, recipe_trials()).startswith("no recipe in experiments/ trains ppm on resnet")
