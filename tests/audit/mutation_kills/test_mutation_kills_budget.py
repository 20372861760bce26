"""Kill tests for bench/host/budget.py (issue 32's mutation pass): exact GiB text, stem channels from partial
backbone objects, the smallest views, and the CUDA branch. This machine's torch is the CPU build, so the GPU's free
memory is the one thing simulated: torch.cuda.mem_get_info is replaced by a stand-in that records the device it
was asked about and reports a fixed free size (the code under test, budget.py, runs as it is)."""
from types import SimpleNamespace

import psutil
import pytest
import torch

from bench.errors import UserError
from bench.host import budget


def test_gib_text():
    assert budget.gib(3 * 2**29) == "1.5 GiB"
    assert budget.gib(1234 * 2**30) == "1,234.0 GiB"
    assert budget.gib(0) == "0.0 GiB"


def test_stem_channels_of_partial_backbone_objects():
    assert budget.stem_channels(SimpleNamespace()) == 64  # no stem, no width: standard stem, width 1
    assert budget.stem_channels(SimpleNamespace(width=1.0)) == 64
    assert budget.stem_channels(SimpleNamespace(stem="standard")) == 64
    assert budget.stem_channels(SimpleNamespace(stem="v1c")) == 32
    assert budget.stem_channels(SimpleNamespace(stem="v1c", width=0.3)) == 10  # round(9.6)
    assert budget.stem_channels(SimpleNamespace(stem="v1c", width=0.1)) == budget.NARROWEST_STEM


def test_the_smallest_views_are_one_pixel():
    # 1x1 image at scale 1 and at 0.4 (rounds to 0, kept at 1): score map 2 x 1 x 1 x 4 + forward (3 + 3*8/4) x 4
    assert budget.eval_bytes(1, 1, [1.0], 2) == 8 + 36
    assert budget.eval_bytes(1, 1, [0.4], 2) == 8 + 36
    assert budget.eval_bytes(3, 1, [0.4], 2) == 24 + 36  # h = round(1.2) = 1, w = max(1, round(0.4)) = 1


def test_synth_bytes_exact():
    assert budget.synth_bytes(2, 3) == 6 * budget.SYNTH_BYTES_PER_PIXEL == 960


def test_host_memory_is_psutils_available():
    for device in (None, torch.device("cpu"), "cpu", torch.device("meta")):
        got = budget.available_bytes(device)
        assert isinstance(got, int) and abs(got - psutil.virtual_memory().available) < 2**30


@pytest.fixture
def gpu_free(monkeypatch):
    asked = []
    free = 3 * 2**30

    def mem_get_info(device=None):
        asked.append(device)
        return free, 80 * 2**30

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    return asked, free


def test_a_cuda_device_is_judged_on_its_free_memory(gpu_free):
    asked, free = gpu_free
    gpu = torch.device("cuda", 1)
    assert budget.available_bytes(gpu) == free and asked == [gpu]
    assert budget.available_bytes("cuda") == free and asked[-1] == "cuda"  # a device given by name
    budget.require_fits(free, "--input 8x8", gpu)  # exactly what is free fits
    with pytest.raises(UserError) as err:
        budget.require_fits(free + 1, "--input 9x9", gpu)
    assert str(err.value) == "--input 9x9: needs at least 3.0 GiB of memory, 3.0 GiB available on cuda:1"
    assert asked[-1] == gpu
    with pytest.raises(UserError) as err:  # the host's memory, said so
        budget.require_fits(psutil.virtual_memory().total * 4, "--input 99x99", torch.device("cpu"))
    assert str(err.value).endswith(" available in RAM") and asked[-1] == gpu
