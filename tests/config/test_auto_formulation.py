"""`formulation: auto` (bench/config/formulation.py): the fastest formulation where the model runs, chosen again when
a Segmentor runs on another device type; its config hash is that of the "fused" default it replaced, so trial folders
written before it keep their hashes; measurements are keyed, and rows labelled, by what ran."""
from types import SimpleNamespace

import pytest
import torch

from bench.config.experiment_file import load_experiment
from bench.config.formulation import FASTEST_ON_CUDA, ran_formulation
from bench.config.model import ModelConfig
from bench.measure.ifa_on_gpu import what_ran
from bench.models import build_segmentor
from bench.results.row import ran_columns
from bench.sweep.tasks.measurement import measure_key

# config_hash() of these files at 34f6889, before `auto` existed (their IFA ran "fused", or "reference" when set);
# the demo has since changed its schedule and measurement, so those settings of 34f6889 are set back for the check
HASHES_BEFORE_AUTO = {"experiments/synthetic.yaml": "f842b8fd5174", "experiments/cityscapes_r50.yaml": "9f64cb0de138"}
SETTINGS_AT_34F6889 = {"experiments/synthetic.yaml": [
    "train.iterations=300", "measure.processes=3", "measure.max_processes=null", "measure.span_s=240",
    "measure.max_phase_s=null"]}


def test_auto_runs_the_reference_on_cuda_and_fused_elsewhere():
    assert FASTEST_ON_CUDA == "reference"  # round 10's H200 table; revisit with the device-side fused head's
    assert [ran_formulation("auto", d) for d in ("cuda", "cpu", "mps", "meta")] == ["reference", "fused", "fused",
                                                                                     "fused"]
    assert [ran_formulation(f, "cuda") for f in ("reference", "fused")] == ["reference", "fused"]


@pytest.mark.parametrize("path", sorted(HASHES_BEFORE_AUTO))
def test_config_hashes_of_trial_folders_written_before_auto_are_kept(path):
    then = SETTINGS_AT_34F6889.get(path, [])
    cfg = load_experiment(path, then)
    assert cfg.model.head.formulation == "auto"  # the default, and the GPU recipe's setting
    assert cfg.config_hash() == HASHES_BEFORE_AUTO[path]
    fused = load_experiment(path, then + ["model.head.formulation=fused"])
    reference = load_experiment(path, then + ["model.head.formulation=reference"])
    assert fused.config_hash() == cfg.config_hash() != reference.config_hash()


def _small(formulation="auto"):
    torch.manual_seed(0)
    return build_segmentor(ModelConfig.model_validate({
        "num_classes": 3, "backbone": {"name": "resnet18"}, "aux_head": {"enabled": False},
        "head": {"name": "ifa", "channels": 16, "mlp": [16], "formulation": formulation}})).eval()


def test_a_segmentor_chooses_again_on_another_device_type_and_keeps_a_hand_set_formulation():
    model, images = _small(), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        model(images)
        assert what_ran(model) == {"formulation": "fused", "ifa_kernels": "torch"}
        model._choose_formulation("cuda")  # what a forward on a GPU does first
        assert model.head.formulation == "reference"
        model(images)  # back on the CPU
        assert model.head.formulation == "fused"
        model.head.formulation = "reference"  # by hand (tools/mmseg_parity does): holds on the same device type
        model(images)
        assert what_ran(model)["formulation"] == "reference"
    pinned = _small("fused")
    pinned._choose_formulation("cuda")
    assert pinned.head.formulation == "fused"  # only `auto` is chosen per device


def test_what_ran_reads_the_heads_kernels_and_is_empty_for_other_heads():
    model = _small()
    model.head.last_kernels = "triton"
    assert what_ran(model) == {"formulation": "fused", "ifa_kernels": "triton"}
    assert what_ran(SimpleNamespace(module=model)) == what_ran(model)  # DDP-wrapped
    assert what_ran(torch.nn.Linear(2, 2)) == {"formulation": "", "ifa_kernels": ""}
    fpn = build_segmentor(ModelConfig.model_validate({"num_classes": 3, "backbone": {"name": "resnet18"},
                                                      "head": {"name": "fpn"}}))
    assert what_ran(fpn) == {"formulation": "", "ifa_kernels": ""}


def _payload(formulation, gpus):
    return {"resources": {"cpus": 2, "gpus": gpus, "workers": 1},
            "cfg": {"model": {"num_classes": 3, "head": {"name": "ifa", "formulation": formulation}},
                    "measure": {}, "train": {"device": "auto", "threads": 1}, "eval": {}}}


def test_measurements_are_keyed_by_the_formulation_that_runs_on_the_measuring_device():
    for gpus, same in ((0, "fused"), (1, "reference")):
        keys = {f: measure_key(_payload(f, gpus)) for f in ("auto", "fused", "reference")}
        assert keys["auto"] == keys[same] and keys["fused"] != keys["reference"]


def test_a_row_before_its_trial_ran_names_what_auto_runs_on_the_trials_device():
    from bench.results.row import base_row
    from bench.sweep.spec.trials import Resources, TrialSpec

    cfg = load_experiment("experiments/synthetic.yaml", [])
    for gpus, device, ran in ((0, "auto", "fused"), (1, "auto", "reference"), (1, "cpu", "fused")):
        trial = TrialSpec("t", "h", {}, cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})}),
                          Resources(gpus=gpus))
        row = base_row(trial, "s", "pending")
        assert (row["formulation"], row["ifa_kernels"]) == (ran, ""), (gpus, device)


def test_a_rows_formulation_and_kernels_are_what_ran():
    ran = {"formulation": "reference", "ifa_kernels": "triton"}
    assert ran_columns("ifa", "auto", ran, {"formulation": "fused", "ifa_kernels": "torch"}) == ran  # the measurement's
    assert ran_columns("ifa", "auto", {"latency_ms_median": 1.0}, ran) == ran  # else training's
    # a trial trained and measured before either recorded it: `auto` did not exist, it ran "fused" on torch kernels
    assert ran_columns("ifa", "auto", {}, {}) == {"formulation": "fused", "ifa_kernels": "torch"}
    assert ran_columns("ifa", "reference", {}, {}) == {"formulation": "reference", "ifa_kernels": "torch"}
    assert ran_columns("fpn", "", ran, ran) == {"formulation": "", "ifa_kernels": ""}
