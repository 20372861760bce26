"""Ahead-of-time builds for sm_90 (H100/H200) of every kernel variant the released head launches, and of the tail
tiles at blocks()' register budgets (59 classes), with triton's bundled ptxas: no GPU needed, and it catches what
the interpreter accepts but the compiler does not. A build must not spill more than 256 bytes of registers nor need
more shared memory than an sm_90 block may have.

Gather kernels have no matmul, so their float32 build is also the TF32 one."""
import pytest

from . import _cases

MAX_SPILL_BYTES = 256
MAX_SHARED_BYTES = 227 * 1024


@pytest.mark.parametrize("variant", _cases.SM90_VARIANTS)
def test_builds_without_spills(sm90_builds, variant):
    stats = sm90_builds[variant].result(timeout=300)
    print(variant, stats)
    assert stats["spills"] <= MAX_SPILL_BYTES, stats
    assert stats["shared"] <= MAX_SHARED_BYTES, stats
