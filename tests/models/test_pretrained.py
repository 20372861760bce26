"""ImageNet weights in torchvision, timm, mmseg and PSPNet deep-base layouts; mismatches are never silent."""
import pytest
import torch

from bench.errors import UserError
from bench.models.pretrained import load_pretrained
from bench.models.resnet import ResNet


def _randomised(net):
    return {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in net.state_dict().items()}


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_torchvision_layout_with_wrapper_prefix_and_classifier(tmp_path):
    source = ResNet(18)
    state = _randomised(source)
    source.load_state_dict(state)
    ckpt = {"state_dict": {"module." + k: v for k, v in state.items()}}
    ckpt["state_dict"]["module.fc.weight"] = torch.zeros(1000, 512)
    ckpt["state_dict"]["module.fc.bias"] = torch.zeros(1000)
    torch.save(ckpt, tmp_path / "tv.pth")
    target = ResNet(18)
    report = load_pretrained(target, tmp_path / "tv.pth")
    assert report.source_format == "torchvision" and report.ok
    assert report.ignored == ["fc.weight", "fc.bias"]
    assert _same_weights(source, target)


def test_timm_deep_stem_layout(tmp_path):
    source = ResNet(50, stem="deep", width=0.25)
    state = _randomised(source)
    source.load_state_dict(state)
    torch.save(state, tmp_path / "timm.pth")  # conv1.0/.1/.3/.4/.6 + bn1: timm's resnet*d stem naming
    target = ResNet(50, stem="deep", width=0.25)
    assert load_pretrained(target, tmp_path / "timm.pth").source_format == "timm"
    assert _same_weights(source, target)


@pytest.mark.parametrize("fmt, renames", [
    ("mmseg", {"conv1.0.": "stem.0.", "conv1.1.": "stem.1.", "conv1.3.": "stem.3.", "conv1.4.": "stem.4.",
               "conv1.6.": "stem.6.", "bn1.": "stem.7."}),
    ("psp_deep_base", {"conv1.0.": "conv1.", "conv1.1.": "bn1.", "conv1.3.": "conv2.", "conv1.4.": "bn2.",
                       "conv1.6.": "conv3.", "bn1.": "bn3."}),
])
def test_mmseg_and_psp_deep_stem_layouts(tmp_path, fmt, renames):
    source = ResNet(50, stem="deep", width=0.25)
    state = _randomised(source)
    source.load_state_dict(state)
    renamed = {}
    for key, value in state.items():
        for ours, theirs in renames.items():
            if key.startswith(ours):
                key = theirs + key[len(ours):]
                break
        renamed["backbone." + key] = value
    torch.save(renamed, tmp_path / f"{fmt}.pth")
    target = ResNet(50, stem="deep", width=0.25)
    assert load_pretrained(target, tmp_path / f"{fmt}.pth").source_format == fmt
    assert _same_weights(source, target)


def test_mismatch_is_an_error_naming_file_and_keys(tmp_path):
    torch.save(ResNet(18).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(UserError) as info:
        load_pretrained(ResNet(50), tmp_path / "r18.pth")
    message = str(info.value)
    assert str(tmp_path / "r18.pth") in message and "missing key(s)" in message and "mismatched" in message
    assert "\n" not in message


def test_non_strict_loads_the_matching_part_and_reports_the_rest(tmp_path):
    source = ResNet(18, stem="standard")
    state = _randomised(source)
    torch.save(state, tmp_path / "std.pth")
    target = ResNet(18, stem="deep")
    report = load_pretrained(target, tmp_path / "std.pth", strict=False)
    assert not report.ok and "conv1.weight" in report.unexpected
    assert any(k.startswith("conv1.0.") for k in report.missing)
    assert torch.equal(target.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_pretrained(ResNet(18), tmp_path / "absent.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable torch weights file"):
        load_pretrained(ResNet(18), tmp_path / "bad.pth")
