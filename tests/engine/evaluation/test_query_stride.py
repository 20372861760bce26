"""eval.ifa_query_stride: the config's rules, the query grid, mIoU of a known case at each stride, and GMACs."""
import json

import pytest
import torch
from torch import nn

from bench.config import ExperimentConfig, validate
from bench.config.experiment import EvalConfig
from bench.config.query_stride import effective_query_stride
from bench.engine.evaluation.evaluate import evaluate
from bench.engine.evaluation.inference import ifa_query_mode, query_stride_of
from bench.errors import UserError
from bench.models.segmentor import Segmentor

BASE = {
    "data": {"dataset": "synthetic", "root": "unused"},
    "model": {"num_classes": 3, "backbone": {"name": "resnet18", "width": 0.125},
              "head": {"name": "ifa", "channels": 8, "mlp": [16, 8], "pe_dim": 8}},
}


def experiment(eval_section=None, head=None):
    data = json.loads(json.dumps(BASE))
    if head is not None:
        data["model"]["head"] = {"name": head}
    if eval_section is not None:
        data["eval"] = eval_section
    return validate(ExperimentConfig, data, "exp.yaml")


# --- config -------------------------------------------------------------------------------------------------

def test_stride_one_means_label_and_the_others_upsample():
    assert experiment({"ifa_query_stride": 1}).eval.ifa_query == "label"
    assert experiment({"ifa_query_stride": 2}).eval.ifa_query == "upsample"
    assert [effective_query_stride(experiment(e)) for e in
            ({}, {"ifa_query": "label"}, {"ifa_query_stride": 2}, {"ifa_query_stride": 4})] == [4, 1, 2, 4]
    assert effective_query_stride(experiment(head="fpn")) is None


@pytest.mark.parametrize("section, needles", [
    ({"ifa_query": "label", "ifa_query_stride": 2}, ["exp.yaml: eval.ifa_query_stride: 2 contradicts ifa_query=label"]),
    ({"ifa_query": "upsample", "ifa_query_stride": 1}, ["exp.yaml: eval.ifa_query_stride: 1", "ifa_query=upsample"]),
    ({"ifa_query_stride": 3}, ["exp.yaml: eval.ifa_query_stride:", "1, 2 or 4"]),
])
def test_contradictions_are_one_line_errors(section, needles):
    with pytest.raises(UserError) as err:
        experiment(section)
    assert "\n" not in str(err.value) and all(n in str(err.value) for n in needles), str(err.value)


def test_a_non_ifa_head_refuses_the_stride():
    with pytest.raises(UserError, match=r"^exp\.yaml: eval\.ifa_query_stride: 2: only the IFA head .*'fpn'"):
        experiment({"ifa_query_stride": 2}, head="fpn")


def test_config_hash_distinguishes_strides_and_keeps_older_hashes():
    hashes = {s: experiment({"ifa_query_stride": s}).config_hash() for s in (1, 2, 4)}
    assert len(set(hashes.values())) == 3
    assert hashes[1] == experiment({"ifa_query": "label"}).config_hash()  # the same protocol, the same hash
    # the hash this config had before the stride option (and the options added since) existed: at 34f6889
    assert experiment().config_hash() == "be33c9610556"


# --- engine: a known case --------------------------------------------------------------------------------------

class Stride4Features(nn.Module):
    def forward(self, images):
        return {"c2": images[:, :, ::4, ::4]}


class StripeHead(nn.Module):
    """Queryable like IFA: class 1 where a query cell's centre (in label pixels) lies in a column of STRIPES."""
    supports_query_size = True
    output_stride = 4
    align_corners = True  # IFA's
    STRIPES = ((7, 8), (12, 14))  # [start, end) columns: a 1-px line and a 2-px bar on a 16-px wide label

    def __init__(self, label_width=16):
        super().__init__()
        self.label_width = label_width
        self.grids = []

    def forward(self, features, size=None):
        feat = features["c2"]
        h, w = size if size is not None else feat.shape[-2:]
        self.grids.append((int(h), int(w)))
        centres = (torch.arange(w, dtype=torch.float32) + 0.5) * self.label_width / w - 0.5
        inside = torch.zeros(w, dtype=torch.bool)
        for a, b in self.STRIPES:
            inside |= (centres >= a) & (centres < b)
        one = torch.where(inside, 1.0, -1.0).expand(feat.shape[0], h, w)
        return torch.stack([torch.zeros_like(one), one, torch.full_like(one, -5.0)], dim=1)


def stripe_dataset():
    label = torch.zeros(4, 16, dtype=torch.long)
    label[:, 7] = 1
    label[:, 12:14] = 1
    return [(torch.zeros(3, 4, 16), label)]


@pytest.mark.parametrize("stride, miou, grid", [
    # stride 1: every column queried: exact
    (1, 100.0, (4, 16)),
    # stride 2: centres 0.5, 2.5, ..., 14.5 miss the 1-px line at column 7 and hit the bar (12.5); the bar's
    # logit upsampled (align_corners) stays positive on columns 12-13 only. IoU: class 1 2/3, class 0 13/14.
    (2, (2 / 3 + 13 / 14) / 2 * 100, (2, 8)),
    # stride 4 (the head's own grid): only the last centre, 13.5, is in the bar; upsampled it is positive on
    # columns 13-15. IoU: class 1 {13} / {7, 12..15} = 1/5, class 0 11/15.
    (4, (1 / 5 + 11 / 15) / 2 * 100, (1, 4)),
])
def test_known_miou_at_each_stride(stride, miou, grid):
    head = StripeHead()
    model = Segmentor(Stride4Features(), head)
    cfg = EvalConfig(ifa_query_stride=stride, **({"ifa_query": "label"} if stride == 1 else {}))
    res = evaluate(model, stripe_dataset(), cfg, num_classes=3)
    assert head.grids == [grid]
    assert res["miou"] == pytest.approx(miou)
    assert res["ifa_query_stride"] == stride and f"at stride {stride}" in res["protocol"]
    assert (res["boundary_iou"] == pytest.approx(100.0)) == (stride == 1)
    assert model.query_at_output is False and model.query_stride is None  # restored


def test_upsample_protocol_is_stride_4_and_other_heads_ignore_the_stride():
    head = StripeHead()
    model = Segmentor(Stride4Features(), head)
    native = evaluate(model, stripe_dataset(), EvalConfig(), num_classes=3)
    assert native["ifa_query_stride"] == 4 and head.grids == [(1, 4)]
    head.supports_query_size = False  # a fixed-stride head: upsampled whatever the stride
    model.eval()
    with ifa_query_mode(model, "upsample", 2):
        assert query_stride_of(model) is None
        logits = model(torch.zeros(1, 3, 4, 16))
    assert head.grids[-1] == (1, 4) and logits.shape[-2:] == (4, 16)


# --- a real IFA: output grid and GMACs -----------------------------------------------------------------------

@pytest.mark.slow  # three fvcore traces
def test_real_ifa_query_grid_and_gmacs_fall_with_the_stride():
    from bench.measure.macs import count_macs
    from bench.models import build_segmentor

    torch.manual_seed(0)
    model = build_segmentor(experiment().model).eval()
    image = torch.randn(1, 3, 32, 64)
    grids = []
    model.head.register_forward_hook(lambda m, i, out: grids.append(tuple(out.shape[-2:])))
    with torch.no_grad():
        upsampled = model(image)
        gmacs, outputs, grid = {}, {}, {}
        for stride in (4, 2, 1):
            with ifa_query_mode(model, "label" if stride == 1 else "upsample", stride):
                outputs[stride] = model(image)
                grid[stride] = grids[-1]
                gmacs[stride] = count_macs(model, image).gmacs
    assert grid == {4: (8, 16), 2: (16, 32), 1: (32, 64)}
    assert all(o.shape[-2:] == (32, 64) for o in outputs.values())
    assert torch.equal(outputs[4], upsampled)  # stride 4 is the released upsample protocol
    assert gmacs[1] > gmacs[2] > gmacs[4]


# --- the eval command ------------------------------------------------------------------------------------------

def test_eval_command_queries_at_the_given_stride(tmp_path, capsys):
    import yaml

    from bench.cli import main
    from bench.models import build_segmentor
    from tests.data.fixtures import make_cityscapes

    make_cityscapes(tmp_path / "cs", n_train=1, n_val=1, size=(32, 48))
    cfg = {"data": {"dataset": "cityscapes", "root": str(tmp_path / "cs"), "crop_size": [32, 32], "num_workers": 0},
           "model": {**BASE["model"], "num_classes": 19}, "train": {"device": "cpu"}}
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": build_segmentor(validate(ExperimentConfig, cfg).model).state_dict()}, ckpt)
    out = tmp_path / "m.json"
    assert main(["eval", str(ckpt), "--config", str(config), "--ifa-query-stride", "2", "--out", str(out),
                 "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert (res["ifa_query"], res["ifa_query_stride"]) == ("upsample", 2) and "at stride 2" in res["protocol"]
    cfg["model"]["head"] = {"name": "fpn", "channels": 8, "scale_channels": 8}
    config.write_text(yaml.safe_dump(cfg))
    capsys.readouterr()
    assert main(["eval", str(ckpt), "--config", str(config), "--ifa-query-stride", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eval: error: --ifa-query-stride: only the IFA head" in err, err
