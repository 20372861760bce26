"""The GPU's state around CUDA timings (bench/measure/gpu_state.py, bench/measure/latency.py): read through NVML, the
rule that flags a round whose GPU changed, the warm-up that waits for the clocks. NVML is the boundary to the
hardware: a recorded NVML library (RecordedNvml, pynvml's functions over a list of readings) stands in for it, and
the real timing loop runs on the CPU with it."""
import sys
import time

import pytest
import torch

from bench.measure import gpu_state
from bench.measure.gpu_state import GpuProbe, GpuState, changes, clocks_settled, columns
from bench.measure.latency import measure_latency
from bench.results.schema import GPU_STATE, MEASUREMENTS

NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2


class RecordedNvml:
    """pynvml's functions over recorded readings: each SM-clock query starts the next reading (the last one repeats)."""
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = NVML_CLOCK_SM, NVML_CLOCK_MEM, 0

    def __init__(self, readings, init_error=None):
        self.readings, self.i, self.init_error = readings, -1, init_error

    def nvmlInit(self):
        if self.init_error:
            raise self.init_error

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def _now(self):
        return self.readings[min(self.i, len(self.readings) - 1)]

    def nvmlDeviceGetClockInfo(self, handle, clock):
        if clock == NVML_CLOCK_SM:
            self.i += 1
            return self._now()["sm"]
        return self._now().get("mem", 2619)

    def nvmlDeviceGetPowerUsage(self, handle):
        return self._now().get("mw", 300_000)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return self._now().get("temp", 40)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self._now().get("reasons", 0)


def test_a_probe_reads_clocks_power_temperature_and_throttle_reasons():
    probe = GpuProbe(0, nvml=RecordedNvml([{"sm": 1980, "mem": 2619, "mw": 350_500, "temp": 45, "reasons": 0x4 | 0x1}]))
    state = probe.read()
    assert state == GpuState(1980.0, 2619.0, 350.5, 45.0, ("gpu_idle", "sw_power_cap"))
    assert columns(state, state) == dict(zip(GPU_STATE, ["nvml", 1980.0, 1980.0, 2619.0, 2619.0, 350.5, 350.5, 45.0,
                                                         45.0, "gpu_idle,sw_power_cap"]))
    assert set(GPU_STATE) <= set(MEASUREMENTS)


def test_without_the_library_or_a_driver_the_state_is_unavailable_with_the_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed
    missing = GpuProbe(0)
    assert missing.unavailable.startswith("nvidia-ml-py is not installed") and missing.read().unavailable
    no_driver = GpuProbe(0, nvml=RecordedNvml([], init_error=RuntimeError("NVML Shared Library Not Found")))
    assert no_driver.unavailable == "NVML: RuntimeError: NVML Shared Library Not Found"
    state = no_driver.read()
    assert changes(state, state) == [] and clocks_settled(None, state)
    cols = columns(state, state)
    assert cols["gpu_state"] == "unavailable: NVML: RuntimeError: NVML Shared Library Not Found"
    assert cols["gpu_sm_clock_mhz_before"] is None and columns(None, None)["gpu_state"] == ""


WARM = GpuState(1980.0, 2619.0, 400.0, 60.0, ())


@pytest.mark.parametrize("after, flagged", [
    (WARM, None),
    (GpuState(1930.0, 2619.0, 390.0, 62.0, ()), None),  # 2.5%: within the tolerance
    (GpuState(1755.0, 2619.0, 400.0, 60.0, ()), "SM clock 1980 -> 1755 MHz"),  # a drop
    (GpuState(2100.0, 2619.0, 400.0, 60.0, ()), "SM clock 1980 -> 2100 MHz"),  # still rising from idle
    (GpuState(1980.0, 1593.0, 400.0, 60.0, ()), "memory clock 2619 -> 1593 MHz"),
    (GpuState(1980.0, 2619.0, 400.0, 60.0, ("sw_thermal_slowdown",)), "throttle reason set during timing: "
                                                                        "sw_thermal_slowdown"),
    (GpuState(1980.0, 2619.0, 400.0, 60.0, ("gpu_idle", "applications_clocks_setting")), None),
    (GpuState(1980.0, 2619.0, 400.0, 71.0, ()), "temperature 60 -> 71 C"),
    (GpuState(1980.0, 2619.0, 400.0, 69.0, ()), None),
])
def test_a_block_is_flagged_when_the_gpu_changed_during_it(after, flagged):
    found = changes(WARM, after)
    assert (found == []) if flagged is None else (len(found) == 1 and flagged in found[0])


def test_a_throttle_reason_already_set_before_the_block_is_no_change():
    capped = GpuState(1980.0, 2619.0, 700.0, 60.0, ("sw_power_cap",))
    assert changes(capped, capped) == []


class Sleeper(torch.nn.Module):
    def forward(self, x):
        time.sleep(0.002)
        return x


def _recorded(*sm_clocks, temp=40):
    return GpuProbe(0, nvml=RecordedNvml([{"sm": c, "temp": temp} for c in sm_clocks]))


def test_warm_up_goes_on_until_the_clocks_settle():
    nvml = RecordedNvml([{"sm": 345, "reasons": 0x1}, {"sm": 900}, {"sm": 1500}, {"sm": 1980}, {"sm": 1980}])
    t0 = time.perf_counter()
    stats = measure_latency(Sleeper(), torch.zeros(1), warmup=1, runs=3, rounds=1, warmup_s=0.0, round_min_s=0.0,
                            noise_threshold=100.0, gpu=GpuProbe(0, nvml=nvml))
    assert nvml.i >= 5 and time.perf_counter() - t0 >= 4 * gpu_state.CLOCK_READ_INTERVAL_S  # 5 readings apart
    assert stats.gpu_before.sm_clock_mhz == 1980 and not stats.noisy and stats.noisy_reason == ""


def test_warm_up_ends_at_its_limit_when_the_clocks_never_agree():
    nvml = RecordedNvml([{"sm": 1000 + 980 * (i % 2)} for i in range(1000)])
    t0 = time.perf_counter()
    measure_latency(Sleeper(), torch.zeros(1), warmup=1, runs=2, rounds=1, warmup_s=0.0, round_min_s=0.0,
                    noise_threshold=100.0, gpu=GpuProbe(0, nvml=nvml), warmup_max_s=1.0)
    assert 1.0 <= time.perf_counter() - t0 < 10 and nvml.i >= 4  # kept reading for its limit, then stopped


def test_a_round_whose_clock_dropped_is_flagged_with_the_reason():
    stats = measure_latency(Sleeper(), torch.zeros(1), warmup=0, runs=3, rounds=1, round_min_s=0.0,
                            noise_threshold=100.0, gpu=_recorded(1980, 1710))
    assert stats.noisy and stats.noisy_reason == "SM clock 1980 -> 1710 MHz during timing"
    assert (stats.gpu_before.sm_clock_mhz, stats.gpu_after.sm_clock_mhz) == (1980, 1710)
    steady = measure_latency(Sleeper(), torch.zeros(1), warmup=0, runs=3, rounds=1, round_min_s=0.0,
                             noise_threshold=100.0, gpu=_recorded(1980, 1980))
    assert not steady.noisy and steady.noisy_reason == ""


def test_timing_goes_on_past_a_changed_round_and_never_reports_it():
    # round 1: 1500 -> 1980 (still warming up); rounds 2, 3: 1980 throughout
    stats = measure_latency(Sleeper(), torch.zeros(1), warmup=0, runs=3, rounds=3, round_min_s=0.0,
                            noise_threshold=100.0, gpu=_recorded(1500, 1980, 1980))
    assert stats.rounds >= 2 and (stats.gpu_before.sm_clock_mhz, stats.gpu_after.sm_clock_mhz) == (1980, 1980)
    assert "SM clock" not in stats.noisy_reason
    always = measure_latency(Sleeper(), torch.zeros(1), warmup=0, runs=3, rounds=3, round_min_s=0.0,
                             noise_threshold=100.0, gpu=_recorded(*[1980 - 100 * i for i in range(6)]))
    assert always.rounds == 3 and always.noisy and always.noisy_reason.startswith("SM clock")
