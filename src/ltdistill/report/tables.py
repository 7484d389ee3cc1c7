"""Markdown tables from evaluation JSONs (`ltdistill evaluate --json`): one row per file, the papers' columns."""

from __future__ import annotations

import json
from pathlib import Path

from ltdistill.errors import BadInput

HEADER = ["dataset", "beta", "training set", "IPC", "balanced acc (%)", "many / med / few", "class-acc std",
          "LT-test acc", "LT-test P / R / F1", "per-class acc (%)", "protocol", "eval epochs", "device", "s/run"]


def load_result(path: Path) -> dict:
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{path}: not an evaluation JSON ({e})") from None
    if not isinstance(result, dict) or "balanced_acc" not in result or "lt_test" not in result:
        raise BadInput(f"{path}: not an evaluation JSON (no balanced_acc / lt_test)")
    return result


def variant(r: dict) -> str:
    """The method plus the config overrides (`--set k=v`) its distill command used, e.g. 'ltdd (dam=false)'."""
    import shlex

    overrides = []
    for command in r.get("commands", []):
        tokens = shlex.split(command)
        overrides += [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "--set"]
    method = r.get("method") or "?"
    return f"{method} ({', '.join(overrides)})" if overrides else method


def row(r: dict, label: str | None = None) -> str:
    mmf = " / ".join("-" if r.get(k) is None else f"{100 * r[k]:.1f}" for k in ("many", "medium", "few"))
    bal, lt = r["balanced_acc"], r["lt_test"]
    cells = [r.get("dataset", "?"), f"{r.get('imbalance_factor', 0):g}", label or variant(r),
             str(r.get("ipc") or "all"), f"{100 * bal['mean']:.2f} ± {100 * bal['std']:.2f}",
             mmf, f"{100 * r['class_acc_std']:.1f}", f"{100 * lt['acc']:.1f}",
             f"{lt['precision']:.3f} / {lt['recall']:.3f} / {lt['f1']:.3f}",
             " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"]), str(r.get("protocol", "?")),
             str(r.get("epochs", "?")), str(r.get("device", "cpu")), f"{r.get('seconds_per_run', 0):.0f}"]
    return "| " + " | ".join(cells) + " |"


def results_table(paths: list[Path]) -> str:
    """The table and, when the JSONs carry them (benchmark cells), the commands that produced each row."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    commands: list[str] = []
    for path in paths:
        r = load_result(path)
        lines.append(row(r))
        commands += [c for c in r.get("commands", []) if c not in commands]
    text = "\n".join(lines) + "\n"
    if commands:
        text += "\nCommands, in order:\n\n```\n" + "\n".join(commands) + "\n```\n"
    return text
