"""Render docs/results.md from the measured outputs kept in docs/data/ (never typed by hand).

    python benchmarks/results.py            # after copying a suite's json/ into docs/data/<suite>/

The code builds the tables; the prose beside them lives in benchmarks/notes/ as Markdown, one paragraph per line:
sections/<folder>.md is a docs/data folder's heading and note, tuning/<folder>.md a tuning round's reading. The
speed page's tables are in speed_page.py; the paths and the note reader shared with it in docsource.py.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from docsource import DATA, NOTEBOOK, ROOT, note, read_folder
from speed_page import speed_page, speed_summary

from ltdistill.report import results_table
from ltdistill.report.tables import accuracy, cell_label, cell_seed, file_row_name, order_name, variant
from ltdistill.runtime import processes

# docs/data folders with a section, in the document's order (heading and note: notes/sections/<folder>.md)
BENCH_SECTIONS = ["bench-fmnist-defaults-cpu", "bench-fmnist-official-cpu", "bench-fmnist-hardtail-cpu",
                  "bench-fmnist-orders-cpu", "bench-fmnist-balanced-official-cpu", "bench-fmnist-ddranking-cpu",
                  "bench-fmnist-observers-gpu-h200", "bench-fmnist-gpu", "bench-fmnist-gpu-h200",
                  "bench-fmnist-cpu",
                  "bench-fmnist-gpu-h200-xarch",
                  "bench-fmnist-balanced-gpu",
                  "bench-fmnist-balanced-cpu", "bench-fmnist-unilevel-cpu", "bench-fmnist-unilevel-seeds-cpu",
                  "bench-quick-cpu", "bench-trajectory-digits-cpu", "bench-foundation-digits-cpu"]
SECTIONS = ["foundation", "ltdd-gpu", "ltdd-digits-tuned-cpu", "ltdd-fmnist-cpu",
            "ltdd-fmnist-b10-cpu", "ltdd-fmnist-b50-cpu", "anatomy-ltdd-fmnist-cpu", "anatomy-ltdd-fmnist-b10-cpu",
            "relabeled-random-fmnist-cpu", "trajectory-gpu", "anatomy-ltdd-digits-cpu"]


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


# folders whose rows differ in what no `--set` shows (hybrid sets, teachers, a tuned preset): rows named by file
NAME_ROWS_BY_FILE = {"anatomy-ltdd-fmnist-cpu", "anatomy-ltdd-fmnist-b10-cpu", "anatomy-ltdd-digits-cpu",
                     "relabeled-random-fmnist-cpu",
                     "ltdd-fmnist-cpu", "ltdd-fmnist-b10-cpu",
                     "ltdd-fmnist-b50-cpu"}


def bench_section(folder: Path) -> str:
    """The bench table of a suite's result JSONs. DD-Ranking metrics the suite stored are kept (they may use the
    teacher-relabeled random baseline); cells without them get them computed from the JSONs."""
    from ltdistill.bench import ddranking
    from ltdistill.report.tables import bench_table

    results = read_folder(folder)
    stored = {k: r["ddranking"] for k, r in results.items() if "ddranking" in r}
    ddranking(results, {})
    for k, metrics in stored.items():
        results[k]["ddranking"] = metrics
    return bench_table(list(results.values()))


def cross_arch_table(folder: Path) -> str:
    """Cross-architecture accuracy of a bench section's sets, one row per method, one column per (beta, IPC): the
    balanced accuracy of the same set on each evaluation model (the suite's main model first), then the mean
    change from the main model over the settings where every model ran. Empty where it would repeat the bench
    table's cross-arch column: one other model, and one setting or one method."""
    results = list(read_folder(folder).values())
    results = [r for r in results if len(r.get("cross_arch", {})) > 1 and not cell_seed(r)]
    models: list[str] = []
    for r in results:
        models += [m for m in r["cross_arch"] if m not in models]
    columns = sorted({(r["imbalance_factor"], r["ipc"]) for r in results}, key=lambda c: (-c[0], c[1]))
    cells = {(cell_label(r), r["imbalance_factor"], r["ipc"]): r["cross_arch"] for r in results}
    labels = sorted({label for label, *_ in cells})
    if len(models) < 3 and (len(columns) < 2 or len(labels) < 2):
        return ""
    lines = [f"Cross-architecture: balanced accuracy (%) of each set on {' / '.join(models)} (the set was made with "
             f"{models[0]}; each model trained with the same evaluation recipe), and the mean change from "
             f"{models[0]} over the settings where all of them ran.", "",
             "| method | " + " | ".join(f"beta {b:g}, IPC {i}" for b, i in columns) + " | mean change |",
             "|---|" + "---|" * (len(columns) + 1)]
    for label in labels:
        texts, changes = [], []
        for beta, ipc in columns:
            accs = cells.get((label, beta, ipc), {})
            texts.append(" / ".join(f"{100 * accs[m]['mean']:.1f}" if m in accs else "-" for m in models)
                         if accs else "-")
            if all(m in accs for m in models):
                changes.append([100 * (accs[m]["mean"] - accs[models[0]]["mean"]) for m in models[1:]])
        mean = (" / ".join(f"{sum(c[i] for c in changes) / len(changes):+.1f}" for i in range(len(models) - 1))
                + f" ({len(changes)})") if changes else "-"
        lines.append(f"| {label} | " + " | ".join(texts) + f" | {mean} |")
    return "\n".join(lines) + "\n"


# suite, --out, --device and --convnet-stem of the run (pad1: made before the ConvNet followed the official rule)
SUITE_OF_SECTION = {"bench-fmnist-cpu": ("fmnist", "runs/fmnist-cpu", "cpu", "pad1"),
                    "bench-fmnist-official-cpu": ("fmnist", "runs/fmnist-official", "cpu", "official"),
                    "bench-fmnist-hardtail-cpu": ("fmnist-hardtail", "runs/hardtail", "cpu", "official"),
                    "bench-fmnist-orders-cpu": ("fmnist-orders", "runs/fmnist-orders", "cpu", "official"),
                    "bench-fmnist-defaults-cpu": ("fmnist", "runs/fmnist-defaults", "cpu", "official"),
                    "bench-trajectory-digits-cpu": ("trajectory-digits", "runs/trajectory-digits", "cpu", "official"),
                    "bench-foundation-digits-cpu": ("foundation-digits", "runs/foundation-digits", "cpu", "official")}
STEM_SECTIONS = ("bench-fmnist-cpu", "bench-fmnist-official-cpu")  # the same suite under the two ConvNet stems


def suite_coverage(folder: Path) -> str:
    """Which cells of the section's suite, as its file stands now, are in the section and which are not: planned by
    bench.plan_suite with the run's --out and --device, so this list is computed, never typed. A result whose key
    differs from the planned cell's was made under an older version of the suite file and is listed as such; one
    without a key was made by its command run by hand (evaluate --full, distill), not by bench."""
    import contextlib

    from ltdistill.bench import comparable_key, cross_arch_left, digest, plan_suite

    suite, out, device, stem = SUITE_OF_SECTION[folder.name]
    with contextlib.chdir(ROOT):  # the suite names its presets relative to the repository
        cells = plan_suite(suite, Path(out), only=None, device=device, data_dir=None, cross_arch=None,
                           overrides={"convnet_stem": stem}).cells
    results = read_folder(folder)
    missing = [c.name for c in cells if c.name not in results]
    stored = {name: comparable_key(r.get("key") or {}) for name, r in results.items()}
    older = [c.name for c in cells if c.name in results and "defaults" in c.key
             and stored[c.name].get("defaults") != c.key["defaults"]
             and digest({**stored[c.name], "defaults": c.key["defaults"]}) == digest(c.key)]  # all else the same
    outside = [c.name for c in cells if c.name in results and not stored[c.name]]  # its command run by hand
    changed = [c.name for c in cells if c.name in results and c.name not in older + outside
               and digest(stored[c.name]) != digest(c.key)]
    lacking: dict[str, list[str]] = {}
    for c in cells:
        for model in cross_arch_left(c, results[c.name]) if c.name in results else []:
            lacking.setdefault(model, []).append(c.name)
    text = (f"**Cells of the suite** (benchmarks/suites/{suite}.toml as committed, planned by `bench.plan`): "
            f"{len(cells) - len(missing)} of {len(cells)} in this section")
    text += f"; not yet run: {', '.join(f'`{n}`' for n in missing)}" if missing else ", all of them"
    text += f"; made under an older suite file: {', '.join(f'`{n}`' for n in changed)}" if changed else ""
    text += (f"; made by its command outside bench (no key to compare): {', '.join(f'`{n}`' for n in outside)}"
             if outside else "")
    text += ("; made under the method or recipe defaults before they followed the official code "
             f"(keys.changed_defaults, protocol.recipe_later_settings): {', '.join(f'`{n}`' for n in older)}"
             if older else "")
    for model, names in lacking.items():
        what = (f"labels {model.removeprefix('labels-')}" if model.startswith("labels-")
                else f"cross-architecture {model}")
        text += f"; without {what} yet: {', '.join(f'`{n}`' for n in names)}"
    return text + "."


def evaluation_networks(folder: Path) -> str:
    """The line naming the ConvNet of a section's evaluations, read from its JSONs (a record without a stem was
    made with the pad1 network: models.recorded_options)."""
    from ltdistill import models

    stems: set[str] = set()
    for path in folder.rglob("*.json"):
        result = json.loads(path.read_text())
        if not isinstance(result, dict) or not str(result.get("model", "")).startswith("convnet"):
            continue
        stems.add(models.recorded_options(result["model"], result.get("model_options") or {})["stem"])
    if not stems:
        return ""
    names = {"official": "official (a one-channel input padded by 3, as networks.py)",
             "pad1": "pad1 (the network before ltdistill followed the official first-layer rule)"}
    return "ConvNet stem of these evaluations: " + "; ".join(names[s] for s in sorted(stems)) + "."


def paired_table(old_dir: Path, new_dir: Path, old_name: str, new_name: str, extra=None, keep=None) -> str:
    """Each cell of `new_dir` beside the same cell (file name) of `old_dir`: balanced accuracy (mean ± std over
    evaluation runs) and the tail (few) mean, with the changes; `extra`: (heading, function(old, new)) of a last
    column; `keep(new, old)`: whether a cell gets a row (all by default)."""
    heading = f" {extra[0]} |" if extra else ""
    rows = [f"| cell | {old_name}: balanced | {new_name}: balanced | change | {old_name}: few | {new_name}: few | "
            f"change |{heading}", "|---|---|---|---|---|---|---|" + ("---|" if extra else "")]
    def acc(r):
        return f"{100 * r['balanced_acc']['mean']:.2f} ± {100 * r['balanced_acc']['std']:.2f}" if r else "-"

    def few(r):
        return f"{100 * r['few']:.1f}" if r else "-"
    for path in sorted(new_dir.glob("*.json")):
        new = json.loads(path.read_text())
        old = json.loads((old_dir / path.name).read_text()) if (old_dir / path.name).exists() else None
        if keep is not None and not keep(new, old):
            continue
        change = f"{100 * (new['balanced_acc']['mean'] - old['balanced_acc']['mean']):+.2f}" if old else "-"
        few_change = f"{100 * (new['few'] - old['few']):+.1f}" if old else "-"
        rows.append(f"| {path.stem} | {acc(old)} | {acc(new)} | {change} | {few(old)} | {few(new)} | {few_change} |"
                    + (f" {extra[1](old, new)} |" if extra else ""))
    return "\n".join(rows) + "\n"


def stem_comparison() -> str:
    """Each cell the official-network section holds beside the same cell of the pad1 section."""
    old_dir, new_dir = (DATA / s for s in STEM_SECTIONS)
    return paired_table(old_dir, new_dir, "pad1", "official")


DEFAULTS_SECTIONS = ("bench-fmnist-official-cpu", "bench-fmnist-defaults-cpu")  # before / after, official ConvNet


def defaults_comparison(*, detail: bool) -> str:
    """Each cell made under the defaults that follow the official code beside the same cell made under the earlier
    defaults (both on the official ConvNet), with the defaults its key names (keys.changed_defaults): a cell whose
    method changed no default is the same cell in both, made once. `detail` adds the cells made under today's
    defaults alone (other seeds and settings: no comparison to show)."""
    from ltdistill.bench import comparable_key

    old_dir, new_dir = (DATA / s for s in DEFAULTS_SECTIONS)

    def changed(old, new):
        if old is None:
            return "(made under today's defaults only)"
        named = [f"{k} = {v}" for k, v in sorted((new["key"].get("defaults") or {}).items())]
        if new["key"].get("experts") != old["key"].get("experts"):  # the method's own defaults stayed; its buffer's
            named.append("its expert buffer's (GSAM, class-aware sampling, no MaxNorm)")
        return ", ".join(named)

    def moved(r, old):  # a cell whose key names a changed default, or whose expert buffer was made again under them
        return bool((r.get("key") or {}).get("defaults")) or (
            old is not None and comparable_key(old.get("key") or {}) != comparable_key(r.get("key") or {}))
    same = sorted(cell_label(json.loads(p.read_text())) for p in new_dir.glob("*.json") if (old_dir / p.name).exists()
                  and not moved(json.loads(p.read_text()), json.loads((old_dir / p.name).read_text())))
    table = paired_table(old_dir, new_dir, "earlier defaults", "official-code defaults",
                         ("defaults that changed", changed),
                         keep=moved if detail else lambda r, old: old is not None and moved(r, old))
    return table + (f"\nThe same cell under both (no default of its method changed; made once): {', '.join(same)}.\n"
                    if same else "")


def dc_momentum() -> list[str]:
    """DC's inner network momentum alone, over seeds (note dc-momentum): a blank line, the note and its table; [] when
    the pair was not made."""
    from ltdistill.report.tables import preset_pair_table

    table = preset_pair_table(list(read_folder(DATA / DEFAULTS_SECTIONS[1]).values()), "dc-net-momentum", "dc")
    return ["", note("dc-momentum"), "", table] if table else []


KEPT = DATA / "kept-sets"  # evaluate --snapshots of the trajectory sets made with distill --keep-every 50
# (row, its kept-set JSON, the expert summary and kind it matched): LTDD's classifier phase matches the
# classifier experts; MTT and DATM the standard ones, whose buffer no changed default touched
KEPT_ROWS = [("LTDD paper preset, earlier defaults", "ltdd-earlier", "fmnist-official-b100-cpu", "cls"),
             ("LTDD paper preset, official-code defaults", "ltdd-official", "fmnist-defaults-b100-cpu", "cls"),
             ("LTDD tuned preset, official-code defaults", "ltdd-tuned-official", "fmnist-defaults-b100-cpu", "cls"),
             ("MTT (no default changed)", "mtt", "fmnist-official-b100-cpu", "standard"),
             ("DATM (no default changed)", "datm", "fmnist-official-b100-cpu", "standard")]


def made_kept_rows() -> list[tuple[str, str, str, str]]:
    """The rows of KEPT_ROWS whose kept-set run is in docs/data."""
    return [row for row in KEPT_ROWS if (KEPT / f"{row[1]}.json").exists()]


def kept_sets() -> str:
    """The trajectory sets of beta 100 IPC 10, each kept every 50 iterations, under the earlier defaults and under
    the official code's, a row each: the experts it matches, the soft labels' own-class probability, the initial set
    (iteration 0), the final set and the best of the kept sets (chosen on the test set, as the reference code
    reports: optimistic), with the experts' tail and weakest classes. A row appears once its run is in; "" until one
    is."""
    rows = [(title, json.loads((KEPT / f"{name}.json").read_text()),
             next(r for r in json.loads((DATA / "experts" / f"{experts}.json").read_text()) if r["kind"] == kind))
            for title, name, experts, kind in made_kept_rows()]
    if not rows:
        return ""

    def tail(result: dict) -> list[int]:
        return [i for i, _ in sorted(enumerate(result["train_counts"]), key=lambda x: x[1])[:3]]

    def at_start(result: dict, _) -> str:
        return accuracy(next(r for r in result["snapshots"] if r["iteration"] == 0))

    def best(result: dict, _) -> str:
        b = result["best_of_snapshots"]
        return f"{100 * b['balanced_acc']:.2f} ± {100 * b['balanced_acc_std']:.2f} (iteration {b['iteration']})"

    def labels(result: dict, _) -> str:
        stats = result.get("label_stats")
        return ("{:.2f} / {:.0f}%".format(stats["own_class_prob"], 100 * stats["argmax_is_class"])
                if result.get("soft_labels") and stats else "- (class labels)")

    def weakest(result: dict, experts: dict) -> str:
        return "{} {:.0f}".format(*min(zip(result["class_names"], (100 * a for a in experts["per_class_acc"]),
                                           strict=True), key=lambda x: x[1]))

    columns = [
        ("experts matched: balanced (%)", lambda r, e: "{:.1f} ({})".format(
            100 * e["balanced_acc"], {"cls": "classifier", "standard": "standard"}[e["kind"]])),
        ("experts: tail classes (%)", lambda r, e: ", ".join(
            f"{r['class_names'][i]} {100 * e['per_class_acc'][i]:.0f}" for i in tail(r))),
        ("experts: weakest class (%)", weakest),
        ("soft labels: own-class probability / argmax = class", labels),
        ("initial set (iteration 0)", at_start),
        ("final set", lambda r, e: f"{accuracy(r)}"),
        ("final set: tail (few)", lambda r, e: f"{100 * r['few']:.1f}"),
        ("best of the kept sets (optimistic)", best),
    ]
    lines = [f"| beta 100, IPC 10, kept every 50 | {' | '.join(name for name, _ in columns)} |",
             "|---" * (len(columns) + 1) + "|",
             *(f"| {title} | {' | '.join(cell(r, e) for _, cell in columns)} |" for title, r, e in rows)]
    return "\n".join(lines) + "\n"


LONGER = KEPT / "ltdd-official-1200.json"  # evaluate --snapshots of LTDD's paper preset run to 1200 iterations


def longer_run() -> str:
    """LTDD's paper preset (official-code defaults) run four times its 300 iterations, its set kept every 100: the
    balanced accuracy and the tail of each kept set, a column each; "" until the run is in."""
    if not LONGER.exists():
        return ""
    snapshots = sorted(json.loads(LONGER.read_text())["snapshots"], key=lambda s: s["iteration"])
    rows = [("balanced (%)", accuracy), ("tail: few (%)", lambda s: f"{100 * s['few']:.1f}")]
    return "\n".join([f"| kept set: iteration | {' | '.join(str(s['iteration']) for s in snapshots)} |",
                      "|---" * (len(snapshots) + 1) + "|",
                      *(f"| {name} | {' | '.join(cell(s) for s in snapshots)} |" for name, cell in rows)]) + "\n"


TWOSTAGE_SETS = [("random", "Random"), ("dm", "DM"), ("dc", "DC"), ("mtt", "MTT")]
TWOSTAGE_ROWS = [  # (file stem, training data of stage 1 / stage 2, paper table); missing files are skipped
    ("original-single", "original (single stage)", "1"),
    *[(f"{k}-single", f"{name} IPC 10 (single stage)", "1") for k, name in TWOSTAGE_SETS],
    *[(f"{k}-original+distilled", f"original / {name}", "2") for k, name in TWOSTAGE_SETS],
    ("original+original", "original / original", "3"),
    *[(f"{k}-distilled+distilled", f"{name} / {name}", "3") for k, name in TWOSTAGE_SETS],
]


def twostage_section(folder: Path) -> str:
    """The two-stage paper's Tables 1-3 (benchmarks/twostage.py outputs): accuracy, std across classes,
    class-wise accuracy, group accuracy; then the groupings found on balanced / long-tailed / distilled data."""
    from ltdistill.data.idx import FASHION_CLASSES

    lines = ["| table | training (stage 1 / stage 2) | balanced acc (%) | class-acc std (%) | many / med / few (%) | "
             "LT-test F1 | group acc (%) | " + " | ".join(c.split("/")[0] for c in FASHION_CLASSES) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(FASHION_CLASSES)]
    groupings = None
    for stem, name, paper in TWOSTAGE_ROWS:
        path = folder / f"{stem}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        group = f"{100 * r['group_acc']['mean']:.1f}" if "group_acc" in r else "-"
        bal = r["balanced_acc"]
        lines.append(f"| {paper} | {name} | {100 * bal['mean']:.2f} ± {100 * bal['std']:.2f}"
                     f" | {100 * r['class_acc_std']:.1f} | {100 * r['many']:.1f} / {100 * r['medium']:.1f} / "
                     f"{100 * r['few']:.1f} | {r['lt_test']['f1']:.3f} | {group} | "
                     + " | ".join(f"{100 * a:.0f}" for a in r["per_class_acc"]) + " |")
        if groupings is None and len(r.get("groupings", {})) > 1:  # the run that drew the figure grouped all three
            groupings = r["groupings"]
    text = "\n".join(lines) + "\n"
    if groupings:
        def named(groups):
            return " | ".join(", ".join(FASHION_CLASSES[c] for c in g) for g in groups)
        canonical = {k: str(sorted(map(sorted, g["groups"]))) for k, g in groupings.items()}
        same = len(set(canonical.values())) == 1
        pairs = [f"{a} = {b}" for i, a in enumerate(canonical) for b in list(canonical)[i + 1:]
                 if canonical[a] == canonical[b]]
        text += ("\nGroupings (k-means, M = 5 centroids per class, on the final-layer features of a ConvNet trained on "
                 "each data; split maximizing the summed inter-group distance D_ik of Eq. 2):\n\n")
        text += "\n".join(f"- {k}: {named(g['groups'])} ({g['search']} search)" for k, g in groupings.items())
        text += (f"\n\nThe same grouping on all {len(groupings)}: {'yes' if same else 'no'}"
                 + ("" if same else f" (identical: {', '.join(pairs) or 'none'})") + ".\n")
    return text


def phase_cost_table(paths: list[Path]) -> str:
    lines = ["| file | commit | device | steps | MTT s | DATM s | LTDD rep s | LTDD cls s | LTDD iteration s | "
             "LTDD / MTT | DATM / MTT | LTDD at lr_img 0: rep / cls / iteration s | LTDD at lr_img 0 / MTT |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in paths:
        r = json.loads(p.read_text())
        m, med = r["meta"], r["median_s"]
        frozen = (f"{med['ltdd-rep-frozen']:.2f} / {med['ltdd-cls-frozen']:.2f} / {r['ltdd_frozen_iteration_s']:.2f}"
                  f" | {r['ltdd_frozen_over_mtt']:.2f}x") if "ltdd_frozen_iteration_s" in r else "- | -"
        lines.append(f"| {p.stem} | {m['commit']} | {m['device']} ({m['threads']} threads) | {m['steps']} | "
                     f"{med['mtt']:.2f} | {med['datm']:.2f} | {med['ltdd-rep']:.2f} | {med['ltdd-cls']:.2f} | "
                     f"{r['ltdd_iteration_s']:.2f} | {r['ltdd_over_mtt']:.2f}x | {r['datm_over_mtt']:.2f}x | "
                     f"{frozen} |")
    return "\n".join(lines) + "\n"


def section_folders() -> list[str]:
    """The docs/data folders of the sections, in the order the report shows them (anatomy hybrids left out)."""
    return BENCH_SECTIONS + [f for f in SECTIONS if not f.startswith("anatomy-")]


def row_name(stem: str, r: dict, *, by_file: bool) -> str:
    """A cell's row name outside its own section table: a bench cell's label, the full-set reference by what it is,
    else the file name (`by_file`: the headline merges sections by it) or the method with its overrides (as the
    section tables of folders outside NAME_ROWS_BY_FILE name it)."""
    if "full" in (r.get("label"), r.get("method")):
        return "full long-tailed set"
    name = r.get("label") or (file_row_name(stem) if by_file else variant(r))
    return name + (f" (seed {cell_seed(r)})" if cell_seed(r) else "")


def fmnist_cells() -> list[tuple[float, int, str, str, dict]]:
    """(beta, IPC (0 = all), folder, row name, result) of every Fashion-MNIST-LT cell of the sections."""
    cells = []
    for folder in section_folders():
        for stem, r in read_folder(DATA / folder).items():
            beta = r.get("imbalance_factor") or 0
            if r.get("dataset") != "fashion-mnist" or beta <= 1 or r.get("class_order", "natural") != "natural" \
                    or r.get("ranking", "ltdistill") != "ltdistill":
                continue  # the at-a-glance and claims tables are the natural order's and ltdistill's protocol's
            cells.append((beta, r.get("ipc") or 0, folder, row_name(stem, r, by_file=True), r))
    return sorted(cells, key=lambda t: (-t[0], t[1], t[2], t[3]))


def summary() -> str:
    """One line per (section, method, beta, IPC) of every Fashion-MNIST-LT cell: the head/tail picture the papers
    argue about."""
    lines = ["| section | method | beta | IPC | balanced acc (%) | many (%) | few (%) | LT-test F1 | eval epochs | "
             "device |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for beta, ipc, folder, name, r in fmnist_cells():
        lines.append(f"| {folder} | {name} | {beta:g} | {ipc or 'all'} | {100 * r['balanced_acc']['mean']:.1f} | "
                     f"{100 * r['many']:.1f} | {100 * r['few']:.1f} | {r['lt_test']['f1']:.3f} | "
                     f"{r.get('epochs', '?')} | {r.get('device', 'cpu')} |")
    return "\n".join(lines) + "\n"


def official(r: dict) -> bool:
    """Whether an evaluation ran on the official ConvNet (a record without a stem ran on the pad1 network)."""
    from ltdistill import models

    model = str(r.get("model", ""))
    return model in models.names() and models.recorded_options(model, r.get("model_options") or {}).get("stem") == \
        "official"


def headline_cells() -> dict[tuple[str, float, int], tuple]:
    """(row name, beta, IPC) -> (rank, result) of the headline: where several sections measured the same cell, the
    one made with the official ConvNet is taken, then the one evaluated for 300 epochs, made on the CPU before the
    GPU, then the section shown first."""
    chosen: dict[tuple[str, float, int], tuple] = {}
    order = {folder: i for i, folder in enumerate(section_folders())}
    for beta, ipc, folder, name, r in fmnist_cells():
        if cell_seed(r):  # the seed-0 cell stands for its method; sections give the spread over seeds
            continue
        rank = (not official(r), r.get("epochs") != 300, r.get("device", "cpu") != "cpu", order[folder])
        if (name, beta, ipc) not in chosen or rank < chosen[name, beta, ipc][0]:
            chosen[name, beta, ipc] = (rank, r)
    return chosen


def full_row_note(chosen: dict[tuple[str, float, int], tuple]) -> str:
    """How the headline's full-set row was trained, per beta, from the results it shows (`chosen`: headline_cells)."""
    by_kind: dict[tuple, list[str]] = {}
    for (name, beta, _), (_, r) in sorted(chosen.items(), key=lambda kv: -kv[0][1]):
        if name == "full long-tailed set":
            device = "the GPU" if r.get("device", "cpu") != "cpu" else "the CPU"
            by_kind.setdefault((r.get("epochs"), device), []).append(f"{beta:g}")
    def listed(items: list[str]) -> str:
        return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 2 else items)

    return "; ".join(f"{epochs} epochs on {device} at beta {listed(betas)}"
                     for (epochs, device), betas in by_kind.items())


def headline(chosen: dict[tuple[str, float, int], tuple]) -> str:
    """One row per method, one column per (beta, IPC): balanced accuracy (few-class accuracy), the cells `chosen` by
    headline_cells; † marks a number made on the GPU (same cpu protocol)."""
    columns = sorted({(beta, ipc) for _, beta, ipc in chosen if ipc}, key=lambda c: (-c[0], c[1]))
    names = sorted({n for n, *_ in chosen}, key=lambda n: (n != "full long-tailed set", n))
    methods = {r.get("method") for _, r in chosen.values()}
    # presets and ablations (a label of their own) are on the detail page of every cell: one row per method here,
    # with the whole set and the random images relabeled by a teacher (the relabeling methods' baseline)
    variants = [n for n in names if n not in methods and not n.startswith("full")
                and n.removeprefix("random-relabeled-by-") not in methods]
    names = [n for n in names if n not in variants]
    lines = ["| method | " + " | ".join(f"beta {b:g}, IPC {i}" for b, i in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name in names:
        texts = []
        for beta, ipc in columns:
            hit = chosen.get((name, beta, ipc)) or (chosen.get((name, beta, 0)) if name.startswith("full") else None)
            if hit is None:
                texts.append("-")
                continue
            r = hit[1]
            marks = ("†" if r.get("device", "cpu") != "cpu" else "") + ("°" if official(r) else "")
            acc = r["balanced_acc"]
            spread = f" ± {100 * acc['std']:.1f}" if (r.get("runs") or 1) > 1 else ""
            texts.append(f"{100 * acc['mean']:.1f}{spread} ({100 * r['few']:.0f}){marks}")
        lines.append(f"| {name} | " + " | ".join(texts) + " |")
    if variants:
        lines += ["", "Presets and ablations, on [the page of every cell](notebook/summary.md) and their suites' "
                  "pages: " + ", ".join(variants) + "."]
    return "\n".join(lines) + "\n"


def cost_table() -> str:
    """Every distilled set in docs/data whose artifact recorded its cost (LTDD supplement Table 9's columns, plus
    memory): wall time of the distillation, seconds per iteration, peak host / CUDA memory, and the expert buffer's
    training time when the cell's suite recorded it. The device column says where it ran: only rows of one device
    compare."""
    from ltdistill.report.tables import _models_seconds, _seconds_per_iteration, earlier_devices

    lines = ["| section | method | dataset | beta | IPC | device | iterations | distill s | s/it | peak RSS MB | "
             "CUDA peak MB | experts / models s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for folder in section_folders():
        for stem, r in read_folder(DATA / folder).items():
            d = dict(r.get("distill") or {})
            if "resumed_from" not in d and d.get("timed_iterations") and d.get("iterations"):
                d["resumed_from"] = d["iterations"] - d["timed_iterations"]  # JSONs from before it was recorded
            if d.get("wall_time_s") is None or "random" in (r.get("label"), r.get("method")):
                continue
            name = row_name(stem, r, by_file=folder in NAME_ROWS_BY_FILE)
            fmt = lambda v, f="{:.0f}": "-" if v is None else f.format(v)  # noqa: E731
            resumed = f" (from it. {d['resumed_from']})" if d.get("resumed_from") else ""
            count = processes(d.get("host"))
            ranks = f", {count} processes" if count > 1 else ""  # its peak: rank 0's
            lines.append(f"| {folder} | {name} | {r.get('dataset')} | {r.get('imbalance_factor', 0):g} | "
                         f"{r.get('ipc')} | {r.get('device', 'cpu')}{ranks}{earlier_devices(d)} | "
                         f"{fmt(d.get('iterations'))} | "
                         f"{fmt(d['wall_time_s'])}{resumed} | {_seconds_per_iteration(d)} | "
                         f"{fmt(d.get('peak_rss_mb'))} | {fmt(d.get('cuda_peak_mb'))} | "
                         f"{_models_seconds(r, d)} |")
    return "\n".join(lines) + "\n"


def expert_table(path: Path) -> str:
    lines = ["| buffer | kind | experts | epochs | balanced test acc (%) | per-class acc (%) | training s |",
             "|---|---|---|---|---|---|---|"]
    for r in json.loads(path.read_text()):
        epochs = r["config"]["cls_epochs" if r["kind"] == "cls" else "epochs"]  # `ltdistill experts`' accuracy.json
        seconds = "-" if r.get("train_seconds") is None else f"{r['train_seconds']:.0f}"
        lines.append(f"| {r['buffer']} | {r['kind']} | {r['experts']} | {epochs} | {100 * r['balanced_acc']:.1f} | "
                     + " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"]) + f" | {seconds} |")
    return "\n".join(lines) + "\n"


def learned_lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:.4f}"  # sets without a learned lr (coresets, the recovery family)


def tuning_rows(points: dict[str, dict], best: str | None) -> list[str]:
    """A tuning table's header and one row per grid point, best first."""
    lines = ["| grid point | validation balanced acc (%) | per-class validation acc (%) | learned lr |",
             "|---|---|---|---|"]
    for name, p in sorted(points.items(), key=lambda kv: -kv[1]["val_balanced_acc"]):
        mark = " (chosen)" if name == best else ""
        lines.append(f"| {name}{mark} | {100 * p['val_balanced_acc']:.2f} ± {100 * p['val_std_over_runs']:.2f} | "
                     + " ".join(f"{100 * a:.0f}" for a in p["val_per_class_acc"]) + f" | {learned_lr(p['lr'])} |")
    return lines


def reference_row(name: str, mean: float, std: float, per_class_acc: list[float], lr) -> str:
    per_class = " ".join(f"{100 * a:.0f}" for a in per_class_acc)
    return f"| reference: {name} (same holdout) | {100 * mean:.2f} ± {100 * std:.2f} | {per_class} | {learned_lr(lr)} |"


def tuning_table(path: Path) -> str:
    """A tuning.json: a bench suite's (bench/tuning.py: groups of grid points per setting) or one of the earlier tuning
    script's (one preset's grid); every point's validation score, best first, and the references on the same
    holdout."""
    t = json.loads(path.read_text())
    if "groups" in t:  # a suite's
        lines = [f"`ltdistill bench --suite {Path(t['suite']).stem} --out runs/{path.parent.name}` (holdout "
                 f"{t['holdout']} images per class, {t['runs']} evaluation runs per point; each cell's commands are "
                 "in the run directory's results/).", ""]
        for name, group in t["groups"].items():
            lines += [f"**{name}**", "", *tuning_rows(group["points"], group["best"])]
            lines += [reference_row(ref, r["val_balanced_acc"], r["val_std_over_runs"], r["val_per_class_acc"], r["lr"])
                      for ref, r in t["references"].items()] + [""]
        return "\n".join(lines)
    lines = ["Made by the earlier tuning script (benchmarks/tune.py, since replaced by a suite with `[data] holdout` "
             f"and a method `grid`): preset {t['preset']}"
             + (f", beta {t['imbalance']:g}" if "imbalance" in t else "")  # tunings before the flag: the preset's
             + f", holdout {t['holdout']}"
             + (f", experts `{t['experts_args']}`" if t.get("experts_args") else "")
             + (f" (buffer {t['experts_dir']})" if t.get("experts_dir") else "")
             + ", grid " + " ".join(f"`{g}`" for g in t["grid"])
             + "".join(f", fixed `{shlex.quote(f)}`" for f in t.get("fixed", []))
             + f"; {t['runs']} evaluation runs per point.", "", *tuning_rows(t["points"], t["best"])]
    for ref in sorted(path.parent.glob("*-val.json")):  # baselines evaluated on the same holdout
        r = json.loads(ref.read_text())
        lines.append(reference_row(f"{r['method']} IPC {r['ipc']}", r["balanced_acc"]["mean"], r["balanced_acc"]["std"],
                                   r["per_class_acc"], r.get("lr")))
    return "\n".join(lines) + "\n"


def phase_loss_table(path: Path) -> str:
    """One row per set, one column per (phase, lr multiple) of benchmarks/phase_loss.py's JSON."""
    result = json.loads(path.read_text())
    columns = list(result["sets"][0]["losses"])
    lines = ["| set | learned lr | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for row in result["sets"]:
        name = file_row_name(Path(row["artifact"]).name)
        lines.append(f"| {name} | {row['lr']:.4f} | " + " | ".join(f"{row['losses'][c]:.3f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def titled(name: str) -> tuple[str, str]:
    """A note whose first line is its '## ' heading, as (title, the rest)."""
    head, _, body = note(name).partition("\n")
    return head.removeprefix("## ").strip(), body.strip("\n")


def bench_page(folder: str) -> tuple[str, str]:
    title, text = titled(f"sections/{folder}")
    coverage = [suite_coverage(DATA / folder), ""] if folder in SUITE_OF_SECTION else []
    networks = evaluation_networks(DATA / folder)
    cross = cross_arch_table(DATA / folder)
    return title, "\n".join([text, "", *([networks, ""] if networks else []), *coverage, bench_section(DATA / folder),
                             "", *([cross, ""] if cross else [])])


def detail_pages(found=None) -> dict[str, tuple[str, str]]:
    """docs/notebook/<slug>.md: (title, body) of every detail page, in the order the results page lists them;
    `found`: the findings (findings()), when the caller has them already."""
    pages: dict[str, tuple[str, str]] = {}
    pages[FINDINGS] = findings_page(findings(headline_cells()) if found is None else found)
    pages["summary"] = ("Fashion-MNIST-LT, head vs tail: every cell", "\n".join([
        "Every Fashion-MNIST-LT cell of the detail pages, by beta then IPC (many = the 4 head classes, few = the 3 "
        "tail classes by training count). Same data, same evaluation protocol (cpu: ConvNet width 32, 300 evaluation "
        "epochs for sets); `device` is where the set was made and evaluated.", "", summary()]))
    if all(any((DATA / s).glob("*.json")) for s in STEM_SECTIONS):
        pages["stem"] = titled("stem")[0], "\n".join([titled("stem")[1], "", stem_comparison()])
    if all(any((DATA / s).glob("*.json")) for s in DEFAULTS_SECTIONS):
        kept, longer = kept_sets(), longer_run()
        pages["defaults"] = titled("defaults")[0], "\n".join([
            titled("defaults")[1], "", defaults_comparison(detail=True), *dc_momentum(),
            *(["", note("kept-sets"), "", kept] if kept else []),
            *(["", note("ltdd-longer"), "", longer] if longer else [])])
    for folder in BENCH_SECTIONS:
        if (DATA / folder).is_dir() and any((DATA / folder).glob("*.json")):
            pages[folder] = bench_page(folder)
    twostage = DATA / "twostage-fmnist-cpu"
    if twostage.is_dir() and any(twostage.glob("*.json")):
        title, text = titled("twostage")
        pages["twostage"] = title, "\n".join([text, "", twostage_section(twostage)])
    for folder in SECTIONS:
        if (DATA / folder).is_dir() and any((DATA / folder).glob("*.json")):
            title, text = titled(f"sections/{folder}")
            networks = evaluation_networks(DATA / folder)
            pages[folder] = title, "\n".join([text, "", *([networks, ""] if networks else []),
                                               results_table(sorted((DATA / folder).glob("*.json")),
                                                             folder in NAME_ROWS_BY_FILE)])
    losses = sorted((DATA / "phase-loss").glob("*.json"))
    if losses:
        pages["phase-loss"] = ("LTDD's two matching losses, measured on finished sets (CPU)", "\n".join(
            part for path in losses for part in (f"## {path.stem}", "", note("phase-loss"), "",
                                                 phase_loss_table(path), "")))
    tunings = sorted(DATA.glob("tune-*/tuning.json"))
    if tunings:
        pages["tuning"] = ("Tuning on the validation holdout", "\n".join(
            part for path in tunings for part in (
                f"## {path.parent.name}", "",
                f"{note('tuning')} {note(f'tuning/{path.parent.name}', optional=True)}".strip(), "",
                tuning_table(path), "")))
    expert_files = sorted((DATA / "experts").glob("*.json"))
    if expert_files:
        title, text = titled("experts")
        pages["experts"] = title, "\n".join([text, "", *(part for path in expert_files
                                                          for part in (f"## {path.stem}", "", expert_table(path)))])
    title, text = titled("cost")
    phase_costs = sorted((DATA / "phase-cost").glob("*.json"))
    phases = ["", note("phase-cost"), "", phase_cost_table(phase_costs)] if phase_costs else []
    pages["cost"] = title, "\n".join([text, "", cost_table(), *phases])
    pages["speed"] = speed_page()
    pages["published"] = titled("published")
    return pages


def suite_grid(folder: Path) -> str:
    """A bench section in brief: one row per cell label, one column per (dataset, beta, IPC), balanced accuracy in %
    (mean ± std over evaluation runs; seed-0 cells); a suite of one setting has the labels across, in one row.
    Where a label ran under several class orders (fmnist-orders), the mean ± std over the orders of their mean
    accuracies, with how many orders. Methods under their own names only: presets and ablations are on the suite's
    page."""
    results = list(read_folder(folder).values())
    variants = sorted({cell_label(r) for r in results if cell_label(r) != r.get("method")})
    results = [r for r in results if not cell_seed(r) and cell_label(r) == r.get("method")]
    datasets = {r.get("dataset") for r in results}
    columns = sorted({(r.get("dataset"), r.get("imbalance_factor") or 0, r.get("ipc") or 0) for r in results},
                     key=lambda c: (c[0], -c[1], c[2]))
    columns = [c for c in columns if c[2]] or columns  # the full set's column only when nothing else
    labels = sorted({cell_label(r) for r in results}, key=lambda n: (n != "full", n))
    def head(c):
        return (f"{c[0]} " if len(datasets) > 1 else "") + f"beta {c[1]:g}" + (f", IPC {c[2]}" if c[2] else "")
    several_orders = len({order_name(r) for r in results}) > 1
    grid: dict[str, list[str]] = {}
    for label in labels:
        for c in columns:
            hits = [r for r in results if cell_label(r) == label and (r.get("dataset"),
                    r.get("imbalance_factor") or 0, r.get("ipc") or 0) in (c, c[:2] + (0,))]
            means = np.array([100 * r["balanced_acc"]["mean"] for r in hits])
            orders = sorted({order_name(r) for r in hits})
            # a lone order is named: the other columns are means over orders
            one = f" ({orders[0]} only)" if len(orders) == 1 and several_orders else ""
            grid.setdefault(label, []).append(
                "-" if not hits else accuracy(hits[0]) + one if len(orders) == 1 else
                f"{means.mean():.2f} ± {means.std():.2f} ({len(hits)} orders)")
    if len(columns) == 1:  # one setting: the methods across, in three lines
        lines = ["| setting | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels),
                 f"| {head(columns[0])} | " + " | ".join(grid[label][0] for label in labels) + " |"]
    else:
        lines = ["| method | " + " | ".join(head(c) for c in columns) + " |", "|---|" + "---|" * len(columns)]
        lines += [f"| {label} | " + " | ".join(texts) + " |" for label, texts in grid.items()]
    models = sorted({f"{r.get('model')} ({r.get('epochs')} epochs)" for r in results})
    devices = sorted({r.get("device", "cpu") for r in results})
    on_page = f" Presets and ablations on the suite's page: {', '.join(variants)}." if variants else ""
    return ("\n".join(lines) + f"\n\nEvaluation model: {', '.join(models)}; device: {', '.join(devices)}; "
            f"protocol {', '.join(sorted({str(r.get('protocol')) for r in results}))}.{on_page}\n")


CLAIMS = [  # (claim as the seed papers state it, the winner rows, the loser rows): best of each side per setting
    ("LTDD > DATM", ["ltdd"], ["datm"]),
    ("DATM > MTT", ["datm"], ["mtt"]),
    ("LTDD > Random", ["ltdd"], ["random"]),
    ("uni-level > SRe2L", ["unilevel"], ["sre2l"]),
    ("uni-level > LTDD", ["unilevel"], ["ltdd"]),
    ("trajectory matching (MTT, DATM, LTDD) > DM, DC, herding", ["mtt", "datm", "ltdd"], ["dm", "dc", "herding"]),
]


def claim_margin(cells: dict[str, dict], winners: list[str], losers: list[str]) -> float | None:
    """The best balanced accuracy among the winner rows minus the best among the losers, in points (None where a
    side has no cell); `cells`: row name -> result of one setting."""
    won, lost = (max((cells[n]["balanced_acc"]["mean"] for n in rows if n in cells), default=None)
                 for rows in (winners, losers))
    return None if won is None or lost is None else 100 * (won - lost)


def claims_rows(columns: list[dict[str, dict]]) -> list[str]:
    """One table row per claim: in how many columns it holds, then its margin in each column, marked '*' where a row
    of either side is not run there yet (the margin reads the rows that are, and may move when the rest land)."""
    lines = []
    for claim, winners, losers in CLAIMS:
        margins = [claim_margin(cells, winners, losers) for cells in columns]
        measured = [m for m in margins if m is not None]
        texts = ["-" if m is None else f"{m:+.1f}" + ("" if all(n in cells for n in winners + losers) else "*")
                 for m, cells in zip(margins, columns, strict=True)]
        lines.append(f"| {claim} | {sum(m > 0 for m in measured)} of {len(measured)} | " + " | ".join(texts) + " |")
    return lines


def claims_table(chosen: dict[tuple[str, float, int], tuple]) -> str:
    """For each claim, the settings (beta, IPC) of the at-a-glance cells where it holds, with the margin in points
    (the best row of the claimed winners minus the best of the losers)."""
    settings = sorted({(beta, ipc) for _, beta, ipc in chosen if ipc}, key=lambda c: (-c[0], c[1]))
    columns = [{name: r for (name, *at), (_, r) in chosen.items() if tuple(at) == setting} for setting in settings]
    return "\n".join(["| claim | holds in | " + " | ".join(f"beta {b:g}, IPC {i}" for b, i in settings) + " |",
                      "|---|---|" + "---|" * len(settings), *claims_rows(columns)]) + "\n"


# the sections measuring one setting under each class order, all on the official ConvNet, seed 0
# (a later folder's cell replaces an earlier one's: the natural order's cells under today's defaults where made)
ORDER_SECTIONS = ["bench-fmnist-official-cpu", "bench-fmnist-defaults-cpu", "bench-fmnist-hardtail-cpu",
                  "bench-fmnist-orders-cpu"]
ORDER_SETTING = (100, 10)  # (beta, IPC): the setting every order's suite runs
MIN_CLAIMS = 3  # another setting of an order gets a column of its own where this many claims can be read in it


def order_column(order: str, beta: float, ipc: int) -> str:
    """An orders-table column's name: the order at ORDER_SETTING, else the order with the setting that differs."""
    if (beta, ipc) == ORDER_SETTING:
        return order
    return f"{order}, beta {beta:g}" + (f", IPC {ipc}" if ipc != ORDER_SETTING[1] else "")


def order_cells() -> dict[str, dict[str, dict]]:
    """column -> row name -> result (the full set: at every IPC of its beta), from ORDER_SECTIONS: each class order
    at ORDER_SETTING, and each other setting of an order where at least MIN_CLAIMS of the claims can be read."""
    by_setting: dict[tuple[str, float, int], dict[str, dict]] = {}
    full: dict[tuple[str, float], dict] = {}
    for folder in ORDER_SECTIONS:
        for r in read_folder(DATA / folder).values():
            if cell_seed(r):
                continue
            if r.get("ipc") is None:
                full[order_name(r), r.get("imbalance_factor")] = r
            else:
                by_setting.setdefault((order_name(r), r.get("imbalance_factor"), r["ipc"]), {})[cell_label(r)] = r
    columns = {}
    for (order, beta, ipc), cells in by_setting.items():
        readable = sum(claim_margin(cells, winners, losers) is not None for _, winners, losers in CLAIMS)
        if (beta, ipc) == ORDER_SETTING or readable >= MIN_CLAIMS:
            columns[order_column(order, beta, ipc)] = cells | ({"full": full[order, beta]} if (order, beta) in full
                                                               else {})
    return columns


# the results page's tables hold their cells (the balanced SRe2L cells and the larger observers: the relabel-recipe
# table; the cells under DD-Ranking's protocol: the protocol table)
SHOWN_ABOVE = ("bench-fmnist-defaults-cpu", "bench-fmnist-official-cpu", "bench-fmnist-balanced-official-cpu",
               "bench-fmnist-ddranking-cpu", "bench-fmnist-observers-gpu-h200")
# cells of the defaults section made before a method default changed, replaced there by cells made under today's and
# kept for the tables that pair a set with itself (DD-Ranking's protocol); rendered in no section of their own
SUPERSEDED = "bench-fmnist-defaults-cpu/superseded"
# digits-LT suites whose tables are on their own pages only (the one-minute page reads Fashion-MNIST-LT; quick stays as
# the smoke test a newcomer runs first)
DETAIL_ONLY = ("bench-trajectory-digits-cpu", "bench-foundation-digits-cpu")


def claims_by_order() -> str:
    """The claims at beta 100 IPC 10 under each class order measured (natural, hard-tail, random:k), then at the other
    settings of an order where enough was measured (order_cells), with the tail (few) accuracy of the full
    long-tailed set and of Random beside them: "" where only one order was measured."""
    by_order = order_cells()
    orders = sorted(by_order, key=lambda o: ("," in o, o != "natural", o != "hard-tail", o))
    if len(orders) < 2:
        return ""
    columns = [by_order[o] for o in orders]
    unless = " unless named" if any("," in o for o in orders) else ""
    lines = [f"| claim (beta {ORDER_SETTING[0]}, IPC {ORDER_SETTING[1]}{unless}) | holds in | "
             + " | ".join(orders) + " |",
             "|---|---|" + "---|" * len(orders), *claims_rows(columns)]
    def shown(r: dict | None, name: str) -> str:
        return "-" if r is None else f"{100 * (r['balanced_acc']['mean'] if name == 'balanced' else r['few']):.1f}"
    for label, what in (("full", "full long-tailed set"), ("random", "Random")):
        for name in ("balanced", "few"):
            lines.append(f"| {what}: {name} accuracy (%) | | " + " | ".join(shown(c.get(label), name)
                                                                          for c in columns) + " |")
    return "\n".join(lines) + "\n"


CLAIMS_INTRO = ("Natural class order, the cells at a glance: for each setting, the best of the claimed winners minus "
                "the best of the others, in points (+: the claim holds).")
FINDINGS = "findings"  # docs/notebook/findings.md: each finding of the results page with its note in full


def anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^a-z0-9 _-]", "", text).replace(" ", "-")


class Finding(NamedTuple):
    """A finding: the results page gives its note in brief (`<note>-brief`) between `before` and `after`;
    notebook/findings.md gives the note in full, then `after` and `in_full`, the tables a minute's read leaves out."""
    heading: str
    note: str
    before: list[str]
    after: list[str]
    in_full: Sequence[str] = ()


def findings(chosen) -> list[Finding]:
    """Each finding whose data is here, in the order the pages give them."""
    from ltdistill.report.tables import cell_label, protocol_table, recipe_table, variant_table

    found = [Finding("## Which claims of the seed papers hold here", "unilevel-claims",
              [CLAIMS_INTRO, "", claims_table(chosen)], [])]
    across_orders = claims_by_order()
    if across_orders:
        found.append(Finding("### Under other class orders", "orders", [], [across_orders]))
    by_folder = {folder: list(read_folder(DATA / folder).values())
                 for folder in (*BENCH_SECTIONS, SUPERSEDED)}
    bench_results = [r for folder in BENCH_SECTIONS for r in by_folder[folder]]
    calibrated = {ipc: variant_table([r for r in bench_results if cell_label(r) == r.get("method")
                                      and r.get("ipc") == ipc], kinds=("labels",), per_seed=False) for ipc in (10, 50)}
    if calibrated[10]:
        found.append(Finding("## Soft labels calibrated by ADSA", "adsa", [], [
            calibrated[10], "", "IPC 10 (IPC 50 follows the note in full); a setting made with several seeds gives the "
            "mean ± std over them (and each seed's tau*), the random class orders likewise over the orders, one made "
            "once its seed-0 cell; each seed and order and the ablations are on the suites' pages."],
            ["", "At IPC 50, likewise:", "", calibrated[50]] if calibrated[50] else []))
    # the methods, and the observers' presets (what the recipe table asks of a labeler); ablations on their pages
    recipes = recipe_table([r for r in bench_results if cell_label(r) == r.get("method")] + [
        r for r in by_folder["bench-fmnist-observers-gpu-h200"] if cell_label(r) != r.get("method")], per_seed=False)
    if recipes:
        found.append(Finding("## SRe2L's official relabel recipe", "recipes", [], [], [recipes]))
    # the cells under DD-Ranking's protocol beside the same sets: made under today's defaults or, for those scored
    # before a default changed, the suite's superseded cells (SUPERSEDED)
    protocols = protocol_table(by_folder["bench-fmnist-defaults-cpu"] + by_folder[SUPERSEDED],
                               by_folder["bench-fmnist-ddranking-cpu"], per_seed=False)
    if protocols:
        found.append(Finding("## DD-Ranking's protocol", "ddranking-protocol", [], [], [protocols]))
    return found


def findings_page(found) -> tuple[str, str]:
    """notebook/findings.md: each finding's heading, its note in full and its table."""
    return ("The findings in full: the seed papers' claims, class orders, ADSA, SRe2L's recipe, DD-Ranking's protocol",
            re.sub(r"\n{3,}", "\n\n", "\n".join(part for f in found for part in (
                f.heading, "", *f.before, "", note(f.note), "", *f.after, *f.in_full, ""))))


def render() -> str:
    """docs/results.md: the page a reader takes in a minute (at a glance, the claims, each suite in brief, links to
    the detail pages of docs/notebook/); from docs/data alone, its first paragraph naming the commit and machine."""
    chosen = headline_cells()  # read once: the headline's note, its table and the claims show the same cells
    parts = [
        "# Results", "",
        "Generated by `python benchmarks/results.py` from the JSON outputs in `docs/data/` "
        f"(commit {commit()}, rendered on {platform.machine()} with Python {platform.python_version()}). "
        "Tables give balanced test accuracy in %; every table names its protocol and device, and the detail pages "
        "(linked below) give each cell's spread, per-class numbers and the commands that made it.", "",
        "## In short", "", note("in-short"), "",
        "## At a glance: Fashion-MNIST-LT balanced accuracy", "",
        "Mean ± std over a set's evaluation runs (one set, seed 0); in brackets the 3 tail classes' mean. "
        "cpu protocol (ConvNet width 32, 300 evaluation epochs); "
        "the full long-tailed set's row repeats at every IPC (it trained " + full_row_note(chosen) + "). † made and "
        "evaluated on a GPU; ° made and evaluated with the official ConvNet (next section), the others with the "
        "pad1 network; where a cell was made again under the defaults that follow the official code, that one is "
        "shown. At beta 10 the `ltdd` row is the beta-10 preset (lambda_cls 0.2, the reference's beta-10 row).", "",
        headline(chosen), ""]
    found = findings(chosen)
    details = detail_pages(found)
    stem = (["## The official ConvNet", "", note("stem-brief"), "",
             "More: [the comparison, cell by cell](notebook/stem.md).", ""] if "stem" in details else [])
    for i, (heading, name, before, after, _) in enumerate(found):
        if i and heading.startswith("## "):  # the network's section follows the claims and their orders
            parts, stem = parts + stem, []
        more = f"In full: [{heading.lstrip('#').strip()}](notebook/{FINDINGS}.md#{anchor(heading)})."
        parts += [heading, "", *before, "", f"{note(f'{name}-brief')} {more}", "", *after, ""]
    parts += stem
    if "defaults" in details:
        parts += ["## Defaults that follow the official code", "", note("defaults-brief"), "",
                  defaults_comparison(detail=False),
                  "More: [every cell, DC's inner momentum alone over seeds, the trajectory sets kept every 50 "
                  "iterations](notebook/defaults.md).", ""]
    parts += ["## Speed", "", note("speed-brief"), "", speed_summary(), "",
              "More: [each timing, its command and note](notebook/speed.md).", ""]
    parts += ["## Suites in brief", "", "The other suites on the official ConvNet (the `fmnist` suite's cells are the "
              "tables above; each has its page under the detail pages, as have the suites made with the pad1 "
              "network).", ""]
    for folder in BENCH_SECTIONS:
        if folder in SHOWN_ABOVE or folder in DETAIL_ONLY:
            continue
        if folder in details and all(official(r) for r in read_folder(DATA / folder).values()):
            parts += [f"### [{details[folder][0]}](notebook/{folder}.md)", "", suite_grid(DATA / folder), ""]
    parts += ["## Detail pages", ""]
    parts += detail_index(details)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).rstrip("\n") + "\n"  # one blank line between blocks


DETAIL_GROUPS = (  # (group, whether a page's slug belongs to it), the first that matches
    ("Benchmark suites, one page each", lambda slug: slug.startswith("bench-")),
    ("Trajectory matching and LTDD", lambda slug: slug.startswith(("ltdd-", "trajectory-", "anatomy-", "phase-"))),
    ("Comparisons", lambda slug: slug in ("findings", "summary", "stem", "defaults", "twostage", "foundation")
     or slug.startswith("relabeled-random")),
    ("Tuning, experts, cost, speed, published numbers", lambda slug: True),
)


def detail_index(details: dict[str, tuple[str, str]]) -> list[str]:
    """The detail pages as one list item per DETAIL_GROUPS group, each page linked by its slug (a suite's without
    "bench-"), the item wrapped in lines of at most 118 characters: the whole index in a dozen lines."""
    group_of = {slug: next(group for group, holds in DETAIL_GROUPS if holds(slug)) for slug in details}
    lines = []
    for group, _ in DETAIL_GROUPS:
        slugs = [slug for slug in details if group_of[slug] == group]
        if not slugs:
            continue
        line = f"- {group}:"
        for i, slug in enumerate(slugs):
            link = f" [{slug.removeprefix('bench-')}](notebook/{slug}.md)" + ("," if i < len(slugs) - 1 else ".")
            if len(line) + len(link) > 236:
                lines.append(line)
                line = " "
            line += link
        lines.append(line)
    return lines


def pages() -> dict[Path, str]:
    """Every generated document: docs/results.md and docs/notebook/<slug>.md."""
    out = {ROOT / "docs" / "results.md": render()}
    for slug, (title, body) in detail_pages().items():
        out[NOTEBOOK / f"{slug}.md"] = (f"# {title}\n\n[The results page](../results.md)\n\n{body.rstrip()}\n")
    return out


def without_provenance(text: str) -> str:
    """The document less its "Generated by ..." line, which names the commit it was rendered at."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("Generated by "))


def main() -> None:
    generated = pages()
    if sys.argv[1:] == ["--check"]:  # CI: the committed documents are what the committed data renders to
        stale = [p for p, text in generated.items()
                 if not p.exists() or without_provenance(text) != without_provenance(p.read_text())]
        stale += sorted(set(NOTEBOOK.glob("*.md")) - set(generated))
        if stale:
            raise SystemExit(f"stale or edited by hand: {', '.join(map(str, stale))}: run python benchmarks/results.py")
        return
    NOTEBOOK.mkdir(exist_ok=True)
    for old in set(NOTEBOOK.glob("*.md")) - set(generated):
        old.unlink()
    for path, text in generated.items():
        path.write_text(text)
    print(f"wrote {len(generated)} documents: docs/results.md and docs/notebook/")


if __name__ == "__main__":
    main()
