"""hzhupku/IFA checkpoints: a model built to mimic the release's structure (convs with biases before BatchNorm,
Conv1d MLP, 12x2 `emb` frequency matrices, `auxor`), its state_dict in the release's key layout, converted and
loaded into the project's model: equal logits (head and auxiliary head), strict key accounting, and the CLI."""
import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.cli import main
from bench.config.loading import read_yaml
from bench.config.model import ModelConfig
from bench.convert.registry import detect_format, to_project
from bench.errors import UserError
from bench.models import build_segmentor

CFG = ModelConfig(
    num_classes=5,
    backbone=dict(name="resnet18", stem="deep", width=0.5),
    head=dict(name="ifa", channels=16, mlp=(32, 16, 16), sampling="release"),
    aux_head=dict(channels=16),
)


def _make_coord(n):
    r = 2 / (2 * n)
    return (-1 + r) + (2 * r) * torch.arange(n).float()


class _Encoding(nn.Module):
    """The release's SpatialEncoding: y = rel @ emb.T, [rel, sin y, cos y]; emb rows: 6 y-frequencies, 6 x."""

    def __init__(self):
        super().__init__()
        f = 2 ** torch.linspace(0, 6, 6)
        z = torch.zeros(6)
        self.emb = nn.Parameter(torch.cat([torch.stack([f, z], 1), torch.stack([z, f], 1)]))

    def forward(self, rel):
        y = rel @ self.emb.T
        return torch.cat([rel, torch.sin(y), torch.cos(y)], -1)


class _ReleaseIFA(nn.Module):
    def __init__(self, width, mlp, classes):
        super().__init__()
        for i in range(1, 5):
            setattr(self, f"pos{i}", _Encoding())
        dims = [4 * (26 + width), *mlp]
        layers = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Conv1d(a, b, 1), nn.BatchNorm1d(b), nn.ReLU()]
        self.imnet = nn.Sequential(*layers, nn.Conv1d(dims[-1], classes, 1))


class _ReleaseDecoder(nn.Module):
    """fpn_ifa (no_aspp, ultra_pe, require_grad) as the release builds it, nearest sampling at float32 coords."""

    def __init__(self, in_ch, width, mlp, classes):
        super().__init__()
        block = lambda c: nn.Sequential(nn.Conv2d(c, width, 1), nn.BatchNorm2d(width), nn.ReLU())  # noqa: E731
        self.head = block(in_ch[3])
        self.enc1, self.enc2, self.enc3 = block(in_ch[0]), block(in_ch[1]), block(in_ch[2])
        self.ifa = _ReleaseIFA(width, mlp, classes)

    def forward(self, feats):
        levels = [self.enc1(feats["c2"]), self.enc2(feats["c3"]), self.enc3(feats["c4"]), self.head(feats["c5"])]
        n, (h, w) = feats["c2"].shape[0], feats["c2"].shape[-2:]
        qy, qx = [((_make_coord(s) + 1) / 2) * 2 - 1 for s in (h, w)]
        coords = torch.stack(torch.meshgrid(qy, qx, indexing="ij"), -1).view(1, -1, 2)
        grid = coords.flip(-1).unsqueeze(1).expand(n, 1, -1, 2)
        ctx = []
        for i, r in enumerate(levels):
            hl, wl = r.shape[-2:]
            centres = torch.stack(torch.meshgrid(_make_coord(hl), _make_coord(wl), indexing="ij"), 0)
            q_feat = F.grid_sample(r, grid, mode="nearest", align_corners=False)[:, :, 0].permute(0, 2, 1)
            q_c = F.grid_sample(centres.expand(n, 2, hl, wl), grid, mode="nearest", align_corners=False)
            rel = coords - q_c[:, :, 0].permute(0, 2, 1)
            rel = rel * torch.tensor([hl, wl], dtype=torch.float32)
            ctx.append(torch.cat([getattr(self.ifa, f"pos{i + 1}")(rel), q_feat], -1))
        x = torch.cat(ctx, -1).permute(0, 2, 1)
        return self.ifa.imnet(x).view(n, -1, h, w)


class _ReleaseModel(nn.Module):
    def __init__(self, backbone, in_ch, classes):
        super().__init__()
        self.encoder = backbone
        self.decoder = _ReleaseDecoder(in_ch, 16, (32, 16, 16), classes)
        aux = nn.Module()
        aux.aux = nn.Sequential(nn.Conv2d(in_ch[2], 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                                nn.Dropout2d(0.1), nn.Conv2d(16, classes, 1))
        self.auxor = aux


def _release_model():
    torch.manual_seed(0)
    project = build_segmentor(CFG)
    shapes = project.backbone.output_shape()
    model = _ReleaseModel(copy.deepcopy(project.backbone), [shapes[k].channels for k in ("c2", "c3", "c4", "c5")], 5)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d)) and m.bias is not None:
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)  # non-zero pre-BN biases
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
        for i in range(1, 5):
            getattr(model.decoder.ifa, f"pos{i}").emb.mul_(1 + 0.1 * torch.rand(12, 2, generator=g))  # trained, not default
    return model.eval()


def _release_state(model):
    return {"module." + k: v for k, v in model.state_dict().items()}


def test_converted_release_checkpoint_gives_equal_logits():
    release = _release_model()
    state = _release_state(release)
    assert detect_format(state) == "release"
    project = build_segmentor(CFG)
    project.load_state_dict(to_project(state, CFG), strict=True)  # every project key is filled
    project.eval()
    image = torch.randn(2, 3, 72, 100, generator=torch.Generator().manual_seed(2))  # odd grids: 19x25, 10x13, ...
    with torch.no_grad():
        feats = project.backbone(image)
        ref = release.decoder(feats)
        for formulation in ("reference", "fused"):
            project.head.formulation = formulation
            out = project.head(feats)
            assert out.shape == ref.shape
            assert (out - ref).abs().max() < 1e-5 * ref.abs().max(), formulation
        aux_ref = release.auxor.aux(feats["c4"])
        assert torch.allclose(project.aux_head(feats), aux_ref, atol=1e-5 * aux_ref.abs().max())
    # the biases matter: dropping them would change the logits
    unfolded = {k: (torch.zeros_like(v) if k.endswith(".0.bias") and "enc" in k else v) for k, v in state.items()}
    project.load_state_dict(to_project(unfolded, CFG))
    with torch.no_grad():
        assert (project.eval().head(feats) - ref).abs().max() > 1e-3 * ref.abs().max()


def test_every_key_is_accounted_for():
    state = _release_state(_release_model())
    with pytest.raises(UserError, match="'decoder.extra.weight' has no counterpart"):
        to_project({**state, "module.decoder.extra.weight": torch.zeros(1)}, CFG)
    del state["module.decoder.enc2.0.bias"]
    with pytest.raises(UserError, match="'decoder.enc2.0.bias' is missing"):
        to_project(state, CFG)
    with pytest.raises(UserError, match="head.name"):
        to_project(_release_state(_release_model()), ModelConfig.model_validate({**CFG.model_dump(), "head": {"name": "fpn"}}))


def test_cli_convert_then_eval_loader(tmp_path, capsys):
    exp = read_yaml("experiments/synthetic.yaml")
    exp.pop("sweep", None)
    exp["model"] = {"num_classes": 5, "backbone": {"name": "resnet18", "stem": "deep", "width": 0.5},
                    "head": {"name": "ifa", "channels": 16, "mlp": [32, 16, 16], "sampling": "release"},
                    "aux_head": {"channels": 16}}
    config = tmp_path / "exp.yaml"
    config.write_text(json.dumps(exp))  # JSON is YAML
    release = _release_model()
    src = tmp_path / "ckpt_best.pth"
    torch.save({"epoch": 99, "model_state": _release_state(release)}, src)
    dst = tmp_path / "converted.pt"
    assert main(["convert", str(src), str(dst), "--config", str(config)]) == 0
    from bench.convert.loading import load_checkpoint_state

    state, meta = load_checkpoint_state(dst)
    assert meta["source_format"] == "release" and meta["source_epoch"] == 99
    expected = to_project(_release_state(release), CFG)
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)
    bad = tmp_path / "bad.pth"
    torch.save({"model_state": {**_release_state(release), "module.decoder.ifa.extra": torch.zeros(1)}}, bad)
    capsys.readouterr()
    assert main(["convert", str(bad), str(tmp_path / "bad.pt"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "decoder.ifa.extra" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.pt").exists()


@pytest.mark.parametrize("bad,needle", [
    (float("nan"), "has 1 non-finite value(s)"),
    (float("inf"), "has 1 non-finite value(s)"),
    ("a string", "holds a str, not a tensor"),
])
def test_release_checkpoint_with_bad_values_is_refused_on_every_path(tmp_path, capsys, bad, needle):
    """Issue 28: the release format skipped the finiteness check (NaN passed convert and predict) and a string where
    a tensor belongs raised AttributeError. convert, train --init and eval now refuse it in one line, writing
    nothing."""
    exp = read_yaml("experiments/synthetic.yaml")
    exp.pop("sweep", None)
    exp["data"]["root"] = str(tmp_path / "nodata")  # refused before the data is needed
    exp["model"] = {"num_classes": 5, "backbone": {"name": "resnet18", "stem": "deep", "width": 0.5},
                    "head": {"name": "ifa", "channels": 16, "mlp": [32, 16, 16], "sampling": "release"},
                    "aux_head": {"channels": 16}}
    config = tmp_path / "exp.yaml"
    config.write_text(json.dumps(exp))
    state = _release_state(_release_model())
    key = "module.decoder.enc2.0.bias"
    if isinstance(bad, float):
        state[key] = state[key].clone()
        state[key].view(-1)[0] = bad
    else:
        state[key] = bad
    src = tmp_path / "ckpt_best.pth"
    torch.save({"epoch": 1, "model_state": state}, src)
    for argv in (["convert", str(src), str(tmp_path / "out.pt"), "--config", str(config)],
                 ["train", str(config), "--init", str(src), "--out", str(tmp_path / "run")],
                 ["eval", str(src), "--config", str(config)]):
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "ckpt_best.pth" in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt_best.pth", "exp.yaml"]
