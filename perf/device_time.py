"""Device time and kernel count from a torch profiler trace, each kernel counted once.

Under kineto every kernel appears twice in `prof.key_averages()`: as its own row (device_type CUDA) and inside the
`self_device_time_total` of the aten op that launched it (a CPU row whose kernels are attached to it). Summing
`self_device_time_total` over every row therefore doubles the device time: round 10 reported "14.4 ms of GPU kernels"
for the fused head where the kernels took about 7.2 ms. Here only the kernel rows count."""
from __future__ import annotations

from typing import Iterable

from torch.autograd import DeviceType

DEVICE_TYPES = (DeviceType.CUDA,)


def kernel_events(events: Iterable) -> list:
    """The device-side events (kernels, memcpys, memsets) of a profiler's `events()` (FunctionEvent objects)."""
    return [e for e in events if e.device_type in DEVICE_TYPES]


def device_time_us(events: Iterable) -> float:
    """Microseconds of device work, each kernel once."""
    return float(sum(e.self_device_time_total for e in kernel_events(events)))


def kernel_count(events: Iterable) -> int:
    return len(kernel_events(events))
