"""What a cell costs, estimated from the stored costs of the same cell made before: the JSONs of docs/data/bench-*
(in a source checkout) and the finished cells of the run directory, on the same kind of device. A cell's cost is
its distillation's wall time (per iteration times iterations, so a resumed cell counts whole) plus its evaluation
runs; an expert buffer's is the stored experts_seconds. Where nothing matches the cell, there is no estimate."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ltdistill.bench.suite import Cell

DATA = Path(__file__).resolve().parents[3] / "docs" / "data"


def cell_signature(r: dict) -> tuple:
    """What makes two results the same cell for a cost: the variant, dataset, beta and IPC."""
    return r.get("label") or r.get("method"), r.get("dataset"), float(r.get("imbalance_factor") or 0), r.get("ipc")


def result_seconds(r: dict) -> tuple[float, float | None]:
    """(the cell's seconds, its expert buffer's seconds) from a finished cell's result."""
    distill = r.get("distill") or {}
    per_iteration, iterations = distill.get("s_per_iteration"), distill.get("iterations")
    made = per_iteration * iterations if per_iteration and iterations else distill.get("wall_time_s") or 0.0
    evaluations = sum(1 for c in r.get("commands", []) if " evaluate " in f" {c} ") or 1
    spent = made + (r.get("seconds_per_run") or 0.0) * (r.get("runs") or 1) * evaluations
    return spent, r.get("experts_seconds")


def stored_costs(out: Path, device: str) -> tuple[dict, dict]:
    """(cell signature -> seconds, (dataset, beta, experts kind) -> seconds) over the stored results made on a
    device of `device`'s kind."""
    kind = device.split(":")[0]
    cells: dict[tuple, list[float]] = {}
    buffers: dict[tuple, list[float]] = {}
    paths = sorted(DATA.glob("bench-*/*.json")) + sorted((out / "results").glob("*.json"))
    for path in paths:
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(r, dict) or str(r.get("device", "cpu")).split(" ")[0].split(":")[0] != kind:
            continue
        spent, experts = result_seconds(r)
        cells.setdefault(cell_signature(r), []).append(spent)
        buffer = (r.get("key") or {}).get("experts")
        if experts and buffer:
            kind_of = str(buffer).split("-")[0]
            buffers.setdefault((r.get("dataset"), float(r.get("imbalance_factor") or 0), kind_of), []).append(experts)
    # a buffer's stored time does not say where it was trained (some were trained on a GPU for CPU cells): the
    # longest one, so an estimate does not promise too little
    return {k: statistics.median(v) for k, v in cells.items()}, {k: max(v) for k, v in buffers.items()}


def estimate(cell: Cell, costs: dict) -> float | None:
    key = cell.key
    label = cell.label
    return costs.get((label, key.get("dataset") or key.get("full"), float(key.get("beta") or 0), key.get("ipc")))


def buffer_estimate(directory: Path, cells: list[Cell], buffer_costs: dict) -> float | None:
    """An expert buffer's stored cost (stored_costs), looked up by a cell that replays it."""
    key = next((c.key for c in cells if c.experts == directory), None)
    if key is None:
        return None
    return buffer_costs.get((key["dataset"], float(key["beta"]), directory.name.split("-")[0]))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "no estimate"
    hours, rest = divmod(int(seconds), 3600)
    return f"~{hours} h {rest // 60:02d} min" if hours else f"~{max(1, rest // 60)} min"
