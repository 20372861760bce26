"""perf/device_time.py counts each kernel once. The fixture is the trace kineto gives for one aten op that launched one
kernel (built from torch's own FunctionEvent/EventList, as `prof.events()` returns them): the kernel as its own CUDA
event, and attached to the CPU op that launched it. Summing key_averages() double-counts it; the fix must not."""
from torch.autograd import DeviceType
from torch.autograd.profiler_util import EventList, FunctionEvent

from perf.device_time import device_time_us, kernel_count


def _trace() -> EventList:
    ops, kernels = [], []
    for i, (op, kernel, us) in enumerate([("aten::mm", "sm90_sgemm_128x64", 40), ("aten::add", "vectorized_add", 10),
                                          ("aten::mm", "sm90_sgemm_128x64", 40)]):
        cpu = FunctionEvent(id=2 * i, name=op, thread=0, start_us=100 * i, end_us=100 * i + 20, use_device="cuda",
                            device_type=DeviceType.CPU, stack=[])
        cpu.append_kernel(kernel, 0, us)
        gpu = FunctionEvent(id=2 * i + 1, name=kernel, thread=7, start_us=100 * i + 30, end_us=100 * i + 30 + us,
                            use_device="cuda", device_type=DeviceType.CUDA, device_index=0, stack=[])
        ops.append(cpu)
        kernels.append(gpu)
    events = EventList(ops + kernels, use_device="cuda")
    events._build_tree()  # what the profiler does before handing the events out
    return events


def test_each_kernel_counts_once():
    events = _trace()
    assert device_time_us(events) == 90 and kernel_count(events) == 3
    double = sum(e.self_device_time_total for e in events.key_averages())
    assert double == 180  # the round-10 sum: every kernel twice
