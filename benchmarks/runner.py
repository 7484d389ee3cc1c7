"""Shared machinery of the benchmark scripts: run exact CLI commands, cache one JSON per cell (resumable: a cell
whose JSON exists is not recomputed), and render the Markdown table from those JSONs alone."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Cell:
    name: str
    prepare: list[list[str]] = field(default_factory=list)  # commands producing what the evaluation needs
    evaluate: list[str] = field(default_factory=list)  # an `ltdistill evaluate ...` command (without --json)
    done_marker: Path | None = None  # when it exists, the prepare commands are skipped


def run(cmd: list[str], log: Path) -> None:
    print("$", shlex.join(cmd), flush=True)
    with open(log, "a") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


def run_cells(cells: list[Cell], out: Path) -> None:
    (out / "json").mkdir(parents=True, exist_ok=True)
    for cell in cells:
        target = out / "json" / f"{cell.name}.json"
        if target.exists():
            continue
        start = time.time()
        prepare = [] if cell.done_marker is not None and cell.done_marker.exists() else cell.prepare
        for cmd in prepare:
            run(cmd, out / "log.txt")
        tmp = out / "json" / f".{cell.name}.tmp.json"
        tmp.unlink(missing_ok=True)
        run([*cell.evaluate, "--json", str(tmp)], out / "log.txt")
        result = json.loads(tmp.read_text())
        result["commands"] = [shlex.join(c) for c in [*cell.prepare, cell.evaluate]]
        result["cell_seconds"] = time.time() - start
        target.write_text(json.dumps(result, indent=2))
        tmp.unlink()
        print(f"{cell.name}: {100 * result['balanced_acc']['mean']:.2f} ({time.time() - start:.0f}s)", flush=True)


def table(json_dir: Path) -> str:
    """The Markdown table of every cell JSON in json_dir, and the commands that produced them."""
    rows = ["| dataset | beta | training set | IPC | balanced acc (%) | many / med / few | class-acc std | "
            "LT-test acc | LT-test P / R / F1 | per-class acc (%) | protocol | eval epochs | device | s/run |",
            "|" + "---|" * 14]
    commands = []
    for path in sorted(json_dir.glob("*.json")):
        r = json.loads(path.read_text())
        commands += [c for c in r.get("commands", []) if c not in commands]
        ipc = r.get("ipc") or "all"
        mmf = " / ".join("-" if r[k] is None else f"{100 * r[k]:.1f}" for k in ("many", "medium", "few"))
        per_class = " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"])
        lt = r["lt_test"]
        rows.append(f"| {r['dataset']} | {r['imbalance_factor']:g} | {r['method']} | {ipc} | "
                    f"{100 * r['balanced_acc']['mean']:.2f} ± {100 * r['balanced_acc']['std']:.2f} | {mmf} | "
                    f"{100 * r['class_acc_std']:.1f} | {100 * lt['acc']:.1f} | "
                    f"{lt['precision']:.3f} / {lt['recall']:.3f} / {lt['f1']:.3f} | {per_class} | "
                    f"{r.get('protocol', '?')} | {r['epochs']} | {r.get('device', 'cpu')} | "
                    f"{r['seconds_per_run']:.0f} |")
    return "\n".join(rows) + "\n\nCommands, in order:\n\n```\n" + "\n".join(commands) + "\n```\n"


def finish(out: Path) -> None:
    text = table(out / "json")
    (out / "table.md").write_text(text)
    print(text)
