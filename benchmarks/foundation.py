"""Foundation table (issue: full-LT vs Random vs Herding): runs the exact CLI commands, one JSON per cell,
skipping cells whose JSON exists (resumable), then writes the Markdown table generated from those JSONs.

    python benchmarks/foundation.py --out runs/foundation   # then: cat runs/foundation/table.md
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

CELLS = [  # (dataset, beta, ipc or None for the full long-tailed set)
    *[("digits", beta, ipc) for beta in (10, 50) for ipc in (None, 10, 50)],
    *[("fashion-mnist", 100, ipc) for ipc in (None, 10, 50)],
]
METHODS = ("random", "herding")
FULL_EPOCHS = {"digits": 100, "fashion-mnist": 30}


def run(cmd: list[str], log: Path) -> None:
    print("$", shlex.join(cmd), flush=True)
    with open(log, "a") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


def cells(out: Path, runs: int):
    for dataset, beta, ipc in CELLS:
        if ipc is None:
            name = f"{dataset}-b{beta}-full"
            cmd = ["ltdistill", "evaluate", "--full", "--dataset", dataset, "--imbalance", str(beta),
                   "--epochs", str(FULL_EPOCHS[dataset]), "--runs", str(runs), "--no-progress"]
            yield name, [], cmd
            continue
        for method in METHODS:
            name = f"{dataset}-b{beta}-{method}-ipc{ipc}"
            art = out / "artifacts" / name
            distill = ["ltdistill", "distill", "--method", method, "--dataset", dataset, "--imbalance", str(beta),
                       "--ipc", str(ipc), "--out", str(art), "--no-progress"]
            yield name, ([] if (art / "meta.json").exists() else [distill]), \
                ["ltdistill", "evaluate", str(art), "--runs", str(runs), "--no-progress"]


def table(out: Path) -> str:
    rows = ["| dataset | beta | training set | IPC | balanced acc (%) | many / med / few | class-acc std | "
            "LT-test F1 | per-class acc (%) | eval epochs | s/run |", "|" + "---|" * 11]
    commands = []
    for path in sorted((out / "json").glob("*.json")):
        r = json.loads(path.read_text())
        commands += r.get("commands", [])
        ipc = r.get("ipc") or "all"
        mmf = " / ".join("-" if r[k] is None else f"{100 * r[k]:.1f}" for k in ("many", "medium", "few"))
        per_class = " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"])
        rows.append(f"| {r['dataset']} | {r['imbalance_factor']:g} | {r['method']} | {ipc} | "
                    f"{100 * r['balanced_acc']['mean']:.2f} ± {100 * r['balanced_acc']['std']:.2f} | {mmf} | "
                    f"{100 * r['class_acc_std']:.1f} | {r['lt_test']['f1']:.3f} | {per_class} | {r['epochs']} | "
                    f"{r['seconds_per_run']:.0f} |")
    return "\n".join(rows) + "\n\nCommands:\n\n```\n" + "\n".join(commands) + "\n```\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/foundation")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    (out / "json").mkdir(parents=True, exist_ok=True)
    for name, prepare, evaluate in cells(out, args.runs):
        target = out / "json" / f"{name}.json"
        if target.exists():
            continue
        start = time.time()
        for cmd in prepare:
            run(cmd, out / "log.txt")
        tmp = out / "json" / f".{name}.tmp.json"
        tmp.unlink(missing_ok=True)
        run([*evaluate, "--json", str(tmp)], out / "log.txt")
        result = json.loads(tmp.read_text())
        result["commands"] = [shlex.join(c) for c in [*prepare, evaluate]]
        target.write_text(json.dumps(result, indent=2))
        tmp.unlink()
        print(f"{name}: {100 * result['balanced_acc']['mean']:.2f} ({time.time() - start:.0f}s)", flush=True)
    (out / "table.md").write_text(table(out))
    print(table(out))


if __name__ == "__main__":
    sys.exit(main())
