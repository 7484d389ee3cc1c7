"""A suite run into fresh run directories under bench settings side by side:
- `fresh`: each command in a fresh interpreter (`--fresh-interpreters`), one at a time on every core (`--jobs 1
  --threads CORES`, or the script's --threads): the bench's defaults before its command server;
- `warm`: the same, started warm from the command server (bench/warm.py);
- `default`: the bench's defaults today (warm, as many one-thread commands at once as there are cores).
Wall seconds and CPU seconds (user + system of the bench and every process under it) of each, the number of
commands, whether `warm` and `fresh` give the same results (balanced and per-class accuracy, DD-Ranking metrics of
every cell), and the largest difference of a cell's balanced accuracy between `default` and `fresh` (another thread
count sums in another order: float rounding that training carries on).

    python benchmarks/warm_speed.py --suite quick --out docs/data/warm-start/cpu-quick-jobs.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ltdistill.runtime import host
from ltdistill.safe_io import write_json

SETTINGS = {"fresh": ["--fresh-interpreters", "--jobs", "1", "--threads", "{threads}"],
            "warm": ["--jobs", "1", "--threads", "{threads}"],
            "default": []}


def timed_bench(suite: str, out: Path, flags: list[str]) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ltdistill.cli", "bench", "--suite", suite, "--out", str(out),
                    "--no-progress", *flags], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # every descendant, each waited for by its parent
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"flags": flags, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "commands": (out / "log.txt").read_text().count("$ ")}


def outcomes(out: Path) -> dict:
    return {p.name: [r["balanced_acc"], r["per_class_acc"], r.get("ddranking")]
            for p in sorted((out / "results").glob("*.json")) for r in [json.loads(p.read_text())]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--settings", default="fresh,warm,default", help=f"comma-separated, of {list(SETTINGS)}")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads of the one-at-a-time settings (default: every core, torch's own default)")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    names = args.settings.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        runs = {name: timed_bench(args.suite, Path(scratch) / name,
                                  [flag.format(threads=args.threads) for flag in SETTINGS[name]]) for name in names}
        found = {name: outcomes(Path(scratch) / name) for name in names}
    report: dict = {"suite": args.suite, **runs}
    if {"warm", "fresh"} <= set(names):
        report["same_results"] = found["warm"] == found["fresh"]
    if {"default", "fresh"} <= set(names):
        report["default_largest_difference"] = max(
            abs(found["default"][cell][0]["mean"] - found["fresh"][cell][0]["mean"]) for cell in found["fresh"])
    write_json(Path(args.out), {**report, "host": host()})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
