"""Backbones and model assembly."""
from bench.models.build import build_backbone, build_head, build_segmentor, head_class, register_head
from bench.models.pretrained import LoadReport, load_pretrained
from bench.models.resnet import ResNet
from bench.models.segmentor import Segmentor
from ifa.shape_spec import ShapeSpec

__all__ = ["LoadReport", "ResNet", "Segmentor", "ShapeSpec", "build_backbone", "build_head", "build_segmentor",
           "head_class", "load_pretrained", "register_head"]
