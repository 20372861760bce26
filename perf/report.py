"""Targets check and the JSON / Markdown outputs of a benchmark run."""
from __future__ import annotations

import json
from pathlib import Path

from bench.files.atomic import write_text

# (name, group, metric, comparison, threshold)
TARGETS = [
    ("inference 1024x2048 b1: fused speed-up", "infer_cityscapes_b1", "speedup", ">=", 1.8),
    ("inference 1024x2048 b1: fused / reference peak memory", "infer_cityscapes_b1", "memory_ratio", "<=", 0.35),
    ("train step 769x769 b2: fused speed-up", "train_crop_b2", "speedup", ">=", 1.5),
    ("train step 769x769 b2: fused / reference peak memory", "train_crop_b2", "memory_ratio", "<=", 0.6),
]
FULL_QUERY_LIMIT_MB = 1.5e9 / 2**20  # 1.5 GB
MLP_GEMM_FRACTION = 0.6


def _ok(value, op, threshold):
    if value is None:
        return None
    return value >= threshold if op == ">=" else value <= threshold


def targets(result: dict) -> list[dict]:
    out = []
    ratios = {(r["group"], r["dtype"], r["channels_last"]): r for r in result["ratios"]}
    dtype = result["environment"]["dtype_requested"]
    for name, group, metric, op, thr in TARGETS:
        value = ratios.get((group, dtype, False), {}).get(metric)
        out.append({"target": name, "value": value, "threshold": f"{op} {thr}", "met": _ok(value, op, thr)})
    full = [r for r in result["records"] if r["group"] == "query_full_label_b1" and r["spec"]["formulation"] == "fused"]
    value = full[0].get("peak_mb") if full else None
    out.append({"target": "full label grid query b1 (fused): peak MiB", "value": value,
                "threshold": f"< {FULL_QUERY_LIMIT_MB:.0f}", "met": None if value is None else value < FULL_QUERY_LIMIT_MB})
    mlp = result.get("mlp_gemm", {}).get("mlp", {})
    value = mlp.get("fraction_of_gemm")
    out.append({"target": "fused MLP GEMMs: fraction of measured GEMM rate", "value": value,
                "threshold": f">= {MLP_GEMM_FRACTION}", "met": _ok(value, ">=", MLP_GEMM_FRACTION)})
    return out


def _fmt(x, digits=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = ["# IFA benchmark" + (" (smoke: tiny sizes, numbers not meaningful)" if result["smoke"] else ""), ""]
    lines += [f"Command: `{result['command']}`", ""]
    lines += ["| environment | |", "|---|---|"]
    for k in ("device", "device_name", "torch_version", "dtype_requested", "threads", "python_version", "hostname"):
        lines.append(f"| {k} | {env.get(k)} |")
    lines.append(f"| load average start / end | {env['load_average_start']} / {env['load_average_end']} |")
    lines.append(f"| wall time | {env['wall_s']:.0f} s |")
    lines += ["", f"Measured GEMM rate: **{result['gemm_rate_gmac_per_s']:.1f} GMAC/s** "
              f"(start/end: {', '.join(f'{r:.1f}' for r in result['gemm_rates'])}).", ""]
    lines += ["## Cases", "",
              "| case | median ms | min ms | median CPU ms | runs | peak MiB | GMACs | GMAC/s | of GEMM rate |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["records"]:
        lines.append(
            f"| {r['description']} | {_fmt(r['median_ms'])} | {_fmt(r['min_ms'])} | {_fmt(r.get('median_cpu_ms'))} | {r['runs']} | {_fmt(r.get('peak_mb'), 0)} "
            f"| {_fmt(r.get('gmacs'), 2)} | {_fmt(r.get('gmac_per_s'))} | {_fmt(r.get('fraction_of_gemm'), 2)} |"
        )
    lines += ["", "## Reference / fused", "", "| group | dtype | channels-last | speed-up (wall) | speed-up (CPU time) | fused / reference memory |",
              "|---|---|---|---:|---:|---:|"]
    for r in result["ratios"]:
        lines.append(f"| {r['group']} | {r['dtype']} | {r['channels_last']} | {_fmt(r['speedup'], 2)} | {_fmt(r.get('speedup_cpu_time'), 2)} | {_fmt(r.get('memory_ratio'), 2)} |")
    if result.get("mlp_gemm"):
        lines += ["", "## Fused head: linear layers (torch.profiler, aten::linear)", "",
                  "| part | GMACs | s | GMAC/s | of GEMM rate |", "|---|---:|---:|---:|---:|"]
        for part, v in result["mlp_gemm"].items():
            lines.append(f"| {part} | {_fmt(v['gmacs'], 2)} | {_fmt(v['seconds'], 3)} | {_fmt(v.get('gmac_per_s'))} | {_fmt(v.get('fraction_of_gemm'), 2)} |")
    lines += ["", "## Targets", "", "| target | value | threshold | met |", "|---|---:|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['value'], 2)} | {t['threshold']} | {_fmt(t['met'])} |")
    lines += ["", "Peak memory: growth over the memory held before the call (weights and inputs resident), "
              "each case in a fresh process; method per case in bench.json. Latency: cases of a group timed "
              "round-robin in one process, median."]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "bench.json", json.dumps(result, indent=1, default=str))
    write_text(out / "bench.md", markdown(result))
