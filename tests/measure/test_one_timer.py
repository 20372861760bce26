"""One timer and one IQR (bench/measure/latency.py) for the suite and perf/; perf/probe.py reads memory through
bench.measure.memory's public functions; `measure`'s choices are the config's."""
import argparse
import mmap

from bench.commands.measure import add_arguments
from bench.measure.latency import iqr, time_cpu_runs
from bench.measure.memory import reset_rss_peak, rss_bytes, rss_peak_bytes


def test_perf_gpu_check_reports_the_suites_iqr():
    from perf.gpu_check import _stats

    times = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert iqr(times) == 2.0  # linear interpolation: 4 - 2 (statistics.quantiles' default would say 4.5)
    assert _stats(times)["iqr_ms"] == 2.0


def test_cpu_timer_times_each_call():
    calls = []
    times = time_cpu_runs(lambda x: calls.append(x), (7,), 3)
    assert calls == [7, 7, 7] and len(times) == 3 and all(t >= 0 for t in times)


def test_rss_peak_sees_growth_after_a_reset():
    if not reset_rss_peak():
        return  # no /proc/self/clear_refs here: the lifetime peak is all there is
    before = rss_bytes()
    # fresh pages from the kernel: a malloc'd block could reuse memory the process kept (the engine fixes glibc's
    # trim threshold on CPU runs, process-wide, so after a training test freed memory stays resident)
    block = mmap.mmap(-1, 64 * 2**20)
    block[:: 4096] = b"\1" * len(block[:: 4096])
    assert rss_peak_bytes() - before >= 60 * 2**20
    block.close()


def test_measure_takes_its_choices_from_the_config():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--backbone", "hrnetv2_w18_small", "--head", "fcn", "--stem", "v1c"])
    assert (args.backbone, args.head, args.stem) == ("hrnetv2_w18_small", "fcn", "v1c")
