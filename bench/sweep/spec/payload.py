"""A trial as plain JSON-able data (the payload): what the driver hands to Ray, and Tune stores in its state."""
from __future__ import annotations

import os
from pathlib import Path

from bench.config import ExperimentConfig
from bench.sweep.folder import layout
from bench.sweep.spec.trials import Resources, TrialSpec


def trial_payload(trial: TrialSpec, sweep_dir: Path, sweep_name: str) -> dict:
    """Everything a trial needs, as plain JSON-able data."""
    return {
        "trial_id": trial.trial_id,
        "config_hash": trial.config_hash,
        "axis_values": trial.axis_values,
        "extra_axes": trial.extra_axes,
        "cfg": trial.config.model_dump(mode="json"),
        "resources": trial.resources.model_dump(),
        "sweep_dir": str(Path(sweep_dir).resolve()),
        "sweep_name": sweep_name,
        "trial_dir": str(layout.trial_dir(Path(sweep_dir).resolve(), trial.config_hash)),
        "cwd": os.getcwd(),
    }


def spec_from_payload(p: dict) -> TrialSpec:
    return TrialSpec(
        trial_id=p["trial_id"], config_hash=p["config_hash"], axis_values=p["axis_values"],
        config=ExperimentConfig.model_validate(p["cfg"]), resources=Resources(**p["resources"]),
        extra_axes=p["extra_axes"],
    )
