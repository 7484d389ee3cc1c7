"""ltdistill: long-tailed dataset distillation on one core.

The flow (design.md): source -> long-tailed builder -> [experts] -> method.distill -> SyntheticSet -> evaluate.
"""

__version__ = "0.1.0"

from ltdistill.errors import BadInput  # noqa: E402

__all__ = ["BadInput", "__version__"]
