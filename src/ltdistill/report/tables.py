"""Markdown tables from evaluation JSONs (`ltdistill evaluate --json`): one row per file, the papers' columns."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ltdistill.errors import BadInput
from ltdistill.params import fits
from ltdistill.runtime import processes

HEADER = ["dataset", "beta", "training set", "eval model", "IPC", "balanced acc (%)", "many / med / few",
          "class-acc std", "LT-test acc", "LT-test P / R / F1", "per-class acc (%)", "soft labels: own p / argmax ok",
          "protocol", "eval epochs", "device", "s/run", "distill s/it"]


RESULT_NEUTRAL = {"model_cache", "checkpoint_every"}  # config keys that say where / how often, not what


def load_result(path: Path) -> dict:
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:  # ValueError: not JSON, not UTF-8
        raise BadInput(f"{path}: not an evaluation JSON ({e})") from None
    if not isinstance(result, dict) or "balanced_acc" not in result or "lt_test" not in result:
        raise BadInput(f"{path}: not an evaluation JSON (no balanced_acc / lt_test)")
    return check_result_fields(path, result)


def check_result_fields(path, result: dict, remedy: str = "") -> dict:
    """`result` (an evaluation JSON, or a bench cell's collected result), or one BadInput line naming the first field
    that the tables and the bench read and that is of another kind than they write (RESULT_FIELDS)."""
    for name, kind in RESULT_FIELDS.items():
        if name in result and not of_kind(result[name], kind):
            raise BadInput(f"{path} is corrupt: its {name} is {result[name]!r:.60}{remedy}")
    return result


def of_kind(value, kind) -> bool:
    """Whether a result's field is of the kind RESULT_FIELDS names (a type, or one of the words below; "number" and
    a type other than text or table allow null)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "number":
        return value is None or number
    if kind in NUMBERS_AT:  # a table of numbers: a score's mean and spread, the long-tailed test set's scores
        return isinstance(value, dict) and all(of_kind(value.get(k), "real") for k in NUMBERS_AT[kind])
    if kind == "host":  # the record runtime.host() writes; its thread count names the table's device column
        return isinstance(value, dict) and "threads" in value and of_kind(value["threads"], int)
    if kind in ("count", "real"):  # given, never null
        return value is not None and of_kind(value, int if kind == "count" else "number")
    if kind == "texts":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is int:
        return value is None or fits(value, int)
    return isinstance(value, kind)


# the fields of a collected result (and of an evaluation JSON) that the bench, --plan and the tables read, with the
# kind the bench writes them in; a field absent is fine (results of earlier versions lack some; a two-stage result
# records its two stages' epochs as a list, so epochs are not among them)
NUMBERS_AT = {"score": ("mean", "std"), "lt_test": ("acc", "precision", "recall", "f1")}
RESULT_FIELDS = {"key": dict, "label": str, "cell": str, "dataset": str, "device": str, "ipc": int, "runs": "count",
                 "imbalance_factor": "real", "few": "number", "many": "number", "medium": "number",
                 "seconds_per_run": "real", "class_acc_std": "real", "balanced_acc": "score", "syn_hard": "score",
                 "lt_test": "lt_test", "ddranking": dict, "cross_arch": dict, "host": "host", "commands": "texts",
                 "per_class_acc": list, "distill": dict}


def variant(r: dict) -> str:
    """The method plus the config overrides (`--set k=v`) its distill command used, e.g. 'ltdd (dam=false)'."""
    import shlex

    overrides = []
    for command in r.get("commands", []):
        tokens = shlex.split(command)
        overrides += [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "--set"
                      and tokens[i + 1].split("=")[0].strip() not in RESULT_NEUTRAL]
    method = r.get("method") or "?"
    return f"{method} ({', '.join(overrides)})" if overrides else method


def eval_model(r: dict) -> str:
    """The evaluation model by name, with the ConvNet stem where it is not the official one ('convnet (pad1)'; a
    result recorded before the stem was recorded is pad1's: models.recorded_options)."""
    from ltdistill import models

    name = r.get("model") or "?"
    if name not in models.names():
        return name
    stem = models.recorded_options(name, r.get("model_options") or {}).get("stem")
    return f"{name} ({stem})" if stem not in (None, "official") else name


def _label_stats(stats: dict | None) -> str:
    """Soft-label confidence (SyntheticSet.label_stats): mean own-class target probability / % argmax = class."""
    return "-" if not stats else f"{stats['own_class_prob']:.2f} / {100 * stats['argmax_is_class']:.0f}%"


def accuracy(r: dict) -> str:
    """Balanced accuracy in %: mean ± std over evaluation runs, the mean alone for one run (no spread to show)."""
    bal = r["balanced_acc"]
    return f"{100 * bal['mean']:.2f}" + (f" ± {100 * bal['std']:.2f}" if r.get("runs", 2) > 1 else "")


def row(r: dict, label: str | None = None) -> str:
    mmf = " / ".join("-" if r.get(k) is None else f"{100 * r[k]:.1f}" for k in ("many", "medium", "few"))
    lt = r["lt_test"]
    cells = [r.get("dataset", "?"), f"{r.get('imbalance_factor', 0):g}", label or variant(r), eval_model(r),
             str(r.get("ipc") or "all"), accuracy(r), mmf, f"{100 * r['class_acc_std']:.1f}", f"{100 * lt['acc']:.1f}",
             f"{lt['precision']:.3f} / {lt['recall']:.3f} / {lt['f1']:.3f}",
             " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"]), _label_stats(r.get("label_stats")),
             str(r.get("protocol", "?")),
             str(r.get("epochs", "?")), device_label(r), f"{r.get('seconds_per_run', 0):.0f}",
             _seconds_per_iteration(r.get("distill"))]
    return "| " + " | ".join(cells) + " |"


def earlier_devices(distill: dict | None) -> str:
    """'' for a set made on one device; for one resumed on another, where its earlier iterations ran, e.g.
    '; it. 0-29 on cuda (NVIDIA H200)' (its timings are the finishing device's: see evaluate_synthetic)."""
    stretches = (distill or {}).get("iteration_devices") or []
    return "".join(f"; it. {a}-{b - 1} on {device or 'an unrecorded device'}"
                   for (a, device), (b, _) in zip(stretches, stretches[1:], strict=False))


def _seconds_per_iteration(distill: dict | None) -> str:
    """Median loop seconds per iteration when the artifact timed its iterations, else wall time over the iterations
    the finishing process ran (*, which includes setup such as loading experts); '-' for sets made without
    iterations."""
    distill = distill or {}
    if distill.get("s_per_iteration_median") is not None:
        return f"{distill['s_per_iteration_median']:.2f}"
    return "-" if distill.get("s_per_iteration") is None else f"{distill['s_per_iteration']:.2f}*"


def file_row_name(stem: str) -> str:
    """A result file's row name without what the table's columns already say: 'fashion-mnist-b100-ltdd-tuned-ipc10'
    -> 'ltdd-tuned'; stems without the dataset-beta prefix and IPC suffix are kept as they are."""
    return re.sub(r"-ipc\d+$", "", re.sub(r"^.*?-b\d+-", "", stem))


def results_table(paths: list[Path], name_rows_by_file: bool = False) -> str:
    """The table and, when the JSONs carry them (benchmark cells), the commands that produced each row. Rows are
    named by method and overrides, or by file name (for cells that differ in what no command line shows)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    commands: list[str] = []
    for path in paths:
        r = load_result(path)
        lines.append(row(r, file_row_name(Path(path).stem) if name_rows_by_file else None))
        commands += [c for c in r.get("commands", []) if c not in commands]
    text = "\n".join(lines) + "\n"
    if commands:
        text += "\nCommands, in order:\n\n```\n" + "\n".join(commands) + "\n```\n"
    return text


BENCH_HEADER = ["dataset", "beta", "IPC", "method", "labels", "balanced acc (%)", "many / med / few", "class-acc std",
                "LT-test P / R / F1", "cross-arch (%)", "HLR", "IOR", "LRS", "experts / models s", "distill s",
                "peak MB", "eval s/run", "device"]


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _models_seconds(r: dict, distill: dict) -> str:
    """What a set needed trained before distillation: the expert buffer (trajectory methods; recorded by the suite)
    or the observer / teacher / squeezed model (recovery family; part of distill s, ~0 when loaded from a cache).
    A buffer trained by another number of torchrun processes than the row's own (the device column's) says how
    many: its seconds are their wall time together."""
    seconds = r.get("experts_seconds")
    seconds = distill.get("models_seconds") if seconds is None else seconds
    if seconds is None:
        return "-"
    buffer_processes = processes(r, "experts_processes")
    shared = "" if buffer_processes == processes(r.get("host")) else f" ({buffer_processes} processes)"
    return f"{seconds:.0f}{shared}"


def cell_label(r: dict) -> str:
    """A bench cell's method variant (its suite label, else the method)."""
    return r.get("label", r.get("method", "?"))


def cell_seed(r: dict) -> int:
    """The suite seed a bench cell was distilled with (0 for JSONs without a cell key)."""
    return int((r.get("key") or {}).get("seed", 0))


def bench_row(r: dict, show_seed: bool = False, show_order: bool = False) -> str:
    lt, dd = r["lt_test"], r.get("ddranking", {})
    cross = r.get("cross_arch", {})
    distill = r.get("distill") or {}
    name = cell_label(r)
    name += f" (seed {cell_seed(r)})" if show_seed and name != "full" else ""  # the full set draws no seed
    name = in_order(name, order_name(r)) if show_order else name
    cells = [r.get("dataset", "?"), f"{r.get('imbalance_factor', 0):g}", str(r.get("ipc") or "all"),
             name, str(r.get("label_regime", "hard")).split(" (")[0], accuracy(r),
             " / ".join(_pct(r.get(k)) for k in ("many", "medium", "few")), f"{100 * r['class_acc_std']:.1f}",
             f"{lt['precision']:.3f} / {lt['recall']:.3f} / {lt['f1']:.3f}",
             " ".join(f"{m}:{100 * v['mean']:.1f}" for m, v in list(cross.items())[1:]) or "-",
             _pct(dd.get("hlr")),
             _pct(dd.get("ior")) + ("*" if str(dd.get("rdm_regime")).startswith("relabel") else ""),
             _pct(dd.get("lrs")),
             _models_seconds(r, distill),
             "-" if distill.get("wall_time_s") is None else f"{distill['wall_time_s']:.0f}",
             "-" if distill.get("peak_rss_mb") is None else f"{distill['peak_rss_mb']:.0f}"
             + (f" (cuda {distill['cuda_peak_mb']:.0f})" if distill.get("cuda_peak_mb") else ""),
             f"{r.get('seconds_per_run', 0):.0f}", device_label(r)]
    return "| " + " | ".join(cells) + " |"


def device_label(r: dict) -> str:
    """The evaluation's device, with its thread count where the JSON records it (see ltdistill/runtime.py), and its
    torchrun processes where there were several."""
    device, host = str(r.get("device", "cpu")), r.get("host")
    count = processes(host)
    ranks = f"{count} processes" if count > 1 else ""
    if not host or not device.startswith("cpu"):
        return f"{device}, {ranks}" if ranks else device
    threads = f"{host['threads']} thread{'s' * (host['threads'] != 1)}"
    return f"{device}, {ranks} x {threads}" if ranks else f"{device}, {threads}"


def seed_table(results: list[dict]) -> str:
    """Mean and std over the suite seeds of every (dataset, beta, IPC, method) that ran with more than one seed: a
    seed changes everything the method draws (its trained models, experts, initial images), so this spread, not
    the one over evaluation runs, says whether two methods differ."""
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in results:
        key = (r.get("dataset", "?"), r.get("imbalance_factor") or 0, r.get("ipc") or 0, cell_label(r))
        groups.setdefault(key, []).append(r)
    lines = ["Across suite seeds (mean ± std over seeds of each seed's mean over evaluation runs):", "",
             "| dataset | beta | IPC | method | seeds | balanced acc (%) | few (%) | per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for (dataset, beta, ipc, label), rs in groups.items():
        if len(rs) < 2:
            continue
        acc = np.array([100 * r["balanced_acc"]["mean"] for r in rs])
        few = np.array([100 * (r.get("few") or 0) for r in rs])
        lines.append(f"| {dataset} | {beta:g} | {ipc or 'all'} | {label} | {len(rs)} | {acc.mean():.2f} ± "
                     f"{acc.std():.2f} | {few.mean():.1f} | " + " ".join(f"{a:.2f}" for a in acc) + " |")
    return "\n".join(lines) + "\n"


def ranking_note(results: list[dict]) -> str:
    """Which evaluation protocol the accuracies and DD-Ranking scores of the table come from."""
    rankings = sorted({r.get("ranking", "ltdistill") for r in results})
    described = {"ltdistill": "ltdistill's (the model after the last epoch, the set's lr or 0.01, DSA; scores from "
                              "the run means)",
                 "ddranking": "DD-Ranking's (best of every 20 epochs on the test set, an lr grid where no lr is "
                              "given, no augmentation for hard labels, the random set redrawn per run; scores per "
                              "run, then averaged: optimistic)"}
    return "Evaluation protocol: " + "; ".join(described.get(r, r) for r in rankings) + "."


def bench_table(results: list[dict]) -> str:
    """A benchmark suite's table (from its results/*.json, loaded): accuracy, the LT metrics, cross-architecture
    accuracy, DD-Ranking and costs."""
    results = sorted(results, key=lambda r: (str(r.get("dataset")), r.get("imbalance_factor") or 0,
                                             r.get("ipc") or 0, r.get("label") != "full", str(r.get("label")),
                                             order_name(r), cell_seed(r)))
    several_seeds = len({cell_seed(r) for r in results}) > 1
    several_orders = len({order_name(r) for r in results}) > 1
    lines = ["| " + " | ".join(BENCH_HEADER) + " |", "|" + "---|" * len(BENCH_HEADER)]
    lines += [bench_row(r, several_seeds, several_orders) for r in results]
    models = next((list(r["cross_arch"]) for r in results if r.get("cross_arch")), [])
    notes = [f"\nEvaluation model: {models[0] if models else 'convnet'}; cross-arch columns: the same set evaluated "
             "on other models. HLR = Acc(full LT set, hard) - Acc(set, hard labels); IOR = Acc(set, its recipe) - "
             "Acc(random IPC subset, same recipe: * = relabeled by the set's own teacher; unmarked = the random "
             "subset's hard labels); LRS = DD-Ranking's label-robust score (all in %).",
             "labels: hard | soft (stored logits) | relabel (teacher on every augmented batch).",
             ranking_note(results)]
    commands: list[str] = []
    for r in results:
        commands += [c for c in r.get("commands", []) if c not in commands]
    text = "\n".join(lines) + "\n" + "\n".join(notes) + "\n"
    if several_seeds:
        text += "\n" + seed_table(results)
    variants = variant_table(results)
    if variants:
        text += ("\nEvaluated again (the same set, its labels or teacher calibrated at evaluation, or its teacher "
                 "under another recipe):\n\n" + variants)
    across_orders = orders_table(results)
    if across_orders:
        text += "\nAcross class orders:\n\n" + across_orders
    if commands:
        text += "\nCommands, in order:\n\n```\n" + "\n".join(commands) + "\n```\n"
    return text


def order_name(r: dict) -> str:
    """The class order a result was made under ('natural' for results recorded before orders existed)."""
    return str(r.get("class_order") or "natural")


def orders_table(results: list[dict]) -> str:
    """The same cells under several class orders (a suite with `class_order = [...]`): per (dataset, beta, IPC), one
    row per method with its balanced accuracy in each order, the mean ± std over orders and the tail (few) mean;
    then, for each pair of methods, in how many of the orders where both ran the row's method beats the column's.
    Seed-0 cells; "" where no setting has two orders."""
    import numpy as np

    groups: dict[tuple, dict[str, dict[str, dict]]] = {}
    for r in results:
        if cell_seed(r):
            continue
        setting = (r.get("dataset", "?"), r.get("imbalance_factor") or 0, r.get("ipc") or 0)
        groups.setdefault(setting, {}).setdefault(cell_label(r), {})[order_name(r)] = r
    for (dataset, beta, ipc), by_label in list(groups.items()):  # the full set's row joins each IPC of its beta
        if ipc:
            continue
        subsets = [by_label2 for (d, b, i), by_label2 in groups.items() if (d, b) == (dataset, beta) and i]
        for by_label2 in subsets:
            by_label2.update(by_label)
        if subsets:
            del groups[dataset, beta, ipc]
    text = []
    for (dataset, beta, ipc), by_label in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1], kv[0][2])):
        orders = sorted({o for cells in by_label.values() for o in cells})
        if len(orders) < 2:
            continue
        labels = sorted(by_label, key=lambda n: (n != "full", n))
        lines = [f"{dataset}, beta {beta:g}, IPC {ipc or 'all'}: balanced accuracy (%) per "
                 "class order (mean over evaluation runs), its mean ± std over the orders, and the mean accuracy of "
                 "the tail third (few).", "",
                 "| method | " + " | ".join(orders) + " | mean ± std over orders | few (%) |",
                 "|---|" + "---|" * (len(orders) + 2)]
        for label in labels:
            cells = by_label[label]
            accs = np.array([100 * cells[o]["balanced_acc"]["mean"] for o in orders if o in cells])
            few = np.array([100 * (cells[o].get("few") or 0) for o in orders if o in cells])
            lines.append(f"| {label} | " + " | ".join(f"{100 * cells[o]['balanced_acc']['mean']:.2f}" if o in cells
                                                        else "-" for o in orders)
                         + f" | {accs.mean():.2f} ± {accs.std():.2f} ({len(accs)}) | {few.mean():.1f} |")
        lines += ["", "Wins: row beats column in k of n orders (n: the orders where both ran).", "",
                  "| | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for a in labels:
            marks = []
            for b in labels:
                both = [o for o in orders if o in by_label[a] and o in by_label[b]]
                wins = sum(by_label[a][o]["balanced_acc"]["mean"] > by_label[b][o]["balanced_acc"]["mean"]
                           for o in both)
                marks.append("" if a == b else f"{wins}/{len(both)}")
            lines.append(f"| {a} | " + " | ".join(marks) + " |")
        text.append("\n".join(lines) + "\n")
    return "\n".join(text)


def over_seeds(values: list, sign: str = "") -> str:
    """Mean ± std over seeds of fractions, in %; "-" where a seed lacks the value."""
    import numpy as np

    if not values or any(v is None for v in values):
        return "-"
    a = 100 * np.array(values)
    return f"{a.mean():{sign}.2f} ± {a.std():.2f}"


Pair = tuple[dict, dict | None]  # a cell's result and what a table sets beside it


def rows_by_setting(groups: dict[tuple, list[Pair]], cell_row: Callable[[tuple, dict, dict | None], str],
                    seeds_row: Callable[[tuple, list[Pair]], str], per_seed: bool) -> list[str]:
    """The rows of a table whose settings were made with one seed or several, setting by setting. per_seed: every
    cell's row, then the row over seeds (mean ± std of each seed's mean) for a setting made with several; else the
    brief form: a setting made with several seeds gets its row over seeds alone, one made once its seed-0 cell."""
    rows = []
    for setting, pairs in groups.items():
        if per_seed:
            rows += [cell_row(setting, *pair) for pair in pairs]
        elif len(pairs) == 1 and not cell_seed(pairs[0][0]):
            rows.append(cell_row(setting, *pairs[0]))
        if len(pairs) > 1:
            rows.append(seeds_row(setting, pairs))
    return rows


def recipe_seeds_row(setting: tuple, pairs: list[Pair]) -> str:
    """recipe_table's row over a setting's suite seeds: mean ± std over the seeds of each seed's mean (balanced
    accuracy under each recipe, the change, the relabeled random baseline and the IOR under each, the teacher's
    balanced accuracy); a column is "-" where any seed lacks it."""
    def relabeled(r: dict | None, key: str):
        dd = (r or {}).get("ddranking") or {}
        return dd.get(key) if str(dd.get("rdm_regime", "")).startswith("relabel") else None

    dataset, beta, ipc, label, order = setting
    usual = [r["balanced_acc"]["mean"] for r, _ in pairs]
    other = [(v or {})["balanced_acc"]["mean"] for _, v in pairs]
    sides = ([r for r, _ in pairs], [v for _, v in pairs])
    teacher = [((r.get("models_accuracy") or {}).get("teacher (as evaluated)") or {}).get("balanced_acc")
               for r, _ in pairs]
    return (f"| {dataset} | {beta:g} | {ipc or 'all'} | {spread_name(label, order, len(pairs))} | "
            f"{over_seeds(usual)} | {over_seeds(other)} | "
            f"{over_seeds([b - a for a, b in zip(usual, other, strict=True)], '+')} | "
            + " / ".join(over_seeds([relabeled(x, "acc_rdm_any") for x in xs]) for xs in sides) + " | "
            + " / ".join(over_seeds([relabeled(x, "ior") for x in xs], "+") for xs in sides)
            + f" | {over_seeds(teacher)} |")


def named_cell(r: dict, label: str | None = None) -> str:
    """A cell's row name where cells of several seeds and class orders share a table: its label (`label`, else
    cell_label's), with the seed and the class order where they are not 0 and natural."""
    name = label or cell_label(r)
    return in_order(name + (f" (seed {cell_seed(r)})" if cell_seed(r) else ""), order_name(r))


def key_defaults(r: dict) -> str:
    """The defaults a cell's key names (bench.suite.defaults_entry: those that changed to follow the official code,
    the method's and its recipe's), as one string: cells that differ in it were made under different defaults."""
    return json.dumps((r.get("key") or {}).get("defaults") or {}, sort_keys=True)


def earlier_mark(setting: tuple, made: dict[tuple, list]) -> str:
    """", earlier defaults" for a setting's cells (keyed as variant_table's, key_defaults last) whose key names fewer
    of the changed defaults than another group of the same setting does: made before those defaults changed, so
    their rows stand apart and say so ("(k of n)" where the key names k of the n that the latest names); ""
    otherwise (a setting made under one set of defaults reads as before)."""
    names = len(json.loads(setting[-1]))
    most = max(len(json.loads(other[-1])) for other in made if other[:-1] == setting[:-1])
    return "" if names == most else ", earlier defaults" + (f" ({names} of {most})" if names else "")


def in_order(name: str, order: str) -> str:
    """A row name with its class order, where that is not the natural one."""
    return name + ("" if order == "natural" else f" ({order} order)")


RANDOM_ORDERS = "random orders"  # brief tables pool the cells of random class orders into one setting


def pooled_order(r: dict, per_seed: bool) -> str:
    """The class order a table groups a result under: its own, or in a brief table (per_seed False) one name for
    every random order, so that the orders give one row, their mean ± std, as seeds do."""
    order = order_name(r)
    return RANDOM_ORDERS if not per_seed and order.startswith("random:") else order


def spread_name(label: str, order: str, n: int) -> str:
    """The name of a row over a setting's n cells: n seeds of one class order, or n random orders."""
    return f"{label}: {n} random orders" if order == RANDOM_ORDERS else f"{in_order(label, order)}: {n} seeds"


def variant_table(results: list[dict], kinds: tuple[str, ...] = ("labels", "recipe"), per_seed: bool = True) -> str:
    """Each cell evaluated again with its labels calibrated (a suite's `calibrations`, e.g. ADSA) or under another
    teacher recipe (`recipes`, e.g. SRe2L's) beside the same set evaluated as usual: balanced and tail (few)
    accuracy in %, the change, and the calibration strength found; "" where no result has one. `kinds`: which of
    the two to show. per_seed: rows_by_setting's full form (every seed's cell, then the row over seeds), else its
    brief one, with the random class orders pooled as seeds are (pooled_order)."""
    made: dict[tuple, list[Pair]] = {}  # by setting and the defaults the cells' keys name: those never pool
    for r in results:
        for field, kind in (("calibrated", "labels"), ("recipes", "recipe")):
            if kind in kinds:
                for name, variant in (r.get(field) or {}).items():
                    if variant is not None:
                        made.setdefault((r.get("dataset", "?"), r.get("imbalance_factor", 0), r.get("ipc"),
                                         cell_label(r), pooled_order(r, per_seed), kind, name, key_defaults(r)),
                                        []).append((r, variant))
    groups = {(*setting[:3], setting[3] + earlier_mark(setting, made), *setting[4:7]): pairs
              for setting, pairs in made.items()}

    def cell_row(setting: tuple, r: dict, variant: dict | None) -> str:
        variant, (label, _, kind, name) = variant or {}, setting[3:]
        before, after = 100 * r["balanced_acc"]["mean"], 100 * variant["balanced_acc"]["mean"]
        tau = (variant.get("calibration") or {}).get("tau")
        return (f"| {r.get('dataset', '?')} | {r.get('imbalance_factor', 0):g} | {r.get('ipc') or 'all'} | "
                f"{named_cell(r, label)} | {kind} {name} | {accuracy(r)} | {accuracy({**r, **variant})} | "
                f"{after - before:+.2f} | {_pct(r.get('few'))} / {_pct(variant.get('few'))} | "
                f"{'-' if tau is None else f'{tau:.2f}'} |")

    def seeds_row(setting: tuple, pairs: list[Pair]) -> str:
        dataset, beta, ipc, label, order, kind, name = setting
        usual = [r["balanced_acc"]["mean"] for r, _ in pairs]
        other = [(v or {})["balanced_acc"]["mean"] for _, v in pairs]
        taus = [((v or {}).get("calibration") or {}).get("tau") for _, v in pairs]
        return (f"| {dataset} | {beta:g} | {ipc or 'all'} | {spread_name(label, order, len(pairs))} | "
                f"{kind} {name} | {over_seeds(usual)} | {over_seeds(other)} | "
                f"{over_seeds([b - a for a, b in zip(usual, other, strict=True)], '+')} | "
                + " / ".join(over_seeds([(x or {}).get("few") for x in xs])
                             for xs in ([r for r, _ in pairs], [v for _, v in pairs]))
                + f" | {'-' if None in taus else ' / '.join(f'{t:.2f}' for t in taus)} |")

    rows = rows_by_setting(groups, cell_row, seeds_row, per_seed)
    if not rows:
        return ""
    return "\n".join(["| dataset | beta | IPC | method | evaluated with | balanced acc (%) | with it (%) | change | "
                      "few (%): as usual / with it | tau* |", "|---|---|---|---|---|---|---|---|---|---|",
                      *rows]) + "\n"


def protocol_table(usual: list[dict], ddranking: list[dict], per_seed: bool = True) -> str:
    """The cells scored under DD-Ranking's protocol (a suite's `ranking = "ddranking"`) beside the same cells (label,
    dataset, beta, IPC, seed, class order and the method defaults in the cell's key: the same set) under ltdistill's
    (`usual` may hold a suite's cells made under both its earlier and today's defaults): balanced accuracy (mean ±
    std over the evaluation runs), the random baseline DD-Ranking ranks each against (Acc_rdm-any: for a relabeling
    set the random set relabeled by its teacher, else the random set with class labels) and the IOR it makes, in
    points; "-" where a protocol has no such cell. per_seed: rows_by_setting's full form (every seed's cell, then the
    row over seeds), else its brief one."""
    def setting(r: dict) -> tuple:  # a cell but for its seed (and, brief, its random order)
        return cell_label(r), r.get("dataset"), r.get("imbalance_factor"), r.get("ipc"), pooled_order(r, per_seed)

    def key(r: dict) -> tuple:  # the set itself: a cell made under other method defaults is another set
        return (cell_label(r), r.get("dataset"), r.get("imbalance_factor"), r.get("ipc"), order_name(r), cell_seed(r),
                key_defaults(r))

    def scored(r: dict | None) -> str:
        if r is None:
            return "- | - | -"
        dd = r.get("ddranking") or {}
        ior = f"{100 * dd['ior']:+.1f}" if "ior" in dd else "-"
        return f"{accuracy(r)} | {_pct(dd.get('acc_rdm_any'))} | {ior}"

    def seeds_scored(cells: Sequence[dict | None]) -> str:  # mean ± std over the seeds' cells of scored's columns
        present = [c or {} for c in cells]
        dds = [c.get("ddranking") or {} for c in present]
        return " | ".join([over_seeds([(c.get("balanced_acc") or {}).get("mean") for c in present]),
                           over_seeds([dd.get("acc_rdm_any") for dd in dds]),
                           over_seeds([dd.get("ior") for dd in dds], "+")])

    by_key = {key(r): r for r in usual}
    groups: dict[tuple, list[Pair]] = {}
    for r in ddranking:
        groups.setdefault(setting(r), []).append((r, by_key.get(key(r))))

    def cell_row(_: tuple, r: dict, same_cell_usual: dict | None) -> str:
        return (f"| {r.get('dataset', '?')} | {r.get('imbalance_factor', 0):g} | {r.get('ipc')} | {named_cell(r)} | "
                f"{scored(same_cell_usual)} | {scored(r)} |")

    def seeds_row(setting: tuple, pairs: list[Pair]) -> str:
        label, dataset, beta, ipc, order = setting
        return (f"| {dataset} | {beta:g} | {ipc} | {spread_name(label, order, len(pairs))} | "
                f"{seeds_scored([u for _, u in pairs])} | {seeds_scored([r for r, _ in pairs])} |")

    rows = rows_by_setting(groups, cell_row, seeds_row, per_seed)
    if not rows:
        return ""
    return "\n".join(["| dataset | beta | IPC | method | ltdistill: accuracy | random baseline | IOR | "
                      "DD-Ranking: accuracy | random baseline | IOR |", "|---|---|---|---|---|---|---|---|---|---|",
                      *rows]) + "\n"


def recipe_table(results: list[dict], recipe: str = "sre2l", per_seed: bool = True) -> str:
    """Each relabeling cell under ltdistill's recipe and under `recipe` (a suite's `recipes`), beside the random set
    relabeled by the same teacher under each (DD-Ranking's Acc_rdm-any) and the IOR that makes; the teacher's own
    balanced accuracy is the ceiling relabeling sets. Balanced accuracy in %, the tail (few) in brackets; "" where
    no result was evaluated under `recipe`. per_seed: rows_by_setting's full form (every seed's cell, then the row
    over seeds), else its brief one."""
    def with_tail(result: dict) -> str:
        return f"{accuracy(result)} ({_pct(result.get('few'))})"

    def relabeled(dd: dict) -> bool:  # a baseline relabeled by the set's teacher (not the hard-label random set)
        return str(dd.get("rdm_regime", "")).startswith("relabel")

    def baseline(dd: dict) -> str:
        return _pct(dd.get("acc_rdm_any")) if relabeled(dd) else "-"

    def ior(dd: dict) -> str:
        return f"{100 * dd['ior']:+.1f}" if relabeled(dd) and "ior" in dd else "-"

    groups: dict[tuple, list[Pair]] = {}
    for r in results:
        variant = (r.get("recipes") or {}).get(recipe)
        if variant and (r.get("eval_config") or {}).get("recipe", "ltdistill") == "ltdistill":
            groups.setdefault((r.get("dataset", "?"), r.get("imbalance_factor", 0), r.get("ipc"), cell_label(r),
                               pooled_order(r, per_seed)), []).append((r, variant))

    def cell_row(_: tuple, r: dict, variant: dict | None) -> str:
        variant = variant or {}
        usual, other = r.get("ddranking") or {}, variant.get("ddranking") or {}
        teacher = (r.get("models_accuracy") or {}).get("teacher (as evaluated)", {}).get("balanced_acc")
        return (f"| {r.get('dataset', '?')} | {r.get('imbalance_factor', 0):g} | {r.get('ipc') or 'all'} | "
                f"{named_cell(r)} | {with_tail(r)} | {with_tail({**r, **variant})} | "
                f"{100 * (variant['balanced_acc']['mean'] - r['balanced_acc']['mean']):+.2f} | "
                f"{baseline(usual)} / {baseline(other)} | {ior(usual)} / {ior(other)} | {_pct(teacher)} |")

    rows = rows_by_setting(groups, cell_row, recipe_seeds_row, per_seed)
    if not rows:
        return ""
    return "\n".join([f"| dataset | beta | IPC | method | ltdistill recipe | {recipe} recipe | change | "
                      f"random relabeled: ltdistill / {recipe} | IOR: ltdistill / {recipe} | teacher |",
                      "|---|---|---|---|---|---|---|---|---|---|", *rows]) + "\n"


def preset_pair_table(results: list[dict], preset: str, base: str) -> str:
    """Cells of the suite preset `preset` beside its method's cells `base` of the same setting (dataset, beta, IPC,
    class order) and seed, over the seeds both were made with: each side's balanced accuracy as mean ± std over
    seeds (in brackets, its tail), the paired change (base minus preset) as mean ± std, and each seed's change.
    "" until a seed has both."""
    def setting(r: dict) -> tuple:
        return r.get("dataset", "?"), r.get("imbalance_factor", 0), r.get("ipc"), order_name(r)

    sides: dict[tuple, dict[int, dict[str, dict]]] = {}
    for r in results:
        if cell_label(r) in (preset, base):
            sides.setdefault(setting(r), {}).setdefault(cell_seed(r), {})[cell_label(r)] = r

    def side(cells: list[dict]) -> str:
        return f"{over_seeds([r['balanced_acc']['mean'] for r in cells])} ({over_seeds([r.get('few') for r in cells])})"

    rows = []
    for (dataset, beta, ipc, order), by_seed in sides.items():
        pairs = [(s[preset], s[base]) for _, s in sorted(by_seed.items()) if len(s) == 2]
        if not pairs:
            continue
        changes = [b["balanced_acc"]["mean"] - p["balanced_acc"]["mean"] for p, b in pairs]
        rows.append(f"| {dataset} | {beta:g} | {ipc} | {in_order(str(len(pairs)), order)} | "
                    f"{side([p for p, _ in pairs])} | {side([b for _, b in pairs])} | "
                    f"{over_seeds(changes, '+')} | {' '.join(f'{100 * c:+.2f}' for c in changes)} |")
    if not rows:
        return ""
    return "\n".join([f"| dataset | beta | IPC | seeds | {preset} | {base} | change | per seed |",
                      "|---|---|---|---|---|---|---|---|", *rows]) + "\n"
