"""Evaluation training eager against torch.compile (train.compiled_model, `--compile`) on Fashion-MNIST-LT sizes:
distilled sets of IPC 10 and 50 (100 and 500 images: one and two batches an epoch) and the full long-tailed set at
beta 100. Each is timed over the same epochs after a first epoch that pays the compilation (reported apart; the
median of the rest is the steady cost, the list shows the warm-up), one thread; the same compiled in bfloat16 beside
them (precision_check.py scores it). `--families`: each distillation family's first-order loop at Fashion-MNIST-LT
beta 100 IPC 10 (the cpu protocol), eager and with the method's `compile=True`: DM's iterations (median seconds per
iteration after the first, which pays the compilation), and the whole distillation of DC (a few outer iterations),
herding (its feature extractor's epochs) and SRe2L (its squeezed model's epochs, one recovery iteration). `--experts
EPOCHS`: an expert of each kind (standard, decoupled) eager, compiled and in bfloat16 compiled. `--dc IPC`: DC's
iterations eager, with its network training compiled only, and with its matching through the unroll ops too;
`--dc-matching IPC`: its matching alone, the paths interleaved. `--unroll`: the trajectory family's full unroll
(match_trajectory's full_bptt, whose meta-gradient needs a double backward that torch.compile's autograd cannot
take) written instead as torch.func.grad over the whole unroll and compiled as one first-order graph, against the
eager autograd unroll: the gradient with respect to 100 images (IPC 10) and the lr, at a few syn_steps; the unroll
ops also under bfloat16 autocast (the trajectory methods' precision="bfloat16").

    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --pause "serve_commands|ltdistill bench" \
        --out docs/data/compile-speed/cpu.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --families --out docs/data/compile-speed/cpu-families.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --unroll 3 --out docs/data/compile-speed/cpu-unroll.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --unroll 20 --ops-only --repeats 5 \
        --pause "serve_commands|ltdistill" --out docs/data/compile-speed/cpu-unroll-ops.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --unroll 20 --ipc 50 --ops-only --repeats 2 \
        --pause "serve_commands|ltdistill" --out docs/data/compile-speed/cpu-unroll-ops-ipc50.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --trajectory configs/mtt/fmnist-lt-b100-ipc10.toml \
        EXPERTS --class-order random:1 --out docs/data/compile-speed/cpu-mtt.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --trajectory configs/ltdd/fmnist-lt-b100-ipc50.toml \
        EXPERTS --class-order random:1 --iterations 8 --out docs/data/compile-speed/cpu-ltdd-ipc50.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --dc-matching 10 --repeats 7 \
        --out docs/data/compile-speed/cpu-dc-matching.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --dc-matching 50 --repeats 5 \
        --out docs/data/compile-speed/cpu-dc-matching-ipc50.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --dc 10 --iterations 6 \
        --out docs/data/compile-speed/cpu-dc.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --dc 50 --iterations 4 \
        --out docs/data/compile-speed/cpu-dc-ipc50.json
    OMP_NUM_THREADS=1 python benchmarks/compile_speed.py --experts 2 --out docs/data/compile-speed/cpu-experts.json

On a GPU (`--device cuda`) the same timings of evaluation training and of the unroll, `--width` and `--ipc` setting
the ConvNet's width and the unrolled images (IPC 10 at width 32 by default, the cpu protocol's); every timing waits
for the device to finish.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

from ltdistill import models
from ltdistill.data.longtail import load_longtail
from ltdistill.runtime import host
from ltdistill.safe_io import write_json
from ltdistill.train import TrainConfig, forward_precision, train_model


def training_sets(epochs_small: int, epochs_full: int) -> dict:
    """{name: (images, labels, epochs)}: an IPC-10 and an IPC-50 set of Fashion-MNIST-LT beta 100 (its first ten or
    fifty images a class; the tail's fewest classes hold more than fifty) and the whole beta-100 set."""
    data = load_longtail("fashion-mnist", 100.0)
    sets = {}
    for ipc in (10, 50):
        index = torch.cat([data.indices_of(c)[:ipc] for c in range(10)])
        sets[f"ipc{ipc} ({len(index)} images)"] = (data.train_x[index], data.train_y[index], epochs_small)
    return {**sets, f"full beta 100 ({len(data.train_y)} images)": (data.train_x, data.train_y, epochs_full)}


def seconds(images, labels, compile: bool, epochs: int, device: str = "cpu", width: int = 32,
            precision: str = "float32") -> dict:
    torch.manual_seed(0)
    model = models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=width, depth=3).to(device)
    per_epoch: list[float] = []
    config = TrainConfig(epochs=epochs + 1, compile=compile, precision=precision, lr_decay_at_half=False)
    train_model(model, images, labels, config, generator=torch.Generator().manual_seed(0),
                on_epoch=lambda done, s: per_epoch.append(s))
    return {"first_epoch_s": per_epoch[0], "epoch_s": statistics.median(per_epoch[1:]),
            "epochs_s": [round(t, 4) for t in per_epoch]}


FAMILIES = {  # method: (its settings here, what is timed)
    "dm": ({"iterations": 40}, "iteration"),
    "dc": ({"iterations": 3}, "run"),
    "herding": ({"epochs": 3}, "run"),
    "sre2l": ({"epochs": 3, "iterations": 1}, "run"),
}


def families() -> dict:
    from ltdistill import methods

    data = load_longtail("fashion-mnist", 100.0)
    rows = {}
    for name, (settings, timed) in FAMILIES.items():
        row: dict = {"settings": settings, "timed": timed}
        for compile in (False, True):
            start = time.perf_counter()
            synthetic = methods.create(name, protocol="cpu", compile=compile, **settings).distill(
                data, 10, seed=0, progress=False)
            wall = time.perf_counter() - start
            its = [t for t in synthetic.meta.get("iteration_seconds", []) if t is not None]
            row["compiled" if compile else "eager"] = {
                "wall_s": wall, **({"first_iteration_s": its[0], "iteration_s": statistics.median(its[1:])}
                                   if timed == "iteration" and len(its) > 1 else {})}
        steady = "iteration_s" if timed == "iteration" else "wall_s"
        row["speedup"] = row["eager"][steady] / row["compiled"][steady]
        rows[name] = row
        print(name, json.dumps(row), flush=True)
    return rows


EXPERT_PATHS = {"float32 eager": ("float32", False), "float32 compiled": ("float32", True),
                "bfloat16 compiled": ("bfloat16", True)}
SUITE_EXPERT_EPOCHS = {"standard": 20, "rep": 20, "cls": 5}  # the fmnist suite's buffers (benchmarks/suites)


def experts(epochs: int) -> dict:
    """One expert of each kind the fmnist suite trains, on the whole beta-100 set at the cpu protocol's width, under
    each path (ExpertConfig's `compile` and `precision`): standard (SGD, DSA) and decoupled (GSAM representation
    epochs, then the class-aware classifier epochs on the head). Per epoch: the median after the first, which pays
    the compilation, from the seconds the buffer records; per expert: those epochs weighted as the suite trains
    them (20 + 5 for decoupled), the speedup over float32 eager."""
    import tempfile

    from ltdistill.experts.train import ExpertConfig, train_experts

    data = load_longtail("fashion-mnist", 100.0)
    rows = {}
    for kind, parts in (("standard", ("standard",)), ("decoupled", ("rep", "cls"))):
        row: dict = {"epochs": epochs}
        for path, (precision, compile) in EXPERT_PATHS.items():
            config = ExpertConfig(num_experts=1, epochs=epochs + 1, cls_epochs=epochs + 1, width=32, depth=3,
                                  decoupled=kind == "decoupled", compile=compile, precision=precision)
            with tempfile.TemporaryDirectory() as out:
                buffer = train_experts(data, config, out, progress=False, together="off")
                per_part = {part: buffer.epoch_seconds(part, 0) or [] for part in parts}
            row[path] = {**{f"{part}_epoch_s": statistics.median(t[1:]) for part, t in per_part.items()},
                         **{f"{part}_epochs_s": [round(x, 3) for x in t] for part, t in per_part.items()}}
            row[path]["expert_s"] = sum(SUITE_EXPERT_EPOCHS[part] * row[path][f"{part}_epoch_s"] for part in parts)
        base = row["float32 eager"]["expert_s"]
        row["speedup"] = {path: base / row[path]["expert_s"] for path in EXPERT_PATHS}
        rows[kind] = row
        print(kind, json.dumps(row["speedup"]), flush=True)
    return rows


def iteration_times(name: str, settings: dict, data, ipc: int, paths: dict, **distill) -> dict:
    """A method distilled once for each path (its `compile` and what to patch meanwhile): the median seconds of an
    iteration after the first two (the first pays the compilation), and how far each path's losses drift from the
    first path's."""
    from ltdistill import methods

    row: dict = {}
    for path, (compile, patches) in paths.items():
        with contextlib.ExitStack() as stack:
            for target, value in patches.items():
                stack.enter_context(mock.patch(target, value))
            synthetic = methods.create(name, **{**settings, "compile": compile}).distill(
                data, ipc, seed=0, progress=False, **distill)
        its = [t for t in synthetic.meta["iteration_seconds"] if t is not None]
        row[path] = {"first_iteration_s": its[0], "iteration_s": statistics.median(its[2:]),
                     "losses": synthetic.meta["loss_history"]}
    first, *others = paths
    for path in others:
        row[f"{path}_speedup"] = row[first]["iteration_s"] / row[path]["iteration_s"]
        row[f"{path}_loss_relative_diff"] = max(abs(c - e) / abs(e) for e, c in zip(
            row[first]["losses"], row[path]["losses"], strict=True))
    return row


def trajectory_run(preset: str, experts: str, class_order: str, iterations: int) -> dict:
    """A trajectory method's preset distilled for `iterations` from its experts, eager and with `compile=true`
    (models/unroll_ops.py)."""
    from ltdistill.config import load_preset

    settings, run = load_preset(preset)
    data = load_longtail(run["dataset"], float(run["imbalance"]), class_order=class_order)
    row: dict = {"preset": preset, "class_order": class_order, "iterations": iterations}
    row.update(iteration_times(run["method"], {**settings, "protocol": run.get("protocol", "cpu"),
                                               "iterations": iterations}, data, int(run["ipc"]),
                               {"eager": (False, {}), "compiled": (True, {})}, experts=experts))
    row["speedup"], row["loss_relative_diff"] = row.pop("compiled_speedup"), row.pop("compiled_loss_relative_diff")
    print(json.dumps({k: v for k, v in row.items() if k not in ("eager", "compiled")}), flush=True)
    return row


def dc_run(ipc: int, iterations: int) -> dict:
    """DC at Fashion-MNIST-LT beta 100 (the cpu protocol) for `iterations`: eager; with `compile=true` but its
    matching kept on autograd (the network's training compiled only, as before the unroll ops); and with
    `compile=true` (the matching's double backward through models/unroll_ops.py too)."""
    data = load_longtail("fashion-mnist", 100.0)
    no_ops = {"ltdistill.methods.dc.unroll_ops_where_taken": lambda net, kernels=None: contextlib.nullcontext(net)}
    row: dict = {"method": "dc", "ipc": ipc, "iterations": iterations}
    row.update(iteration_times("dc", {"protocol": "cpu", "iterations": iterations}, data, ipc, {
        "eager": (False, {}), "compiled_training": (True, no_ops), "compiled": (True, {})}))
    print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
    return row


def unroll(steps: int, repeats: int = 3, device: str = "cpu", width: int = 32, ipc: int = 10,
           whole: bool = True) -> dict:
    """Seconds of one meta-gradient (d loss / d images, d loss / d lr) of a `steps`-step unroll of the official
    ConvNet of depth 3 (the cpu protocol's width 32, or `width`) on 10 x `ipc` images: eager autograd (the full_bptt
    pattern) against the same unroll through models/unroll_ops.py (the instance norm's closed-form double backward
    and the sliced pooling), the norm's passes eager and compiled (the trajectory methods' `compile=true`), and,
    with `whole`, against torch.func.grad over the unroll, eager and compiled; each compiled path's first call (the
    compilation) apart, and how far its gradients are from eager autograd's. The calls alternate, so a neighbour's
    load falls on each."""
    from torch.func import grad

    from ltdistill.experts.student import FlatModel
    from ltdistill.families.trajectory import student_loss

    torch.manual_seed(0)
    student = FlatModel(models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=width, depth=3,
                                      stem="official").to(device))
    start = torch.cat([p.detach().flatten() for p in student.model.parameters()])
    target = start + 0.01 * torch.randn_like(start)
    images = torch.randn(10 * ipc, 1, 28, 28, device=device, requires_grad=True)
    labels = torch.arange(10, device=device).repeat_interleave(ipc)
    lr = torch.tensor(0.01, device=device, requires_grad=True)

    def timed(call, *args):
        started = time.perf_counter()
        out = call(*args)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return out, time.perf_counter() - started
    denom = (start - target).square().sum()

    def autograd_unroll(images, lr):
        v = start.clone().requires_grad_(True)
        for _ in range(steps):
            loss = student_loss(student(v, images), labels)
            v = v - lr * torch.autograd.grad(loss, v, create_graph=True)[0]
        return torch.autograd.grad((v - target).square().sum() / denom, (images, lr))

    def matching_loss(images, lr):
        v = start
        for _ in range(steps):
            v = v - lr * grad(lambda w: student_loss(student(w, images), labels))(v)
        return (v - target).square().sum() / denom

    def ops_unroll(kernels, precision: str = "float32"):
        def call(images, lr):
            student.model.use_unroll_ops(kernels)
            try:
                with forward_precision(device, precision):  # the trajectory methods' precision="bfloat16"
                    return autograd_unroll(images, lr)
            finally:
                student.model.use_unroll_ops(None)
        return call

    def differences(got, prefix: str = "") -> dict:  # against eager autograd's, relative to the largest entry
        return {f"{prefix}relative_diff_images": float((got[0] - reference[0]).abs().max() / reference[0].abs().max()),
                f"{prefix}relative_diff_lr": float((got[1] - reference[1]).abs() / reference[1].abs())}

    reference, first = timed(autograd_unroll, images, lr)
    ops, ops_compile_s = timed(ops_unroll("compiled"), images, lr)
    row: dict = {"steps": steps, "ipc": ipc, "width": width, "device": device, "eager_first_s": first,
                 "ops_compile_s": ops_compile_s, **differences(ops, "ops_")}
    half, row["ops_bfloat16_compile_s"] = timed(ops_unroll("compiled", "bfloat16"), images, lr)
    row.update(differences(half, "ops_bfloat16_"))
    row["ops_bfloat16_cosine_images"] = float(F.cosine_similarity(half[0].flatten(), reference[0].flatten(), dim=0))
    calls = {"eager_s": autograd_unroll, "ops_eager_s": ops_unroll("eager"), "ops_s": ops_unroll("compiled"),
             "ops_bfloat16_s": ops_unroll("compiled", "bfloat16")}
    if whole:
        func_unroll = grad(matching_loss, argnums=(0, 1))
        compiled = torch.compile(func_unroll)
        got, row["compile_s"] = timed(compiled, images, lr)
        row.update(differences(got))
        calls.update(func_s=func_unroll, compiled_s=compiled)
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    cpu_seconds: dict[str, list[float]] = {name: [] for name in calls}  # this process's: a neighbour's load left out
    for _ in range(repeats):
        for name, call in calls.items():
            cpu_started = time.process_time()
            seconds[name].append(timed(call, images, lr)[1])
            cpu_seconds[name].append(time.process_time() - cpu_started)
    row.update({name: statistics.median(s) for name, s in seconds.items()})
    row["cpu_seconds"] = {name: statistics.median(s) for name, s in cpu_seconds.items()}
    row["ops_speedup"] = row["eager_s"] / row["ops_s"]
    row["ops_cpu_speedup"] = row["cpu_seconds"]["eager_s"] / row["cpu_seconds"]["ops_s"]
    row["ops_bfloat16_speedup"] = row["eager_s"] / row["ops_bfloat16_s"]
    if whole:
        row["speedup"] = row["eager_s"] / row["compiled_s"]
    print(json.dumps(row), flush=True)
    return row


def dc_matching(ipc: int, repeats: int) -> dict:
    """DC's matching alone (methods/dc.py DC.matching_loss and its backward to the images: the real passes
    first-order, the synthetic ones twice) on a fresh network of the cpu protocol, eager against compile=true (the
    real pass compiled, the synthetic one through the unroll ops) and against its synthetic pass alone through the
    unroll ops (the real one eager), the calls interleaved over the same draws; the image gradients' largest
    difference from eager's relative to its largest entry."""
    from ltdistill import methods
    from ltdistill.families.init import real_per_class
    from ltdistill.families.randomnet import Context

    data = load_longtail("fashion-mnist", 100.0)
    paths = {"eager": methods.create("dc", protocol="cpu"), "compiled": methods.create("dc", protocol="cpu",
                                                                                        compile=True)}
    paths["synthetic_only"] = methods.create("dc", protocol="cpu", compile=True)
    for method in paths.values():  # the protocol's width and depth, as distill gives them
        method.config = method.scaled(data.im_size)
    real_eager = {"compiled_model": lambda net: net}  # the synthetic_only path: the real pass eager
    images, labels, _ = real_per_class(data, ipc, torch.Generator().manual_seed(0))
    ctx = Context(paths["eager"], data, ipc, labels, torch.Generator().manual_seed(0), "cpu")
    net = ctx.network()
    times: dict[str, list[float]] = {name: [] for name in paths}
    grads: dict[str, torch.Tensor] = {}
    for r in range(repeats + 1):  # the first call of each pays its compilation
        for name, method in paths.items():
            ctx.generator = torch.Generator().manual_seed(r)
            x = images.clone().requires_grad_(True)
            with (mock.patch.multiple("ltdistill.methods.dc", **real_eager) if name == "synthetic_only"
                  else contextlib.nullcontext()):
                start = time.perf_counter()
                method.matching_loss(ctx, net, x).backward(inputs=[x])
                times[name].append(time.perf_counter() - start)
            grads[name] = x.grad
    row: dict = {"ipc": ipc, "repeats": repeats, **{f"{name}_first_s": t[0] for name, t in times.items()},
                 **{f"{name}_s": statistics.median(t[1:]) for name, t in times.items()}}
    row["speedup"] = row["eager_s"] / row["compiled_s"]
    row["synthetic_only_speedup"] = row["eager_s"] / row["synthetic_only_s"]
    row["relative_diff_images"] = float((grads["compiled"] - grads["eager"]).abs().max() / grads["eager"].abs().max())
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--families", action="store_true", help="time the distillation families instead")
    parser.add_argument("--unroll", type=int, default=0, help="time the compiled unroll of this many syn_steps")
    parser.add_argument("--ops-only", action="store_true",
                        help="with --unroll: eager against the unroll ops only (not torch.func's unroll)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls of each unroll (the median is kept)")
    parser.add_argument("--trajectory", nargs=2, metavar=("PRESET", "EXPERTS"),
                        help="time a trajectory preset's iterations from these experts, eager against compile=true")
    parser.add_argument("--class-order", default="natural", help="with --trajectory: the experts' class order")
    parser.add_argument("--dc", type=int, metavar="IPC", help="time DC's iterations at this IPC: eager, compiled "
                        "training only, compiled training and matching")
    parser.add_argument("--dc-matching", type=int, metavar="IPC", help="time DC's matching alone at this IPC: "
                        "eager, compile=true and its synthetic pass alone compiled, interleaved (--repeats calls each)")
    parser.add_argument("--experts", type=int, metavar="EPOCHS", help="time an expert of each kind over this many "
                        "epochs after the first: eager, compiled, bfloat16 compiled")
    parser.add_argument("--iterations", type=int, default=12, help="with --trajectory or --dc: iterations of each run")
    parser.add_argument("--epochs-small", type=int, default=40)
    parser.add_argument("--epochs-full", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=32, help="the ConvNet's width (evaluation training, unroll)")
    parser.add_argument("--ipc", type=int, default=10, help="images per class of the unroll")
    parser.add_argument("--pause", metavar="PATTERN", help="stop the processes whose command line matches PATTERN "
                        "(pgrep -f) while timing, and continue them after: timings alone on a busy machine")
    args = parser.parse_args()
    if args.families and args.device != "cpu":
        parser.error("--families times the CPU only")
    if args.device == "cpu":
        torch.set_num_threads(1)
    with paused(args.pause) as stopped:
        measure(args, where(args.device, paused_note(args.pause, stopped)))


@contextlib.contextmanager
def paused(pattern: str | None):
    """The processes whose command line matches `pattern` (pgrep -f), this one and its ancestors aside, stopped
    (SIGSTOP) while the block runs and continued after, however it ends; yields their ids. Linux only (/proc)."""
    if not pattern:
        yield []
        return
    mine, pid = set(), os.getpid()  # this process and those that started it (their command lines hold the pattern)
    while pid > 1:
        mine.add(pid)
        pid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    pids = [int(pid) for pid in found if int(pid) not in mine]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def paused_note(pattern: str | None, stopped: list[int]) -> str | None:
    """How timings taken inside `paused(pattern)` ran, given the ids it stopped; None when it stopped none."""
    return f"one thread; the {len(stopped)} other processes matching {pattern!r} paused meanwhile" if stopped else None


def measure(args, place: dict) -> None:
    """Run the timing `args` ask for and write it with `place` (where)."""
    if args.trajectory:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        row = trajectory_run(*args.trajectory, class_order=args.class_order, iterations=args.iterations)
        write_json(args.out, {"trajectory": row, **place})
        return
    if args.dc_matching:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, {"dc_matching": dc_matching(args.dc_matching, args.repeats), **place})
        return
    if args.experts:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, {"experts": experts(args.experts), **place})
        return
    if args.dc:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, {"dc": dc_run(args.dc, args.iterations), **place})
        return
    if args.families or args.unroll:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        measured = ({"families": families()} if args.families
                    else {"unroll": unroll(args.unroll, args.repeats, device=args.device, width=args.width,
                                           ipc=args.ipc, whole=not args.ops_only)})
        write_json(args.out, {**measured, **place})
        return
    rows = {}
    for name, (x, y, epochs) in training_sets(args.epochs_small, args.epochs_full).items():
        eager = seconds(x, y, False, epochs, args.device, args.width)
        compiled = seconds(x, y, True, epochs, args.device, args.width)
        half = seconds(x, y, True, epochs, args.device, args.width, precision="bfloat16")
        rows[name] = {"epochs": epochs, "width": args.width, "eager": eager, "compiled": compiled,
                      "speedup": eager["epoch_s"] / compiled["epoch_s"], "bfloat16_compiled": half,
                      "bfloat16_speedup": eager["epoch_s"] / half["epoch_s"]}
        print(name, json.dumps(rows[name]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"rows": rows, **place})


def where(device: str, note: str | None = None) -> dict:
    """What the timings ran on: the host, torch, and the GPU or the CPU's one thread beside other jobs (or `note`)."""
    gpu = device.startswith("cuda")
    return {"host": host(), "torch": torch.__version__, "device": device,
            "gpu": torch.cuda.get_device_name() if gpu else None,
            "note": note or ("alone on the GPU" if gpu else "one thread; measured beside other jobs on the same "
                                                            "machine"),
            "time": time.strftime("%Y-%m-%d")}


if __name__ == "__main__":
    main()
