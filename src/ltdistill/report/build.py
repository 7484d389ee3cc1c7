"""`ltdistill report DIR`: find every SyntheticSet artifact and evaluation JSON under DIR and write
DIR/report/index.md with the results table, per-class accuracy bars, an image grid per artifact and its loss curve."""

from __future__ import annotations

from pathlib import Path

from ltdistill.errors import BadInput
from ltdistill.report.plots import image_grid, loss_curve, per_class_bars
from ltdistill.report.tables import load_result, results_table
from ltdistill.safe_io import atomic_write_bytes
from ltdistill.synthetic import META, SyntheticSet


def find(root: Path) -> tuple[list[Path], list[Path]]:
    artifacts = sorted(p.parent for p in root.rglob(META) if "report" not in p.parts and "snapshots" not in p.parts)
    results = []
    # a bench directory: its results/ hold one JSON per cell (the cells' own eval-*.json would repeat them)
    candidates = (root / "results").glob("*.json") if (root / "suite.json").exists() else root.rglob("*.json")
    for p in sorted(candidates):
        if p.name == META or "report" in p.parts or p.name.startswith("."):
            continue
        try:
            load_result(p)
            results.append(p)
        except BadInput:
            continue
    return artifacts, results


def settings(paths: list[Path]) -> dict[str, dict[str, dict]]:
    """Evaluation results grouped by setting (dataset, beta, IPC) for one bar chart each, bars named by the bench
    label or the file; a full-set reference (no IPC) joins every chart of its dataset and beta."""
    loaded = [(p, load_result(p)) for p in paths]

    def beta(r: dict) -> str:
        return f"{float(r.get('imbalance_factor') or 1):g}"

    groups: dict[str, dict[str, dict]] = {}
    for p, r in loaded:
        if r.get("ipc"):
            groups.setdefault(f"{r.get('dataset')}-b{beta(r)}-ipc{r['ipc']}", {})[r.get("label") or p.stem] = r
    for p, r in loaded:
        if not r.get("ipc"):
            prefix = f"{r.get('dataset')}-b{beta(r)}-"
            targets = [g for name, g in groups.items() if name.startswith(prefix)]
            for group in targets or [groups.setdefault(f"{prefix}full", {})]:
                group[r.get("label") or p.stem] = r
    return groups


def build_report(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root} is not a directory")
    artifacts, results = find(root)
    if not artifacts and not results:
        raise BadInput(f"{root} holds no SyntheticSet artifact and no evaluation JSON")
    out = root / "report"
    out.mkdir(exist_ok=True)
    lines = [f"# Report: {root}", ""]
    if results:
        lines += ["## Results", "", results_table(results), ""]
        for setting, group in settings(results).items():
            png = per_class_bars(group, out / f"per-class-{setting}.png",
                                 class_names=next(iter(group.values())).get("class_names"))
            lines += [f"### Per-class accuracy, {setting}", "", f"![per-class accuracy]({png.name})", ""]
    loaded = [load_result(p) for p in results]
    class_names = {r.get("dataset"): r["class_names"] for r in loaded if r.get("class_names")}
    cell_names = {r["cell"]: p.stem for p, r in zip(results, loaded, strict=True) if "cell" in r}  # bench cells
    for art in artifacts:
        synthetic = SyntheticSet.load(art)
        name = cell_names.get(art.parent.name) or art.relative_to(root).as_posix().replace("/", "_") or art.name
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
