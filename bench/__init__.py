"""ifa-bench: the suite (backbones, assembly, data, engine, measurement, sweeps, CLI)."""
