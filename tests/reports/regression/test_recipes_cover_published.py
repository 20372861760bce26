"""Every published row is reproduced by a recipe (experiments/*.yaml) that `check` matches, or explained."""
from reports.regression.check import run_check
from reports.load import CHECK_REQUIRED, read_results
from reports.regression.published import load_published
from tools.model_zoo.recipes import recipe_for, recipe_trials, why_no_recipe
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
    explained, by_recipe = {}, 0
    for i, row in enumerate(published):
        key = _published_id(row["dataset"], row["method"], row["backbone"], row["match"]["iterations"],
                            row["match"]["crop"])
        if recipe_for(row, trials) is not None:
            assert key in matched, f"row {i} has a recipe but check does not match it: {key}"
            by_recipe += 1
        else:
            explained[i] = why_no_recipe(row, trials)
            assert explained[i], i
    # Every row has a recipe: the IFA release (2), mmseg's FPN (4), PSPNet (17), OCRNet R-101 (3) and
    # OCRNet-HRNet (15) rows.
    assert by_recipe == 41, explained

def test_the_reason_names_what_no_recipe_has():
    published = load_published()
    ppm_769 = next(r for r in published if r["method"] == "PSPNet" and r["match"]["crop"] == "769x769")
    without_769 = [t for t in recipe_trials() if t["recipe"] != "mmseg_pspnet_cityscapes_769"]
    assert recipe_for(ppm_769, without_769) is None
    assert why_no_recipe(ppm_769, without_769) == (
        "recipes train ppm on resnet50 (stem v1c, OS 8) for cityscapes, but none with crop 769x769")
    no_ppm = [t for t in without_769 if t["head"] != "ppm"]
    assert why_no_recipe(ppm_769, no_ppm).startswith("no recipe in experiments/ trains ppm on resnet50")
