"""Where the Fashion-MNIST-LT grid's CPU hours go, part by part, and what the faster paths measured on this machine
would make of them: the stored costs of the grid's cells (each result's distillation wall time, evaluation seconds
per run x runs, and each expert buffer's training once) grouped by the code that spends them, each part set beside
the speedup measured for its faster path (benchmarks/compile_speed.py's JSON files; with --precision, bfloat16
compiled training as compile_speed.py timed it, taken only where precision_check.py's scores stayed within float32's
spread), and the total that would follow. A projection from measured ratios, not a rerun of the grid: the ratios
were timed on a few iterations or epochs, the grid's costs on whole runs, often beside other jobs. It also gives the
bound that decides the goal of a third: the part no measured path speeds up.

    python benchmarks/grid_cost.py --results docs/data/bench-fmnist-cpu --compile docs/data/compile-speed \
        --out docs/data/grid-cost/cpu.json
    python benchmarks/grid_cost.py --results docs/data/bench-fmnist-cpu --compile docs/data/compile-speed \
        --precision docs/data/precision/cpu.json --out docs/data/grid-cost/cpu-bfloat16.json

With --cells (faster_cells.py's JSONs, one a cell: a cell distilled end to end on the faster paths and scored
against its float32 cell), trajectory matching takes what a whole distillation gained, not its unroll's ops alone:
the ops' speedup at each IPC times the share of it the whole distillation kept in the trajectory cell of that IPC,
else of the nearest IPC (the expert loading, augmentation and image update around the unroll gain nothing), for
each path scored within float32's spread (the float32 compiled unroll; with --precision also the bfloat16 one, and
the standard buffers' experts compiled in bfloat16 where a set distilled from them scored so). At a cell's own IPC
that is the speedup its whole distillation measured. Decoupled buffers, never scored in bfloat16, keep their
float32 compiled path. DC takes, at the IPC of a DC cell scored compiled, what that whole cell gained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from faster_cells import COMPILED, EXPERTS_BFLOAT16, UNROLL_BFLOAT16, UNROLL_COMPILED

from ltdistill.safe_io import write_json

TRAJECTORY, RECOVERY = ("mtt", "datm", "ltdd"), ("sre2l", "unilevel")  # EDC, unmeasured, is a part of its own
# trajectory matching by IPC: its unroll ops' speedup grows with the unrolled images
TRAJECTORY_PART = f"distillation: trajectory matching ({', '.join(TRAJECTORY)}), IPC {{ipc}}"
DC_PART = "distillation: dc, IPC {ipc}"  # by IPC too: the unroll ops' share of DC's matching grows with it
RECOVERY_PART = f"distillation: recovery ({', '.join(RECOVERY)})"
EXPERTS_PART = "expert buffers: {kind}"  # a buffer's key starts with its kind: standard (MTT, DATM) or decoupled (LTDD)
# faster_cells.py's scored cells of a family, by IPC: the rows within float32's spread by variant, whose, which file
Cells = dict[int, tuple[dict[str, dict], str, str]]


def cell_costs(folder: Path) -> dict[str, float]:
    """Seconds of each part of the grid from its stored results (the ConvNet evaluation only: the cross-architecture
    runs keep no time)."""
    parts: dict[str, float] = {}
    buffers: dict[str, float] = {}

    def add(part: str, seconds: float) -> None:
        parts[part] = parts.get(part, 0.0) + seconds

    for path in sorted(folder.glob("*.json")):
        r = json.loads(path.read_text())
        method = r.get("method") or r.get("label")
        evaluation = (r.get("seconds_per_run") or 0.0) * (r.get("runs") or 0)
        if r.get("training_set") == "full" or method == "full":
            add("evaluation: the full long-tailed set", evaluation)
            continue
        add(f"evaluation: IPC {r.get('ipc')} sets", evaluation)
        distill = (r.get("distill") or {}).get("wall_time_s") or 0.0
        family = (TRAJECTORY_PART.format(ipc=r.get("ipc")) if method in TRAJECTORY else RECOVERY_PART
                  if method in RECOVERY else DC_PART.format(ipc=r.get("ipc")) if method == "dc"
                  else f"distillation: {method}")
        if distill:
            add(family, distill)
        buffer = (r.get("key") or {}).get("experts")
        if buffer and r.get("experts_seconds"):
            buffers[buffer] = r["experts_seconds"]
    for kind in sorted({buffer.split("-")[0] for buffer in buffers}):
        parts[EXPERTS_PART.format(kind=kind)] = sum(t for b, t in buffers.items() if b.split("-")[0] == kind)
    return parts


def dc_speedups(folder: Path, families: dict, cells: Cells | None = None) -> dict[str, tuple[float, str]]:
    """DC's parts by IPC: what a whole DC cell made compiled gained where faster_cells.py scored one at that IPC
    within float32's spread (`cells`, by IPC), else compile=true's steady iterations where compile_speed.py --dc
    timed them (the matching through the unroll ops), else the whole short run of cpu-families (the network's
    training compiled only)."""
    parts = {}
    for ipc, name in ((10, "cpu-dc.json"), (50, "cpu-dc-ipc50.json")):
        scored, who, source = (cells or {}).get(ipc, ({}, "", ""))
        if COMPILED in scored:
            parts[DC_PART.format(ipc=ipc)] = (scored[COMPILED]["distill_speedup"],
                                              f"{source}: {who}, compile=true, scored (IPC {ipc})")
        elif (folder / name).is_file():
            dc = json.loads((folder / name).read_text())["dc"]
            parts[DC_PART.format(ipc=ipc)] = (dc["compiled_speedup"], f"{name[:-5]}: dc compile=true, IPC {ipc}")
        else:
            parts[DC_PART.format(ipc=ipc)] = (families["dc"]["speedup"], "cpu-families: dc (IPC 10)")
    return parts


def bfloat16_scored(path: Path) -> bool:
    """Whether precision_check.py's scores stayed within float32's spread in every set it checked."""
    if not path.is_file():
        return False
    scores = json.loads(path.read_text()).get("scores")
    return bool(scores) and all(row["within_spread"] for row in scores)


def scored_cells(paths: list[Path], methods: tuple[str, ...]) -> Cells:
    """faster_cells.py's rows that scored within float32's spread and were not timed on another processor than the
    float32 cell, by variant (its first row, the float32 cell itself, is what they were scored against), with whose
    distillation it was and the file's name, by the IPC of its cell, for the cells of `methods`; files not there
    are passed over. Two cells of a family at one IPC are refused: which of them the projection should take is the
    caller's to say."""
    cells: Cells = {}
    for path in paths:
        if path.is_file() and (report := json.loads(path.read_text())).get("method") in methods:
            rows = {r["variant"]: r for r in report["rows"][1:]
                    if r["within_spread"] and r.get("same_host") is not False}
            who = f"{str(report.get('method')).upper()}'s whole distillation"
            ipc = int(report.get("ipc", 10))
            if ipc in cells:
                raise SystemExit(f"grid_cost.py: --cells gives two cells of {'/'.join(methods)} at IPC {ipc} "
                                 f"({cells[ipc][2]}, {path.parent.name}/{path.stem}); give one")
            cells[ipc] = (rows, who, f"{path.parent.name}/{path.stem}")
    return cells


def trajectory_speedups(timed: dict[int, dict], cells: Cells, bfloat16: bool) -> dict[int, tuple[float, str]]:
    """Each IPC's unroll ops speedup (eager over compiled); with whole cells scored (`cells`, by IPC), only for the
    paths scored within float32's spread (float32 compiled, and bfloat16 compiled where `bfloat16`), times the share
    of the ops' gain the whole distillation kept in the cell of the nearest IPC."""
    if not cells:
        return {ipc: (row["ops_speedup"], f"cpu-unroll-ops: the unroll ops, compiled (IPC {ipc})")
                for ipc, row in timed.items()}
    paths = [(UNROLL_COMPILED, "ops_s", "")]
    paths += [(UNROLL_BFLOAT16, "ops_bfloat16_s", " in bfloat16")] if bfloat16 else []
    best: dict[int, tuple[float, str]] = {}
    for ipc, row in timed.items():
        cell_ipc = min(cells, key=lambda c: (abs(c - ipc), c))
        scored, who, source = cells[cell_ipc]
        for variant, seconds, how in paths:
            if variant not in scored or cell_ipc not in timed:
                continue
            ops = timed[cell_ipc]
            share = scored[variant]["distill_speedup"] / (ops["eager_s"] / ops[seconds])
            taken = (row["eager_s"] / row[seconds] * share,
                     f"cpu-unroll-ops: the unroll ops, compiled{how} (IPC {ipc}), x {share:.2f}: the share of their "
                     f"gain {who} kept at IPC {cell_ipc} ({source})")
            best[ipc] = max(best.get(ipc, taken), taken)
    return best


def measured_speedups(folder: Path, precision: Path | None = None,
                      faster_cells: list[Path] | None = None) -> dict[str, tuple[float, str]]:
    """Each part's faster path and its measured speedup over eager, with the measurement it comes from."""
    families = json.loads((folder / "cpu-families.json").read_text())["families"]
    rows = {name.split()[0]: row for name, row in json.loads((folder / "cpu.json").read_text())["rows"].items()}
    training = {name: (row["speedup"], "cpu") for name, row in rows.items()}
    float32_full = training["full"][0]
    bfloat16 = precision is not None and bfloat16_scored(precision)
    if bfloat16:  # timed in the same run as float32's paths
        training.update({name: (row["bfloat16_speedup"], f"cpu, bfloat16 (scored in precision/{precision.stem})")
                         for name, row in rows.items() if row.get("bfloat16_speedup", 0.0) > row["speedup"]})
    (small, small_path), (full, full_path) = training["ipc10"], training["full"]
    ipc50 = ((*training["ipc50"], "training an IPC-50 set") if "ipc50" in training
             else (small, small_path, "training an IPC-10 set (IPC 50 not timed)"))
    unroll = json.loads((folder / "cpu-unroll.json").read_text())["unroll"]
    timed = {ipc: json.loads((folder / name).read_text())["unroll"]
             for ipc, name in ((10, "cpu-unroll-ops.json"), (50, "cpu-unroll-ops-ipc50.json"))}
    cells = scored_cells(faster_cells or [], TRAJECTORY)
    ops = trajectory_speedups(timed, cells, bfloat16)
    whole = (unroll["speedup"], "cpu-unroll: the unroll compiled whole (IPC 10)")
    experts_in = next((source for scored, _, source in cells.values() if EXPERTS_BFLOAT16 in scored), None)
    return {
        **{TRAJECTORY_PART.format(ipc=ipc): max(whole, ops[ipc]) if ipc in ops else whole for ipc in (10, 50)},
        **dc_speedups(folder, families, scored_cells(faster_cells or [], ("dc",))),
        "distillation: dm": (families["dm"]["speedup"], "cpu-families: dm (steady iteration)"),
        "distillation: herding": (families["herding"]["speedup"], "cpu-families: herding"),
        RECOVERY_PART: (families["sre2l"]["speedup"],
                                                     "cpu-families: sre2l (3 epochs of its model)"),
        "evaluation: IPC 10 sets": (small, f"{small_path}: training an IPC-10 set"),
        "evaluation: IPC 50 sets": (ipc50[0], f"{ipc50[1]}: {ipc50[2]}"),
        "evaluation: the full long-tailed set": (full, f"{full_path}: training on the whole beta-100 set"),
        **expert_speedups(folder, float32_full, experts_in if bfloat16 else None),
    }


def expert_speedups(folder: Path, full: float, bfloat16_scored_in: str | None = None) -> dict[str, tuple[float, str]]:
    """Each kind of expert buffer compiled in float32, as compile_speed.py --experts timed a whole expert of it, else
    `full`, the float32 compiled training of the whole beta-100 set; the standard kind compiled in bfloat16 where a
    set distilled from such a buffer scored within float32's spread (`bfloat16_scored_in`)."""
    if not (folder / "cpu-experts.json").is_file():
        return {EXPERTS_PART.format(kind=kind): (full, "cpu: training on the whole beta-100 set (experts not timed)")
                for kind in ("standard", "decoupled")}
    rows = json.loads((folder / "cpu-experts.json").read_text())["experts"]
    parts = {EXPERTS_PART.format(kind=kind): (row["speedup"]["float32 compiled"],
                                              f"cpu-experts: a {kind} expert, compiled")
             for kind, row in rows.items()}
    if bfloat16_scored_in is not None and "standard" in rows:
        parts[EXPERTS_PART.format(kind="standard")] = (
            rows["standard"]["speedup"]["bfloat16 compiled"],
            f"cpu-experts: a standard expert, compiled in bfloat16 (scored in {bfloat16_scored_in})")
    return parts


def project(parts: dict[str, float], speedups: dict[str, tuple[float, str]]) -> dict:
    """Hours today and projected; a path measured slower than eager is not taken (ratio 1)."""
    rows = []
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        measured, source = speedups.get(part, (1.0, "no faster path measured"))
        taken = max(measured, 1.0)
        rows.append({"part": part, "hours": seconds / 3600, "measured_speedup": measured, "source": source,
                     "taken_speedup": taken, "projected_hours": seconds / 3600 / taken})
    total = sum(r["hours"] for r in rows)
    projected = sum(r["projected_hours"] for r in rows)
    untouched = sum(r["hours"] for r in rows if r["taken_speedup"] == 1.0)
    return {"rows": rows, "total_hours": total, "projected_hours": projected, "projected_ratio": total / projected,
            "untouched_hours": untouched, "untouched_share": untouched / total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="a suite's stored results (docs/data/...)")
    parser.add_argument("--compile", type=Path, required=True, help="compile_speed.py's JSON files")
    parser.add_argument("--precision", type=Path, default=None,
                        help="precision_check.py's JSON: bfloat16 training taken where its scores held")
    parser.add_argument("--cells", type=Path, nargs="+", default=None,
                        help="faster_cells.py's JSONs: what whole cells (trajectory matching, DC) gained on the paths "
                             "they scored within float32's spread, one cell a file")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = project(cell_costs(args.results),
                     measured_speedups(args.compile, args.precision, args.cells))
    precision = f" --precision {args.precision}" if args.precision else ""
    if args.cells:
        precision += f" --cells {' '.join(map(str, args.cells))}"
    report.update(results=str(args.results), cells=len(list(args.results.glob("*.json"))),
                  command=f"python benchmarks/grid_cost.py --results {args.results} --compile {args.compile}"
                          f"{precision} --out {args.out}")
    write_json(args.out, report)
    print(f"{report['total_hours']:.1f} h -> {report['projected_hours']:.1f} h ({report['projected_ratio']:.2f}x); "
          f"{100 * report['untouched_share']:.0f}% of today's hours have no faster path")


if __name__ == "__main__":
    main()
