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


def test_whole_segmentor_checkpoint_loads_only_the_backbone(tmp_path):
    """An `ifa-bench train` checkpoint ({"format", "model": segmentor state, "optimizer", ...}) or an mmseg one."""
    from bench.config.model import ModelConfig
    from bench.models import build_segmentor

    seg = build_segmentor(ModelConfig(num_classes=3, backbone={"name": "resnet18", "width": 0.25},
                                      head={"name": "fpn", "channels": 8, "scale_channels": 8}))
    seg.load_state_dict(_randomised(seg))
    torch.save({"format": 1, "iter": 10, "model": seg.state_dict(), "optimizer": {}}, tmp_path / "run.pt")
    target = ResNet(18, width=0.25)
    report = load_pretrained(target, tmp_path / "run.pt")
    assert report.ok and _same_weights(seg.backbone, target)
    assert report.ignored and all(k.startswith(("head.", "aux_head.")) for k in report.ignored)


def test_mmcv_container_with_meta(tmp_path):
    source = ResNet(50, stem="v1c", width=0.25)
    state = _randomised(source)
    source.load_state_dict(state)
    renamed = {("stem.7." + k[4:] if k.startswith("bn1.") else k.replace("conv1.", "stem.", 1)
                if k.startswith("conv1.") else k): v for k, v in state.items()}
    torch.save({"meta": {"epoch": 100, "note": "mmcv"}, "state_dict": renamed}, tmp_path / "v1c.pth")
    target = ResNet(50, stem="v1c", width=0.25)
    assert load_pretrained(target, tmp_path / "v1c.pth").source_format == "mmseg"
    assert _same_weights(source, target)


def test_strict_failure_loads_nothing_and_hints_at_the_stem(tmp_path):
    torch.save(_randomised(ResNet(18, width=0.25)), tmp_path / "std.pth")
    target = ResNet(18, stem="deep", width=0.25)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(UserError, match=r"std\.pth: .*7x7 stem; the backbone has a 3x3 deep stem"):
        load_pretrained(target, tmp_path / "std.pth")
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_resnet_d_checkpoint_is_named_as_such(tmp_path):
    """timm resnet50d: downsample = (AvgPool, conv at .1, BN at .2); half-loading it would be wrong."""
    state = ResNet(50, stem="v1c", width=0.25).state_dict()
    timm_d = {}
    for key, value in state.items():
        if ".downsample.1." in key:
            key = key.replace(".downsample.1.", ".downsample.2.")
        elif ".downsample.0." in key:
            key = key.replace(".downsample.0.", ".downsample.1.")
        timm_d[key] = value
    torch.save(timm_d, tmp_path / "resnet50d.pth")
    with pytest.raises(UserError, match="ResNet-D"):
        load_pretrained(ResNet(50, stem="v1c", width=0.25), tmp_path / "resnet50d.pth")


def test_non_strict_is_never_silent(tmp_path, caplog):
    state = _randomised(ResNet(18, width=0.25))
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)  # wrong shape
    torch.save(state, tmp_path / "partly.pth")
    target = ResNet(18, width=0.25)
    with caplog.at_level("WARNING", logger="bench.models.pretrained"):
        report = load_pretrained(target, tmp_path / "partly.pth", strict=False)
    assert report.mismatched == ["layer1.0.conv1.weight: (3, 3, 3, 3) vs (16, 16, 3, 3)"]
    assert "layer1.0.conv1.weight" not in report.missing and not report.unexpected
    assert "partly.pth" in caplog.text and "1 mismatched key(s): layer1.0.conv1.weight" in caplog.text
    assert torch.equal(target.layer1[1].conv1.weight, state["layer1.1.conv1.weight"])


def test_frozen_bn_backbone_takes_batchnorm_weights(tmp_path):
    source = ResNet(18, width=0.25)
    state = _randomised(source)
    torch.save(state, tmp_path / "bn.pth")  # has num_batches_tracked, which FrozenBatchNorm2d does not keep
    target = ResNet(18, width=0.25, norm="frozen_bn")
    assert load_pretrained(target, tmp_path / "bn.pth").ok
    assert torch.equal(target.bn1.running_var, state["bn1.running_var"])


def test_a_pickle_that_is_not_weights_is_refused(tmp_path):
    torch.save({"state_dict": {"conv1.weight": "a string"}}, tmp_path / "odd.pth")
    with pytest.raises(UserError, match=r"odd\.pth: expected a state dict of tensors"):
        load_pretrained(ResNet(18), tmp_path / "odd.pth")
    torch.save({}, tmp_path / "empty.pth")
    with pytest.raises(UserError, match="empty"):
        load_pretrained(ResNet(18), tmp_path / "empty.pth")
