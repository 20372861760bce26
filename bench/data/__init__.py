"""Datasets in their real file layouts (Cityscapes, ADE20K, PASCAL Context, synthetic) and the train/eval
transforms. See docs/data.md."""
from bench.data.dataset import Sample, SegDataset
from bench.data.labels import IGNORE_INDEX
from bench.data.registry import DATASETS, build_dataset, get_spec, open_dataset, scan_split
from bench.data.synthetic.generate import generate_synthetic

__all__ = ["DATASETS", "IGNORE_INDEX", "Sample", "SegDataset", "build_dataset", "generate_synthetic",
           "get_spec", "open_dataset", "scan_split"]
