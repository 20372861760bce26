"""The common ImageNet ResNet-50 checkpoints load key by key (issue 30): torchvision's resnet50, timm's resnet50 and
resnet50c (deep 32-32-64 stem), and mmcv's resnet50_v1c (open-mmlab://resnet50_v1c; bare, and mmcls-style under
`backbone.` with a `head.fc` classifier and `meta`).

Each fixture is written from the source library's key names and the ResNet-50 shapes, not from this package's model,
so a wrong or missing mapping fails. Every tensor holds its own value (an expanded scalar: full shape, tiny file), so
loading a tensor into the wrong key of the same shape fails the key-by-key check too."""
from __future__ import annotations

import pytest
import torch

from bench.models.pretrained import load_pretrained
from bench.models.resnet import ResNet

BLOCKS = (3, 4, 6, 3)  # ResNet-50
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str, channels: int) -> dict[str, tuple]:
    return {f"{prefix}.{name}": (() if name == "num_batches_tracked" else (channels,)) for name in BN}


def _resnet50_body() -> dict[str, tuple]:
    """layer1..layer4 of a torchvision-style Bottleneck ResNet-50 (names shared by torchvision, timm and mmcv)."""
    keys, cin = {}, 64
    for layer, (blocks, planes) in enumerate(zip(BLOCKS, (64, 128, 256, 512)), start=1):
        for i in range(blocks):
            p = f"layer{layer}.{i}"
            keys[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
            keys.update(_bn(f"{p}.bn1", planes))
            keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            keys.update(_bn(f"{p}.bn2", planes))
            keys[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            keys.update(_bn(f"{p}.bn3", planes * 4))
            if i == 0:
                keys[f"{p}.downsample.0.weight"] = (planes * 4, cin, 1, 1)
                keys.update(_bn(f"{p}.downsample.1", planes * 4))
            cin = planes * 4
    return keys


def _deep_stem(names: tuple[str, ...]) -> dict[str, tuple]:
    """A 3x3 deep stem of 32-32-64 channels: conv, BN, conv, BN, conv, BN under the given six names."""
    convs = {names[0]: (32, 3, 3, 3), names[2]: (32, 32, 3, 3), names[4]: (64, 32, 3, 3)}
    keys = {}
    for i, name in enumerate(names):
        if i % 2 == 0:
            keys[f"{name}.weight"] = convs[name]
        else:
            keys.update(_bn(name, (32, 32, 64)[i // 2]))
    return keys


def _layout(fmt: str) -> tuple[dict[str, tuple], dict[str, str], str]:
    """(file key -> shape, file key -> model key for the keys that are renamed, the model's stem)."""
    classifier = {"fc.weight": (1000, 2048), "fc.bias": (1000,)}
    if fmt in ("torchvision", "timm_resnet50"):
        return {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64), **_resnet50_body(), **classifier}, {}, "standard"
    if fmt == "timm_resnet50c":
        stem = _deep_stem(("conv1.0", "conv1.1", "conv1.3", "conv1.4", "conv1.6", "bn1"))
        return {**stem, **_resnet50_body(), **classifier}, {}, "v1c"
    if fmt == "mmcv_resnet50_v1c":
        stem = _deep_stem(("stem.0", "stem.1", "stem.3", "stem.4", "stem.6", "stem.7"))
        ours = {"stem.0": "conv1.0", "stem.1": "conv1.1", "stem.3": "conv1.3", "stem.4": "conv1.4",
                "stem.6": "conv1.6", "stem.7": "bn1"}
        renames = {k: ours[k.rsplit(".", 1)[0]] + "." + k.rsplit(".", 1)[1] for k in stem}
        return {**stem, **_resnet50_body()}, renames, "v1c"
    raise ValueError(fmt)


def _fixture(shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """Each key its own value, broadcast to the key's full shape."""
    state = {}
    for i, (key, shape) in enumerate(shapes.items(), start=1):
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(i, dtype=torch.long)
        else:
            state[key] = torch.tensor(float(i)).expand(shape)
    return state


def _container(fmt: str, state: dict[str, torch.Tensor]):
    if fmt == "torchvision":
        return state  # torchvision.models.resnet50(weights=...).state_dict(), saved bare
    if fmt.startswith("timm"):
        return state  # timm.create_model(...).state_dict(), saved bare
    return {"meta": {"mmcv_version": "1.x", "epoch": 100}, "state_dict": state}


@pytest.mark.parametrize("fmt, detected", [("torchvision", "torchvision"), ("timm_resnet50", "torchvision"),
                                           ("timm_resnet50c", "timm"), ("mmcv_resnet50_v1c", "mmseg")])
def test_imagenet_checkpoint_layout_loads_key_by_key(tmp_path, fmt, detected):
    shapes, renames, stem = _layout(fmt)
    state = _fixture(shapes)
    torch.save(_container(fmt, state), tmp_path / f"{fmt}.pth")
    model = ResNet(50, stem=stem)
    report = load_pretrained(model, tmp_path / f"{fmt}.pth")  # strict: any missing/unexpected key raises
    assert report.ok and report.source_format == detected
    assert sorted(report.ignored) == sorted(k for k in shapes if k.startswith("fc."))
    own = model.state_dict()
    loaded = 0
    for key, value in state.items():
        if key.startswith("fc.") or key.endswith("num_batches_tracked"):
            continue
        target = renames.get(key, key)
        assert target in own, f"{fmt}: {key} -> {target} is not a key of the model"
        assert own[target].shape == value.shape, (key, target)
        assert torch.equal(own[target], value.expand_as(own[target])), f"{fmt}: {target} did not get {key}'s values"
        loaded += 1
    # every weight of the model came from the file
    weights = sorted(k for k in own if not k.endswith("num_batches_tracked"))
    assert loaded == len(weights) and weights == [k for k in report.loaded if not k.endswith("num_batches_tracked")]


def test_mmcls_style_v1c_checkpoint_under_backbone_with_a_head(tmp_path):
    """The same V1c weights as an mmcls ImageNet classifier saves them: `backbone.` prefix, `head.fc` classifier."""
    shapes, renames, stem = _layout("mmcv_resnet50_v1c")
    state = _fixture(shapes)
    wrapped = {"backbone." + k: v for k, v in state.items()}
    wrapped["head.fc.weight"] = torch.zeros(1000, 2048)
    wrapped["head.fc.bias"] = torch.zeros(1000)
    torch.save({"meta": {}, "state_dict": wrapped}, tmp_path / "mmcls.pth")
    model = ResNet(50, stem=stem)
    report = load_pretrained(model, tmp_path / "mmcls.pth")
    assert report.ok and sorted(report.ignored) == ["head.fc.bias", "head.fc.weight"]
    own = model.state_dict()
    for key, value in state.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(own[renames.get(key, key)], value.expand_as(own[renames.get(key, key)])), key


def test_the_key_by_key_check_catches_two_swapped_tensors(tmp_path):
    """Negative control: two same-shaped tensors exchanged in the file load without error (same names and shapes),
    and the per-key values expose it."""
    shapes, _, stem = _layout("torchvision")
    state = _fixture(shapes)
    swapped = dict(state)
    swapped["layer1.1.conv2.weight"], swapped["layer1.2.conv2.weight"] = \
        state["layer1.2.conv2.weight"], state["layer1.1.conv2.weight"]
    torch.save(swapped, tmp_path / "swapped.pth")
    model = ResNet(50, stem=stem)
    assert load_pretrained(model, tmp_path / "swapped.pth").ok
    own = model.state_dict()
    assert not torch.equal(own["layer1.1.conv2.weight"], state["layer1.1.conv2.weight"].expand(64, 64, 3, 3))
