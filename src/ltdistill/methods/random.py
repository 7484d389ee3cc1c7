"""Random: ipc real images per class drawn uniformly (seeded) from the long-tailed train set.

A tail class with fewer than ipc images is refused (short_class 'error', the default); with short_class 'all' it
contributes all it has, recorded in meta.json as `images_per_class`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ltdistill.data.subset import per_class_quota, random_per_class
from ltdistill.engine.method import Method
from ltdistill.synthetic import SyntheticSet


@dataclass(frozen=True)
class RandomConfig:
    # 'error': refuse an ipc above a class's image count; 'all': take every image of such a class (an unbalanced set,
    # whose meta lists images_per_class)
    short_class: Literal["error", "all"] = "error"


class RandomSelection(Method):
    name = "random"
    labels = "hard"
    Config = RandomConfig

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        quota = per_class_quota(data, ipc, self.config.short_class)
        index = random_per_class(data, quota, seed)
        return SyntheticSet(data.train_x[index].clone(), data.train_y[index].clone(),
                            meta={"images_per_class": quota})
