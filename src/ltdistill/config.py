"""TOML presets (tomllib) that fill a method's Config dataclass; unknown keys and wrong types are BadInput
(checked by the method's constructor). A preset may also carry [run] keys (dataset, imbalance, ipc, protocol,
iterations ...) that the CLI uses as defaults for its flags."""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from ltdistill.data.order import check_order
from ltdistill.data.sources import get_source
from ltdistill.errors import BadInput, check
from ltdistill.params import AtLeast, Count, Seed, check_value


@dataclass(frozen=True)
class RunSettings:
    """The [run] keys of a preset, as the flags they stand for take them (checked like every config: params.py)."""
    method: str
    dataset: str
    imbalance: Annotated[float, AtLeast(1)]  # beta = n_max / n_min
    ipc: Count
    profile: Literal["exp", "step"]
    seed: Seed
    protocol: Literal["cpu", "paper"]
    iterations: Count
    experts: str
    class_order: str


RUN_KEYS = set(RunSettings.__dataclass_fields__)


def load_preset(path: str | Path) -> tuple[dict, dict]:
    """Return (method config, run settings) from a TOML preset."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"config file {p} not found")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{p}: invalid TOML ({e})") from None
    run = data.pop("run", {})
    if not isinstance(run, dict):
        raise BadInput(f"{p}: [run] must be a table")
    unknown = sorted(set(run) - RUN_KEYS)
    if unknown:
        raise BadInput(f"{p}: unknown [run] key(s) {unknown}; known: {sorted(RUN_KEYS)}")
    hints = typing.get_type_hints(RunSettings, include_extras=True)
    run = {k: check_value(f"{p}: [run] {k}", v, hints[k]) for k, v in run.items()}
    try:  # the names, as a suite's are checked: the error says which file holds them
        if "dataset" in run:
            get_source(run["dataset"])
        if "class_order" in run:
            check_order(run["class_order"])
    except BadInput as e:
        raise BadInput(f"{p}: [run] {e}") from None
    method = data.pop("method", {})
    if not isinstance(method, dict):
        raise BadInput(f"{p}: [method] must be a table")
    if data:
        raise BadInput(f"{p}: unknown top-level key(s) {sorted(data)}; use [run] and [method] tables")
    return method, run


def parse_override(text: str) -> tuple[str, object]:
    """`--set KEY=VALUE`: the value read as TOML (a bare word is a string)."""
    key, sep, value = text.partition("=")
    check(bool(sep) and key.strip() != "", f"--set wants KEY=VALUE, got {text!r}")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word is a string
    return key.strip(), parsed


def method_settings(method: dict, run: dict, overrides: list[str], iterations: int | None = None) -> dict:
    """The method config a distill command builds, before the method checks it: a preset's [method] table, its
    [run] iterations (`iterations`, the flag, first), then each `--set KEY=VALUE` in order. Bench suites build
    their cells' configs with it too, so a suite is checked as its commands will be."""
    config = dict(method)
    if (iterations or run.get("iterations")) is not None:
        config["iterations"] = iterations or run["iterations"]
    for text in overrides:
        key, value = parse_override(text)
        config[key] = value
    return config
