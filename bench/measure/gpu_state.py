"""The GPU's state around a timed block, read through NVML, and the rule that flags a block whose GPU changed
(torch-free).

Why: on a GPU machine started a minute earlier, the first measurement ran 13-15% slow in round 10 (49% in round 8)
and no rule flagged it; a steady round of CUDA-event timings says nothing of the clocks it ran at.

NVML comes from nvidia-ml-py (module `pynvml`), imported only when a probe is made. Without the library or a driver
the probe's state is `unavailable` with the reason, and every reading is None: nothing fails.
`GpuProbe(nvml=...)` takes any object with pynvml's functions: the seam to the hardware (tests pass a recorded one).

The rule (`changes`): a block is flagged when, between the reading before it and the one after it,
- the SM or memory clock moved by more than CLOCK_TOLERANCE (a drop: throttling; a rise: the clocks were still coming
  up from idle),
- a throttle reason appeared that is not an idle or a configured-clock reason (IGNORED_REASONS),
- the temperature rose by more than TEMP_RISE_C (still heating up from cold; a warm GPU drifts a few degrees).
The warm-up goes on until two readings CLOCK_READ_INTERVAL_S apart agree on the SM clock (`clocks_settled`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from bench.results.schema import GPU_STATE

CLOCK_TOLERANCE = 0.03  # the 3% within which a fresh machine's first measurement must agree with later ones
TEMP_RISE_C = 10.0
CLOCK_READ_INTERVAL_S = 0.2  # warm-up: readings of the clocks at least this far apart
# NVML's clocks-event (throttle) reason bits and the names the results use
REASONS = {0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown",
           0x10: "sync_boost", 0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown",
           0x80: "hw_power_brake_slowdown", 0x100: "display_clock_setting"}
# set by idling or by a configured clock, not by a slowdown during the block
IGNORED_REASONS = {"gpu_idle", "applications_clocks_setting", "display_clock_setting"}
NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0  # pynvml's constants (read from it when it has them)


@dataclass(frozen=True)
class GpuState:
    sm_clock_mhz: Optional[float] = None
    mem_clock_mhz: Optional[float] = None
    power_w: Optional[float] = None
    temp_c: Optional[float] = None
    throttle: tuple[str, ...] = ()
    unavailable: str = ""  # why NVML could not be read ("" when it was)


def reason_names(mask: int) -> tuple[str, ...]:
    return tuple(name for bit, name in REASONS.items() if mask & bit) + (
        (f"other_0x{mask & ~sum(REASONS):x}",) if mask & ~sum(REASONS) else ())


def nvml_index(cuda_index: int) -> int:
    """NVML counts every GPU of the machine; CUDA only the visible ones (CUDA_VISIBLE_DEVICES, when it lists
    indices)."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and all(v.isdigit() for v in visible) and cuda_index < len(visible):
        return int(visible[cuda_index])
    return cuda_index


class GpuProbe:
    """Reads one GPU's state through NVML; `unavailable` says why it cannot (then every read is empty)."""

    def __init__(self, cuda_index: int = 0, nvml: Any = None):
        self.unavailable = ""
        self.nvml, self.handle = nvml, None
        try:
            if self.nvml is None:
                import pynvml  # nvidia-ml-py

                self.nvml = pynvml
            self.nvml.nvmlInit()
            self.handle = self.nvml.nvmlDeviceGetHandleByIndex(nvml_index(cuda_index))
        except ImportError as exc:
            self.unavailable = f"nvidia-ml-py is not installed ({exc})"
        except Exception as exc:  # noqa: BLE001 - no driver, no device, no permission: say so, never fail a timing
            self.unavailable = f"NVML: {type(exc).__name__}: {exc}"

    def read(self) -> GpuState:
        if self.unavailable:
            return GpuState(unavailable=self.unavailable)
        nv = self.nvml
        try:
            sm = nv.nvmlDeviceGetClockInfo(self.handle, getattr(nv, "NVML_CLOCK_SM", NVML_CLOCK_SM))
            mem = nv.nvmlDeviceGetClockInfo(self.handle, getattr(nv, "NVML_CLOCK_MEM", NVML_CLOCK_MEM))
            power = nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0  # mW
            temp = nv.nvmlDeviceGetTemperature(self.handle, getattr(nv, "NVML_TEMPERATURE_GPU", NVML_TEMPERATURE_GPU))
            reasons = getattr(nv, "nvmlDeviceGetCurrentClocksEventReasons", None) or \
                nv.nvmlDeviceGetCurrentClocksThrottleReasons
            mask = int(reasons(self.handle))
        except Exception as exc:  # noqa: BLE001 - a reading that fails is reported, not raised
            return GpuState(unavailable=f"NVML: {type(exc).__name__}: {exc}")
        return GpuState(float(sm), float(mem), round(float(power), 1), float(temp), reason_names(mask))


def _moved(before: Optional[float], after: Optional[float]) -> bool:
    return before is not None and after is not None and before > 0 and abs(after - before) / before > CLOCK_TOLERANCE


def changes(before: GpuState, after: GpuState) -> list[str]:
    """Why a block timed between `before` and `after` is not of one GPU state (empty: it is, or NVML is absent)."""
    if before.unavailable or after.unavailable:
        return []
    out = [f"{name} clock {getattr(before, attr):g} -> {getattr(after, attr):g} MHz during timing"
           for name, attr in (("SM", "sm_clock_mhz"), ("memory", "mem_clock_mhz"))
           if _moved(getattr(before, attr), getattr(after, attr))]
    new = [r for r in after.throttle if r not in IGNORED_REASONS and r not in before.throttle]
    if new:
        out.append(f"throttle reason set during timing: {','.join(new)}")
    if before.temp_c is not None and after.temp_c is not None and after.temp_c - before.temp_c > TEMP_RISE_C:
        out.append(f"temperature {before.temp_c:g} -> {after.temp_c:g} C during timing (limit +{TEMP_RISE_C:g} C)")
    return out


def clocks_settled(previous: Optional[GpuState], now: GpuState) -> bool:
    """Warm-up may end: NVML is absent, or two readings agree on the SM clock and the GPU is not idle."""
    if now.unavailable:
        return True
    return (previous is not None and not _moved(previous.sm_clock_mhz, now.sm_clock_mhz)
            and "gpu_idle" not in now.throttle)


def columns(before: Optional[GpuState], after: Optional[GpuState]) -> dict:
    """The results' GPU_STATE columns (bench/results/schema.py) of a block: empty where no GPU was read (CPU),
    `gpu_state` "unavailable: <why>" where NVML could not be, else "nvml" and the readings."""
    empty = dict.fromkeys(GPU_STATE)
    if before is None or after is None:
        return {**empty, "gpu_state": "", "gpu_throttle": ""}
    if before.unavailable or after.unavailable:
        return {**empty, "gpu_state": f"unavailable: {before.unavailable or after.unavailable}", "gpu_throttle": ""}
    values = ["nvml", before.sm_clock_mhz, after.sm_clock_mhz, before.mem_clock_mhz, after.mem_clock_mhz,
              before.power_w, after.power_w, before.temp_c, after.temp_c, ",".join(after.throttle)]
    return dict(zip(GPU_STATE, values))
