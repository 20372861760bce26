"""Measurement: MACs (fvcore), parameters, latency, peak memory, environment."""
from bench.measure.macs import MacCount, count_macs

__all__ = ["MacCount", "count_macs"]
