"""Metrics of the long-tailed distillation papers, as pure functions of labels and predictions.

- balanced accuracy: mean per-class accuracy on the balanced test set (= top-1 when the test set is balanced);
- per-class accuracy and its standard deviation across classes (two-stage paper, Table 1);
- many / medium / few (LTDD; Liu et al. 2019): for fewer than 100 classes the classes are split by training
  count into thirds (np.array_split of the classes sorted by count, head first: 4/3/3 for 10 classes);
  for 100+ classes the usual >100 / 20-100 / <20 training images;
- on the long-tailed test set: accuracy and macro precision / recall / F1 (LTDD supplement Table 6, scikit-learn).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    correct = np.bincount(y_true[y_true == y_pred], minlength=num_classes)
    total = np.bincount(y_true, minlength=num_classes)
    return np.where(total > 0, correct / np.maximum(total, 1), np.nan)


def shot_groups(train_counts: list[int]) -> dict[str, list[int]]:
    counts = np.asarray(train_counts)
    if len(counts) >= 100:
        return {"many": np.flatnonzero(counts > 100).tolist(),
                "medium": np.flatnonzero((counts >= 20) & (counts <= 100)).tolist(),
                "few": np.flatnonzero(counts < 20).tolist()}
    order = np.argsort(-counts, kind="stable")
    many, medium, few = np.array_split(order, 3)
    return {"many": sorted(many.tolist()), "medium": sorted(medium.tolist()), "few": sorted(few.tolist())}


SHOT_RULE = "classes sorted by training count split into thirds (<100 classes); >100/20-100/<20 images otherwise"


def run_metrics(test_true, test_pred, lt_true, lt_pred, train_counts: list[int]) -> dict:
    """All metrics of one trained model."""
    C = len(train_counts)
    acc = per_class_accuracy(np.asarray(test_true), np.asarray(test_pred), C)
    groups = shot_groups(train_counts)
    lt_true, lt_pred = np.asarray(lt_true), np.asarray(lt_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(lt_true, lt_pred, labels=np.arange(C),
                                                               average="macro", zero_division=0)
    return {
        "balanced_acc": float(np.nanmean(acc)),
        "per_class_acc": acc.tolist(),
        "class_acc_std": float(np.nanstd(acc)),
        **{g: float(np.nanmean(acc[idx])) if len(idx) else None for g, idx in groups.items()},
        "lt_test": {"acc": float((lt_true == lt_pred).mean()), "precision": float(precision),
                    "recall": float(recall), "f1": float(f1)},
    }


def aggregate(runs: list[dict]) -> dict:
    """Mean (and std where the papers report it) over evaluation runs, in the keys design.md fixes."""
    def mean(key):
        values = [r[key] for r in runs if r[key] is not None]
        return float(np.mean(values)) if values else None

    bal = np.array([r["balanced_acc"] for r in runs])
    lt = {k: np.array([r["lt_test"][k] for r in runs]) for k in runs[0]["lt_test"]}
    return {
        "balanced_acc": {"mean": float(bal.mean()), "std": float(bal.std())},
        # dtype float: a class without test images is NaN, stored as null in a kept run (safe_io.json_bytes)
        "per_class_acc": np.array([r["per_class_acc"] for r in runs], dtype=float).mean(axis=0).tolist(),
        "class_acc_std": mean("class_acc_std"),
        "many": mean("many"), "medium": mean("medium"), "few": mean("few"),
        "lt_test": {k: float(v.mean()) for k, v in lt.items()},
        "lt_test_std": {k: float(v.std()) for k, v in lt.items()},
        "per_run": runs,
    }


def model_accuracy(model, data) -> dict:
    """Balanced and per-class accuracy of an observer / teacher on the balanced test set (the validation holdout for
    a tuning run): the ceiling relabeling puts on a set, recorded with it."""
    from ltdistill.train import predict

    scored = data.validation() if data.holdout else data
    per_class = per_class_accuracy(scored.test_y.numpy(), predict(model, scored.test_x).numpy(), data.num_classes)
    return {"balanced_acc": float(per_class.mean()), "per_class_acc": per_class.tolist(),
            "split": "validation" if data.holdout else "test"}
