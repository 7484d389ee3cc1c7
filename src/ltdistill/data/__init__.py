"""Data layer: raw sources (one small reader per format), the long-tailed builder, DSA and ZCA."""

from ltdistill.data.longtail import LTDataset, build_longtail, class_counts
from ltdistill.data.sources import SOURCES, RawSplit, load_source

__all__ = ["LTDataset", "build_longtail", "class_counts", "SOURCES", "RawSplit", "load_source"]
