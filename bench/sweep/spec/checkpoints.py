"""`ifa-bench sweep EXP.yaml --checkpoints SPEC`: which checkpoints an eval-only sweep evaluates, with which config.

SPEC is one of
- an earlier sweep folder: the final checkpoint (trials/<hash>/checkpoints/last.pt) of each of its completed
  trials, each with its own trial config (trials/<hash>/config.yaml). With a `dataset` axis in EXP.yaml, each is
  evaluated on every dataset of that axis (its data and eval sections replace the trial's);
- a comma-separated list of .pt files and/or globs: each checkpoint with every trial config of EXP.yaml whose
  model it loads into (a checkpoint that fits none of them is an error).
Files of other layouts (hzhupku/IFA release, mmseg) go through the converter registry (bench/convert/registry.py),
detected or named with --checkpoint-format. Every checkpoint is loaded into its model before Ray starts, so a wrong
model or an unreadable file is a one-line error (exit 2), not a failed row.
"""
from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UserError
from bench.sweep.folder import layout, records
from bench.results.schema import TRIALS
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Target:
    checkpoint: Path
    trial_id: str
    config: object  # ExperimentConfig
    axis_values: dict
    config_label: str  # where the config came from, for error lines
    paired: bool = False  # a file paired with each config of EXP.yaml: kept only where the model fits

    @property
    def key(self) -> str:
        """The target's folder name: config and checkpoint file together."""
        blob = f"{self.config.config_hash()}|{self.checkpoint.resolve()}"
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _files(spec: str) -> list[Path]:
    out: list[Path] = []
    for part in [s.strip() for s in spec.split(",") if s.strip()]:
        if _GLOB_CHARS & set(part):
            hits = sorted(Path(h) for h in glob.glob(part) if Path(h).is_file())
            if not hits:
                raise UserError(f"--checkpoints: {part!r} matches no file")
            out.extend(hits)
        elif Path(part).is_file():
            out.append(Path(part))
        elif Path(part).is_dir():
            raise UserError(f"--checkpoints: {part}: a folder in a list; give a sweep folder alone")
        else:
            raise UserError(f"--checkpoints: {part}: no such file")
    if not out:
        raise UserError("--checkpoints: empty; give .pt files, a glob or a sweep folder")
    return list(dict.fromkeys(out))


def _datasets(sweep) -> list[tuple[str, dict]]:
    """(label, {data, eval, num_classes}) of each value of EXP's dataset axis, in axis order; [] without the axis."""
    seen: dict[str, dict] = {}
    for t in sweep.trials:
        if "dataset" in t.axis_values and t.axis_values["dataset"] not in seen:
            seen[t.axis_values["dataset"]] = {"data": t.config.data.model_dump(mode="json"),
                                              "eval": t.config.eval.model_dump(mode="json"),
                                              "num_classes": t.config.model.num_classes}
    return list(seen.items())


def _sweep_folder(sweep_dir: Path, sweep) -> list[Target]:
    from bench.config import ExperimentConfig, load_config, validate

    if not (sweep_dir / TRIALS).is_dir():
        raise UserError(f"--checkpoints: {sweep_dir}: not a sweep folder (no {TRIALS}/ in it)")
    datasets = _datasets(sweep)
    out: list[Target] = []
    for trial_dir in sorted((sweep_dir / TRIALS).iterdir()):
        done = records.read_done(trial_dir)
        ckpt = layout.checkpoint_dir(trial_dir) / layout.LAST_CHECKPOINT
        if done is None or not ckpt.is_file():
            continue
        cfg = load_config(ExperimentConfig, trial_dir / layout.CONFIG)
        trial_id = str(done["row"].get("trial_id") or trial_dir.name)
        if not datasets:
            out.append(Target(ckpt, trial_id, cfg, {"dataset": cfg.data.dataset}, str(trial_dir / layout.CONFIG)))
            continue
        for label, over in datasets:
            data = cfg.model_dump(mode="json")
            data["data"], data["eval"] = over["data"], over["eval"]
            if over["num_classes"] != cfg.model.num_classes:
                raise UserError(f"--checkpoints: {trial_dir.name} ({trial_id}) has {cfg.model.num_classes} classes, "
                                f"dataset {label!r} of {sweep.path} has {over['num_classes']}")
            where = f"{trial_dir / layout.CONFIG} on dataset {label}"
            tid = trial_id if label == cfg.data.dataset else f"{trial_id}-on-{label}"
            out.append(Target(ckpt, tid, validate(ExperimentConfig, data, where), {"dataset": label}, where))
    if not out:
        raise UserError(f"--checkpoints: {sweep_dir}: no completed trial with a final checkpoint (checkpoints/last.pt)")
    return out


def resolve(spec: str, sweep) -> list[Target]:
    """The targets of SPEC for the sweep of EXP.yaml. Raises UserError (one line) for a bad SPEC."""
    path = Path(spec.strip())
    if "," not in spec and path.is_dir():
        targets = _sweep_folder(path, sweep)
    else:
        files = _files(spec)
        targets = [Target(f, f"{t.trial_id}-{f.stem}",
                          t.config, dict(t.axis_values), str(sweep.path), paired=True)
                   for f in files for t in sweep.trials]
    return targets


def loadable(targets: list[Target], fmt: str) -> list[Target]:
    """Load every checkpoint into its model on the CPU (a release/mmseg file through the converter first). A file
    given by name is kept with the configs whose model it fits; one that fits none, or a sweep folder's checkpoint
    that does not fit its own config, is a one-line error. Trial ids made unique."""
    from bench.convert.loading import model_from_checkpoint

    fits: dict[tuple[str, str], object] = {}  # (file, model) -> None or the UserError
    for t in targets:
        key = (str(t.checkpoint.resolve()), t.config.model.model_dump_json())
        if key not in fits:
            try:
                model_from_checkpoint(t.checkpoint, t.config, t.config_label, "cpu", fmt)
                fits[key] = None
            except UserError as exc:
                if not t.paired:
                    raise
                fits[key] = exc
    kept = [t for t in targets if fits[(str(t.checkpoint.resolve()), t.config.model.model_dump_json())] is None]
    for t in targets:
        if not any(k.checkpoint == t.checkpoint for k in kept):
            raise fits[(str(t.checkpoint.resolve()), t.config.model.model_dump_json())]
    ids = [t.trial_id for t in kept]
    return [Target(t.checkpoint, f"{t.trial_id}-{t.key[:6]}", t.config, t.axis_values, t.config_label, t.paired)
            if ids.count(t.trial_id) > 1 else t for t in kept]
