"""Ray Tune sweeps over datasets x backbones x heads x seeds x any config key (docs/sweeps.md)."""
from bench.sweep.spec.trials import Sweep, TrialSpec, load_sweep

__all__ = ["Sweep", "TrialSpec", "load_sweep"]
