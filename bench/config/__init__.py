"""Flat, typed configuration (pydantic). Modules never need it: it only maps to constructor kwargs."""
from bench.config.experiment import ExperimentConfig
from bench.config.loading import load_config, parse_yaml, read_yaml, validate
from bench.config.model import BackboneConfig, HeadConfig, ModelConfig

__all__ = [
    "BackboneConfig", "ExperimentConfig", "HeadConfig", "ModelConfig", "load_config", "parse_yaml", "read_yaml", "validate",
]
