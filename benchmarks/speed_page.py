"""The speed page (docs/notebook/speed.md): its tables from the timing files in docs/data/ (eval-speed-*, tm-speed/,
compile-speed/, together-speed/, warm-start/, scaling/, profile/, grid-cost/), each beside its note in
benchmarks/notes/. Part of benchmarks/results.py's rendering."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

from docsource import DATA, ROOT, note
from faster_cells import COMPILED, UNROLL_BFLOAT16, UNROLL_COMPILED

from ltdistill.runtime import processor

MALLOC_NOTE = (
    " The -malloc- pair ran back to back (`--malloc default`, then `--malloc tuned`) with the background jobs "
    "paused: the same code under glibc's own malloc settings and under the ones the ltdistill command sets since "
    "ltdistill/runtime.py, which keep freed blocks for reuse instead of faulting fresh pages in at every student "
    "step: full unrolling at IPC 50 runs 1.8x faster, IPC 10 ~10%, the TESLA gradient (little memory) unchanged.")


MALLOC = {"default": "as glibc sets it", "tuned": "as the ltdistill command sets it (ltdistill/runtime.py)"}


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


def eval_speed(paths: list[Path]) -> str:
    lines = ["| training set | model | epochs | device | seconds per evaluation run | balanced acc |",
             "|---|---|---|---|---|---|"]
    for p in paths:
        r = json.loads(p.read_text())
        lines.append(f"| {r['dataset']} beta {r['imbalance_factor']:g} {r['method']} IPC {r['ipc']} | "
                     f"{r['model']} {r['model_options']} | {r['epochs']} | {r['device']} | "
                     f"{r['seconds_per_run']:.1f} | {100 * r['balanced_acc']['mean']:.2f} |")
    return "\n".join(lines) + "\n"


def tm_speed_text(path: Path) -> str:
    if "interleaved" in path.stem:
        return ("`python benchmarks/student_call.py`: the torch.func student vs the module-swap student, one block of "
                "3 unrolled steps + backward, interleaved after warm-up, median of the repeats (all times in the "
                "JSON).")
    return ("`python benchmarks/tm_speed.py` (see its docstring): full back-propagation vs the constant-memory (TESLA, "
            "frozen-weights) gradient vs a reference-style implementation of the official code's pattern (flat "
            "parameter vector swapped into the modules, full unroll), in one process. Single-order timings on the "
            "2-core machine drift by up to 25% between runs of the same configuration (compare the recheck file), so "
            "differences under ~15% are not significant." + (MALLOC_NOTE if "-malloc-" in path.stem else "")
            + (H200_NOTE if "h200" in path.stem else ""))


H200_NOTE = (" On the H200 (`benchmarks/gpu_observers_speed.sh`, alone on the device) at the paper's width 128, "
             "ltdistill's full unroll against the reference-style one, at equal memory, is 1.21x, 1.12x and 1.15x "
             "at IPC 10 (10, 20, 40 steps) and 1.00x, 1.02x and 1.02x at IPC 50: short of the 1.3x the speed goal "
             "asks for. The constant-memory gradient holds 2.3-2.4 GB at IPC 50 where full unrolling grows to 57 GB "
             "at 40 steps, for 1.25x its time. Those are eager float32; the unroll's faster paths (the unroll ops "
             "compiled, bfloat16 autocast: `--set compile=true`, `--set precision='bfloat16'`) are timed against "
             "the same reference by `benchmarks/gpu_speed_goals.sh` (tm_speed.py's `--impls \"ltdistill full_bptt "
             "compiled bfloat16\"`), not yet on a GPU.")


def compile_speed_table(path: Path) -> str:
    """benchmarks/compile_speed.py: seconds per training epoch, eager against torch.compile (with --families: each
    distillation family's run or iteration)."""
    data = json.loads(path.read_text())
    if "dc_matching" in data:
        row = data["dc_matching"]
        return "\n".join([
            "| IPC | calls timed | eager s | compile=true s | speedup | the synthetic pass alone through the unroll "
            "ops: s / speedup | first call s: eager / compile=true | image gradients' largest relative difference |",
            "|---|---|---|---|---|---|---|---|",
            f"| {row['ipc']} | {row['repeats']} | {row['eager_s']:.2f} | {row['compiled_s']:.2f} | "
            f"{row['speedup']:.2f}x | {row['synthetic_only_s']:.2f} / {row['synthetic_only_speedup']:.2f}x | "
            f"{row['eager_first_s']:.1f} / {row['compiled_first_s']:.1f} | {row['relative_diff_images']:.1e} |",
            "", f"DC's matching and its backward to the images alone, one fresh network of the cpu protocol, "
            f"Fashion-MNIST-LT beta 100; medians of the calls after the first, the paths interleaved; "
            f"{data.get('note', '')}."])
    if "dc" in data:
        row = data["dc"]
        paths = (("eager", "eager"), ("compile=true, the network's training compiled only", "compiled_training"),
                 ("compile=true, its matching through the unroll ops too", "compiled"))
        return "\n".join([
            "| IPC | iterations | path | s / iteration | speedup | first iteration s | largest relative difference "
            "of a matching loss |", "|---|---|---|---|---|---|---|",
            *(f"| {row['ipc']} | {row['iterations']} | {name} | {row[key]['iteration_s']:.2f} | "
              f"{row.get(f'{key}_speedup', 1.0):.2f}x | {row[key]['first_iteration_s']:.1f} | "
              f"{row[f'{key}_loss_relative_diff']:.1e} |" if key != "eager" else
              f"| {row['ipc']} | {row['iterations']} | {name} | {row[key]['iteration_s']:.2f} | 1.00x | "
              f"{row[key]['first_iteration_s']:.1f} | - |" for name, key in paths if key in row),
            "", f"Fashion-MNIST-LT beta 100, the cpu protocol; medians of the iterations after the first two; "
            f"{data.get('note', '')}."])
    if "experts" in data:
        paths = list(next(iter(data["experts"].values()))["speedup"])
        lines = ["| expert | epochs | " + " | ".join(f"{p}: s / epoch" for p in paths) + " | an expert of the suite: "
                 + " / ".join(paths) + " |", "|---|---|" + "---|" * (len(paths) + 1)]
        for kind, row in data["experts"].items():
            parts = [key.removesuffix("_epoch_s") for key in row[paths[0]] if key.endswith("_epoch_s")]
            lines += [f"| {kind}{f' ({part} epochs)' if len(parts) > 1 else ''} | {row['epochs']} | " + " | ".join(
                f"{row[p][f'{part}_epoch_s']:.2f}" for p in paths) + " | " + (" / ".join(
                    f"{row['speedup'][p]:.2f}x" for p in paths) if i == 0 else "") + " |"
                for i, part in enumerate(parts)]
        return "\n".join([*lines, "", f"One expert of each kind on the whole Fashion-MNIST-LT beta-100 set, the cpu "
                          f"protocol's ConvNet; medians of the epochs after the first; an expert as the fmnist suite "
                          f"trains it: 20 epochs, and 5 classifier epochs for decoupled; {data.get('note', '')}."])
    if "trajectory" in data:
        row = data["trajectory"]
        return "\n".join([
            "| preset | class order | iterations | eager s / iteration | compile=true s / iteration | speedup | "
            "compile=true first iteration s | largest relative difference of a matching loss |",
            "|---|---|---|---|---|---|---|---|",
            f"| {row['preset']} | {row['class_order']} | {row['iterations']} | {row['eager']['iteration_s']:.2f} | "
            f"{row['compiled']['iteration_s']:.2f} | {row['speedup']:.2f}x | "
            f"{row['compiled']['first_iteration_s']:.1f} | {row['loss_relative_diff']:.1e} |",
            "", f"Medians of the iterations after the first two; {data.get('note', '')}."])
    if "unroll" in data:
        row, host = data["unroll"], data.get("host", {})
        cpu = row.get("cpu_seconds", {})  # the process's own CPU seconds, where recorded
        paths = [(name, row[f"{key}_s"], f"{cpu['eager_s'] / cpu[f'{key}_s']:.2f}x" if cpu else "-",
                  f"{row[compile_key]:.0f}" if compile_key else "-",
                  f"{row[f'{diff}diff_images']:.1e} / {row[f'{diff}diff_lr']:.1e}" if diff else "-")
                 for name, key, compile_key, diff in (
                     ("unroll ops, the norm's passes eager", "ops_eager", None, None),
                     ("unroll ops, compiled (`compile=true`)", "ops", "ops_compile_s", "ops_relative_"),
                     ("unroll ops, compiled, in bfloat16 (`precision=bfloat16`)", "ops_bfloat16",
                      "ops_bfloat16_compile_s", "ops_bfloat16_relative_"),
                     ("torch.func.grad over the unroll, eager", "func", None, None),
                     ("the same compiled whole", "compiled", "compile_s", "relative_"))
                 if f"{key}_s" in row]
        return "\n".join([
            "| syn_steps | eager autograd s | path | its s | speedup | CPU-time speedup | first call s (compiling) | "
            "relative difference: images / lr |", "|---|---|---|---|---|---|---|---|",
            *(f"| {row['steps']} | {row['eager_s']:.2f} | {name} | {seconds:.2f} | {row['eager_s'] / seconds:.2f}x | "
              f"{cpu_speedup} | {compile_s} | {diff} |" for name, seconds, cpu_speedup, compile_s, diff in paths),
            "", f"{processor(host)}, torch {data.get('torch')}, {data.get('note', '')}; ConvNet width "
            f"{row.get('width', 32)}, IPC {row.get('ipc', 10)}; medians of the calls after the first (eager and "
            "the other calls interleaved where the file has the unroll ops)."])
    if "families" in data:
        lines = ["| method | settings | timed | eager s | compiled s | speedup | compiled: first iteration s / whole "
                 "run s |", "|---|---|---|---|---|---|---|"]
        for name, row in data["families"].items():
            steady = "iteration_s" if row["timed"] == "iteration" else "wall_s"
            first = row["compiled"].get("first_iteration_s")
            lines.append(f"| {name} | {', '.join(f'{k}={v}' for k, v in row['settings'].items())} | {row['timed']} | "
                         f"{row['eager'][steady]:.2f} | {row['compiled'][steady]:.2f} | {row['speedup']:.2f}x | "
                         f"{'-' if first is None else f'{first:.1f}'} / {row['compiled']['wall_s']:.1f} |")
        host = data.get("host", {})
        return "\n".join([*lines, "", f"{processor(host)}, torch {data.get('torch')}, {data.get('note', '')}; "
                          "Fashion-MNIST-LT beta 100, IPC 10, the cpu protocol; an iteration's time is the median "
                          "after the first."])
    half = all("bfloat16_compiled" in row for row in data["rows"].values())  # (older files: float32 only)
    lines = ["| training set | epochs timed | eager s/epoch | compiled s/epoch | speedup | compiled first epoch s |"
             + " bfloat16 compiled s/epoch | speedup |" * half, "|---|---|---|---|---|---|" + "---|---|" * half]
    for name, row in data["rows"].items():
        lines.append(f"| {name} | {row['epochs']} | {row['eager']['epoch_s']:.3f} | {row['compiled']['epoch_s']:.3f} | "
                     f"{row['speedup']:.2f}x | {row['compiled']['first_epoch_s']:.1f} |"
                     + (f" {row['bfloat16_compiled']['epoch_s']:.3f} | {row['bfloat16_speedup']:.2f}x |" if half
                        else ""))
    host = data.get("host", {})
    lines += ["", f"{data.get('gpu') or processor(host)}, torch {data.get('torch')}, {data.get('note', '')}; "
              "medians over the epochs after the first."]
    return "\n".join(lines)


def together_speed_table(path: Path) -> str:
    """benchmarks/together_speed.py: seconds per epoch of N models one after another and as one stack, grouped
    convolutions and vmap (files made before the grouped path hold vmap's alone, as `together`), and the operations
    an epoch launches where the file counted them."""
    data = json.loads(path.read_text())
    counted = any("ops" in row["one_by_one"] for row in data["rows"].values())
    lines = ["| models | epochs timed | one by one s/epoch | grouped s/epoch | speedup | vmap s/epoch | speedup |"
             + (" operations an epoch: one by one / grouped / vmap |" if counted else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if counted else "")]
    for name, row in data["rows"].items():
        vmap = row.get("together_vmap", row.get("together"))
        vmap_speedup = row.get("speedup_vmap", row.get("speedup"))
        grouped = (f"{row['together_grouped']['epoch_s']:.4f} | {row['speedup_grouped']:.2f}x"
                   if "together_grouped" in row else "- | -")
        ops = (" " + " / ".join(str(row[k].get("ops", "-")) for k in ("one_by_one", "together_grouped",
                                                                      "together_vmap")) + " |" if counted else "")
        lines.append(f"| {name} | {row['epochs']} | {row['one_by_one']['epoch_s']:.4f} | {grouped} | "
                     f"{vmap['epoch_s']:.4f} | {vmap_speedup:.2f}x |{ops}")
    where = data.get("gpu") or data["device"]
    lines += ["", f"{where}, {data['threads']} thread(s), torch {data.get('torch')}, ConvNet width "
              f"{data.get('width', 32)}; {data.get('note') or 'alone on the device'}; medians over the epochs after "
              f"the first. Command: `{data['command']}`"]
    return "\n".join(lines)


def warm_start_table(path: Path) -> str:
    """benchmarks/warm_speed.py: one suite run under bench settings side by side (fresh interpreters, started warm,
    today's defaults), against the first."""
    r = json.loads(path.read_text())
    what = {"fresh": "each in a fresh interpreter, one at a time", "warm": "warm, from the command server, one at a "
            "time", "default": "the defaults: warm, one thread each, as many at once as there are cores"}
    names = [name for name in what if name in r]
    threads = next((r[n]["flags"][-1] for n in names if n != "default"), None)
    flags = (f" --settings {','.join(names)}" * (len(names) < 3)
             + f" --threads {threads}" * (threads is not None))
    summary = f"{r[names[0]]['commands']} commands"
    if "same_results" in r:
        summary += f"; warm and fresh give {'the same' if r['same_results'] else 'OTHER'} results"
    if "default_largest_difference" in r:
        summary += (f"; the defaults' largest difference of a cell's balanced accuracy from fresh's is "
                    f"{100 * r['default_largest_difference']:.2f} points (one thread against {threads})")
    lines = [f"`python benchmarks/warm_speed.py --suite {r['suite']}{flags} --out {path.relative_to(ROOT)}`", "",
             summary + ".", "",
             "| commands started | bench flags | wall s | CPU s (user + system) | wall speedup over the first |",
             "|---|---|---|---|---|"]
    lines += [f"| {what[name]} | {' '.join(r[name].get('flags', [])) or '-'} | {r[name]['wall_s']:.0f} | "
              f"{r[name]['cpu_s']:.0f} | {r[names[0]]['wall_s'] / r[name]['wall_s']:.2f}x |" for name in names]
    return "\n".join(lines) + "\n"


def scaling_table(path: Path) -> str:
    """benchmarks/scaling.py: processes against seconds per iteration and rank 0's peak memory."""
    data = json.loads(path.read_text())
    lines = ["| processes x threads | s/iteration (median) | command wall s | peak RSS per rank (MB) "
             "| CUDA peak (MB) |", "|---|---|---|---|---|"]
    for row in data["rows"]:  # rows before the thread count was recorded ran one thread a process
        lines.append(f"| {row['nproc']} x {row.get('threads', 1)} | {row['seconds_per_iteration']:.1f} | "
                     f"{row['wall_s']:.0f} | {row['peak_rss_mb']:.0f} | {row['cuda_peak_mb'] or '-'} |")
    return "\n".join(lines) + f"\n\nPreset {data['preset']}, {data['iterations']} iterations, {data['device']}. " \
        f"Command: `{data['command']}`\n"


def profile_tables(path: Path) -> str:
    """benchmarks/profile_roofline.py's output: the achieved FLOP rates against the measured matmul rate, then the
    operators taking the most self CPU time in each profiled cell."""
    r = json.loads(path.read_text())
    lines = [f"Dense float32 matmul on {r['threads']} thread(s): {r['matmul_gflop_per_s']:.1f} GFLOP/s"
             + (f"; {r['where']}" if "where" in r else "") + ".", "",
             "| run | GFLOP | seconds | GFLOP/s | share of the matmul rate |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {x['gflop']:.2f} | {x['seconds']:.3f} | {x['gflop_per_s']:.1f} | "
              f"{100 * x['fraction_of_matmul']:.0f}% |" for name, x in r["rates"].items()]
    dc = f", DC {r['dc_iterations']}" if "dc_iterations" in r and "dc" in r["profiles"] else ""
    epoch = "; one epoch of evaluation training" * any(name.startswith("evaluation") for name in r["profiles"])
    lines += ["", f"Operators with the most self CPU time ({r['iterations']} iterations of each method{dc}{epoch}):",
              "", "| cell | seconds | top operators (share of self CPU time) |", "|---|---|---|"]
    for name, x in r["profiles"].items():
        shares: dict[str, float] = {}
        for o in x["top_ops"]:  # inductor's graphs, each named by a hash, count as one
            op = "compiled graphs" if "CompiledFxGraph" in o["op"] else o["op"].removeprefix("aten::")
            shares[op] = shares.get(op, 0.0) + o["share"]
        top = sorted(shares.items(), key=lambda item: -item[1])[:5]
        ops = ", ".join(f"{op} {100 * share:.0f}%" for op, share in top)
        lines.append(f"| {name} | {x['seconds']:.1f} | {ops} |")
    return "\n".join(lines) + f"\n\nCommand: `{r['command']}`\n"


def grid_cost_table(path: Path) -> str:
    """benchmarks/grid_cost.py: each part's stored hours, its faster path's measured speedup, the projected hours."""
    r = json.loads(path.read_text())
    lines = ["| part | CPU hours today | faster path measured | speedup | taken | projected hours |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {x['part']} | {x['hours']:.1f} | {x['source']} | {x['measured_speedup']:.2f}x | "
              f"{x['taken_speedup']:.2f}x | {x['projected_hours']:.1f} |" for x in r["rows"] if x["hours"] >= 0.05]
    lines.append(f"| whole grid ({r['cells']} cells) | {r['total_hours']:.1f} | | | {r['projected_ratio']:.2f}x | "
                 f"{r['projected_hours']:.1f} |")
    return "\n".join(lines) + (f"\n\n{100 * r['untouched_share']:.0f}% of today's hours have no faster path. "
                               f"Command: `{r['command']}`\n")


def faster_cells_table(r: dict) -> str:
    """benchmarks/faster_cells.py: one cell made again on each faster path, scored and timed beside the float32
    eager cell (its first row); the buffer's columns where the cell has one (trajectory matching)."""
    buffer = "buffer_seconds" in r["rows"][0]
    lines = ["| path | balanced | change | within the larger std | distillation s / iteration (median) | "
             "speedup: whole / median iteration |" + " buffer s | buffer speedup |" * buffer,
             "|---|---|---|---|---|---|" + "---|---|" * buffer]
    for row in r["rows"]:
        timing = f"{row['s_per_iteration']:.2f} ({row['s_per_iteration_median']:.2f})"
        seconds = f" | {row['buffer_seconds']:.0f}" if buffer else ""
        if "change" in row:
            against = (f"{row['change']:+.2f} | {'yes' if row['within_spread'] else 'no'} | {timing} | "
                       f"{row['distill_speedup']:.2f}x / {row['median_iteration_speedup']:.2f}x"
                       f"{' (timed on another processor)' if row.get('same_host') is False else ''}{seconds}"
                       + (f" | {row['buffer_speedup']:.2f}x" if buffer else ""))
        else:
            against = f"- | - | {timing} | -{seconds}" + (" | -" if buffer else "")
        lines.append(f"| {row['variant']} | {row['mean']:.2f} ± {row['std']:.2f} | {against} |")
    return "\n".join(lines) + (f"\n\n{r['method'].upper()}, Fashion-MNIST-LT beta {r['beta']:g} IPC {r['ipc']}, "
                               f"{r['class_order']} order, {r['device']}. Command: `{r['command']}`\n")


def precision_table(path: Path) -> str:
    """benchmarks/precision_check.py: each set's scores in float32 (eager) and bfloat16 (compiled); the epoch
    timings of both are compile_speed.py's, in the compiled-training section."""
    r = json.loads(path.read_text())
    lines = []
    if r.get("scores"):
        lines += ["| set | float32 eager: balanced | bfloat16 compiled: balanced | change | within the larger std | "
                  "few: float32 / bfloat16 | s / run: float32 / bfloat16 |", "|---|---|---|---|---|---|---|"]
        for row in r["scores"]:
            full, half = row["float32 eager"], row["bfloat16 compiled"]
            name = (f"{row['method']} beta {row['beta']:g} IPC {row['ipc']} seed {row['seed']}"
                    + (f" ({row['class_order']})" if row["class_order"] != "natural" else ""))
            lines.append(f"| {name} | {100 * full['mean']:.2f} ± {100 * full['std']:.2f} | {100 * half['mean']:.2f} ± "
                         f"{100 * half['std']:.2f} | {100 * row['change']:+.2f} | "
                         f"{'yes' if row['within_spread'] else 'no'} | {100 * full['few']:.1f} / "
                         f"{100 * half['few']:.1f} | {full['seconds_per_run']:.0f} / {half['seconds_per_run']:.0f} |")
        lines.append("")
    return "\n".join(lines) + f"{processor(r['host'])}, torch {r['torch']}, {r['note']}.\n"


def read(folder: str, name: str) -> dict | None:
    path = DATA / folder / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def speedup_rows() -> list[tuple[str, list[float | None]]]:
    """The results page's side-by-side rows: each workload's faster paths as speedups over its eager float32 path
    on the same machine (SUMMARY_COLUMNS; None where not timed), from the timing files the speed page shows."""
    training, h200 = read("compile-speed", "cpu"), read("compile-speed", "cuda-h200")
    experts = read("compile-speed", "cpu-experts")
    together = {device: read("together-speed", name) for device, name in (("cpu", "cpu"), ("h200", "cuda-h200-w32"))}
    families, dc = read("compile-speed", "cpu-families"), read("compile-speed", "cpu-dc")
    ops = {ipc: read("compile-speed", name) for ipc, name in ((10, "cpu-unroll-ops"), (50, "cpu-unroll-ops-ipc50"))}

    def by_set(data: dict | None, prefix: str, key=lambda row: row["speedup"]) -> float | None:
        rows = (data or {}).get("rows", {})
        return next((key(row) for name, row in rows.items() if name.startswith(prefix)), None)

    def stacked(device: str, prefix: str) -> float | None:
        return by_set(together[device], prefix, lambda row: row.get("speedup_grouped", row.get("speedup")))

    def bf16(row: dict) -> float | None:  # timed in the same run as float32's paths
        return row.get("bfloat16_speedup")

    rows: list[tuple[str, list[float | None]]] = [
        ("evaluation training, an IPC-10 set (5 runs at once)", [
            by_set(training, "ipc10"), by_set(training, "ipc10", bf16), stacked("cpu", "5 evaluation"),
            by_set(h200, "ipc10"), stacked("h200", "5 evaluation")]),
        ("evaluation training, an IPC-50 set", [by_set(training, "ipc50"), by_set(training, "ipc50", bf16),
                                                None, None, None]),
        ("evaluation training, the whole beta-100 set", [
            by_set(training, "full"), by_set(training, "full", bf16), None, by_set(h200, "full"), None])]
    for kind in ("standard", "decoupled"):
        row = (experts or {}).get("experts", {}).get(kind)
        many = kind == "standard"  # only standard experts train as a stack (experts --together)
        rows.append((f"an expert buffer's expert, {kind}" + " (8 at once)" * many, [
            row and row["speedup"]["float32 compiled"], row and row["speedup"]["bfloat16 compiled"],
            stacked("cpu", "8 standard") if many else None, None, stacked("h200", "8 standard") if many else None]))
    for name, label in (("dm", "DM, an iteration"), ("herding", "herding, a run"), ("sre2l", "SRe2L, a short run")):
        ratio = (families or {}).get("families", {}).get(name, {}).get("speedup")
        rows.append((label, [ratio, None, None, None, None]))
    rows.append(("DC, an IPC-10 iteration", [dc and dc["dc"]["compiled_speedup"], None, None, None, None]))
    for ipc, data in ops.items():
        rows.append((f"trajectory matching's unroll, IPC {ipc}",
                     [data and data["unroll"]["ops_speedup"], data and data["unroll"].get("ops_bfloat16_speedup"),
                      None, None, None]))
    for path in sorted((DATA / "faster-cells").glob("*.json")):  # faster_cells.py: whole distillations, scored
        report = json.loads(path.read_text())
        cell = {r["variant"]: r for r in report.get("rows", [])}
        if cell:
            compiled = cell.get(UNROLL_COMPILED, cell.get(COMPILED, {}))
            rows.append((f"{report['method'].upper()}'s whole distillation, IPC {report['ipc']} (scored)",
                         [compiled.get("distill_speedup"), cell.get(UNROLL_BFLOAT16, {}).get("distill_speedup"),
                          None, None, None]))
    return rows


SUMMARY_COLUMNS = ("compiled (CPU)", "bfloat16 compiled (CPU)", "many at once (CPU)", "compiled (H200)",
                   "many at once (H200, width 32)")


def speed_summary() -> str:
    """The results page's speed section: the side-by-side speedups, the roofline fractions and the grid's hours."""
    lines = ["| workload | " + " | ".join(SUMMARY_COLUMNS) + " |", "|---|" + "---|" * len(SUMMARY_COLUMNS)]
    lines += [f"| {name} | " + " | ".join("-" if x is None else f"{x:.2f}x" for x in ratios) + " |"
              for name, ratios in speedup_rows() if any(x is not None for x in ratios)]
    lines += ["", "Made by `benchmarks/compile_speed.py` and `together_speed.py`; commands on the speed page."]
    profile = read("profile", "cpu-alone") or read("profile", "cpu")  # alone on the machine where measured so
    if profile:
        rates = "; ".join(f"{name}: {x['gflop_per_s']:.1f} GFLOP/s, {100 * x['fraction_of_matmul']:.0f}%"
                          for name, x in profile["rates"].items())
        where = profile.get("where", f"{profile['threads']} thread")
        lines += ["", f"Against this CPU's dense float32 matmul ({profile['matmul_gflop_per_s']:.1f} GFLOP/s, "
                  f"{where}): {rates} (`benchmarks/profile_roofline.py`; the operators each family spends its time "
                  "in are on the speed page)."]
    paths = {"cpu": "the compiled paths", "cpu-bfloat16": "the bfloat16 paths too, where scored (evaluation "
             "training, standard buffers, the trajectory unroll)"}
    grids = {name: grid for name in paths if (grid := read("grid-cost", name))}
    if grids:
        first = next(iter(grids.values()))
        hours = "; ".join(f"{grid['projected_hours']:.1f} projected with {paths[name]} ({grid['projected_ratio']:.2f}x)"
                          for name, grid in grids.items())
        lines += ["", f"The Fashion-MNIST-LT grid ({first['cells']} cells) cost {first['total_hours']:.1f} CPU hours; "
                  f"{hours} (`benchmarks/grid_cost.py`)."]
    # prose wrapped as the notes are, the table left as it is
    return "\n".join(line if line.startswith("|") else textwrap.fill(line, width=118, break_on_hyphens=False,
                                                                       break_long_words=False) for line in lines)


def section(title: str, note_name: str, paths: list[Path], table: Callable[[Path], str]) -> list[str]:
    """One heading and its note for a kind of timing file, then its table (a sub-heading a file where several)."""
    if len(paths) == 1:
        return [f"## {title}: {paths[0].stem}", "", note(note_name), "", table(paths[0]), ""]
    lines = [f"## {title}", "", note(note_name), ""] if paths else []
    for path in paths:
        lines += [f"### {path.stem}", "", table(path), ""]
    return lines


def speed_page() -> tuple[str, str]:
    """(title, body) of the speed page: a section per timing file, in the order a reader needs them."""
    speed = ["## Evaluation speed", "", "Seconds per evaluation run (training a fresh model on the synthetic set, then "
             "scoring both test sets) on Fashion-MNIST-LT beta 100, Random IPC 50 (500 images), batch 256, DSA.", "",
             eval_speed(sorted(DATA.glob("eval-speed-*.json")))]
    for path in sorted((DATA / "tm-speed").glob("*.json")):
        speed += [f"## Trajectory-matching cost: {path.stem}", "", tm_speed_text(path), "", speed_table(path)]
    compiled: dict[str, list[Path]] = {}
    for path in sorted((DATA / "compile-speed").glob("*.json")):
        data = json.loads(path.read_text())
        kind = ("unroll" if "trajectory" in data else "families" if "dc" in data or "dc_matching" in data
                else next((k for k in ("families", "unroll") if k in data), "training"))
        compiled.setdefault(kind, []).append(path)
    titles = {"families": "Compiled distillation loops (`--set compile=true`)", "training": "Compiled training "
              "(`--compile`)", "unroll": "The trajectory unroll compiled (`--set compile=true`, and torch.func's "
              "whole unroll, a probe)"}
    notes = {"families": "compile-families", "training": "compile-speed", "unroll": "compile-unroll"}
    for kind in ("training", "families", "unroll"):
        speed += section(titles[kind], notes[kind], compiled.get(kind, []), compile_speed_table)
    speed += section("Mixed precision (`--precision bfloat16`)", "precision",
                     sorted((DATA / "precision").glob("*.json")), precision_table)
    speed += section("Whole cells made again on the faster paths", "faster-cells",
                     sorted((DATA / "faster-cells").glob("*.json")),
                     lambda path: faster_cells_table(json.loads(path.read_text())))
    speed += section("Many models at once (`--runs-together`, `experts --together`)", "together-speed",
                     sorted((DATA / "together-speed").glob("*.json")), together_speed_table)
    speed += section("Commands started warm (`bench`, `--fresh-interpreters`)", "warm-start",
                     sorted((DATA / "warm-start").glob("*.json")), warm_start_table)
    speed += section("Many processes (torchrun)", "scaling", sorted((DATA / "scaling").glob("*.json")), scaling_table)
    speed += section("Where the time goes", "profile", sorted((DATA / "profile").glob("*.json")), profile_tables)
    speed += section("The grid's CPU hours, part by part", "grid-cost", sorted((DATA / "grid-cost").glob("*.json")),
                     grid_cost_table)
    return "Speed: evaluation runs and trajectory matching", "\n".join(speed)
