"""Parameter counts, latency statistics (CPU path), peak memory of a known allocation, environment keys."""
import time

import pytest
import torch
from torch import nn

from bench.measure.model import RECORD_KEYS, measure_model

from bench.measure.environment import environment
from bench.measure.latency import measure_latency, percentile
from bench.measure.memory import measure_peak_memory
from bench.measure.params import count_params
from tests.measure.tiny_models import ALLOC_ELEMENTS, Allocates400MB, TinySegmentor


def test_params_split_and_aux_excluded():
    seg = TinySegmentor(num_classes=3)
    p = count_params(seg)
    assert p.backbone == 3 * 8 * 9
    assert p.head == 8 * 3
    assert p.aux_head == 8 * 3 * 9 + 3
    assert p.total == p.backbone + p.head and p.other == 0


def test_shared_parameters_count_once():
    lin = nn.Linear(4, 4)
    model = nn.Sequential(lin, lin)
    assert count_params(model).total == 20 and count_params(model).other == 20


class _Sleeps(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0
        self.grad_enabled = []

    def forward(self, x):
        self.calls += 1
        self.grad_enabled.append(torch.is_grad_enabled())
        time.sleep(0.002 * (1 + self.calls % 3))
        return x


def test_latency_stats_cpu():
    model = _Sleeps()
    stats = measure_latency(model, torch.zeros(1), warmup=2, runs=7)
    assert model.calls == 9 and not any(model.grad_enabled)
    assert stats.timer == "perf_counter" and stats.device == "cpu" and stats.runs == 7
    assert stats.threads == torch.get_num_threads()
    assert len(stats.times_ms) == 7 and min(stats.times_ms) >= 2.0
    assert stats.min_ms <= stats.median_ms <= stats.p90_ms <= stats.max_ms
    assert stats.min_ms <= stats.mean_ms <= stats.max_ms and stats.std_ms > 0
    with pytest.raises(ValueError):
        measure_latency(model, torch.zeros(1), runs=0)


def test_percentile_matches_linear_interpolation():
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
    assert percentile([5.0], 90) == 5.0


def test_peak_memory_of_known_allocation():
    expected_mib = ALLOC_ELEMENTS * 4 / 2**20
    stats = measure_peak_memory(Allocates400MB(), torch.zeros(1))
    assert stats.device == "cpu" and stats.method.startswith("rss_")
    assert expected_mib - 2 <= stats.peak_mb <= expected_mib + 40, stats
    assert stats.before_mb > 50  # the runtime itself is resident


def test_peak_memory_ignores_memory_held_before_the_forward():
    class HoldsWeights(nn.Module):  # module-level class not needed: in-process path
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(25_000_000))  # 95 MiB resident before the forward

        def forward(self, x):
            return self.w[:10].sum() + x

    stats = measure_peak_memory(HoldsWeights(), torch.zeros(1), isolate=False)
    assert stats.peak_mb < 20, stats


def test_environment_keys():
    env = environment("cpu", torch.float32)
    assert {"device", "device_name", "torch_version", "dtype", "threads", "python_version", "hostname",
            "ray_version"} <= set(env)
    assert env["device"] == "cpu" and env["dtype"] == "float32" and env["torch_version"] == torch.__version__
    assert env["threads"] == torch.get_num_threads() and env["device_name"]


def test_measure_model_record_on_tiny_segmentor():
    seg = TinySegmentor(num_classes=3).train()
    rec = measure_model(seg, input_size=(32, 48), warmup=1, runs=3)
    assert list(rec) == RECORD_KEYS
    assert seg.training  # mode restored
    h4, w4 = 8, 12
    backbone = 8 * 3 * 9 * h4 * w4
    head = 3 * 8 * h4 * w4
    upsample = 4 * 3 * 32 * 48
    assert rec["gmacs_backbone"] * 1e9 == pytest.approx(backbone)
    assert rec["gmacs_head"] * 1e9 == pytest.approx(head)
    assert rec["gmacs"] * 1e9 == pytest.approx(backbone + head + upsample)  # no aux head
    assert rec["params_m"] * 1e6 == pytest.approx(3 * 8 * 9 + 8 * 3)
    assert rec["measure_input"] == "32x48"
    assert rec["latency_ms_median"] <= rec["latency_ms_p90"]
    assert rec["peak_mem_mb"] >= 0 and rec["device"] == "cpu" and rec["dtype"] == "float32"
    assert rec["unsupported_ops"] == ""  # conv, relu (fvcore-ignored), bilinear upsample: all handled


def test_measure_model_without_latency_or_memory():
    rec = measure_model(TinySegmentor(), input_size=(16, 16), latency=False, memory=False)
    assert rec["latency_ms_median"] is None and rec["peak_mem_mb"] is None and rec["gmacs"] > 0
    with pytest.raises(ValueError):
        measure_model(TinySegmentor(), input_size=(0, 16), latency=False, memory=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_paths_use_events_and_the_allocator():
    device = torch.device("cuda")
    conv = nn.Conv2d(3, 8, 3).to(device)
    x = torch.rand(1, 3, 64, 64, device=device)
    t0 = time.perf_counter()
    stats = measure_latency(conv, x, warmup=1, runs=3)
    assert stats.timer == "cuda_event" and stats.device.startswith("cuda") and stats.min_ms > 0
    # CUDA: warm-up of 1 s at least, then a round of batches of 3 runs lasting 0.25 s at least
    assert time.perf_counter() - t0 >= 1.25 and stats.runs % 3 == 0 and stats.runs > 3
    settled = measure_latency(conv, x, warmup=1, runs=3, rounds=5)
    assert 2 <= settled.rounds <= 5  # settling takes two rounds at least

    class AllocOnDevice(nn.Module):
        def forward(self, x):
            return torch.ones(ALLOC_ELEMENTS, device=x.device).sum() + x

    mem = measure_peak_memory(AllocOnDevice(), torch.zeros(1, device=device))
    assert mem.method == "cuda_max_memory_allocated"
    assert ALLOC_ELEMENTS * 4 / 2**20 <= mem.peak_mb <= ALLOC_ELEMENTS * 4 / 2**20 + 8
    assert environment(device)["device_name"] == torch.cuda.get_device_name(device)
