"""reports/published.yaml holds every reference row unchanged, with match keys that follow reports/mapping.py."""
from pathlib import Path

import pytest
import yaml

from reports.mapping import BACKBONES, DATASETS, HEADS, parse_batch, parse_crop
from reports.regression.published import DEFAULT_PATH, derive_match, load_published

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference" / "published_results.yaml"


def _ours():
    return yaml.safe_load(DEFAULT_PATH.read_text())["results"]


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference file not present at {REFERENCE}")
def test_every_reference_row_is_present_with_identical_values():
    reference = yaml.safe_load(REFERENCE.read_text())["results"]
    ours = _ours()
    assert len(ours) == len(reference) == 41
    for i, (ref, row) in enumerate(zip(reference, ours)):
        original = {k: v for k, v in row.items() if k != "match"}
        assert original == ref, f"row {i} differs"
        assert type(row.get("miou_ss")) is type(ref.get("miou_ss"))


def test_rows_have_source_and_kind_and_numbers():
    rows = _ours()
    assert {r["kind"] for r in rows} == {"published", "reproduction"}
    assert all(r["source"] for r in rows)
    assert all(isinstance(r["miou_ss"], float) for r in rows)
    assert sum(r["kind"] == "reproduction" for r in rows) == 1


def test_match_keys_follow_the_mapping_tables():
    for i, row in enumerate(_ours()):
        derived = derive_match(row)
        match = row["match"]
        if "assumed" in match:  # only the IFA paper row, whose source states no schedule
            assert row["backbone"] == "ResNet-50 (unstated; released config)"
            assert (match["iterations"], match["crop"], match["batch_size"]) == (37200, "769x769", 8)
            continue
        assert {k: match[k] for k in derived} == derived, f"row {i}"


def test_mapping_tables_name_real_published_rows():
    rows = _ours()
    assert set(DATASETS.values()) >= {r["dataset"] for r in rows}
    assert set(HEADS.values()) == {r["method"] for r in rows}
    labels = {(r["method"], r["backbone"]) for r in rows}
    assert set(BACKBONES) == labels  # every published backbone, HRNetV2p included, is mapped


def test_crop_and_batch_parsing():
    assert parse_crop("512x1024 crop, batch 8 (4x2)") == "512x1024"
    assert parse_batch("512x1024 crop, batch 8 (4x2)") == 8
    assert parse_batch("crop 769x769, batch 2x4 GPUs, 100 epochs") == 8
    assert parse_batch("512x1024, batch 16") == 16
    assert parse_batch("512x1024") is None and parse_crop(None) is None


def test_loader_validates(tmp_path):
    from bench.errors import UserError

    rows = load_published()
    assert len(rows) == 41 and rows[2]["match"]["backbone"] == "resnet50"
    bad = tmp_path / "bad.yaml"
    bad.write_text("results:\n- {dataset: cityscapes_val, method: PSPNet, backbone: R-50-D8, kind: guess, "
                   "source: x, miou_ss: 1.0}\n")
    with pytest.raises(UserError, match=r"bad.yaml: results\[0\].kind: 'guess'"):
        load_published(bad)
    bad.write_text("results:\n- {dataset: cityscapes_val, method: PSPNet, backbone: R-50-D8, kind: published, "
                   "source: x, miou_ss: 'n/a'}\n")
    with pytest.raises(UserError, match=r"results\[0\].miou_ss: expected a number"):
        load_published(bad)


@pytest.mark.parametrize("value,needle", [
    ("true", "miou_ss: expected a number, got true"),
    (".nan", "miou_ss: Input should be a finite number"),
    ("-.inf", "miou_ss: Input should be a finite number"),
    ("101.0", "miou_ss: Input should be less than or equal to 100"),
    ("-3", "miou_ss: Input should be greater than or equal to 0"),
])
def test_published_numbers_go_through_a_schema(tmp_path, value, needle):
    """Issue 28: `miou_ss: true` read as 1.00 and `.nan` passed `report --published`."""
    from bench.errors import UserError

    bad = tmp_path / "bad.yaml"
    bad.write_text("results:\n- {dataset: cityscapes_val, method: PSPNet, backbone: R-50-D8, kind: published, "
                   f"source: x, miou_ss: {value}}}\n")
    with pytest.raises(UserError) as info:
        load_published(bad)
    assert str(info.value).startswith(f"{bad}: results[0].") and needle in str(info.value), str(info.value)
