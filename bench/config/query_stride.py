"""The IFA query-resolution option `eval.ifa_query_stride` and how it relates to `eval.ifa_query`.

- `ifa_query: label` queries IFA at the label's resolution: stride 1.
- `ifa_query: upsample` queries IFA on its own grid (the finest input level's, stride 4 for c2) and upsamples the
  logits: the released protocol.
- `ifa_query_stride: s` queries IFA on the 1/s grid of the output and upsamples the rest bilinearly. Stride 1 is
  `label` (setting the stride to 1 alone sets `ifa_query: label`); strides 2 and 4 are upsampling protocols, so they
  contradict an explicit `ifa_query: label`, and stride 1 contradicts an explicit `ifa_query: upsample`.
- Non-IFA heads have no query grid: their logits are always upsampled, and setting the stride for them is refused.

Unset (None), the stride is left out of the config hash, so configs written before it existed keep their hash.
"""
from __future__ import annotations

from typing import Any, Optional

from bench.config.key_conflict import key_conflict

QUERY_STRIDE_KEY = "eval.ifa_query_stride"  # a sweep applies it to IFA trials only (bench/sweep/spec/trials.py)


def stride_one_implies_label(cls, data: Any) -> Any:
    """`ifa_query_stride: 1` with no `ifa_query` given means `ifa_query: label` (before validation)."""
    if isinstance(data, dict) and data.get("ifa_query_stride") == 1 and "ifa_query" not in data:
        return {**data, "ifa_query": "label"}
    return data


def check_query_stride(eval_cfg):
    stride, query = eval_cfg.ifa_query_stride, eval_cfg.ifa_query
    if stride is None:
        return eval_cfg
    if query == "label" and stride != 1:
        raise key_conflict("ifa_query_stride", f"{stride} contradicts ifa_query=label (which queries at stride 1); "
                                               "drop one of the two")
    if query == "upsample" and stride == 1:
        raise key_conflict("ifa_query_stride", "1 queries at label resolution, which contradicts ifa_query=upsample; "
                                               "set ifa_query=label or leave ifa_query out")
    return eval_cfg


def only_ifa_queries(cfg):
    stride, head = cfg.eval.ifa_query_stride, cfg.model.head.name
    if stride is not None and head != "ifa":
        raise key_conflict("eval.ifa_query_stride",
                           f"{stride}: only the IFA head can be queried at a chosen resolution (model.head.name is "
                           f"{head!r}, whose logits are always upsampled); remove the key")
    return cfg


def omit_unset_stride(payload: dict) -> dict:
    """The hash payload without an unset stride, or a stride 1 that only repeats `ifa_query: label`."""
    ev = payload.get("eval", {})
    if "ifa_query_stride" in ev and (ev["ifa_query_stride"] is None or
                                     (ev["ifa_query_stride"] == 1 and ev.get("ifa_query") == "label")):
        payload["eval"] = {k: v for k, v in ev.items() if k != "ifa_query_stride"}
    return payload


def native_query_stride(model_cfg) -> Optional[int]:
    """The stride of IFA's own query grid (its finest input level), None for other heads."""
    head = model_cfg.head
    if head.name != "ifa":
        return None
    cap = 10**6 if model_cfg.backbone.name.startswith("hrnet") else model_cfg.backbone.output_stride
    return min(min(2 ** int(f[1:]), cap) for f in head.in_features)


def effective_query_stride(cfg) -> Optional[int]:
    """The stride IFA is queried at under `cfg.eval` (1 = label resolution); None for other heads."""
    native = native_query_stride(cfg.model)
    if native is None:
        return None
    if cfg.eval.ifa_query_stride is not None:
        return cfg.eval.ifa_query_stride
    return 1 if cfg.eval.ifa_query == "label" else native


def query_mode(head: str, ifa_query: str = "upsample", ifa_query_stride: Optional[int] = None
               ) -> Optional[tuple[str, Optional[int]]]:
    """The IFA query mode a model is run in to be measured as it is evaluated: (ifa_query, query_stride) for
    bench.engine.evaluation.inference.ifa_query_mode when IFA is queried off its own grid (label resolution or a
    chosen stride), with stride 1 given as None (label resolution is its own grid); None for IFA on its own grid,
    upsampled (the default mode), and for heads that cannot be queried. The sweep's measurement key holds it."""
    if head != "ifa" or (ifa_query_stride is None and ifa_query == "upsample"):
        return None
    return ifa_query, None if ifa_query_stride == 1 else ifa_query_stride


def query_mode_of(cfg) -> Optional[tuple[str, Optional[int]]]:
    """query_mode of an ExperimentConfig."""
    return query_mode(cfg.model.head.name, cfg.eval.ifa_query, cfg.eval.ifa_query_stride)
