"""Benchmarks of the IFA head (reference vs fused) and of whole segmentors: `python -m benchmarks.run --out DIR`."""
