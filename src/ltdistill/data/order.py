"""Class order of the long-tailed builder: which class gets the profile's i-th count (position 0 the head).

CIFAR-10-LT gives class 0 the most images and class C-1 the fewest (`natural`). On Fashion-MNIST that makes
Sneaker, Bag and Ankle boot, three of the easiest classes, the tail, so the tail barely suffers. The order is a
setting so that a claim can be checked under other orders:

- `natural`: class i at position i (the CIFAR-LT convention; today's sets, bit for bit).
- `hard-tail`: the easiest class the head, the hardest the tail; `easy-tail` the reverse. Hardness is measured,
  not guessed: the per-class test accuracy of a ConvNet trained on the balanced training set, stored in the
  dataset's card (data/cards/<dataset>.json) with the command that produced it
  (`ltdistill datasets --rank-classes DATASET`).
- `random:SEED`: a seeded random permutation.
- `3,1,0,2,...`: an explicit permutation of the class indices, head first.

Only the counts move: labels keep their meaning, and many/medium/few follow the training counts.
"""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from ltdistill.errors import BadInput

NAMED = ("natural", "hard-tail", "easy-tail")
HELP = "natural (default), hard-tail, easy-tail, random:SEED, or a permutation head first, e.g. 3,1,0,2"


def card(dataset: str) -> dict | None:
    """The dataset's card (its measured class hardness), None when it has none."""
    path = resources.files("ltdistill.data") / "cards" / f"{dataset}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def check_order(order: str) -> str:
    """The order's text if it is well formed (its fit to a dataset is checked by class_rank)."""
    if not isinstance(order, str):
        raise BadInput(f"class order must be text ({HELP}), got {order!r}")
    if order in NAMED or order.replace(" ", "").replace(",", "").isdigit():
        return order
    if order.startswith("random:") and order[len("random:"):].isdigit():
        return order
    raise BadInput(f"unknown class order {order!r}; known: {HELP}")


def class_rank(order: str, dataset: str, num_classes: int) -> list[int]:
    """The classes from head to tail under `order`."""
    check_order(order)
    if order == "natural":
        return list(range(num_classes))
    if order.startswith("random:"):
        return np.random.default_rng([int(order[len("random:"):]), 7]).permutation(num_classes).tolist()
    if order in ("hard-tail", "easy-tail"):
        measured = card(dataset)
        if measured is None:
            raise BadInput(f"no class hardness is stored for {dataset!r}, so it has no {order} order; measure it "
                           f"with `ltdistill datasets --rank-classes {dataset}` or give a permutation")
        easiest_first = measured["easiest_first"]
        return easiest_first if order == "hard-tail" else easiest_first[::-1]
    rank = [int(c) for c in order.split(",")]
    if sorted(rank) != list(range(num_classes)):
        raise BadInput(f"class order {order!r} is not a permutation of the {num_classes} classes 0..{num_classes - 1}")
    return rank


def counts_in_order(counts: list[int], rank: list[int]) -> list[int]:
    """Per-class counts (indexed by class) when the profile's i-th count goes to class rank[i]."""
    by_class = [0] * len(counts)
    for position, c in enumerate(rank):
        by_class[c] = counts[position]
    return by_class
