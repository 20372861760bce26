"""ifa.kernels imports without triton and says why its kernels cannot run."""
import subprocess
import sys

from ifa.kernels import available


def test_import_does_not_load_triton():
    code = "import sys, ifa.kernels; assert 'triton' not in sys.modules; print(ifa.kernels.available())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_available_gives_a_reason_when_false():
    ok, why = available()
    assert isinstance(ok, bool) and (ok or why)
