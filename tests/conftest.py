"""Suite-wide test settings: quiet, deterministic, and Ray-safe on a 2-core machine."""
import os
import tempfile

import pytest

# Ray: no usage stats, short socket paths, fast health checks (see README "Testing").
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25")
if "RAY_TMPDIR" not in os.environ:
    _ray_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    os.environ["RAY_TMPDIR"] = _ray_tmp
os.environ.setdefault("OMP_NUM_THREADS", "2")
# The dataset pre-flight's "verified" markers (bench/data/preflight.py): per test session, not in ~/.cache.
os.environ.setdefault("IFA_BENCH_CACHE", tempfile.mkdtemp(prefix="ifa-cache-", dir="/tmp"))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True)
def _seed_torch():
    import torch

    torch.manual_seed(0)
    yield
