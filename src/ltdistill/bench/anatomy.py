"""A suite's `anatomy = [{before = LABEL, after = LABEL}]`: what a distillation's iterations changed, part by part.

For every finished `after` cell and the `before` cell of the same setting (e.g. `ltdd-init-only`, LTDD with
iterations=0, and `ltdd`), the bench evaluates, with the `after` cell's main evaluation command:

    after-images+before-labels  the matched images with the initial labels (and the learned lr)
    before-images+after-labels  the initial images with the learned labels (and the learned lr)
    after-lr=before             the finished set evaluated at the initial set's lr (the learned lr's share)

and writes DIR/anatomy/<after cell>/{before,after,<each hybrid>}.json (before and after are the two cells' own
results), one JSON per row, so a report can name its rows by file; the hybrid sets are in sets/, their evaluations,
cached like a cell's, in evals/."""

from __future__ import annotations

from pathlib import Path

from ltdistill.bench.commands import Log, evaluation_json, exclusive, shown
from ltdistill.bench.suite import Cell
from ltdistill.errors import check
from ltdistill.safe_io import write_json
from ltdistill.synthetic import SyntheticSet

HYBRIDS = {  # name: (images from, labels from, note)
    "after-images+before-labels": ("after", "before", "matched images, initial labels"),
    "before-images+after-labels": ("before", "after", "initial images, learned labels"),
}


def anatomy_pairs(suite: dict, cells: list[Cell]) -> list[tuple[Cell, Cell]]:
    """(before, after) cells of the suite's anatomy entries: the same setting, the two labels."""
    by_name = {c.name: c for c in cells}
    pairs = []
    for entry in suite.get("anatomy", []):
        for after in (c for c in cells if c.label == entry["after"]):
            before = by_name.get(entry["before"] + after.name[len(entry["after"]):])
            if before is not None:
                pairs.append((before, after))
    return pairs


def hybrid(images_from: SyntheticSet, labels_from: SyntheticSet, lr: float | None, note: str) -> SyntheticSet:
    meta = {**images_from.meta, "hybrid": note, "loss_history": []}
    return SyntheticSet(images_from.images.clone(), labels_from.labels.clone(), lr=lr, meta=meta)


def with_artifact(cmd: list[str], artifact: Path, lr: float | None = None) -> list[str]:
    """An evaluation command of one artifact, pointed at another (and at a fixed lr)."""
    at = cmd.index("evaluate") + 1
    return [*cmd[:at], str(artifact), *cmd[at + 1:], *(["--lr", f"{lr:g}"] if lr is not None else [])]


def run_anatomy(suite: dict, cells: list[Cell], results: dict[str, dict], out: Path, log: Log) -> list[Path]:
    """Evaluate the hybrids of every anatomy pair whose two cells are finished here; returns their folders."""
    made = []
    for before_cell, after_cell in anatomy_pairs(suite, cells):
        if not (before_cell.name in results and after_cell.name in results
                and before_cell.artifact_meta() and after_cell.artifact_meta()):
            continue
        before, after = SyntheticSet.load(before_cell.artifact), SyntheticSet.load(after_cell.artifact)
        check(before.meta.get("classes") == after.meta.get("classes") and before.images.shape == after.images.shape,
              f"anatomy: {before_cell.name} and {after_cell.name} must hold the same classes and image shapes")
        where = out / "anatomy" / after_cell.name
        sets = {"before": before, "after": after}
        main = next(iter(after_cell.evals.values()))
        rows = {}
        for name, (images, labels, note) in HYBRIDS.items():
            artifact = where / "sets" / name
            with exclusive(where / f".{name}.lock"):  # pieces side by side on one --out make each set once
                if not (artifact / "meta.json").exists():
                    hybrid(sets[images], sets[labels], after.lr, note).save(artifact)
            rows[name] = (with_artifact(main, artifact), where / "evals" / f"{name}.json")
        rows["after-lr=before"] = (with_artifact(main, after_cell.artifact, before.lr or 0.01),
                                   where / "evals" / "after-lr=before.json")
        for name, (cmd, cached) in rows.items():
            result = {**evaluation_json(cmd, cached, log), "commands": [shown(cmd)]}
            write_json(where / f"{name}.json", result)
        for name, cell in (("before", before_cell), ("after", after_cell)):
            write_json(where / f"{name}.json", results[cell.name])
        made.append(where)
    return made
