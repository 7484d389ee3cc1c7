"""`ltdistill report PATH [PATH ...]`: the SyntheticSet artifacts and evaluation JSONs given (directories are
searched; a benchmark directory, wherever it lies below, gives its results/ alone: one row per cell, never the
cells' working files) and write <DIR>/report/index.md (or --out) with the results table, per-class accuracy bars,
an image grid per artifact and its loss curve. Rows and bars are named by method, variant and evaluation model."""

from __future__ import annotations

import os
from pathlib import Path

from ltdistill.errors import BadInput
from ltdistill.report.plots import image_grid, loss_curve, per_class_bars
from ltdistill.report.tables import eval_model, load_result, results_table, variant
from ltdistill.safe_io import atomic_write_bytes, check_writable, refuse_non_regular
from ltdistill.synthetic import META, SyntheticSet


def find(root: Path) -> tuple[list[Path], list[Path]]:
    """(artifacts, evaluation JSONs) under root, or root itself when it is one; below a benchmark directory (its
    suite.json) only its results/ and its cells' artifacts count (the cells' eval-*.json repeat the results)."""
    if root.is_file():
        return [], [root] if evaluation_json(root) else []
    if (root / META).exists():
        return [root], []
    benches = {p.parent for p in root.rglob("suite.json")}

    def counted(p: Path, where: str) -> bool:  # below a bench: its results/*.json, its cells/<cell>/artifact
        inside = [b for b in benches if b in p.parents]
        return not inside or any(p.match(f"{b}/{where}") for b in inside)

    artifacts = sorted(p.parent for p in root.rglob(META) if "report" not in p.parts and "snapshots" not in p.parts
                       and counted(p.parent, "cells/*/artifact"))
    results = [p for p in sorted(root.rglob("*.json")) if p.name != META and "report" not in p.parts
               and not p.name.startswith(".") and counted(p, "results/*.json") and evaluation_json(p)]
    return artifacts, results


def evaluation_json(path: Path) -> bool:
    try:
        load_result(path)
        return True
    except BadInput:
        return False


def settings(paths: list[Path]) -> dict[str, dict[str, dict]]:
    """Evaluation results grouped by setting (dataset, beta, IPC) for one bar chart each, bars named by the bench
    label or the method and its variant, with the evaluation model where the results use more than one (and the
    seed where two would share a name); a full-set reference (no IPC) joins every chart of its dataset and beta."""
    loaded = [load_result(p) for p in paths]
    several_models = len({eval_model(r) for r in loaded}) > 1

    def setting(r: dict) -> str:
        return f"{r.get('dataset')}-b{float(r.get('imbalance_factor') or 1):g}-"

    def name(r: dict, group: dict) -> str:
        label = r.get("label") or variant(r)
        label = f"{label} @ {eval_model(r)}" if several_models else label
        return label if label not in group else f"{label} seed {r.get('seed', '?')}"

    groups: dict[str, dict[str, dict]] = {}
    for r in loaded:
        if r.get("ipc"):
            group = groups.setdefault(f"{setting(r)}ipc{r['ipc']}", {})
            group[name(r, group)] = r
    for r in loaded:
        if not r.get("ipc"):
            targets = [g for key, g in groups.items() if key.startswith(setting(r))]
            for group in targets or [groups.setdefault(f"{setting(r)}full", {})]:
                group[name(r, group)] = r
    return groups


def build_report(root: str | Path, *more: str | Path, out: str | Path | None = None) -> Path:
    """The report of what root and `more` hold (see the module docstring) in `out` (default: root/report, root a
    directory)."""
    paths = [Path(p) for p in (root, *more)]
    artifacts, results = [], []
    for path in paths:
        if not path.exists():
            raise BadInput(f"{path} does not exist")
        found = find(path)
        if not any(found):
            raise BadInput(f"{path} holds no SyntheticSet artifact and no evaluation JSON")
        artifacts += [a for a in found[0] if a not in artifacts]
        results += [r for r in found[1] if r not in results]
    if out is None:
        if len(paths) > 1 or not paths[0].is_dir():
            raise BadInput("a report of several paths, or of a file, needs --out DIR")
        out = paths[0] / "report"
    out = Path(out)
    loaded = [load_result(p) for p in results]
    for art in artifacts:  # a bad file is refused before anything is written (loaded again below, one at a time)
        SyntheticSet.load(art)
    refuse_non_regular(out / "index.md")  # before any figure is drawn: its error says nothing was written
    check_writable(out.parent)
    out.mkdir(exist_ok=True)
    root = paths[0] if len(paths) == 1 else Path(os.path.commonpath([p.resolve() for p in paths]))
    lines = [f"# Report: {', '.join(str(p) for p in paths)}", ""]
    if results:
        lines += ["## Results", "", results_table(results), ""]
        for setting, group in settings(results).items():
            png = per_class_bars(group, out / f"per-class-{setting}.png",
                                 class_names=next(iter(group.values())).get("class_names"))
            lines += [f"### Per-class accuracy, {setting}", "", f"![per-class accuracy]({png.name})", ""]
    class_names = {r.get("dataset"): r["class_names"] for r in loaded if r.get("class_names")}
    cell_names = {r["cell"]: p.stem for p, r in zip(results, loaded, strict=True) if "cell" in r}  # bench cells
    for art in artifacts:
        synthetic = SyntheticSet.load(art)
        name = cell_names.get(art.parent.name) or artifact_name(art, root)
        lines += [f"## {name}", "", f"method {synthetic.meta.get('method')}, {synthetic.images.shape[0]} images, "
                  f"{'soft' if synthetic.soft else 'hard'} labels", ""]
        grid = image_grid(synthetic, out / f"{name}-images.png",
                          class_names=class_names.get(synthetic.meta.get("dataset")))
        lines += [f"![synthetic images]({grid.name})", ""]
        curve = loss_curve(synthetic, out / f"{name}-loss.png")
        if curve is not None:
            lines += [f"![loss curve]({curve.name})", ""]
    atomic_write_bytes(out / "index.md", "\n".join(lines).encode())
    return out / "index.md"


def artifact_name(art: Path, root: Path) -> str:
    """The artifact's path below root with '_' for '/', or its folder's name where it lies elsewhere or is the root
    itself (`report ARTIFACT`: not '.', which would hide its files)."""
    try:
        relative = art.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        relative = ""
    return relative.replace("/", "_") if relative not in ("", ".") else art.resolve().name
