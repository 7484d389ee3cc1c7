"""Where the time goes: torch.profiler tables of a few iterations of one cell of each family on Fashion-MNIST-LT
beta 100 IPC 10 (cpu protocol, official ConvNet), and, for an evaluation training step and one MTT iteration, the
FLOP/s achieved (torch.utils.flop_counter) against this machine's measured dense matmul rate on the same threads.

    OMP_NUM_THREADS=1 python benchmarks/profile_roofline.py --experts runs/fmnist-official/experts/standard-b100-<key> \
        --model-cache runs/fmnist-official/models --out docs/data/profile/cpu.json
    OMP_NUM_THREADS=1 python benchmarks/profile_roofline.py \
        --experts runs/fmnist-orders/experts/standard-b100_random1-<key> \
        --model-cache runs/fmnist-orders/models --class-order random:1 --pause "serve_commands|ltdistill bench" \
        --out docs/data/profile/cpu-alone.json

On a GPU (`--device cuda`) the same cells, their device time in the tables and every timing waiting for the device;
the rates are set against the device's dense matmul rate in TF32, the precision cuDNN runs float32 convolutions in by
default (torch.backends.cudnn.allow_tf32), the float32 rate beside it.

--cells: which to profile (CELLS by default; `mtt-compiled`: MTT with its unroll's norm and pooling compiled,
`--set compile=true`, its FLOPs counted on the eager run, whose convolutions are the same); --experts: a standard
expert buffer of the fmnist suite (MTT replays it); --model-cache: the suite's trained models
(SRe2L loads its squeezed model from it instead of training 50 epochs; an empty folder: its warm-up trains it);
--class-order: the order both were made in (the data follows it); --pause: the processes matching the pattern
stopped meanwhile (compile_speed.paused), for rates taken alone on a busy machine. Timings include everything the
method does in those iterations; the first iteration of each is left out of the rates. DC runs its own, fewer
iterations (each is ten matchings).
"""

from __future__ import annotations

import argparse
import time
import tomllib
from pathlib import Path

import torch
from compile_speed import paused, paused_note
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ltdistill import methods, models
from ltdistill.data.longtail import load_longtail
from ltdistill.runtime import host
from ltdistill.safe_io import write_json
from ltdistill.train import TrainConfig, train_model

ROOT = Path(__file__).resolve().parent.parent
CELLS = ["evaluation", "dm", "mtt", "sre2l", "dc", "herding"]  # by default; `mtt-compiled` when asked


def matmul_rate(n: int = 1024, repeats: int = 8, device: str = "cpu", tf32: bool = False) -> float:
    """The best of `repeats` dense float32 n x n matmuls (in TF32 where asked, on a GPU), in GFLOP/s: the ceiling a
    ConvNet step is set against."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    allowed = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        best = float("inf")
        for _ in range(repeats):
            synchronize(device)
            started = time.perf_counter()
            a @ b
            synchronize(device)
            best = min(best, time.perf_counter() - started)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed
    return 2 * n**3 / best / 1e9


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def top_ops(prof, rows: int = 10, device: str = "cpu") -> list[dict]:
    """The operators with the most self time (the device's on a GPU, the host's on a CPU), with their share."""
    def own(e) -> float:
        return e.self_device_time_total if device.startswith("cuda") else e.self_cpu_time_total
    events = sorted(prof.key_averages(), key=own, reverse=True)
    total = sum(own(e) for e in events) or 1
    return [{"op": e.key, "calls": e.count, "self_ms": round(own(e) / 1e3, 2), "share": round(own(e) / total, 4)}
            for e in events[:rows]]


def eval_step(data, net_options: dict, device: str = "cpu"):
    """One evaluation training epoch on a random IPC-10 set (100 images: one batch, DSA), as a closure."""
    torch.manual_seed(0)
    model = models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), **net_options).to(device)
    index = torch.cat([data.indices_of(c)[:10] for c in range(10)])
    images, labels = data.train_x[index].to(device), data.train_y[index].to(device)
    generator = torch.Generator().manual_seed(0)

    def step():
        train_model(model, images, labels, TrainConfig(epochs=1, lr_decay_at_half=False), generator=generator)
    return step


def timed(step, repeats: int, device: str = "cpu") -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def counted(step) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experts", required=True)
    parser.add_argument("--model-cache", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--dc-iterations", type=int, default=2)
    parser.add_argument("--class-order", default="natural")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pause", metavar="PATTERN", help="stop the processes matching PATTERN (pgrep -f) meanwhile")
    parser.add_argument("--cells", type=lambda text: text.split(","), default=CELLS,
                        help=f"which cells, comma-separated (default: {','.join(CELLS)})")
    args = parser.parse_args()
    with paused(args.pause) as stopped:
        report = measure(args)
    where = paused_note(args.pause, stopped) or "one thread, beside the machine's other jobs"
    order = f" --class-order {args.class_order}" * (args.class_order != "natural")
    pause = f" --pause {args.pause!r}" * bool(args.pause)
    device = f" --device {args.device}" * (args.device != "cpu")
    cells = f" --cells {','.join(args.cells)}" * (args.cells != CELLS)
    command = ("OMP_NUM_THREADS=1 python benchmarks/profile_roofline.py --experts EXPERTS --model-cache MODELS "
               f"--out {args.out} --iterations {args.iterations} --dc-iterations {args.dc_iterations}{order}{pause}"
               f"{device}{cells}")
    write_json(Path(args.out), {**report, "where": where, "command": command})


def measure(args) -> dict:
    """The profiles and rates of every cell, and the matmul rate they are set against."""
    data = load_longtail("fashion-mnist", 100, class_order=args.class_order)
    net = {"width": 32, "depth": 3}
    device, gpu = args.device, args.device.startswith("cuda")
    float32_peak = matmul_rate(4096 if gpu else 1024, device=device)
    peak = matmul_rate(4096, device=device, tf32=True) if gpu else float32_peak  # what a float32 conv runs at
    mtt_preset = tomllib.loads((ROOT / "configs" / "mtt" / "fmnist-lt-b100-ipc10.toml").read_text())["method"]
    mtt_config = {**{k: v for k, v in mtt_preset.items() if k != "checkpoint_every"}, "iterations": args.iterations}
    on = {"progress": False, "device": device}
    cells = {  # --cells key: (the name its rows carry, one run)
        "evaluation": ("evaluation epoch (IPC 10, batch 100, DSA)", eval_step(data, net, device)),
        "dm": ("dm", lambda: methods.create("dm", iterations=args.iterations).distill(data, 10, **on)),
        "mtt": ("mtt", lambda: methods.create("mtt", **mtt_config).distill(data, 10, experts=args.experts, **on)),
        "mtt-compiled": ("mtt, unroll compiled (--set compile=true)", lambda: methods.create(
            "mtt", **mtt_config, compile=True).distill(data, 10, experts=args.experts, **on)),
        "sre2l": ("sre2l", lambda: methods.create("sre2l", iterations=args.iterations,
                                                  model_cache=args.model_cache).distill(data, 10, **on)),
        "dc": ("dc", lambda: methods.create("dc", iterations=args.dc_iterations).distill(data, 10, **on)),
        "herding": ("herding", lambda: methods.create("herding", epochs=1).distill(data, 10, **on)),
    }
    unknown = set(args.cells) - set(cells)
    if unknown:
        raise SystemExit(f"--cells: unknown {sorted(unknown)}; known: {', '.join(cells)}")
    activities = [ProfilerActivity.CPU, *[ProfilerActivity.CUDA] * gpu]
    profiles, rates = {}, {}
    for key in args.cells:
        name, run = cells[key]
        run()  # warm-up (and any one-off loading, and the compilation)
        synchronize(device)
        started = time.perf_counter()
        with profile(activities=activities) as prof:
            run()
            synchronize(device)
        profiles[name] = {"seconds": round(time.perf_counter() - started, 3), "top_ops": top_ops(prof, device=device)}
        if key in ("evaluation", "mtt", "mtt-compiled", "dc"):
            # the compiled unroll does the eager one's convolutions, the only FLOPs flop_counter counts in either
            flops = counted(cells["mtt"][1] if key == "mtt-compiled" else run)
            seconds = timed(run, 5 if key == "evaluation" else 2, device)
            rates[name] = {"gflop": round(flops / 1e9, 3), "seconds": round(seconds, 4),
                           "gflop_per_s": round(flops / seconds / 1e9, 2),
                           "fraction_of_matmul": round(flops / seconds / 1e9 / peak, 4)}
        print(name, profiles[name]["seconds"], rates.get(name), flush=True)
    return {
        "device": device, "gpu": torch.cuda.get_device_name() if gpu else None, "threads": torch.get_num_threads(),
        "host": host(), "matmul_gflop_per_s": round(peak, 2),
        **({"matmul_precision": "tf32", "matmul_float32_gflop_per_s": round(float32_peak, 2)} if gpu else {}),
        "iterations": args.iterations, "dc_iterations": args.dc_iterations, "class_order": args.class_order,
        "profiles": profiles, "rates": rates,
        "note": "per cell: one warm-up run, then the profiled run; rates: FLOPs of one run (flop_counter) over its "
                "median wall time; MTT's run includes its expert loading and evaluation-free setup"}


if __name__ == "__main__":
    main()
