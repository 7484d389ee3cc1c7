"""What a cell costs, estimated from the stored costs of the same cell made before: the JSONs of docs/data/bench-* (in a
source checkout) and the finished cells of the run directory, on the same kind of device. A cell's cost is its
distillation's wall time (the stored seconds per iteration, so a resumed cell counts whole, times the iterations its
own command runs) plus its evaluation runs (a
preset never made before: its method's; a cell made at another beta only: the nearest beta's at the same IPC; a cell
made at smaller IPCs only: the nearest one's, scaled up by the ratio of the IPCs), less what the cell's directory
already holds (the iterations its checkpoint holds, its set made, its evaluation runs kept); a distillation resumed
where its checkpoint timed OWN_PACE_ITERATIONS or more of its iterations on the device it runs on counts the rest at
their pace (the newest OWN_PACE_WINDOW of them): the stored cost's host may run this cell at another pace than the
cells the processor's pace stands on, and a busy machine slows every cell on it; an expert buffer's is
the stored experts_seconds of the same buffer, else of a buffer of the same dataset and kind scaled by the images
each trains on and by its size, times the share of its epochs its directory does not hold yet. Where nothing matches,
there is no estimate."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

from ltdistill.bench.commands import evals_left, needless_eval
from ltdistill.bench.suite import Cell, Experts
from ltdistill.data.longtail import class_counts
from ltdistill.engine.loop import checkpoint_iteration, checkpoint_seconds
from ltdistill.experts.buffer import INDEX, ExpertBuffer
from ltdistill.runtime import cpu_generation, processes, read_cpuinfo

DATA = Path(__file__).resolve().parents[3] / "docs" / "data"
OWN_PACE_ITERATIONS = 5  # a resumed cell's iterations timed here before their pace stands in for the stored one
OWN_PACE_WINDOW = 50  # the newest of them it takes: the pace of the machine as it is loaded now
STALLED = 3.0  # an iteration over this many times the median was stopped while it ran, not slow


def cell_signature(r: dict) -> tuple:
    """What makes two results the same cell for a cost: the variant, dataset, beta, IPC and ranking protocol (under
    DD-Ranking's, every hard-label run tries an lr grid and the runs score the test set every 20 epochs)."""
    return (r.get("label") or r.get("method"), r.get("dataset"), float(r.get("imbalance_factor") or 0), r.get("ipc"),
            (r.get("key") or {}).get("ranking"))


@dataclass(frozen=True)
class CellCost:
    """A cell's seconds: its distillation, and its evaluations (every run of every evaluate command)."""
    distill: float
    evaluation: float
    processor: str | None = None  # the family and model it was timed on (runtime.cpu_generation); None: not recorded
    iterations: int | None = None  # its distillation's iterations (None: not recorded)
    peak_mb: float | None = None  # its distillation's peak resident memory (None: not recorded)

    @property
    def total(self) -> float:
        return self.distill + self.evaluation

    def left(self, cell: Cell, here: str | None = None) -> float:
        """What is left of it for `cell` as its directory stands: before its set is made, the iterations of the
        cell's own count (Cell.iterations, else the stored cost's) its checkpoint does not hold yet, at the pace the
        checkpoint timed them on `here` (the device_name of the device it runs on) where own_pace has one, else at
        the stored cost's, and all of its evaluation; then the share of its evaluation runs neither finished nor kept
        (a resumed evaluation reads its kept runs back)."""
        if cell.set_to_make:
            total = cell.iterations or self.iterations
            pace = own_pace(cell, here) or (self.distill / self.iterations if self.iterations else None)
            if not total or pace is None:  # how its distillation divides into iterations is not known
                return self.distill + self.evaluation
            return pace * max(total - (checkpoint_iteration(cell.artifact) or 0), 0) + self.evaluation
        meta = cell.artifact_meta()
        needed = sum(not needless_eval(name, meta) for name in cell.evals)
        runs = int(cell.key.get("runs") or 1)
        runs_left = sum(runs - min(runs, kept) for kept in evals_left(cell, meta).values())
        return self.evaluation * runs_left / (runs * needed) if needed else 0.0

    def memory_left(self, cell: Cell) -> float:
        """The peak memory `cell` is estimated to need from here on, in MB: its distillation's while its set is not
        made (an evaluation's is far smaller), 0 where unknown."""
        return (self.peak_mb or 0.0) if cell.set_to_make else 0.0


def own_pace(cell: Cell, here: str | None) -> float | None:
    """The mean loop seconds of the newest OWN_PACE_WINDOW iterations `cell`'s checkpoint timed on `here` (a
    device_name), None where it timed fewer than OWN_PACE_ITERATIONS there. The mean, not the median: what is left
    is their sum, and some methods alternate cheap and full iterations (DATM skips the update above its threshold);
    but without the iterations over STALLED times the median, which a process stopped mid-iteration (SIGSTOP, a
    suspended laptop) makes of any."""
    seconds = checkpoint_seconds(cell.artifact, here)[-OWN_PACE_WINDOW:] if here is not None else []
    if len(seconds) < OWN_PACE_ITERATIONS:
        return None
    typical = statistics.median(seconds) * STALLED
    return statistics.fmean(t for t in seconds if t <= typical)


def result_seconds(r: dict) -> tuple[CellCost, float | None]:
    """(the cell's cost, its expert buffer's seconds) from a finished cell's result, as one process's: a part timed
    by N torchrun processes counts N times its wall time (they split one process's work; docs/notebook/speed.md
    measures how evenly), and its peak memory, one rank's, is not one process's."""
    distill = r.get("distill") or {}
    per_iteration, iterations = distill.get("s_per_iteration"), distill.get("iterations")
    made = per_iteration * iterations if per_iteration and iterations else distill.get("wall_time_s") or 0.0
    ranks = processes(distill.get("host"))
    evaluations = sum(1 for c in r.get("commands", []) if " evaluate " in f" {c} ") or 1
    experts = r.get("experts_seconds")
    return CellCost(made * ranks, (r.get("seconds_per_run") or 0.0) * (r.get("runs") or 1) * evaluations
                    * processes(r.get("host")), (r.get("host") or {}).get("cpu_generation"), iterations,
                    distill.get("peak_rss_mb") if ranks == 1 else None), \
        None if experts is None else experts * processes(r, "experts_processes")


@dataclass(frozen=True)
class BufferCost:
    """A stored expert buffer's training time, with what it trained on."""
    name: str  # its directory's name (kind, beta, order and a hash of its settings)
    counts: tuple[int, ...]  # its long-tailed training set's images per class
    stem: str | None  # the ConvNet stem of its cells' key (None: made before the key named one)
    seconds: float
    epochs: int | None = None  # its experts' training epochs, summed (None: made before results kept them)
    processor: str | None = None  # as CellCost's


def read_costs(paths, kind: str) -> tuple[dict[tuple, list[CellCost]], dict[tuple, list[BufferCost]]]:
    """The cell and buffer costs of the results at `paths` made on a device of kind `kind`."""
    cells: dict[tuple, list[CellCost]] = {}
    buffers: dict[tuple, list[BufferCost]] = {}
    for path in paths:
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(r, dict) or str(r.get("device", "cpu")).split(" ")[0].split(":")[0] != kind:
            continue
        spent, experts = result_seconds(r)
        cells.setdefault(cell_signature(r), []).append(spent)
        key = r.get("key") or {}
        if experts and key.get("experts"):
            stored = BufferCost(str(key["experts"]), tuple(r.get("train_counts") or ()), key.get("stem"), experts,
                                r.get("experts_epochs"), spent.processor)
            buffers.setdefault((r.get("dataset"), stored.name.split("-")[0]), []).append(stored)
    return cells, buffers


def median_cost(costs: list[CellCost]) -> CellCost:
    counts, peaks = [c.iterations for c in costs if c.iterations], [c.peak_mb for c in costs if c.peak_mb]
    return CellCost(statistics.median(c.distill for c in costs), statistics.median(c.evaluation for c in costs),
                    iterations=int(statistics.median(counts)) if counts else None,
                    peak_mb=max(peaks) if peaks else None)  # the largest: memory, unlike time, is a hard limit


def elsewhere(processor: str | None, here: AbstractSet[str | None]) -> bool:
    """Whether a cost timed on `processor` was made on another processor than those of `here`: an unrecorded one
    counts as another."""
    return processor is None or processor not in here


def pace(here: dict[tuple, list[CellCost]], stored: dict[tuple, list[CellCost]], this: set[str]) -> tuple[float, int]:
    """(how much longer the cells timed on this processor took than the same cells timed on other processors, as the
    median ratio of their whole costs; how many cells it stands on): 1.0 on none. Timed on this processor: the cells
    finished in the run directory (`here`), and those docs/data stores (`stored`) as timed on a processor of `this`
    (runtime.cpu_generation), so that a fresh run directory on a processor docs/data has seen follows its pace too.
    One host can take 2-3 times as long as another for the same cell."""
    ratios = []
    for k in here.keys() | stored.keys():
        # a result of the run directory copied into docs/data is one timing, not two
        mine = list(dict.fromkeys(here.get(k, []) + [c for c in stored.get(k, []) if not elsewhere(c.processor, this)]))
        theirs = [c for c in stored.get(k, []) if elsewhere(c.processor, this | ({m.processor for m in mine} - {None}))]
        if mine and theirs:
            mine_s, theirs_s = median_cost(mine).total, median_cost(theirs).total
            if mine_s > 0 and theirs_s > 0:
                ratios.append(mine_s / theirs_s)
    return (statistics.median(ratios), len(ratios)) if ratios else (1.0, 0)


def stored_costs(out: Path, device: str) -> tuple[dict, dict, tuple[float, int]]:
    """(cell signature -> CellCost, (dataset, experts kind) -> [BufferCost], pace) over the stored results made on
    a device of `device`'s kind: a cell made several times costs the median of each part, those finished in the run
    directory as they took here, the others (docs/data) scaled by this processor's pace (pace) where they were timed
    on another processor than this one, so that an estimate follows the processor it runs on."""
    kind = device.split(":")[0]
    here, here_buffers = read_costs(sorted((out / "results").glob("*.json")), kind)
    stored, stored_buffers = read_costs(sorted(DATA.glob("bench-*/*.json")), kind)
    this = {g for g in [cpu_generation(read_cpuinfo())] if g is not None}
    factor, count = pace(here, stored, this)

    def scale(processor: str | None) -> float:
        return factor if elsewhere(processor, this) else 1.0

    cells = {k: median_cost([dataclasses.replace(c, distill=c.distill * scale(c.processor),
                                                 evaluation=c.evaluation * scale(c.processor)) for c in v])
             for k, v in stored.items()}
    cells.update({k: median_cost(v) for k, v in here.items()})
    buffers = {k: [dataclasses.replace(b, seconds=b.seconds * scale(b.processor)) for b in v]
               for k, v in stored_buffers.items()}
    for k, v in here_buffers.items():
        buffers.setdefault(k, []).extend(v)
    return cells, buffers, (factor, count)


@dataclass(frozen=True)
class Basis:
    """What an estimate stands on: the label whose stored cost it takes, that cost made under ltdistill's ranking
    protocol in place of DD-Ranking's, the other beta it was made at, and the smaller IPC it was scaled up from
    (with the ratio)."""
    label: str
    other_ranking: bool = False
    ipc: int | None = None
    ratio: float = 1.0
    beta: float | None = None

    def __str__(self) -> str:
        return (self.label + ", ltdistill's ranking" * self.other_ranking
                + (f" at beta {self.beta:g}" if self.beta is not None else "")
                + (f" at IPC {self.ipc}, x{self.ratio:g}" if self.ipc else ""))


def estimate(cell: Cell, costs: dict, here: str | None = None) -> float | None:
    return estimate_basis(cell, costs, here)[0]


def memory_estimate(cell: Cell, costs: dict) -> float:
    """The peak memory in MB `cell` still needs (CellCost.memory_left) by the stored costs of its own label (else its
    method) in the same dataset, beta, IPC and ranking protocol; 0 where none is stored."""
    found = own_cost(cell, costs, [cell.key.get("ranking")])
    return found[0].memory_left(cell) if found else 0.0


def setting_of(cell: Cell) -> tuple:
    """(dataset, beta, IPC) of a cell, as its stored costs are keyed after the label (cell_signature)."""
    key = cell.key
    return key.get("dataset") or key.get("full"), float(key.get("beta") or 0), key.get("ipc")


def own_cost(cell: Cell, costs: dict, rankings: list) -> tuple[CellCost, Basis] | None:
    """The stored cost of `cell`'s own label, else its method's, at its dataset, beta and IPC, under the first of
    `rankings` that has one, with the Basis naming it; None where none does."""
    key, setting = cell.key, setting_of(cell)
    for ranking in dict.fromkeys(rankings):
        for label in dict.fromkeys([cell.label, key.get("method")]):
            if label is not None and (label, *setting, ranking) in costs:
                return costs[(label, *setting, ranking)], Basis(label, ranking != key.get("ranking"))
    return None


def estimate_basis(cell: Cell, costs: dict, here: str | None = None) -> tuple[float | None, Basis | None]:
    """(a cell's estimated seconds left on `here`, CellCost.left, and what gave them): its own label's stored cost at
    the same dataset, beta, IPC and ranking protocol, else, for a preset or ablation never made before, its method's;
    else, for a cell under DD-Ranking's protocol never made under it, the same under ltdistill's (it costs more: the
    plan names the stand-in, as it does a method standing in for a preset, whose budget may differ); else the same
    at the nearest other beta (from_another_beta), else scaled from a smaller IPC (scaled_from_another_ipc)."""
    found = own_cost(cell, costs, [cell.key.get("ranking"), None])
    if found:
        return found[0].left(cell, here), found[1]
    setting = setting_of(cell)
    cost, basis = from_another_beta(cell, costs, setting, here)
    return (cost, basis) if basis is not None else scaled_from_another_ipc(cell, costs, setting, here)


def from_another_beta(cell: Cell, costs: dict, setting: tuple, here: str | None) -> tuple[float | None,
                                                                                         Basis | None]:
    """A cell whose label (else method) was made at the same dataset, IPC and ranking protocol under another beta
    only: the cost of the nearest beta (on a log scale; the larger of two as near). A set of IPC images a class
    costs about the same to make and to evaluate whatever beta its source had; what beta moves (the models a
    recovery trains on the long-tailed set) is a small share, where scaling by the IPCs would take a fixed cost of
    the smaller IPC five times over."""
    dataset, beta, ipc = setting
    ranking = cell.key.get("ranking")
    if not beta:
        return None, None
    for label in dict.fromkeys([cell.label, cell.key.get("method")]):
        made = [k[2] for k in costs if k[:2] == (label, dataset) and k[3] == ipc and k[4] == ranking and k[2]]
        if label is None or not made:
            continue
        nearest = min(made, key=lambda b: (abs(math.log(b / beta)), -b))
        return costs[(label, dataset, nearest, ipc, ranking)].left(cell, here), Basis(label, beta=nearest)
    return None, None


def scaled_from_another_ipc(cell: Cell, costs: dict, setting: tuple, here: str | None) -> tuple[float | None,
                                                                                              Basis | None]:
    """A cell whose label (else method) was made at a smaller IPC only, in the same dataset, beta and ranking
    protocol: that cost scaled up by the ratio of the IPCs (the nearest smaller IPC made). Distillation and
    evaluation grow with the images at most in proportion (less where a batch holds a whole small set), so an
    estimate so made errs long, as the plan wants (scaled down, the fixed costs would make it promise too little);
    its row names the IPC it was scaled from."""
    dataset, beta, ipc = setting
    ranking = cell.key.get("ranking")
    if not ipc:
        return None, None
    for label in dict.fromkeys([cell.label, cell.key.get("method")]):
        made = [k[3] for k in costs if k[:3] == (label, dataset, beta) and k[4] == ranking and k[3] and k[3] < ipc]
        if label is None or not made:
            continue
        nearest = max(made)
        stored = costs[(label, dataset, beta, nearest, ranking)]
        ratio = ipc / nearest
        scaled = dataclasses.replace(stored, distill=stored.distill * ratio, evaluation=stored.evaluation * ratio)
        return scaled.left(cell, here), Basis(label, ipc=nearest, ratio=ratio)
    return None, None


def buffer_estimate(experts: Experts, cells: list[Cell], buffer_costs: dict) -> float | None:
    """An expert buffer's cost, looked up by a cell that replays it: the stored time of the same buffer, else of the
    buffers of its dataset and kind (those of its cells' ConvNet stem where there are some), each scaled by the
    images the buffer trains on (beta and the class order's count per class set them) and by its size (experts x
    epochs; a result made before results kept the size is taken as the same size). A stored time does not say where
    the buffer was trained (some were trained on a GPU for CPU cells): the longest, so an estimate does not promise
    too little."""
    directory = experts.directory
    key = next((c.key for c in cells if c.experts == directory), None)
    if key is None:
        return None
    stored = buffer_costs.get((key["dataset"], directory.name.split("-")[0]), [])
    same = [b.seconds for b in stored if b.name == directory.name]
    if same:
        return max(same) * share_left(directory)
    stored = [b for b in stored if b.counts]  # scaling needs the images it trained on
    alike = [b for b in stored if b.stem == key.get("stem")] or stored
    scaled = [b.seconds * sum(class_counts(max(b.counts), len(b.counts), float(key["beta"]))) / sum(b.counts)
              * (experts.epochs / b.epochs if experts.epochs and b.epochs else 1.0)
              for b in alike if float(key["beta"]) <= max(b.counts)]
    whole = max(scaled, default=None)
    return None if whole is None else whole * share_left(directory)


def share_left(directory: Path) -> float:
    """The share of a buffer's training epochs its finished trajectories do not hold yet (1.0 where its index
    cannot be read): a buffer resumes at expert granularity, so a half-made one costs about half."""
    try:
        config = json.loads((directory / INDEX).read_text())["config"]
        experts, epochs = int(config["num_experts"]), int(config["epochs"])
        cls_epochs = int(config["cls_epochs"]) if config.get("decoupled") else 0
    except (OSError, ValueError, TypeError, KeyError):
        return 1.0
    buffer = ExpertBuffer(directory, {})
    made = (len(buffer.finished("rep" if cls_epochs else "standard")) * epochs
            + len(buffer.finished("cls")) * cls_epochs)
    total = experts * (epochs + cls_epochs)
    return max(0.0, 1.0 - made / total) if total > 0 else 1.0


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "no estimate"
    hours, rest = divmod(int(seconds), 3600)
    return f"~{hours} h {rest // 60:02d} min" if hours else f"~{max(1, rest // 60)} min"
