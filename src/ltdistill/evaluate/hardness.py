"""Measured class hardness, the ranking behind the hard-tail and easy-tail class orders (data/order.py).

Per-class test accuracy of the protocol's ConvNet trained on the balanced training set (beta 1, every class its
full count; `evaluate --full` at beta 1), averaged over runs; the easiest class first. `ltdistill datasets
--rank-classes DATASET --json FILE` writes the card that data/cards/<dataset>.json holds, with its command."""

from __future__ import annotations

import shlex
import sys

from ltdistill import protocols
from ltdistill.data.longtail import load_longtail
from ltdistill.evaluate.protocol import EvalConfig, evaluate_full


def rank_classes(dataset: str, *, protocol: str = "cpu", epochs: int = 20, runs: int = 1, data_dir=None,
                 device: str = "cpu", progress: bool = True) -> dict:
    """The card of `dataset`: per-class accuracy and the classes from easiest to hardest."""
    data = load_longtail(dataset, 1.0, data_dir=data_dir)
    options = protocols.network(protocol, data.im_size)
    config = EvalConfig(model="convnet", model_options=tuple(sorted(options.items())), runs=runs, epochs=epochs)
    result = evaluate_full(data, config, device=device, progress=progress)
    accuracy = result["per_class_acc"]
    easiest_first = sorted(range(data.num_classes), key=lambda c: (-accuracy[c], c))
    return {"dataset": dataset, "class_names": list(data.class_names), "per_class_acc": accuracy,
            "easiest_first": easiest_first, "balanced_acc": result["balanced_acc"], "train_counts": data.counts,
            "protocol": protocol, "model": result["model"], "model_options": result["model_options"],
            "epochs": epochs, "runs": runs, "seconds_per_run": result["seconds_per_run"], "device": result["device"],
            "host": result["host"], "command": "ltdistill " + shlex.join(sys.argv[1:])}
