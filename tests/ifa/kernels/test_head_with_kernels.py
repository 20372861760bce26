"""The fused IFA head running its Triton kernels (triton's interpreter, float64) against the reference
formulation: integer and non-integer scales, batch 2, custom query sizes, the local ensemble, the release's
sampling and its ensemble defect."""
import pytest

from . import _cases

VARIANTS = {
    "default": {},
    "local_ensemble": {"local_ensemble": True},
    "release_sampling": {"sampling": "release"},
    "release_ensemble_defect": {"local_ensemble": True, "released_ensemble_defect": True, "sampling": "release"},
    "learned_pe": {"pe": "learned"},
}
# None: the c2 grid (integer scales to every level); (16, 25) and (37, 50): non-integer scales, below and above it
SIZES = [None, (16, 25), (37, 50)]


@pytest.mark.parametrize("size", SIZES, ids=["c2_grid", "16x25", "37x50"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fused_head_on_triton_kernels_matches_reference(interpreter, variant, size):
    out = interpreter(_cases.head_with_kernels_error, VARIANTS[variant], size, 2)
    assert out["kernels"] == "triton"
    assert out["error"] <= 1e-12, out
