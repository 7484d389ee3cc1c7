"""Render docs/results.md from the measured outputs kept in docs/data/ (never typed by hand).

    python benchmarks/results.py            # after copying a suite's json/ into docs/data/<suite>/

The code builds the tables; the prose beside them lives in benchmarks/notes/ as Markdown, one paragraph per line:
sections/<folder>.md is a docs/data folder's heading and note, tuning/<folder>.md a tuning round's reading.
"""

from __future__ import annotations

import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

from runner import table

from ltdistill.report.tables import cell_label, cell_seed, file_row_name, variant

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "docs" / "data"
NOTES = Path(__file__).resolve().parent / "notes"

# docs/data folders with a section, in the document's order (heading and note: notes/sections/<folder>.md)
BENCH_SECTIONS = ["bench-fmnist-gpu", "bench-fmnist-gpu-h200", "bench-fmnist-cpu", "bench-fmnist-gpu-h200-xarch",
                  "bench-fmnist-balanced-gpu",
                  "bench-fmnist-balanced-cpu", "bench-fmnist-unilevel-cpu", "bench-fmnist-unilevel-seeds-cpu",
                  "bench-quick-cpu"]
SECTIONS = ["foundation", "trajectory-digits-cpu", "ltdd-gpu", "ltdd-digits-tuned-cpu", "ltdd-fmnist-cpu",
            "ltdd-fmnist-b10-cpu", "ltdd-fmnist-b50-cpu", "anatomy-ltdd-fmnist-cpu", "anatomy-ltdd-fmnist-b10-cpu",
            "relabeled-random-fmnist-cpu", "trajectory-gpu"]


def note(name: str, *, optional: bool = False) -> str:
    """The prose file benchmarks/notes/<name>.md as the document prints it; "" for a missing optional one."""
    path = NOTES / f"{name}.md"
    if optional and not path.is_file():
        return ""
    return path.read_text().rstrip("\n")


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


def speed_table(path: Path) -> str:
    data = json.loads(path.read_text())
    meta, faults = data["meta"], any("minor_faults_per_iter" in r for r in data["rows"])
    lines = [f"Device: {meta['gpu'] or meta['cpu'] + ' CPU, ' + str(meta['threads']) + ' threads'}; torch "
             f"{meta['torch']}; {meta['model']}, width {meta['width']}, image {meta['image']}; batch = all synthetic "
             f"images; {meta['repeats']} timed iterations after one warm-up; glibc malloc "
             f"{MALLOC[meta.get('malloc', 'default')]}.", "",
             "| IPC | syn_steps | implementation | s / iteration | peak memory (MiB) |"
             + " minor page faults / it |" * faults,
             "|---|---|---|---|---|" + "---|" * faults]
    for r in data["rows"]:
        if r.get("out_of_memory"):
            cells = [r["ipc"], r["syn_steps"], r["impl"], "out of memory", "-"]
        elif r.get("skipped"):
            cells = [r["ipc"], r["syn_steps"], r["impl"], f"not run: {r['skipped']}", "-"]
        else:
            mem = "-" if r["peak_mem_mib"] is None else f"{r['peak_mem_mib']:.0f}"
            cells = [r["ipc"], r["syn_steps"], r["impl"], f"{r['s_per_iter']:.3f}", mem]
        if faults:
            cells.append(f"{r['minor_faults_per_iter']:,}" if "minor_faults_per_iter" in r else "-")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines) + "\n"


MALLOC_NOTE = (
    " The -malloc- pair ran back to back (`--malloc default`, then `--malloc tuned`) with the background jobs "
    "paused: the same code under glibc's own malloc settings and under the ones the ltdistill command sets since "
    "ltdistill/runtime.py, which keep freed blocks for reuse instead of faulting fresh pages in at every student "
    "step: full unrolling at IPC 50 runs 1.8x faster, IPC 10 ~10%, the TESLA gradient (little memory) unchanged.")
MALLOC = {"default": "as glibc sets it", "tuned": "as the ltdistill command sets it (ltdistill/runtime.py)"}


def eval_speed(paths: list[Path]) -> str:
    lines = ["| training set | model | epochs | device | seconds per evaluation run | balanced acc |",
             "|---|---|---|---|---|---|"]
    for p in paths:
        r = json.loads(p.read_text())
        lines.append(f"| {r['dataset']} beta {r['imbalance_factor']:g} {r['method']} IPC {r['ipc']} | "
                     f"{r['model']} {r['model_options']} | {r['epochs']} | {r['device']} | "
                     f"{r['seconds_per_run']:.1f} | {100 * r['balanced_acc']['mean']:.2f} |")
    return "\n".join(lines) + "\n"


# folders whose rows differ in what no `--set` shows (hybrid sets, teachers, a tuned preset): rows named by file
NAME_ROWS_BY_FILE = {"anatomy-ltdd-fmnist-cpu", "anatomy-ltdd-fmnist-b10-cpu", "relabeled-random-fmnist-cpu",
                     "ltdd-fmnist-cpu", "ltdd-fmnist-b10-cpu",
                     "ltdd-fmnist-b50-cpu"}


def bench_section(folder: Path) -> str:
    """The bench table of a suite's result JSONs. DD-Ranking metrics the suite stored are kept (they may use the
    teacher-relabeled random baseline); cells without them get them computed from the JSONs."""
    from ltdistill.bench import ddranking
    from ltdistill.report.tables import bench_table

    results = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
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
    results = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
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
SUITE_OF_SECTION = {"bench-fmnist-cpu": ("fmnist", "runs/fmnist-cpu", "cpu", "pad1")}


def suite_coverage(folder: Path) -> str:
    """Which cells of the section's suite, as its file stands now, are in the section and which are not: planned by
    bench.plan_suite with the run's --out and --device, so this list is computed, never typed. A result whose key
    (read through bench.current_key) differs from the planned cell's was made under an older version of the suite
    file and is listed as such."""
    import contextlib

    from ltdistill.bench import cross_arch_left, current_key, digest, plan_suite

    suite, out, device, stem = SUITE_OF_SECTION[folder.name]
    with contextlib.chdir(ROOT):  # the suite names its presets relative to the repository
        cells = plan_suite(suite, Path(out), only=None, device=device, data_dir=None, cross_arch=None,
                           convnet_stem=stem).cells
    results = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    missing = [c.name for c in cells if c.name not in results]
    older = [c.name for c in cells
             if c.name in results and digest(current_key(results[c.name].get("key") or {})) != digest(c.key)]
    lacking: dict[str, list[str]] = {}
    for c in cells:
        for model in cross_arch_left(c, results[c.name]) if c.name in results else []:
            lacking.setdefault(model, []).append(c.name)
    text = (f"**Cells of the suite** (benchmarks/suites/{suite}.toml as committed, planned by `bench.plan`): "
            f"{len(cells) - len(missing)} of {len(cells)} in this section")
    text += f"; not yet run: {', '.join(f'`{n}`' for n in missing)}" if missing else ", all of them"
    text += f"; made under an older suite file: {', '.join(f'`{n}`' for n in older)}" if older else ""
    text += "".join(f"; without cross-architecture {model} yet: {', '.join(f'`{n}`' for n in names)}"
                    for model, names in lacking.items())
    return text + "."


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


def row_name(path: Path, r: dict, *, by_file: bool) -> str:
    """A cell's row name outside its own section table: a bench cell's label, the full-set reference by what it is,
    else the file name (`by_file`: the headline merges sections by it) or the method with its overrides (as the
    section tables of folders outside NAME_ROWS_BY_FILE name it)."""
    if "full" in (r.get("label"), r.get("method")):
        return "full long-tailed set"
    name = r.get("label") or (file_row_name(path.stem) if by_file else variant(r))
    return name + (f" (seed {cell_seed(r)})" if cell_seed(r) else "")


def fmnist_cells() -> list[tuple[float, int, str, str, dict]]:
    """(beta, IPC (0 = all), folder, row name, result) of every Fashion-MNIST-LT cell of the sections."""
    cells = []
    for folder in section_folders():
        for p in sorted((DATA / folder).glob("*.json")):
            r = json.loads(p.read_text())
            beta = r.get("imbalance_factor") or 0
            if r.get("dataset") != "fashion-mnist" or beta <= 1:
                continue
            cells.append((beta, r.get("ipc") or 0, folder, row_name(p, r, by_file=True), r))
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


def headline_cells() -> dict[tuple[str, float, int], tuple]:
    """(row name, beta, IPC) -> (rank, result) of the headline: where several sections measured the same cell, the
    one evaluated for 300 epochs is taken, made on the CPU before the GPU, then the section shown first."""
    chosen: dict[tuple[str, float, int], tuple] = {}
    order = {folder: i for i, folder in enumerate(section_folders())}
    for beta, ipc, folder, name, r in fmnist_cells():
        if cell_seed(r):  # the seed-0 cell stands for its method; sections give the spread over seeds
            continue
        rank = (r.get("epochs") != 300, r.get("device", "cpu") != "cpu", order[folder])
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
            gpu = "†" if r.get("device", "cpu") != "cpu" else ""
            texts.append(f"{100 * r['balanced_acc']['mean']:.1f} ({100 * r['few']:.0f}){gpu}")
        lines.append(f"| {name} | " + " | ".join(texts) + " |")
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
        for p in sorted((DATA / folder).glob("*.json")):
            r = json.loads(p.read_text())
            d = dict(r.get("distill") or {})
            if "resumed_from" not in d and d.get("timed_iterations") and d.get("iterations"):
                d["resumed_from"] = d["iterations"] - d["timed_iterations"]  # JSONs from before it was recorded
            if d.get("wall_time_s") is None or "random" in (r.get("label"), r.get("method")):
                continue
            name = row_name(p, r, by_file=folder in NAME_ROWS_BY_FILE)
            fmt = lambda v, f="{:.0f}": "-" if v is None else f.format(v)  # noqa: E731
            resumed = f" (from it. {d['resumed_from']})" if d.get("resumed_from") else ""
            lines.append(f"| {folder} | {name} | {r.get('dataset')} | {r.get('imbalance_factor', 0):g} | "
                         f"{r.get('ipc')} | {r.get('device', 'cpu')}{earlier_devices(d)} | "
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


def tuning_table(path: Path) -> str:
    """benchmarks/tune.py's tuning.json: every grid point's validation score, best first."""
    t = json.loads(path.read_text())
    lines = [f"`python benchmarks/tune.py --preset {t['preset']}"
             + (f" --imbalance {t['imbalance']:g}" if "imbalance" in t else "")  # tunings before the flag: the preset's
             + f" --holdout {t['holdout']}"
             + (f" --experts-args \"{t['experts_args']}\"" if t.get("experts_args") else "")
             + (f" --experts-dir {t['experts_dir']}" if t.get("experts_dir") else "")
             + "".join(f" --grid {g}" for g in t["grid"])
             + "".join(f" --set {shlex.quote(f)}" for f in t.get("fixed", []))
             + f"` ({t['runs']} evaluation runs per point).", "",
             "| grid point | validation balanced acc (%) | per-class validation acc (%) | learned lr |",
             "|---|---|---|---|"]
    for name, p in sorted(t["points"].items(), key=lambda kv: -kv[1]["val_balanced_acc"]):
        mark = " (chosen)" if name == t["best"] else ""
        lines.append(f"| {name}{mark} | {100 * p['val_balanced_acc']:.2f} ± {100 * p['val_std_over_runs']:.2f} | "
                     + " ".join(f"{100 * a:.0f}" for a in p["val_per_class_acc"]) + f" | {learned_lr(p['lr'])} |")
    for ref in sorted(path.parent.glob("*-val.json")):  # baselines evaluated on the same holdout
        r = json.loads(ref.read_text())
        per_class = " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"])
        lines.append(f"| reference: {r['method']} IPC {r['ipc']} (same holdout) | {100 * r['balanced_acc']['mean']:.2f}"
                     f" ± {100 * r['balanced_acc']['std']:.2f} | {per_class} | {learned_lr(r['lr'])} |")
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


def render() -> str:
    """The whole of docs/results.md, from docs/data alone (its first paragraph names the commit and machine)."""
    parts = [
        "# Results", "",
        "Generated by `python benchmarks/results.py` from the JSON outputs in `docs/data/` "
        f"(commit {commit()}, rendered on {platform.machine()} with Python {platform.python_version()}). "
        "Every table names its protocol and device; the commands that produced each cell are listed under it.", "",
    ]
    chosen = headline_cells()  # read once: the headline's note and its table show the same cells
    parts += ["## At a glance: Fashion-MNIST-LT balanced accuracy", "",
              "Balanced test accuracy in % (in brackets: mean accuracy of the 3 tail classes), one row per method or "
              "variant of the sections below, cpu protocol (ConvNet width 32, 300 evaluation epochs; the full "
              "long-tailed set's row is the same at every IPC; it trained " + full_row_note(chosen) + "). † = made and "
              "evaluated on the GPU. The paper presets "
              "and the tuned ones are separate rows (`ltdd` vs `ltdd-tuned`); ablations are rows of their own. At beta "
              "10 the `ltdd` row is the beta-10 preset (lambda_cls 0.2, the reference's beta-10 row), while the "
              "other LTDD rows there (ablations, `ltdd-bptt`, `ltdd-dam-mean1`, `ltdd-tuned`) start from the beta-100 "
              "presets (lambda_cls 0.5); the beta-100 paper preset itself scores 73.1 at beta 10. "
              "Which section each number comes from, with its spread and commands: the summary below.", "",
              headline(chosen), ""]
    parts += ["## Summary: Fashion-MNIST-LT, head vs tail", "",
              "Every Fashion-MNIST-LT cell of the sections below, by beta then IPC (many = the 4 head classes, few = "
              "the 3 tail classes by training count). Same data, same evaluation protocol (cpu: ConvNet width 32, "
              "300 evaluation epochs for sets); `device` is where the set was made and evaluated.", "",
              summary(), ""]
    for folder in BENCH_SECTIONS:
        if (DATA / folder).is_dir() and any((DATA / folder).glob("*.json")):
            coverage = [suite_coverage(DATA / folder), ""] if folder in SUITE_OF_SECTION else []
            cross = cross_arch_table(DATA / folder)
            parts += [note(f"sections/{folder}"), "", *coverage, bench_section(DATA / folder), "",
                      *([cross, ""] if cross else [])]
    twostage = DATA / "twostage-fmnist-cpu"
    if twostage.is_dir() and any(twostage.glob("*.json")):
        parts += [note("twostage"), "", twostage_section(twostage), ""]
    for folder in SECTIONS:
        if (DATA / folder).is_dir() and any((DATA / folder).glob("*.json")):
            parts += [note(f"sections/{folder}"), "", table(DATA / folder, folder in NAME_ROWS_BY_FILE), ""]
    for path in sorted((DATA / "phase-loss").glob("*.json")):
        parts += [f"## LTDD's two matching losses, measured on finished sets: {path.stem} (CPU)", "",
                  note("phase-loss"), "", phase_loss_table(path), ""]
    for path in sorted(DATA.glob("tune-*/tuning.json")):
        reading = note(f"tuning/{path.parent.name}", optional=True)
        parts += [f"## Tuning on the validation holdout: {path.parent.name}", "", f"{note('tuning')} {reading}".strip(),
                  "", tuning_table(path), ""]
    expert_files = sorted((DATA / "experts").glob("*.json"))
    if expert_files:
        parts += [note("experts"), ""]
        for path in expert_files:
            parts += [f"### {path.stem}", "", expert_table(path), ""]
    parts += [note("cost"), "", cost_table(), ""]
    phase_costs = sorted((DATA / "phase-cost").glob("*.json"))
    if phase_costs:
        parts += [note("phase-cost"), "", phase_cost_table(phase_costs), ""]
    parts += ["## Evaluation speed", "",
              "Seconds per evaluation run (training a fresh model on the synthetic set, then scoring both test sets) "
              "on Fashion-MNIST-LT beta 100, Random IPC 50 (500 images), batch 256, DSA.", "",
              eval_speed(sorted(DATA.glob("eval-speed-*.json"))), ""]
    for path in sorted((DATA / "tm-speed").glob("*.json")):
        interleaved = "interleaved" in path.stem
        parts += [f"## Trajectory-matching cost: {path.stem}", "",
                  "`python benchmarks/student_call.py`: the torch.func student vs the module-swap student, one "
                  "block of 3 unrolled steps + backward, interleaved after warm-up, median of the repeats (all "
                  "times in the JSON)." if interleaved else
                  "`python benchmarks/tm_speed.py` (see its docstring): full back-propagation vs the constant-memory "
                  "(TESLA, frozen-weights) gradient vs a reference-style implementation of the official code's "
                  "pattern (flat parameter vector swapped into the modules, full unroll), in one process. "
                  "Single-order timings on the 2-core machine drift by up to 25% between runs of the same "
                  "configuration (compare the recheck file), so differences under ~15% are not significant."
                  + (MALLOC_NOTE if "-malloc-" in path.stem else ""), "", speed_table(path), ""]
    parts += [note("published"), ""]
    return "\n".join(parts)


def without_provenance(text: str) -> str:
    """The document less its "Generated by ..." line, which names the commit it was rendered at."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("Generated by "))


def main() -> None:
    target = ROOT / "docs" / "results.md"
    if sys.argv[1:] == ["--check"]:  # CI: the committed document is what the committed data renders to
        if without_provenance(render()) != without_provenance(target.read_text()):
            raise SystemExit(f"{target} is stale or edited by hand: run python benchmarks/results.py")
        return
    target.write_text(render())
    print(f"wrote {target}")









if __name__ == "__main__":
    main()
