"""A suite's method `grid` scored on its `[data] holdout`: the tuning summary DIR/tuning.json.

Procedure (the one the tuned presets cite): V images per class of the source training split are held out as a
balanced validation set before the long-tailed set is built (`[data] holdout = V`); experts, distillation and every
evaluation use only the rest and score on that split (`evaluate --split val`), so the test set is never read. Every
point of a [[method]]'s grid (the product of its axes) is a cell `<label>@k=v+k2=v2_...`; per setting, the point with
the best mean validation balanced accuracy is chosen. The chosen values then go into a preset, whose test numbers
come from a suite without a holdout."""

from __future__ import annotations

from pathlib import Path

from ltdistill.bench.suite import Cell
from ltdistill.safe_io import write_json


def validation_score(result: dict) -> dict:
    """What tuning.json keeps of a cell's evaluation on the holdout."""
    return {"val_balanced_acc": result["balanced_acc"]["mean"], "val_std_over_runs": result["balanced_acc"]["std"],
            "val_per_class_acc": result["per_class_acc"], "lr": result.get("lr")}


def tuning_summary(path: Path, suite: dict, cells: list[Cell], results: dict[str, dict]) -> dict:
    """Every grid point's validation score, grouped by setting (the cell name with the grid part left out), and the
    best point of each group among its finished ones."""
    groups: dict[str, dict] = {}
    references = {}  # cells without a grid (e.g. random): scores on the same holdout to read the points against
    for cell in cells:
        base, at, point = cell.label.partition("@")
        if not at:
            if cell.name in results:
                references[cell.name] = validation_score(results[cell.name])
            continue
        group = groups.setdefault(base + cell.name[len(cell.label):], {
            "method": base, "beta": cell.key["beta"], "ipc": cell.key["ipc"], "seed": cell.key["seed"],
            "points": {}, "pending": []})
        r = results.get(cell.name)
        if r is None:
            group["pending"].append(point)
            continue
        group["points"][point] = {"settings": point.split("+"), **validation_score(r),
                                  "commands": r.get("commands", [])}
    for group in groups.values():
        scored = group["points"]
        group["best"] = max(scored, key=lambda k: scored[k]["val_balanced_acc"]) if scored else None
    return {"suite": str(path), "holdout": suite["data"]["holdout"], "runs": suite.get("runs", 3), "groups": groups,
            "references": references}


def write_tuning(path: Path, suite: dict, cells: list[Cell], results: dict[str, dict], out: Path) -> Path | None:
    """DIR/tuning.json when the suite has grids; None otherwise."""
    if not any(m.get("grid") for m in suite["method"]):
        return None
    target = out / "tuning.json"
    write_json(target, tuning_summary(path, suite, cells, results))
    return target
