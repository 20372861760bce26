"""Suite-wide test settings: quiet, deterministic, and Ray-safe on a 2-core machine."""
import os
import shutil
import sys
import tempfile

import pytest

# Ray: no usage stats, short socket paths, fast health checks (see README "Testing").
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
# Folders this session makes for itself, removed when it ends (pytest_unconfigure): a suite that leaves them behind
# fills a shared disk run by run, and then every later run fails on writes (round 6's CI: "No space left on device").
_OWN_TEMP: list[str] = []
if "RAY_TMPDIR" not in os.environ:
    _OWN_TEMP.append(tempfile.mkdtemp(prefix="r", dir="/tmp"))
    os.environ["RAY_TMPDIR"] = _OWN_TEMP[-1]
os.environ.setdefault("OMP_NUM_THREADS", "2")
# The dataset pre-flight's "verified" markers (bench/data/preflight.py): per test session, not in ~/.cache.
if "IFA_BENCH_CACHE" not in os.environ:
    _OWN_TEMP.append(tempfile.mkdtemp(prefix="ifa-cache-", dir="/tmp"))
    os.environ["IFA_BENCH_CACHE"] = _OWN_TEMP[-1]
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_unconfigure(config):
    for path in _OWN_TEMP:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _seed_torch():
    import torch

    torch.manual_seed(0)
    yield


# Ray tests whose clusters are `ray start` processes with ports of their own (tests/sweep/ray_processes.py): they can
# run beside an embedded Ray, whose agents take Ray's fixed default ports.
OWN_PORTS = ("test_cluster_processes.py", "test_node_loss_window.py")
# Long tests without Ray that run in lane "ray", so that the two lanes end at about the same time: in the clean-clone
# CI run of 2026-12-07 lane "ray" took 11 min and lane "rest" 19 min; these files took about 4.5 min of the 19.
BALANCE_TO_RAY_LANE = ("test_train_compile.py", "test_throughput_harnesses.py", "test_transforms_identical.py",
                       "test_compiled_dropout.py")


def pytest_addoption(parser):
    parser.addoption("--lane", choices=("ray", "rest"), default=None,
                     help="run one lane of `make test` (tools/test_lanes.py): 'ray' = the tests that start an "
                          "embedded Ray (the `ray` mark) and a few long ones (BALANCE_TO_RAY_LANE), 'rest' = all others")


def _lane(item) -> str:
    if item.path.name in BALANCE_TO_RAY_LANE:
        return "ray"
    return "ray" if item.get_closest_marker("ray") is not None and item.path.name not in OWN_PORTS else "rest"


@pytest.fixture(autouse=True)
def _no_ray_left_in_the_rest_lane(request):
    """Lane "rest" runs beside lane "ray": a test there that starts an embedded Ray (unmarked, or by accident, e.g.
    a Ray API that initialises Ray on first use) fails, rather than two Rays sharing the machine unnoticed."""
    yield
    ray = sys.modules.get("ray")
    if request.config.getoption("--lane") == "rest" and ray is not None and ray.is_initialized():
        ray.shutdown()
        pytest.fail(f"{request.node.nodeid} left an embedded Ray running: mark it `ray` (tests/conftest.py lanes)")


def pytest_collection_modifyitems(config, items):
    lane = config.getoption("--lane")
    if lane is None:
        return
    keep = [item for item in items if _lane(item) == lane]
    config.hook.pytest_deselected(items=[item for item in items if _lane(item) != lane])
    items[:] = keep
