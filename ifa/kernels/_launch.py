"""A kernel launch as data: the launchers build these and run them; the sm_90 ahead-of-time test compiles the
very same launches (tests/ifa/kernels), so the variants it checks are the ones that run."""
from __future__ import annotations

from typing import Any, NamedTuple


class Launch(NamedTuple):
    kernel: Any  # a @triton.jit function
    grid: tuple[int, ...]
    args: tuple  # positional: tensors and ints
    constexprs: dict[str, Any]
    options: dict[str, int]  # num_warps, num_stages

    def run(self) -> None:
        self.kernel[self.grid](*self.args, **self.constexprs, **self.options)

