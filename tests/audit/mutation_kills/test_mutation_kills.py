"""Tests written to kill mutants that `make mutation` found surviving (docs/contributing/testing.md lists them)."""
import hashlib
import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.config.experiment import ExperimentConfig
from bench.engine.losses import build_loss, cross_entropy, ohem_cross_entropy
from bench.engine.evaluation.metrics import metrics_from_confusion, per_class_dict
from bench.measure.macs import count_macs
from ifa.positional import LearnedPE, RawCoordPE, SinusoidalPE, build_positional
from reports.pareto import frontier_steps, pareto_mask
from tests.audit.test_planted_bugs import SWEEP_BASE


# --- config hash: the recipe run directories and resumes are keyed by ----------------------------------------
def test_config_hash_is_sha256_of_the_canonical_json_without_the_name():
    cfg = ExperimentConfig.model_validate(SWEEP_BASE)
    payload = cfg.model_dump(mode="json", exclude={"name"})
    # keys added after hashes existed stay out at their defaults (an unset IFA query stride, 3 latency processes, no
    # limit of its own on their pool, a span of 240 s, the default since round 10, no phase bound)
    assert payload["eval"].pop("ifa_query_stride") is None and payload["measure"].pop("processes") == 3
    assert payload["measure"].pop("max_processes") is None and payload["measure"].pop("span_s") == 240.0
    assert payload["measure"].pop("max_phase_s") is None  # the phase's time bound, none by default
    # opt-in options added later stay out while off; the compile cache folder never counts
    assert payload["model"].pop("compile") is False and payload["data"].pop("crop_first") is False
    assert payload["train"].pop("channels_last") is False
    payload["model"].pop("compile_cache")
    head = payload["model"]["head"]
    if head["name"] == "ifa":  # `auto` hashes as the "fused" it replaced; how the fused head executes stays out
        assert head["formulation"] == "auto" and head.pop("kernels") == "auto" and head.pop("cuda_graph") is False
        head["formulation"] = "fused"
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert cfg.config_hash() == hashlib.sha256(canonical.encode()).hexdigest()[:12]
    # the earlier default span (60 s) stays out too, so sweeps run before round 10 keep their trial folders; any
    # other span is part of the hash
    spans = {s: ExperimentConfig.model_validate({**SWEEP_BASE, "measure": {**SWEEP_BASE.get("measure", {}),
                                                                           "span_s": s}}).config_hash()
             for s in (60.0, 240.0, 120.0)}
    assert spans[60.0] == spans[240.0] == cfg.config_hash() != spans[120.0]


# --- losses: the loss a TrainConfig asks for ------------------------------------------------------------------
def test_build_loss_returns_the_configured_loss():
    logits = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    label = torch.randint(0, 3, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    label[0, 0, 0] = 7  # the configured ignore index
    ce = build_loss(SimpleNamespace(loss="ce", ignore_index=7))
    assert float(ce(logits, label)) == pytest.approx(float(cross_entropy(logits, label, 7)))
    ohem = build_loss(SimpleNamespace(loss="ohem", ignore_index=7, ohem_thresh=0.6, ohem_min_kept=3))
    assert float(ohem(logits, label)) == pytest.approx(float(ohem_cross_entropy(logits, label, 0.6, 3, 7)))
    assert float(ohem(logits, label)) != pytest.approx(float(ce(logits, label)))
    with pytest.raises(ValueError, match="unknown loss 'dice'"):
        build_loss(SimpleNamespace(loss="dice", ignore_index=255))


# --- metrics --------------------------------------------------------------------------------------------------
def test_absent_class_gives_nan_without_dividing_by_zero():
    conf = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])  # class 2: neither in the GT nor predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 RuntimeWarning: undefined ratios are never computed
        m = metrics_from_confusion(conf)
    assert np.isnan(m["iou"][2]) and np.isnan(m["acc"][2]) and m["iou"].dtype == np.float64
    assert m["iou"][:2].tolist() == pytest.approx([75.0, 200 / 3])


def test_per_class_dict_names_each_value_and_refuses_a_length_mismatch():
    assert per_class_dict(np.array([1.5, np.nan]), ["road", "sky"]) == pytest.approx({"road": 1.5, "sky": np.nan},
                                                                                      nan_ok=True)
    with pytest.raises(ValueError, match="3 class names for 2 classes"):
        per_class_dict(np.array([1.0, 2.0]), ["a", "b", "c"])


# --- MAC handles ----------------------------------------------------------------------------------------------
class _Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_macs_are_scores_plus_weighted_sum():
    q, k, v = torch.zeros(2, 3, 5, 4), torch.zeros(2, 3, 7, 4), torch.zeros(2, 3, 7, 6)
    macs = count_macs(_Attention(), (q, k, v))
    # batch 2*3, L_q 5, L_kv 7: q k^T is 5*7*4 per batch, softmax(.) v is 5*7*6
    assert macs.total == 2 * 3 * 5 * 7 * (4 + 6)


# --- Pareto frontier ------------------------------------------------------------------------------------------
def test_pareto_treats_missing_values_as_off_the_frontier():
    cost = [1.0, None, 3.0, 2.0]
    value = [50.0, 90.0, None, 60.0]
    assert pareto_mask(cost, value).tolist() == [True, False, False, True]
    xs, ys = frontier_steps(cost, value)
    assert xs.tolist() == [1.0, 2.0] and ys.tolist() == [50.0, 60.0]


# --- positional encodings -------------------------------------------------------------------------------------
def test_encodings_concatenate_on_the_last_axis_of_batched_coordinates():
    coord = torch.rand(2, 5, 2) * 2 - 1
    for pe in (SinusoidalPE(8), LearnedPE(6), RawCoordPE()):
        out = pe(coord)
        assert out.shape == (2, 5, pe.out_dim)
    assert LearnedPE(6).out_dim == 6 and SinusoidalPE(8).out_dim == 10


def test_sinusoidal_pe_runs_in_float64():
    coord = torch.tensor([[0.25, -0.5]], dtype=torch.float64)
    out = SinusoidalPE(4, learnable_freq=False)(coord)
    assert out.dtype == torch.float64
    # pe_dim 4: one frequency (2^0 = 1) per axis
    assert out[0].tolist() == pytest.approx([0.25, -0.5, np.sin(0.25), np.sin(-0.5), np.cos(0.25), np.cos(-0.5)],
                                            rel=1e-12)


def test_learned_pe_needs_an_even_width_and_clamps_outside_coordinates():
    with pytest.raises(ValueError, match="even"):
        LearnedPE(5)
    pe = LearnedPE(4)
    inside = pe(torch.tensor([[-1.0, 1.0]]))
    outside = pe(torch.tensor([[-3.0, 1.5]]))
    assert torch.equal(inside, outside)
    assert torch.equal(inside[0, :2], pe.col_embed[-1]) and torch.equal(inside[0, 2:], pe.row_embed[0])


def test_build_positional_builds_each_kind_with_its_options():
    sin = build_positional("sinusoidal", 8, learnable_freq=False)
    assert isinstance(sin, SinusoidalPE) and sin.out_dim == 10 and not isinstance(sin.freq, nn.Parameter)
    assert isinstance(build_positional("sinusoidal", 8, True).freq, nn.Parameter)
    learned = build_positional("learned", 6, False)
    assert isinstance(learned, LearnedPE) and learned.out_dim == 6
    assert isinstance(build_positional("none", 6, False), RawCoordPE)
    with pytest.raises(ValueError, match="'fourier'"):
        build_positional("fourier", 8, True)


# --- confusion matrix bounds (second mutmut run) --------------------------------------------------------------
from bench.engine.losses import resize_to, segmentation_loss  # noqa: E402
from bench.engine.evaluation.metrics import confusion_matrix  # noqa: E402


def test_confusion_matrix_refuses_values_at_or_past_the_class_count():
    ok = torch.tensor([[0, 1], [2, 255]])
    assert confusion_matrix(ok, ok, 3).dtype == torch.int64
    with pytest.raises(ValueError, match=r"label value 3 is outside \[0, 3\)"):
        confusion_matrix(ok, torch.tensor([[0, 1], [3, 255]]), 3)
    with pytest.raises(ValueError, match=r"label value -1 is outside \[0, 1\)"):
        confusion_matrix(torch.zeros(2, 2, dtype=torch.long), torch.tensor([[0, 0], [-1, 0]]), 1)
    with pytest.raises(ValueError, match=r"prediction outside \[0, 3\)"):
        confusion_matrix(torch.tensor([[0, 1], [3, 0]]), ok, 3)
    with pytest.raises(ValueError, match=r"prediction outside"):
        confusion_matrix(torch.tensor([[0, -1], [1, 0]]), ok, 3)
    with pytest.raises(ValueError, match=r"prediction shape \(1, 4\) != label shape \(2, 2\)"):
        confusion_matrix(torch.zeros(1, 4, dtype=torch.long), ok, 3)


def test_confusion_matrix_names_the_first_bad_label():
    with pytest.raises(ValueError, match="label value 5 is outside"):
        confusion_matrix(torch.zeros(1, 3, dtype=torch.long), torch.tensor([[5, 0, 7]]), 3)


# --- segmentation_loss weighting (second mutmut run) ----------------------------------------------------------
def test_segmentation_loss_skips_zero_weights_and_weights_the_rest():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 3, (1, 8, 8), generator=g)
    a, b, c = (torch.randn(1, 3, 8, 8, generator=g) for _ in range(3))
    ce = lambda logits, lab: cross_entropy(logits, lab)  # noqa: E731
    total, parts = segmentation_loss({"aux": a, "off": b, "main": c}, label, {"aux": 0.4, "off": 0.0, "main": 2.0}, ce)
    assert float(total) == pytest.approx(0.4 * float(ce(a, label)) + 2.0 * float(ce(c, label)))
    assert sorted(parts) == ["loss_aux", "loss_main"]
    total, parts = segmentation_loss(c, label, {"main": 1.0}, ce)
    assert list(parts) == ["loss_main"] and float(total) == pytest.approx(float(ce(c, label)))
    with pytest.raises(KeyError, match="aux"):
        segmentation_loss({"aux": a}, label, {"main": 1.0}, ce)
    with pytest.raises(ValueError, match="every output has loss weight 0"):
        segmentation_loss({"main": a}, label, {"main": 0.0}, ce)


def test_resize_to_only_resizes_the_spatial_axes():
    x = torch.randn(2, 3, 4, 4)
    assert resize_to(x, (4, 4)) is x
    assert resize_to(x, (8, 8)).shape == (2, 3, 8, 8)
    odd = torch.randn(4, 4, 4, 4)
    assert resize_to(odd, (4, 4)) is odd


def test_ohem_loss_uses_its_ignore_index():
    logits = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    label = torch.randint(0, 3, (1, 4, 4), generator=torch.Generator().manual_seed(3))
    label[0, 0] = 255
    default = ohem_cross_entropy(logits, label, 0.99, 1)
    assert float(default) == pytest.approx(float(ohem_cross_entropy(logits, label, 0.99, 1, 255)))
    relabelled = label.masked_fill(label == 255, 9)
    assert float(ohem_cross_entropy(logits, relabelled, 0.99, 1, ignore_index=9)) == pytest.approx(float(default))
