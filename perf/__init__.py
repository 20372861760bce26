"""Benchmarks of the IFA head (reference vs fused) and of whole segmentors: `python -m perf.run --out DIR`."""
