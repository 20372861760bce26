"""Kill tests for bench/models/pretrained.py, the ImageNet checkpoint converters (issue 32's mutation pass): the
containers and prefixes a file may use, the format each stem layout is detected as, every message word for word
(the report's summary, the hints, the refusals), and what a strict and a non-strict load leave in the model.
Real files written with torch.save and read back; small ResNets (ResNet-18 and ResNet-50 at width 1/8)."""
import logging

import pytest
import torch

from bench.errors import UserError
from bench.models import pretrained as pt
from bench.models.resnet import ResNet


def _distinct(model) -> dict:
    """The model's state with distinct values per key (i + arange/numel), counters kept."""
    out = {}
    for i, (k, v) in enumerate(model.state_dict().items(), start=1):
        out[k] = v.clone() if not v.is_floating_point() else (i + torch.arange(v.numel()) / v.numel()).reshape(
            v.shape).to(v.dtype)
    return out


def _save(tmp_path, obj, name="w.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_the_reports_summary():
    r = pt.LoadReport("p", "torchvision", loaded=["a", "b"])
    assert r.ok and r.summary() == "all 2 keys loaded"
    r = pt.LoadReport("p", "timm", missing=["m1", "m2", "m3", "m4", "m5"], unexpected=["u1"],
                      mismatched=["x: (1,) vs (2,)", "y: (3,) vs (4,)", "z: (5,) vs (6,)"], hints=["h1", "h2"])
    assert not r.ok
    assert r.summary() == ("5 missing key(s): m1, m2, m3 (+2 more); 1 unexpected key(s): u1; 3 mismatched key(s): "
                           "x: (1,) vs (2,), y: (3,) vs (4,), z: (5,) vs (6,); h1; h2")
    assert r.summary(limit=1).startswith("5 missing key(s): m1 (+4 more); 1 unexpected key(s): u1; 3 mismatched")
    for only in ({"missing": ["a"]}, {"unexpected": ["a"]}, {"mismatched": ["a"]}):
        assert not pt.LoadReport("p", "f", **only).ok
    assert pt.LoadReport("p", "f", ignored=["fc.weight"]).ok


def test_containers_and_prefixes():
    t = torch.zeros(1)
    assert pt._unwrap({"model": {"state_dict": {"module": {"a": t}}}}) == {"a": t}
    assert pt._unwrap({"model_state": {"a": t}}) == {"a": t}
    assert pt._unwrap({"state_dict": "not a dict", "a": t}) == {"state_dict": "not a dict", "a": t}
    assert pt._unwrap([1]) == [1]
    assert pt._strip("module.backbone.encoder.model.layer1.x") == "layer1.x"
    assert pt._strip("model.module.x") == "x" and pt._strip("layer1.module.x") == "layer1.module.x"


def test_read_state_dict_refusals(tmp_path):
    missing = tmp_path / "none.pth"
    with pytest.raises(UserError) as err:
        pt.read_state_dict(missing)
    assert str(err.value) == f"{missing}: pretrained weights file does not exist"
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UserError) as err:
        pt.read_state_dict(junk)
    assert str(err.value) == (f"{junk}: not a readable torch weights file (not a PyTorch checkpoint: its data is not "
                              "a weights-only pickle)")
    import argparse

    pickled = _save(tmp_path, {"a": argparse.Namespace(x=1)}, "object.pth")  # loads only without weights_only
    with pytest.raises(UserError) as err:
        pt.read_state_dict(pickled)
    assert str(err.value) == (f"{pickled}: not a readable torch weights file (it holds a Python object, "
                              "argparse.Namespace, that a weights-only read refuses; save the state_dict instead)")
    for obj, found in (([torch.zeros(1)], "list"), ({}, "dict (empty)"), ({"state_dict": {}}, "dict (empty)")):
        with pytest.raises(UserError) as err:
            pt.read_state_dict(_save(tmp_path, obj))
        assert str(err.value) == f"{tmp_path / 'w.pth'}: expected a state dict of tensors, found {found}", obj
    with pytest.raises(UserError) as err:
        pt.read_state_dict(_save(tmp_path, {"a": torch.zeros(1), "b": 3}))
    assert str(err.value) == f"{tmp_path / 'w.pth'}: expected a state dict of tensors; 'b' is a int"
    with pytest.raises(UserError) as err:
        pt.read_state_dict(_save(tmp_path, {"a": torch.tensor([1.0, float("nan")])}))
    assert str(err.value).startswith(f"{tmp_path / 'w.pth'}: pretrained weights tensor 'a' has 1 non-finite")


def test_a_whole_segmentor_gives_its_backbone_and_names_the_rest(tmp_path):
    t = torch.zeros(1)
    state, ignored = pt.read_state_dict(_save(tmp_path, {"module.backbone.conv1.weight": t,
                                                        "module.head.cls.weight": t, "aux.x": t}))
    assert list(state) == ["conv1.weight"] and ignored == ["head.cls.weight", "aux.x"]
    state, ignored = pt.read_state_dict(_save(tmp_path, {"backbone.conv1.weight": t, "backbone.bn1.bias": t}))
    assert list(state) == ["conv1.weight", "bn1.bias"] and ignored == []
    state, ignored = pt.read_state_dict(_save(tmp_path, {"encoder.conv1.weight": t, "fc.bias": t}))
    assert list(state) == ["conv1.weight", "fc.bias"] and ignored == []


def test_detect_format_and_map_keys():
    t = torch.zeros(1)
    assert pt.detect_format({"stem.0.weight": t, "conv1.0.weight": t}) == "mmseg"
    assert pt.detect_format({"conv1.0.weight": t, "conv2.weight": t, "conv3.weight": t}) == "timm"
    assert pt.detect_format({"conv2.weight": t, "conv3.weight": t}) == "psp_deep_base"
    assert pt.detect_format({"conv2.weight": t}) == "torchvision" and pt.detect_format({"conv3.weight": t}) == "torchvision"
    assert pt.detect_format({"conv1.weight": t}) == "torchvision"
    psp = {"conv1.weight": 1, "bn1.bias": 2, "conv2.weight": 3, "bn2.bias": 4, "conv3.weight": 5, "bn3.bias": 6,
           "layer1.0.conv1.weight": 7}
    assert pt.map_keys(psp, "psp_deep_base") == {"conv1.0.weight": 1, "conv1.1.bias": 2, "conv1.3.weight": 3,
                                                 "conv1.4.bias": 4, "conv1.6.weight": 5, "bn1.bias": 6,
                                                 "layer1.0.conv1.weight": 7}
    mm = {f"stem.{i}.weight": i for i in (0, 1, 3, 4, 6, 7)}
    assert pt.map_keys(mm, "mmseg") == {"conv1.0.weight": 0, "conv1.1.weight": 1, "conv1.3.weight": 3,
                                        "conv1.4.weight": 4, "conv1.6.weight": 6, "bn1.weight": 7}
    assert pt.map_keys(psp, "timm") == psp and pt.map_keys(mm, "torchvision") == mm


def test_the_hints():
    deep = ResNet(50, stem="v1c", width=0.125).state_dict()
    standard = ResNet(18, width=0.125).state_dict()
    d_file = {"layer1.0.downsample.2.weight": torch.zeros(1), "conv1.weight": torch.zeros(1)}
    assert pt._hints(d_file, standard) == [
        "the file is a ResNet-D (average-pool shortcut, e.g. timm resnet50d / mmseg V1d); this backbone has "
        "strided 1x1 shortcuts: use a non-D checkpoint (e.g. resnet50 or V1c)"]
    assert pt._hints({"conv1.weight": torch.zeros(1)}, deep) == [
        "the file has the standard 7x7 stem; the backbone has a 3x3 deep stem (backbone.stem)"]
    assert pt._hints({"conv1.0.weight": torch.zeros(4, 3, 3, 3)}, standard) == [
        "the file has a 3x3 deep stem; the backbone has the standard 7x7 stem (backbone.stem)"]
    assert pt._hints({"conv1.0.weight": torch.zeros(64, 3, 3, 3)}, deep) == [
        f"the file's stem starts with 64 channels, the backbone's with {deep['conv1.0.weight'].shape[0]} "
        "(backbone.stem: deep = 64-64-128, v1c = 32-32-64)"]
    assert pt._hints({"conv1.0.weight": deep["conv1.0.weight"]}, deep) == []
    assert pt._hints({"conv1.weight": torch.zeros(1)}, standard) == []


def test_a_psp_deep_base_file_loads_key_by_key(tmp_path):
    model = ResNet(50, stem="v1c", width=0.125)
    ours = _distinct(model)
    theirs = {"conv1.0.": "conv1.", "conv1.1.": "bn1.", "conv1.3.": "conv2.", "conv1.4.": "bn2.",
              "conv1.6.": "conv3.", "bn1.": "bn3."}
    renamed = {}
    for key, value in ours.items():
        for a, b in theirs.items():
            if key.startswith(a):
                key = b + key[len(a):]
                break
        renamed[key] = value
    report = pt.load_pretrained(model, _save(tmp_path, {"model": renamed}))
    assert report.ok and report.source_format == "psp_deep_base" and report.loaded == sorted(ours)
    got = model.state_dict()
    assert all(torch.equal(got[k], v) for k, v in ours.items())


def test_a_strict_mismatch_names_everything_and_loads_nothing(tmp_path):
    model = ResNet(18, width=0.125)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = _distinct(model)
    del state["layer4.1.bn2.bias"]
    del state["layer1.0.bn1.num_batches_tracked"]  # counters are never "missing"
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3)
    state["extra.weight"] = torch.zeros(1)
    state["extra.num_batches_tracked"] = torch.tensor(0)  # nor "unexpected"
    state["fc.weight"] = torch.zeros(2, 2)
    path = _save(tmp_path, state)
    with pytest.raises(UserError) as err:
        pt.load_pretrained(model, path)
    assert str(err.value) == (
        f"{path}: weights do not match the backbone (torchvision format): 1 missing key(s): layer4.1.bn2.bias; "
        "1 unexpected key(s): extra.weight; 1 mismatched key(s): layer1.0.conv1.weight: (3, 3) vs (8, 8, 3, 3); "
        "set backbone.pretrained_strict: false to load the matching part")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_non_strict_load_takes_the_matching_part_and_says_so(tmp_path, caplog):
    model = ResNet(18, width=0.125)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = _distinct(model)
    state["layer1.0.conv1.weight"] = torch.zeros(3, 3)
    del state["layer4.1.bn2.bias"]
    classifiers = ["fc.weight", "head.fc.bias", "classifier.w", "head.x", "incre_modules.0.w", "downsamp_modules.1.w",
                   "final_layer.b"]
    for key in classifiers:
        state[key] = torch.zeros(1)
    state["fcx.weight"] = torch.zeros(1)  # not a classifier: unexpected
    path = _save(tmp_path, state)
    with caplog.at_level(logging.WARNING, logger="bench.models.pretrained"):
        report = pt.load_pretrained(model, path, strict=False)
    assert report.mismatched == ["layer1.0.conv1.weight: (3, 3) vs (8, 8, 3, 3)"]
    assert report.missing == ["layer4.1.bn2.bias"] and report.unexpected == ["fcx.weight"] and report.hints == []
    assert report.ignored == classifiers and report.source_format == "torchvision"
    assert "layer1.0.conv1.weight" not in report.loaded and report.loaded == sorted(report.loaded)
    got = model.state_dict()
    assert torch.equal(got["layer1.0.conv1.weight"], before["layer1.0.conv1.weight"])
    assert torch.equal(got["layer4.1.bn2.bias"], before["layer4.1.bn2.bias"])
    assert torch.equal(got["layer2.0.conv1.weight"], state["layer2.0.conv1.weight"])
    (rec,) = [r for r in caplog.records if r.name == "bench.models.pretrained"]
    assert rec.getMessage() == f"{path}: loaded {len(report.loaded)} keys non-strictly: {report.summary()}"

    caplog.clear()
    ok = pt.load_pretrained(ResNet(18, width=0.125), _save(tmp_path, _distinct(ResNet(18, width=0.125)), "ok.pth"), strict=False)
    assert ok.ok and ok.hints == [] and not [r for r in caplog.records if r.name == "bench.models.pretrained"]


def test_hints_are_given_only_for_a_mismatch(tmp_path):
    deep = ResNet(50, stem="v1c", width=0.125)
    standard_file = _save(tmp_path, _distinct(ResNet(50, width=0.125)))
    report = pt.load_pretrained(deep, standard_file, strict=False)
    assert report.hints == ["the file has the standard 7x7 stem; the backbone has a 3x3 deep stem (backbone.stem)"]
    assert report.summary().endswith("; " + report.hints[0])


def test_the_report_names_its_file_and_the_segmentors_other_keys(tmp_path):
    model = ResNet(18, width=0.125)
    whole = {"backbone." + k: v for k, v in _distinct(model).items()}
    whole["decode_head.conv_seg.weight"] = torch.zeros(1)
    path = _save(tmp_path, {"state_dict": whole})
    report = pt.load_pretrained(model, path)
    assert report.path == str(path) and report.ignored == ["decode_head.conv_seg.weight"] and report.ok
