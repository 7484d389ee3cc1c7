"""Shared machinery of the benchmark scripts: run exact CLI commands, cache one JSON per cell (resumable: a cell
whose JSON exists is not recomputed), and render the Markdown table from those JSONs alone."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ltdistill.report import results_table


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


def table(json_dir: Path, name_rows_by_file: bool = False) -> str:
    """The Markdown table of every cell JSON in json_dir, and the commands that produced them."""
    return results_table(sorted(json_dir.glob("*.json")), name_rows_by_file)


def finish(out: Path, name_rows_by_file: bool = False) -> None:
    text = table(out / "json", name_rows_by_file)
    (out / "table.md").write_text(text)
    print(text)
