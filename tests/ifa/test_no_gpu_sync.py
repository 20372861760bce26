"""The IFA head's eval forward on a GPU copies its host-built sampling indices, weights and PE coordinates without
blocking (ifa.head.to_device): a blocking copy from pageable memory waits for all queued GPU work, and the fused
path makes several per band. torch's sync debug mode turns any such wait into an error. The results must still
equal the CPU's: a copy that raced its pinned buffer would not."""
import pytest
import torch

from ifa import IFAHead, ShapeSpec
from ifa.head import to_device

SHAPES = {"c2": ShapeSpec(64, 4), "c3": ShapeSpec(128, 8), "c4": ShapeSpec(256, 16), "c5": ShapeSpec(512, 32)}
IMAGE = (512, 1024)  # a stride-4 grid of 128 x 256 queries


def _features(device, n=1):
    g = torch.Generator().manual_seed(1)
    return {k: torch.randn(n, s.channels, IMAGE[0] // s.stride, IMAGE[1] // s.stride, generator=g).to(device)
            for k, s in SHAPES.items()}


def test_to_device_on_the_cpu_is_a_plain_conversion():
    t = torch.arange(6, dtype=torch.float64).view(2, 3).expand(4, 2, 3)
    out = to_device(t, torch.device("cpu"), torch.float32)
    assert out.dtype == torch.float32 and out.device.type == "cpu" and torch.equal(out, t.float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("formulation", ["fused", "reference"])
@pytest.mark.parametrize("ensemble", [False, True])
def test_eval_forward_never_waits_for_the_gpu_and_matches_the_cpu(formulation, ensemble):
    torch.manual_seed(0)
    head = IFAHead(SHAPES, 19, formulation=formulation, local_ensemble=ensemble, chunk_queries=4096).eval()
    with torch.no_grad():
        expected = head(_features("cpu"))
        head.to("cuda")
        feats = _features("cuda")
        head(feats)  # warm-up: cuBLAS handles, the pinned-memory cache
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = head(feats)  # 8 bands of 16 rows
        finally:
            torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(out.cpu(), expected, rtol=1e-4, atol=1e-4)
