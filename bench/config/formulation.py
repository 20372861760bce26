"""IFA's `formulation: auto` and what it runs as (torch-free: the sweep's driver keys measurements with it).

`auto` runs the formulation measured fastest on the device type the model runs on: on CUDA the reference one, on
every other device the fused one. The choice is made where the model runs (bench/models/segmentor.py, at each
forward whose device type changed), so a model built on the CPU and moved to a GPU runs the GPU's choice.

Config hash: `auto` hashes as "fused", the formulation every config without the key ran before `auto` existed, so
trial folders written then keep their hash (CHANGELOG.md, the entry for issue 27). Measurements are keyed by the
formulation that runs on the measuring device (`ran_formulation`), never by the setting.
"""
from __future__ import annotations

from typing import Optional

AUTO = "auto"
# On CUDA: an NVIDIA H200 at 1024x2048, batch 1, CUDA events (`make gpu-check`, round 10,
# docs/results/gpu_check_h200_round10*.json): the head alone took 8.11 ms (reference) vs 17.84 ms (fused) in fp32 and
# 4.24 vs 22.06 ms in bf16 autocast; the whole deep-stem R-50 model 19.0 vs 25.4 ms. To be measured again when the
# device-side fused head (issue 27) has its GPU table in docs/performance.md.
FASTEST_ON_CUDA = "reference"
# Elsewhere (CPU): the fused head is 2.5x faster or more at 1024x2048 (`make bench`, docs/performance.md).
FASTEST_ELSEWHERE = "fused"
HASHED_AS = {AUTO: "fused"}  # what a setting hashes as (keeps the config hashes of trial folders written before auto)


def ran_formulation(setting: str, device_type: str) -> str:
    """The formulation that runs for `setting` ("auto", "reference", "fused") on a device of type `device_type`."""
    if setting != AUTO:
        return setting
    return FASTEST_ON_CUDA if device_type == "cuda" else FASTEST_ELSEWHERE


def trial_device_type(train_device: str, gpus: float) -> str:
    """Where a sweep trial's model trains and is measured: "cuda" when the trial is given GPUs and does not pin the
    CPU (train.device), else "cpu". A results row names the formulation `auto` runs as there before the trial ran."""
    return "cuda" if gpus > 0 and train_device != "cpu" else "cpu"


def hashed_formulation(setting: str) -> str:
    return HASHED_AS.get(setting, setting)


def head_ran_as(head: Optional[dict], device_type: str) -> str:
    """`formulation` of a results row for a model.head config (a dict): what runs on `device_type`, "" for heads
    other than IFA."""
    if not head or head.get("name") != "ifa":
        return ""
    return ran_formulation(head.get("formulation", AUTO), device_type)
