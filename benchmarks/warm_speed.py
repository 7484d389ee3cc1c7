"""A suite run twice into fresh run directories: its commands started warm from the bench's command server
(bench/warm.py, the default) and each in a fresh interpreter (`bench --fresh-interpreters`). Wall seconds and CPU
seconds (user + system of the bench and every process under it) of each, the number of commands, and whether the
two runs' results are the same (balanced and per-class accuracy, DD-Ranking metrics of every cell).

    OMP_NUM_THREADS=1 python benchmarks/warm_speed.py --suite quick --out docs/data/warm-start/cpu-quick.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ltdistill.runtime import host
from ltdistill.safe_io import write_json


def timed_bench(suite: str, out: Path, fresh: bool) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ltdistill.cli", "bench", "--suite", suite, "--out", str(out),
                    "--no-progress", *(["--fresh-interpreters"] if fresh else [])], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # every descendant, each waited for by its parent
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "commands": (out / "log.txt").read_text().count("$ ")}


def outcomes(out: Path) -> dict:
    return {p.name: [r["balanced_acc"], r["per_class_acc"], r.get("ddranking")]
            for p in sorted((out / "results").glob("*.json")) for r in [json.loads(p.read_text())]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="quick")
    parser.add_argument("--out", required=True, help="the JSON to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs = {name: timed_bench(args.suite, Path(scratch) / name, name == "fresh") for name in ("warm", "fresh")}
        same = outcomes(Path(scratch) / "warm") == outcomes(Path(scratch) / "fresh")
    write_json(Path(args.out), {"suite": args.suite, **runs, "same_results": same,
                                "wall_speedup": round(runs["fresh"]["wall_s"] / runs["warm"]["wall_s"], 2),
                                "cpu_speedup": round(runs["fresh"]["cpu_s"] / runs["warm"]["cpu_s"], 2),
                                "host": host()})
    print(json.dumps(runs), "same results" if same else "RESULTS DIFFER")


if __name__ == "__main__":
    main()
