"""Evaluation protocols of a sweep's `evaluate:` list (docs/sweeps.md, "Evaluation protocols").

    sweep:
      evaluate:
        - ss                                   # a built-in by name
        - {name: ms_flip, scales: [0.75, 1.0, 1.25]}   # a built-in with eval.* keys changed
        - {name: slide769, mode: slide, crop_size: [769, 769]}  # an own protocol: a name plus eval.* keys

A protocol is a name plus overrides of the trial's `eval:` section (keys of bench.config.experiment.EvalConfig,
written bare or as `eval.<key>`). Each runs as its own Ray task on the trial's final checkpoint
(bench/sweep/tasks/eval_tasks.py) and gives its own results row.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from bench.errors import UserError

# The multi-scale list of the released IFA/mmseg configs (used when the config's own eval.scales is single-scale).
RELEASED_MS_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
SINGLE = {"mode": "whole", "scales": [1.0], "flip": False}
BUILTINS: dict[str, dict[str, Any]] = {
    "ss": dict(SINGLE),  # the config's eval section, single-scale whole image, no flip
    "slide": {"mode": "slide", "scales": [1.0], "flip": False},
    "ms_flip": {"flip": True},  # scales: the config's when it has several, else RELEASED_MS_SCALES
    "ifa_label": {"ifa_query": "label"},  # IFA only: query the implicit decoder at label resolution
    "ifa_upsample": {"ifa_query": "upsample"},  # IFA only: upsample the stride-4 logits
}
IFA_ONLY = {"ifa_label", "ifa_upsample"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # also a folder name: trials/<hash>/eval/<name>/


@dataclass(frozen=True)
class Protocol:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)  # EvalConfig key -> value, given by the user

    def applies_to(self, cfg) -> bool:
        """ifa_label / ifa_upsample only make a row for IFA trials (other heads have no query resolution)."""
        return self.name not in IFA_ONLY or cfg.model.head.name == "ifa"

    def eval_data(self, cfg) -> dict:
        """The trial's eval section with this protocol applied (plain data, not yet validated)."""
        data = cfg.eval.model_dump(mode="json")
        data.update(BUILTINS.get(self.name, {}))
        if self.name == "ms_flip" and "scales" not in self.overrides:
            data["scales"] = list(cfg.eval.scales) if len(cfg.eval.scales) > 1 else list(RELEASED_MS_SCALES)
        data.update(self.overrides)
        return data

    def eval_config(self, cfg, where: str):
        from bench.config import validate
        from bench.config.experiment import EvalConfig

        return validate(EvalConfig, self.eval_data(cfg), where)

    def as_dict(self) -> dict:
        return {"name": self.name, "overrides": dict(self.overrides)}


def from_dict(d: dict) -> Protocol:
    return Protocol(d["name"], dict(d.get("overrides") or {}))


def _eval_keys() -> list[str]:
    from bench.config.experiment import EvalConfig

    return list(EvalConfig.model_fields)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_protocols(entries: list, where: str) -> list[Protocol]:
    """The `evaluate:` list as Protocols; one-line UserError naming the entry on any problem."""
    out: list[Protocol] = []
    keys = _eval_keys()
    for i, entry in enumerate(entries):
        at = f"{where}: sweep.evaluate[{i}]"
        if isinstance(entry, str):
            name, overrides = entry, {}
        elif isinstance(entry, dict):
            if "name" not in entry:
                raise UserError(f"{at}: a protocol given as a mapping needs a `name`")
            name = entry["name"]
            overrides = {}
            for key, value in entry.items():
                if key == "name":
                    continue
                bare = key[len("eval."):] if isinstance(key, str) and key.startswith("eval.") else key
                if bare not in keys:
                    raise UserError(f"{at}: unknown eval key {key!r}{_suggest(str(bare), keys)}; "
                                    f"known: {', '.join(keys)}")
                overrides[bare] = value
        else:
            raise UserError(f"{at}: expected a protocol name or a mapping with `name`, got {type(entry).__name__}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserError(f"{at}: protocol name {name!r}: use letters, digits, '_', '.', '-' (it names a folder)")
        if name not in BUILTINS and not overrides:
            raise UserError(f"{at}: unknown protocol {name!r}{_suggest(name, BUILTINS)}; built-ins: "
                            f"{', '.join(BUILTINS)} (or give a name with eval.* keys)")
        if any(p.name == name for p in out):
            raise UserError(f"{at}: protocol {name!r} is listed twice")
        out.append(Protocol(name, overrides))
    return out


def check_trials(protocols: list[Protocol], trials, where: str) -> None:
    """Every protocol must give a valid eval section for every trial it applies to (refused before Ray starts)."""
    from bench.config.experiment import slide_stride_problem
    from bench.host.budget import eval_bytes, require_fits, stem_channels

    for t in trials:
        for p in protocols:
            if p.applies_to(t.config):
                at = f"{where}: sweep.evaluate {p.name!r} (trial {t.trial_id})"
                ev = p.eval_config(t.config, at)
                problem = slide_stride_problem(ev, t.config.data.crop_size)
                if problem:
                    raise UserError(f"{at}: stride {problem}")
                # as `eval` judges its flags, on the least image the trial sees (its crop), before any training
                h, w = t.config.data.crop_size
                window = tuple(ev.crop_size or t.config.data.crop_size) if ev.mode == "slide" else None
                require_fits(eval_bytes(h, w, ev.scales, t.config.model.num_classes, window,
                                        stem_channels(t.config.model.backbone)),
                             f"{at}: scales {list(ev.scales)} on a {h}x{w} image")
