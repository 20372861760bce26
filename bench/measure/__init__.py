"""Measurement: MACs (fvcore), parameters, latency, peak memory, environment. Conventions: docs/measurement.md.

Torch-free on purpose: the sweep driver and the cost estimate import the noise rule and the measurement plan from
here without loading torch. The torch-side entry points are `bench.measure.model.measure_model(s)`.
"""
