"""Kill tests for bench/convert/release.py (issue 32's mutation pass), fast enough to run for every mutant: the
release layout of tests/convert/test_release_checkpoint (a half-width ResNet-18 model in the hzhupku/IFA structure)
with distinct values (key by key: tests/audit/planted/test_key_mappings), in float32 as released checkpoints are
(the folded running means keep their dtype), and every refusal word for word."""
import pytest
import torch

from bench.convert import release
from bench.errors import UserError
from tests.audit.planted.test_key_mappings import distinct, release_expected
from tests.convert.test_release_checkpoint import CFG, _release_model


@pytest.fixture(scope="module")
def source() -> dict:
    """The release's keys, distinct float64 values (no `module.` prefix)."""
    return distinct({k: tuple(v.shape) for k, v in _release_model().state_dict().items()})


def _refusal(state, cfg=CFG) -> str:
    with pytest.raises(UserError) as err:
        release.convert(state, cfg)
    return str(err.value)


def test_every_key_lands_where_the_release_means_it(source):
    for state in (source, {"module." + k: v for k, v in source.items()}):
        converted = release.convert(state, CFG)
        want = release_expected(source)
        assert set(converted) == set(want)
        wrong = [k for k in want if converted[k].shape != want[k].shape or not torch.equal(converted[k], want[k])]
        assert not wrong, wrong[:5]
    assert all(converted[f"head.pe.{i}.freq"].is_contiguous() for i in range(4))


def test_float32_checkpoints_stay_float32():
    state = _release_model().state_dict()
    converted = release.convert(state, CFG)
    assert all(v.dtype == torch.float32 for k, v in converted.items() if not k.endswith("num_batches_tracked"))
    mean = converted["head.reduce.0.1.running_mean"]
    assert mean.dtype == torch.float32
    exact = (state["decoder.enc1.1.running_mean"].double() - state["decoder.enc1.0.bias"].double()).float()
    assert torch.equal(mean, exact)


def test_detect_and_strip():
    t = torch.zeros(1)
    assert release.detect({"module.decoder.ifa.imnet.0.weight": t})
    assert release.detect({"x": t, "decoder.ifa.imnet.3.bias": t})
    assert not release.detect({"decoder.ifa.pos1.emb": t, "module.module.decoder.ifa.imnet.0.weight": t})
    assert release._strip({"module.a": 1, "module.b": 2}) == {"a": 1, "b": 2}
    assert release._strip({"module.a": 1, "b": 2}) == {"module.a": 1, "b": 2}
    assert release._strip({}) == {}


def test_the_head_must_be_the_releases(source):
    assert _refusal(source, CFG.model_copy(update={"head": CFG.head.model_copy(update={"name": "fpn"})})) == (
        "hzhupku/IFA checkpoint: model.head.name is 'fpn'; the release's decoder is IFA")
    need = ("hzhupku/IFA checkpoint: model.head needs in_features [c2, c3, c4, c5] and pe sinusoidal (the released "
            "fpn_ifa with ultra_pe)")
    assert _refusal(source, CFG.model_copy(update={"head": CFG.head.model_copy(
        update={"in_features": ("c3", "c4", "c5")})})) == need
    assert _refusal(source, CFG.model_copy(update={"head": CFG.head.model_copy(update={"pe": "learned"})})) == need


def test_missing_and_leftover_keys_are_named(source):
    gone = {k: v for k, v in source.items() if k != "decoder.enc2.0.bias"}
    assert _refusal(gone) == "hzhupku/IFA checkpoint: key 'decoder.enc2.0.bias' is missing"
    gone = {k: v for k, v in source.items() if k != "decoder.ifa.imnet.4.running_var"}
    assert _refusal(gone) == "hzhupku/IFA checkpoint: key 'decoder.ifa.imnet.4.running_var' is missing"
    extra = {**source, "decoder.extra.weight": torch.zeros(1)}
    assert _refusal(extra) == ("hzhupku/IFA checkpoint: key 'decoder.extra.weight' has no counterpart in the "
                               "project's model")
    extra = {**source, "decoder.b.weight": torch.zeros(1), "decoder.a.weight": torch.zeros(1)}
    assert _refusal(extra).endswith("'decoder.a.weight' has no counterpart in the project's model (+1 more)")
    extra = {**source, "decoder.z.weight": torch.zeros(1), "decoder.a.weight": torch.zeros(1),
             "decoder.m.weight": torch.zeros(1)}
    assert _refusal(extra) == ("hzhupku/IFA checkpoint: key 'decoder.a.weight' has no counterpart in the project's "
                               "model (+2 more)")


def test_frequencies_and_counters_that_the_release_may_lack(source):
    no_emb = {k: v for k, v in source.items() if k != "decoder.ifa.pos3.emb"}
    assert _refusal(no_emb) == ("hzhupku/IFA checkpoint: key 'decoder.ifa.pos3.emb' is missing "
                                "(model.head.pe_learnable_freq is true)")
    fixed = CFG.model_copy(update={"head": CFG.head.model_copy(update={"pe_learnable_freq": False})})
    converted = release.convert(no_emb, fixed)
    assert "head.pe.2.freq" not in converted and "head.pe.3.freq" in converted
    old = {k: v for k, v in source.items() if not k.endswith("num_batches_tracked")}  # an old PyTorch's checkpoint
    converted = release.convert(old, CFG)
    assert not any(k.endswith("num_batches_tracked") for k in converted)
    assert torch.equal(converted["head.mlp.norms.2.running_var"], source["decoder.ifa.imnet.7.running_var"])


def test_the_auxiliary_head(source):
    no_aux = CFG.model_copy(update={"aux_head": CFG.aux_head.model_copy(update={"enabled": False})})
    assert _refusal(source, no_aux) == ("hzhupku/IFA checkpoint has an auxiliary head (auxor.*); enable "
                                        "model.aux_head")
    without = {k: v for k, v in source.items() if not k.startswith("auxor.")}
    converted = release.convert(without, no_aux)
    assert not any(k.startswith("aux_head.") for k in converted)
    assert set(converted) == {k for k in release_expected(source) if not k.startswith("aux_head.")}
