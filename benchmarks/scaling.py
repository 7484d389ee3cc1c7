"""Processes against wall time and per-rank memory: a few iterations of a distillation under torchrun with 1, 2, ...
processes (gloo on CPU, nccl on GPUs), the same set each time. Wall time is the command's; peak memory is rank 0's
(the artifact's peak_rss_mb, and cuda_peak_mb on a GPU), which every rank matches within its share.

    python benchmarks/scaling.py --experts runs/fmnist-official/experts/standard-b100-<key> \
        --out docs/data/scaling/cpu-mtt-ipc50.json [--nproc 1 2] [--threads-alone 2] [--device cuda]

Each torchrun process runs one thread (OMP_NUM_THREADS=1); --threads-alone adds one plain process with that many.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ltdistill.runtime import host
from ltdistill.safe_io import write_json

ROOT = Path(__file__).resolve().parent.parent


def run(nproc: int, args, threads: int = 1) -> dict:
    """One distillation by `nproc` torchrun processes of `threads` torch threads each (`nproc` 0: one plain
    process, no torchrun)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set"
        launcher = (["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc
                    else [])
        cmd = [sys.executable, *launcher, "-m", "ltdistill.cli", "distill", "--config", str(ROOT / args.preset),
               *shlex.split(args.data_args), "--experts", args.experts,
               "--set", f"iterations={args.iterations}", "--set", "checkpoint_every=1000", "--device", args.device,
               "--no-progress", "--out", str(out)]
        started = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        seconds = time.perf_counter() - started
        meta = json.loads((out / "meta.json").read_text())
    return {"nproc": max(nproc, 1), "threads": threads, "wall_s": round(seconds, 2),
            "peak_rss_mb": meta.get("peak_rss_mb"),
            "cuda_peak_mb": meta.get("cuda_peak_mb"),
            "seconds_per_iteration": statistics.median(meta["iteration_seconds"]) if meta.get("iteration_seconds")
            else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--experts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="configs/mtt/fmnist-lt-b100-ipc50.toml")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-args", default="", help="distill flags that pick the buffer's data, e.g. "
                        "'--imbalance 10 --class-order hard-tail'")
    parser.add_argument("--threads-alone", type=int, nargs="*", default=[],
                        help="also one plain process with each of these thread counts (the other way to use the "
                             "cores)")
    args = parser.parse_args()
    rows = [run(n, args) for n in args.nproc] + [run(0, args, threads) for threads in args.threads_alone]
    for row in rows:
        print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"rows": rows, "preset": args.preset, "iterations": args.iterations, "device": args.device,
                          "host": host(),
                          "command": f"python benchmarks/scaling.py --experts EXPERTS --out "
                                     f"{args.out} --preset {args.preset} --iterations {args.iterations} --nproc "
                                     + " ".join(map(str, args.nproc)) + f" --device {args.device}"
                                     + (f" --data-args {shlex.quote(args.data_args)}" if args.data_args else "")
                                     + (" --threads-alone " + " ".join(map(str, args.threads_alone))
                                        if args.threads_alone else "")})


if __name__ == "__main__":
    main()
