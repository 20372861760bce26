"""The table of issue 27 for both IFA formulations on one device, and its acceptance checks (`make gpu-check`).

- the IFA head alone at 1024x2048 (released deep-stem R-50 feature shapes, 19 classes, batch 1) in fp32 with TF32 off,
  with TF32 on, and under bf16 autocast: latency (bench.measure.latency's rule, GPU state included), host time per
  call, kernels and device time per call (perf/device_time.py: each kernel once), the kernels the head ran;
- fused vs reference outputs: fp32 (TF32 off) and bf16 (fused under autocast vs reference in fp32);
- the five whole deep-stem R-50 models at 1024x2048: IFA reference, IFA fused, FPN, PPM, OCR;
- a training step at 769x769, batch 2 (forward, loss, backward, SGD step): time and peak memory.

Bounded by construction: every latency takes at most `Sizes.rounds` rounds after a warm-up of at most WARMUP_MAX_S,
the training step times `train_steps` steps, and the profile `profile_calls` calls; a part that would start past the
run's `budget_s` is skipped and says so. `Sizes.dry_run()` runs the same code on the CPU at small sizes.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch

WARMUP_MAX_S = 5.0
FORMULATIONS = ("reference", "fused")
MODELS = {"ifa_reference": {"name": "ifa", "formulation": "reference"},
          "ifa_fused": {"name": "ifa", "formulation": "fused"}, "fpn": {"name": "fpn"}, "ppm": {"name": "ppm"},
          "ocr": {"name": "ocr"}}


@dataclass(frozen=True)
class Sizes:
    image: tuple[int, int] = (1024, 2048)
    train_crop: tuple[int, int] = (769, 769)
    train_batch: int = 2
    classes: int = 19
    runs: int = 10  # per latency round
    rounds: int = 3  # latency rounds at most
    host_calls: int = 10
    profile_calls: int = 3
    train_steps: int = 5

    @staticmethod
    def dry_run() -> "Sizes":
        """Every part once, as small and as few as it goes: only that it runs end to end is checked."""
        return Sizes(image=(32, 64), train_crop=(33, 33), runs=1, rounds=1, host_calls=1, profile_calls=1,
                     train_steps=1)


class Budget:
    def __init__(self, seconds: float):
        self.t0, self.seconds = time.perf_counter(), seconds

    def left(self) -> bool:
        return time.perf_counter() - self.t0 < self.seconds


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Precision:
    """fp32 (TF32 off), tf32 (TF32 on) or bf16 (autocast, TF32 off) for the duration."""

    def __init__(self, name: str, device):
        self.name, self.device = name, device

    def __enter__(self):
        self.saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        tf32 = self.name == "tf32"
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        self.cast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.name == "bf16")
        self.cast.__enter__()

    def __exit__(self, *exc):
        self.cast.__exit__(*exc)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved


def latency(model, inputs, sizes: Sizes) -> dict:
    from bench.measure.latency import measure_latency

    s = measure_latency(model, inputs, warmup=min(3, sizes.runs), runs=sizes.runs, rounds=sizes.rounds,
                        warmup_max_s=WARMUP_MAX_S)
    from bench.measure.gpu_state import columns

    gpu = columns(s.gpu_before, s.gpu_after)
    return {"ms": round(s.median_ms, 3), "iqr_ms": round(s.iqr_ms, 3), "rounds": s.rounds, "noisy": s.noisy,
            "noisy_reason": s.noisy_reason, "gpu_sm_clock_mhz": [gpu["gpu_sm_clock_mhz_before"],
                                                                 gpu["gpu_sm_clock_mhz_after"]],
            "gpu_state": gpu["gpu_state"]}


def host_ms(model, inputs, device, calls: int) -> float:
    """Median host time of one call: from the call to its return, the device idle before each (no queue to wait on)."""
    times = []
    with torch.inference_mode():
        for _ in range(calls):
            _sync(device)
            t0 = time.perf_counter()
            model(*inputs)
            times.append((time.perf_counter() - t0) * 1e3)
            _sync(device)
    return round(statistics.median(times), 3)


def profile_per_call(model, inputs, device, calls: int) -> dict:
    """Kernels and device milliseconds per call, each kernel once (perf/device_time.py)."""
    from torch.profiler import ProfilerActivity, profile

    from perf.device_time import device_time_us, kernel_count

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.inference_mode():
        model(*inputs)
        _sync(device)
        with profile(activities=activities) as prof:
            for _ in range(calls):
                model(*inputs)
            _sync(device)
    events = prof.events()
    return {"kernels_per_call": kernel_count(events) / calls,
            "device_ms_per_call": round(device_time_us(events) / calls / 1e3, 3)}


def _heads(sizes: Sizes, device):
    from ifa import IFAHead, ShapeSpec
    from perf.cases import RELEASED_LEVELS, random_features

    shapes = {k: ShapeSpec(c, s) for k, (c, s) in RELEASED_LEVELS.items()}
    torch.manual_seed(0)
    ref = IFAHead(shapes, sizes.classes, formulation="reference")
    for m in ref.modules():  # BatchNorm statistics away from the identity, so that folding them is exercised
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.uniform_(-0.1, 0.1)
    fused = IFAHead(shapes, sizes.classes, formulation="fused")
    fused.load_state_dict(ref.state_dict())
    heads = {"reference": ref.to(device).eval(), "fused": fused.to(device).eval()}
    return heads, random_features(sizes.image, 1, device, torch.float32, channels_last=False)


def agreement(y, y_ref) -> dict:
    y, y_ref = y.float(), y_ref.float()
    return {"rel_diff": float((y - y_ref).abs().max() / y_ref.abs().max().clamp_min(1e-12)),
            "argmax_agree": float((y.argmax(1) == y_ref.argmax(1)).float().mean())}


def head_part(sizes: Sizes, device, budget: Budget) -> dict:
    heads, feats = _heads(sizes, device)
    out: dict = {"image": f"{sizes.image[0]}x{sizes.image[1]}", "batch": 1}
    with torch.inference_mode():
        with _Precision("fp32", device):
            y_ref, y_fused = heads["reference"](feats), heads["fused"](feats)
        with _Precision("bf16", device):
            y_bf16 = heads["fused"](feats)
    out["accuracy"] = {"fp32": agreement(y_fused, y_ref), "bf16": agreement(y_bf16, y_ref)}
    for precision in ("fp32", "tf32", "bf16"):
        for name, head in heads.items():
            if not budget.left():
                out[f"{name}_{precision}"] = {"skipped": "time budget"}
                continue
            with _Precision(precision, device):
                row = latency(head, (feats,), sizes)
                row["host_ms_per_call"] = host_ms(head, (feats,), device, sizes.host_calls)
                row.update(profile_per_call(head, (feats,), device, sizes.profile_calls))
            row["kernels"] = str(getattr(head, "last_kernels", None) or "torch")
            out[f"{name}_{precision}"] = row
    return out


def _segmentor(head: dict, classes: int):
    from bench.config.model import ModelConfig
    from bench.models import build_segmentor

    cfg = ModelConfig.model_validate({"num_classes": classes, "backbone": {"name": "resnet50", "stem": "deep"},
                                      "head": head})
    torch.manual_seed(0)
    return build_segmentor(cfg)


def model_part(sizes: Sizes, device, budget: Budget) -> dict:
    images = torch.randn(1, 3, *sizes.image, generator=torch.Generator().manual_seed(0)).to(device)
    out = {}
    for key, head in MODELS.items():
        if not budget.left():
            out[key] = {"skipped": "time budget"}
            continue
        model = _segmentor(head, sizes.classes).to(device).eval()
        out[key] = latency(model, (images,), sizes)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def train_part(sizes: Sizes, device, budget: Budget) -> dict:
    import torch.nn.functional as F

    out = {"crop": f"{sizes.train_crop[0]}x{sizes.train_crop[1]}", "batch": sizes.train_batch}
    g = torch.Generator().manual_seed(0)
    images = torch.randn(sizes.train_batch, 3, *sizes.train_crop, generator=g).to(device)
    labels = torch.randint(0, sizes.classes, (sizes.train_batch, *sizes.train_crop), generator=g).to(device)
    for formulation in FORMULATIONS:
        if not budget.left():
            out[formulation] = {"skipped": "time budget"}
            continue
        model = _segmentor({"name": "ifa", "formulation": formulation}, sizes.classes).to(device).train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

        def step():
            outs = model(images)
            loss = sum(w * F.cross_entropy(F.interpolate(outs[k], size=sizes.train_crop, mode="bilinear",
                                                         align_corners=True), labels)
                       for k, w in model.loss_weights.items())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        step()
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(sizes.train_steps):
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            times.append((time.perf_counter() - t0) * 1e3)
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        out[formulation] = {"ms": round(statistics.median(times), 2), "peak_mib": None if peak is None else round(peak),
                            "kernels": str(getattr(model.head, "last_kernels", None) or "torch")}
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _get(table: dict, *keys):
    for k in keys:
        if not isinstance(table, dict) or k not in table:
            return None
        table = table[k]
    return table


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


# (name, how the value is computed from the table, comparison, limit): the acceptance of issue 27
def acceptance(table: dict) -> list[dict]:
    """Each check of issue 27's acceptance with its value, limit and PASS/FAIL (MISSING where a part did not run)."""
    h, m, t = table.get("head", {}), table.get("models", {}), table.get("train", {})
    checks = [
        ("head fp32: fused / reference time", _ratio(_get(h, "fused_fp32", "ms"), _get(h, "reference_fp32", "ms")),
         "<=", 0.5),
        ("head bf16: fused / reference time", _ratio(_get(h, "fused_bf16", "ms"), _get(h, "reference_bf16", "ms")),
         "<=", 0.25),
        ("head fp32: fused host ms per call", _get(h, "fused_fp32", "host_ms_per_call"), "<=", 1.0),
        ("whole model: IFA fused / FPN time", _ratio(_get(m, "ifa_fused", "ms"), _get(m, "fpn", "ms")), "<=", 1.0),
        ("training step: reference / fused time", _ratio(_get(t, "reference", "ms"), _get(t, "fused", "ms")),
         ">=", 1.5),
        ("training step: fused / reference peak memory",
         _ratio(_get(t, "fused", "peak_mib"), _get(t, "reference", "peak_mib")), "<=", 0.6),
        ("fp32: fused vs reference relative difference", _get(h, "accuracy", "fp32", "rel_diff"), "<=", 1e-4),
        ("fp32: argmax agreement", _get(h, "accuracy", "fp32", "argmax_agree"), ">=", 0.9999),
        ("bf16: fused vs reference relative difference", _get(h, "accuracy", "bf16", "rel_diff"), "<=", 1e-2),
        ("bf16: argmax agreement", _get(h, "accuracy", "bf16", "argmax_agree"), ">=", 0.995),
    ]
    out = []
    for name, value, op, limit in checks:
        verdict = "MISSING" if value is None else "PASS" if (value <= limit if op == "<=" else value >= limit) else "FAIL"
        out.append({"check": name, "value": value, "limit": f"{op} {limit:g}", "result": verdict})
    return out


def run(device, sizes: Sizes, budget_s: float) -> dict:
    budget = Budget(budget_s)
    table = {"sizes": asdict(sizes)}
    for name, part in (("head", head_part), ("models", model_part), ("train", train_part)):
        t0 = time.perf_counter()
        try:
            table[name] = part(sizes, device, budget)
        except Exception as exc:  # noqa: BLE001 - the other parts still report
            table[name] = {"error": f"{type(exc).__name__}: {exc}"}
        table[name]["seconds"] = round(time.perf_counter() - t0, 1)
    table["acceptance"] = acceptance(table)
    return table


def _cell(row, key, fmt="{:.2f}"):
    v = row.get(key) if isinstance(row, dict) else None
    return "-" if v is None else fmt.format(v) if isinstance(v, (int, float)) else str(v)


def format_table(table: dict) -> str:
    from bench.results.text_table import text_table

    h = table.get("head", {})
    rows = []
    for precision, label in (("fp32", "head fp32 (TF32 off)"), ("tf32", "head TF32"), ("bf16", "head bf16 autocast")):
        for f in FORMULATIONS:
            r = h.get(f"{f}_{precision}", {})
            rows.append([label, f, _cell(r, "ms"), _cell(r, "host_ms_per_call"), _cell(r, "kernels_per_call", "{:.0f}"),
                         _cell(r, "device_ms_per_call"), _cell(r, "kernels"), "-",
                         r.get("noisy_reason") or r.get("skipped") or ""])
    for key in MODELS:
        r = table.get("models", {}).get(key, {})
        rows.append(["whole model " + key, "", _cell(r, "ms"), "-", "-", "-", "-", "-",
                     r.get("noisy_reason") or r.get("skipped") or ""])
    t = table.get("train", {})
    for f in FORMULATIONS:
        r = t.get(f, {})
        rows.append([f"training step {t.get('crop', '')} b{t.get('batch', '')}", f, _cell(r, "ms"), "-", "-", "-",
                     _cell(r, "kernels"), _cell(r, "peak_mib", "{:.0f}"), r.get("skipped") or ""])
    main = text_table(["what", "formulation", "ms", "host ms/call", "kernels/call", "device ms/call", "kernels",
                       "peak MiB", "note"], rows)
    checks = text_table(["acceptance", "value", "limit", "result"],
                        [[c["check"], "-" if c["value"] is None else f"{c['value']:.4g}", c["limit"], c["result"]]
                         for c in table["acceptance"]])
    return main + "\n\n" + checks
