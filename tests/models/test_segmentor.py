"""Model assembly: training outputs and loss weights, eval output size, IFA's query-at-output switch."""
import pytest
import torch

from bench.config.model import ModelConfig
from bench.models import build_segmentor, head_class

TINY = {"name": "resnet18", "width": 0.25}
SMALL_HEADS = {"fpn": {"channels": 16, "scale_channels": 8}, "ppm": {"channels": 16},
               "ocr": {"channels": 16, "key_channels": 8, "region_channels": 8}, "ifa": {"channels": 16, "mlp": [32, 16]}}


@pytest.mark.parametrize("head, train_keys, weights", [
    ("fpn", {"main", "aux"}, {"main": 1.0, "aux": 0.4}),
    ("ppm", {"main", "aux"}, {"main": 1.0, "aux": 0.4}),
    ("ocr", {"main", "aux", "regions"}, {"main": 1.0, "aux": 0.4, "regions": 0.4}),
    ("ifa", {"main", "aux"}, {"main": 1.0, "aux": 0.4}),
])
def test_training_outputs_and_eval_size(head, train_keys, weights):
    model = build_segmentor(ModelConfig(num_classes=6, backbone=TINY, head={"name": head, **SMALL_HEADS[head]},
                                        aux_head={"channels": 8}))
    assert model.loss_weights == weights
    out = model.train()(torch.randn(2, 3, 65, 97))
    assert set(out) == train_keys
    assert out["aux"].shape[-2:] == (5, 7)  # FCN on c4, stride 16
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 65, 97)).shape == (1, 6, 65, 97)
        assert model(torch.randn(1, 3, 65, 97), size=(30, 40)).shape == (1, 6, 30, 40)


def test_auxiliary_head_can_be_disabled_and_runs_only_in_training():
    model = build_segmentor(ModelConfig(num_classes=3, backbone=TINY, head={"name": "fpn", **SMALL_HEADS["fpn"]},
                                        aux_head={"enabled": False}))
    assert model.aux_head is None and set(model.train()(torch.randn(2, 3, 64, 64))) == {"main"}


def test_ifa_can_be_queried_at_the_output_size():
    model = build_segmentor(ModelConfig(num_classes=4, backbone=TINY, head={"name": "ifa", "channels": 16,
                                                                           "mlp": [32, 16]})).eval()
    image = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        upsampled = model(image)
        model.query_at_output = True
        queried = model(image)
    assert upsampled.shape == queried.shape == (1, 4, 64, 96)
    assert not torch.allclose(upsampled, queried)  # a different function of the same features


def test_unknown_head_is_named():
    with pytest.raises(KeyError, match="unknown head 'unet'"):
        head_class("unet")


def test_eval_upsampling_follows_the_heads_align_corners():
    import torch.nn.functional as F

    model = build_segmentor(ModelConfig(num_classes=4, backbone=TINY, head={"name": "ifa", "channels": 16,
                                                                           "mlp": [32, 16]})).eval()
    fpn = build_segmentor(ModelConfig(num_classes=4, backbone=TINY, head={"name": "fpn", **SMALL_HEADS["fpn"]})).eval()
    image = torch.randn(1, 3, 61, 83)
    with torch.no_grad():
        for seg, align in ((model, True), (fpn, False)):
            native = seg.head(seg.backbone(image))
            want = F.interpolate(native, size=(61, 83), mode="bilinear", align_corners=align)
            assert torch.equal(seg(image), want)
        fpn.query_at_output = True  # FPN cannot be queried: the switch changes nothing
        assert torch.equal(fpn(image), want)


def test_config_errors_name_the_key():
    from bench.errors import UserError

    with pytest.raises(UserError, match=r"model\.backbone: multi_grid needs 2 values"):
        build_segmentor(ModelConfig(num_classes=3, backbone={**TINY, "multi_grid": [1, 2, 4]}))
    with pytest.raises(UserError, match=r"model\.head: .*no feature\(s\) \['c6'\]"):
        build_segmentor(ModelConfig(num_classes=3, backbone=TINY, head={"name": "ppm", "in_feature": "c6"}))
    with pytest.raises(UserError, match=r"model\.aux_head: .*no feature\(s\) \['p4'\]"):
        build_segmentor(ModelConfig(num_classes=3, backbone=TINY, head={"name": "fpn", **SMALL_HEADS["fpn"]},
                                    aux_head={"in_feature": "p4"}))


def test_registered_head_classes_are_built_with_their_options(monkeypatch):
    from bench.models import build as build_module
    from baselines import FPNHead

    calls = []

    class Recording(FPNHead):
        def __init__(self, input_shape, num_classes, **options):
            calls.append((sorted(input_shape), num_classes, options))
            super().__init__(input_shape, num_classes, **options)

    monkeypatch.setitem(build_module.HEADS, "fpn", Recording)
    model = build_segmentor(ModelConfig(num_classes=7, backbone=TINY, head={"name": "fpn", "channels": 8}))
    assert isinstance(model.head, Recording)
    assert calls == [(["c2", "c3", "c4", "c5"], 7, {"in_features": ("c2", "c3", "c4", "c5"), "channels": 8,
                                                   "scale_channels": 128, "dropout": 0.1})]


def test_build_segmentor_loads_pretrained_backbone_weights(tmp_path):
    from bench.errors import UserError
    from bench.models import ResNet

    source = ResNet(18, width=0.25)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in source.state_dict().items()}
    torch.save({"state_dict": state, "fc.weight": torch.zeros(2)}, tmp_path / "r18.pth")
    cfg = {"num_classes": 3, "head": {"name": "ppm", "channels": 8}, "aux_head": {"enabled": False}}
    model = build_segmentor(ModelConfig(backbone={**TINY, "pretrained": tmp_path / "r18.pth"}, **cfg))
    assert torch.equal(model.backbone.layer2[1].conv2.weight, state["layer2.1.conv2.weight"])
    with pytest.raises(UserError, match=r"r18\.pth: weights do not match"):
        build_segmentor(ModelConfig(backbone={**TINY, "stem": "deep", "pretrained": tmp_path / "r18.pth"}, **cfg))
    loose = build_segmentor(ModelConfig(backbone={**TINY, "stem": "deep", "pretrained": tmp_path / "r18.pth",
                                                  "pretrained_strict": False}, **cfg))
    assert torch.equal(loose.backbone.layer2[1].conv2.weight, state["layer2.1.conv2.weight"])


def test_segmentor_fits_a_fixed_batch():
    """Losses of all outputs (main, aux, OCR's regions) train the whole model: a toy batch is fitted."""
    import torch.nn.functional as F

    model = build_segmentor(ModelConfig(num_classes=3, backbone={"name": "resnet18", "width": 0.125},
                                        head={"name": "ocr", **SMALL_HEADS["ocr"]}, aux_head={"channels": 8}))
    images = torch.randn(2, 3, 48, 48)
    labels = torch.zeros(2, 48, 48, dtype=torch.long)
    labels[:, :, 24:] = 1
    labels[:, 12:30, 12:30] = 2
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(12):
        out = model.train()(images)
        loss = sum(w * F.cross_entropy(F.interpolate(out[k], size=(48, 48), mode="bilinear"), labels)
                   for k, w in model.loss_weights.items())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0], losses  # about 0.6 over seeds 0-2
