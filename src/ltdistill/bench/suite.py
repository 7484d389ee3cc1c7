"""Suite files (benchmarks/suites/NAME.toml, keys in the package docstring) and the cells they plan: each cell's key,
its directory (named by a hash of the key) and the CLI commands that make and evaluate it."""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from ltdistill.config import load_preset, method_settings
from ltdistill.data.order import card, check_order
from ltdistill.data.sources import get_source
from ltdistill.errors import BadInput, check
from ltdistill.evaluate.protocol import RANKINGS, RECIPES, recipe_later_settings  # RECIPES[0]: every set's protocol
from ltdistill.experts.train import ExpertConfig
from ltdistill.keys import changed_defaults, fingerprint
from ltdistill.methods.registry import METHODS
from ltdistill.params import AtLeast, Count, NonNegative, Rate, Seed, check_value, describe, fits
from ltdistill.report.tables import check_result_fields
from ltdistill.safe_io import read_json_object, why_not_a_directory

SUITE_DIRS = (Path.cwd() / "benchmarks" / "suites", Path(__file__).resolve().parents[3] / "benchmarks" / "suites")
SUITE_KEYS = {"description", "protocol", "runs", "epochs", "seeds", "eval_models", "cross_arch", "ddranking", "full",
              "data", "experts", "method", "convnet_stem", "ranking", "calibrations", "recipes", "anatomy",
              "compile", "precision"}
# suite keys a bench flag may set for one run (bench --convnet-stem, --compile, --precision: plan_suite's overrides)
OVERRIDABLE = ("convnet_stem", "compile", "precision")
DATA_KEYS = {"dataset", "imbalance", "ipc", "class_order", "holdout"}
METHOD_KEYS = {"name", "label", "preset", "set", "experts", "ipc", "imbalance", "recipe", "seeds", "grid",
               "cross_arch", "calibrations", "recipes"}
# the evaluations beside a cell's main one, from the suite and replaced per [[method]] (e.g. `cross_arch = []` for
# extra seeds that only the main score needs); outside the cells' keys, like the suite's own lists
EXTRA_EVALUATIONS = ("cross_arch", "calibrations", "recipes")
# each kind of expert buffer a suite may define and the keys of its table (check_experts)
EXPERT_KEYS = {"standard": {"num", "epochs", "zca"}, "decoupled": {"num", "epochs", "cls_epochs", "zca"}}
# evaluate --labels choices a suite may add per cell (`calibrations`; labels/adsa.py)
CALIBRATIONS = ("adsa", "adsa-t1")
CLI = [sys.executable, "-m", "ltdistill.cli"]  # cells run through the CLI of this very interpreter


@dataclass
class Cell:
    name: str  # results/<name>.json
    label: str  # the method variant, e.g. ltdd-no-dam; "full" for the whole long-tailed set
    key: dict  # everything that determines the result; hashed into the directory name
    directory: Path
    distill: list[str]
    evals: dict[str, list[str]] = field(default_factory=dict)  # eval name -> evaluate command (without --json)
    experts: Path | None = None

    @property
    def artifact(self) -> Path:
        return self.directory / "artifact"

    @property
    def set_to_make(self) -> bool:
        """Whether its distillation is still to run: it distills, and its artifact is not finished."""
        return bool(self.distill) and not (self.artifact / "meta.json").exists()

    @property
    def iterations(self) -> int | None:
        """Its distillation's iterations as its command sets them (its preset, its `--set`, else its method's
        default): the count its checkpoint's iteration runs to. None for a method without them (or a key that no
        longer resolves, such as one holding a preset's text)."""
        preset = self.key.get("preset") or {}
        if not self.distill or not isinstance(preset, dict):
            return None
        try:
            config = method_settings(preset.get("method", {}), preset.get("run", {}), self.key.get("set") or [])
            method = METHODS[self.key["method"]](protocol=self.key.get("protocol"), **config)
        except (BadInput, KeyError, TypeError, ValueError):
            return None
        count = getattr(method.config, "iterations", None)
        return count if isinstance(count, int) else None

    def artifact_meta(self) -> dict:
        """The finished artifact's metadata, {} while it is not made yet."""
        path = self.artifact / "meta.json"
        return read_json_object(path) if path.exists() else {}

    def eval_json(self, name: str) -> Path:
        return self.directory / f"eval-{name}.json"


@dataclass
class Experts:
    command: list[str]
    directory: Path
    epochs: int | None = None  # its experts' training epochs, summed (num x (epochs + cls_epochs)): its size


def result_json(out: Path, name: str) -> Path:
    """Where a finished cell's collected result lives; its existence is what "done" means."""
    return out / "results" / f"{name}.json"


def read_result(path: Path) -> dict:
    """A finished cell's collected result (or a cell's evaluation JSON); one BadInput line where it is damaged: not
    a JSON object, or a field the bench reads of another kind than it writes (report.tables.check_result_fields)."""
    remedy = "; move it aside and rerun the same command: what it held is made again"
    return check_result_fields(path, read_json_object(path, remedy), remedy)


def cell_directory(out: Path, name: str) -> Path:
    """A cell's working directory; a collected result names it by its "cell" field."""
    return out / "cells" / name


def stem_entry(stem: str) -> dict:
    """What a key holds of the ConvNet family's first layer (models/convnet.py): nothing for the pad1 network, which
    every key made before the stem existed means, so those keys, their directories and results stay as they are;
    the stem's name otherwise."""
    return {} if stem == "pad1" else {"stem": stem}


def ranking_entry(ranking: str) -> dict:
    """What a key holds of the evaluation's ranking protocol: nothing for ltdistill's (every key made before the
    option existed), its name otherwise."""
    return {} if ranking == "ltdistill" else {"ranking": ranking}


def method_config(name: str) -> type:
    check(name in METHODS, f"suite names an unknown method {name!r}; known: {', '.join(sorted(METHODS))}")
    return METHODS[name].Config


def defaults_entry(config_class, recipe: str | None = None) -> dict:
    """What a key holds of the defaults that changed to follow the official code: the method config's
    (keys.changed_defaults) and its evaluation recipe's ("recipe.<setting>": protocol.recipe_later_settings);
    nothing while there are none, so its keys stay as they were; {"defaults": {field: today's value}} otherwise."""
    changed = {**changed_defaults(config_class),
               **{f"recipe.{k}": v for k, v in recipe_later_settings(recipe or "ltdistill").items()}}
    return {"defaults": changed} if changed else {}


def find_suite(name: str) -> Path:
    path = Path(name)
    if path.suffix == ".toml" and path.is_file():
        return path
    for folder in SUITE_DIRS:
        if (folder / f"{name}.toml").is_file():
            return folder / f"{name}.toml"
    known = sorted({p.stem for d in SUITE_DIRS if d.is_dir() for p in d.glob("*.toml")})
    raise BadInput(f"unknown suite {name!r}; known: {', '.join(known) or 'none'} (or give a .toml path)")


def check_experts(path: Path, tables) -> None:
    """The suite's expert buffers, `[experts.standard]` and `[experts.decoupled]`: how many experts, their epochs,
    the classifier experts' epochs (decoupled) and an optional ZCA whitening, each as `ltdistill experts` takes it;
    the rest was silently left out of the command (yet keyed), and a missing count ended in a KeyError."""
    check(isinstance(tables, dict), f"{path}: [experts] must hold tables, got {tables!r}")
    for kind, spec in tables.items():
        where = f"{path}: [experts.{kind}]"
        check(kind in EXPERT_KEYS, f"{where}: the kinds are {sorted(EXPERT_KEYS)}")
        check(isinstance(spec, dict), f"{where} must be a table")
        unknown = sorted(set(spec) - EXPERT_KEYS[kind])
        check(not unknown, f"{where}: unknown key(s) {unknown}; known: {sorted(EXPERT_KEYS[kind])}")
        for key, what in (("num", "how many experts"), ("epochs", "each expert's training epochs")):
            check(key in spec, f"{where} needs {key} ({what})")
        for key, value in spec.items():
            check_value(f"{where} {key}", value, Rate if key == "zca" else Count)


def load_suite(path: Path) -> dict:
    """The suite file at `path`, read and checked (check_suite)."""
    try:
        suite = tomllib.loads(path.read_text())
    except (OSError, ValueError) as e:  # ValueError: TOMLDecodeError, or bytes that are not UTF-8
        raise BadInput(f"{path}: not a readable suite file ({e})") from None
    return check_suite(path, suite)


def check_suite(path: Path, suite: dict) -> dict:
    """Every setting a suite's cells would refuse, refused in one line naming the file `path`; the suite itself
    where it holds none."""
    unknown = sorted(set(suite) - SUITE_KEYS)
    check(not unknown, f"{path}: unknown suite key(s) {unknown}; known: {sorted(SUITE_KEYS)}")
    check_overridable(path, suite)
    check(suite.get("ranking", "ltdistill") in RANKINGS, f"{path}: ranking must be one of {list(RANKINGS)}")
    check("data" in suite and "method" in suite, f"{path}: a suite needs [data] and [[method]] entries")
    check(isinstance(suite["data"], dict), f"{path}: [data] must be a table")
    unknown = sorted(set(suite["data"]) - DATA_KEYS)
    check(not unknown, f"{path}: unknown [data] key(s) {unknown}; known: {sorted(DATA_KEYS)}")
    dataset = suite["data"].get("dataset")
    check(isinstance(dataset, str), f"{path}: [data] dataset must name a dataset, got {dataset!r}")
    orders = suite["data"].get("class_order", "natural")
    listed = isinstance(orders, list) and bool(orders) and all(isinstance(o, str) for o in orders)
    check(isinstance(orders, str) or listed,
          f"{path}: [data] class_order must be a class order or a non-empty list of them, got {orders!r}")
    try:  # the name, not the files: a suite is planned where its data is not installed
        get_source(dataset)
        for order in class_orders(suite["data"]):
            check_order(order)
    except BadInput as e:
        raise BadInput(f"{path}: [data] {e}") from None
    for key in ("runs", "epochs"):  # what every evaluation command of the suite would otherwise refuse, cell by cell
        if key in suite:
            check_value(f"{path}: {key}", suite[key], Count)
    check_setting_lists(f"{path}: [data]", {"ipc": [10], "imbalance": [1], **suite["data"]})  # plan's defaults
    # validation images per class
    holdout = check_value(f"{path}: [data] holdout", suite["data"].get("holdout", 0), NonNegative)
    measured = card(dataset)  # the training counts a dataset's card records: a cell's IPC must fit its head class
    if measured and "train_counts" in measured:
        head = min(measured["train_counts"]) - holdout
        for ipc in suite["data"].get("ipc", [10]):
            check(ipc <= head, f"{path}: [data] ipc {ipc} is more images per class than the largest class of "
                  f"{dataset}'s long-tailed training set holds ({head}" + " after the holdout" * bool(holdout) + ")")
    # DD-Ranking's baselines are scored on the test set; a holdout suite must never read it
    check(not (holdout and suite.get("ddranking", False)), f"{path}: a suite with a holdout scores on the validation "
          "split only; ddranking = true would read the test set")
    check_experts(path, suite.get("experts", {}))
    check(isinstance(suite["method"], list) and all(isinstance(m, dict) for m in suite["method"]),
          f"{path}: methods are [[method]] tables")
    for m in suite["method"]:
        bad = sorted(set(m) - METHOD_KEYS)
        check(not bad and "name" in m, f"{path}: [[method]] {m.get('name')!r}: unknown key(s) {bad} or no name")
        check_method_entry(path, m)
        check(m.get("recipe", "ltdistill") in RECIPES, f"{path}: method {m['name']!r}: recipe must be one of "
              f"{list(RECIPES)}, got {m.get('recipe')!r}")
        seeds = method_seeds(suite, m)
        natural = isinstance(seeds, list) and len(seeds) > 0 and all(fits(x, Seed) for x in seeds)
        check(natural, f"{path}: method {m['name']!r}: seeds must be {describe(tuple[Seed, ...])}, got {seeds!r}")
        check(m.get("experts") is None or m["experts"] in suite.get("experts", {}),
              f"{path}: method {m['name']!r} names experts {m.get('experts')!r}, not defined under [experts]")
        check_grid(path, m, holdout)
    check_evaluations(path, suite, "the suite")
    for m in suite["method"]:
        check_evaluations(path, m, f"method {m['name']!r}")
    eval_models = suite.get("eval_models", ["convnet"])
    check(isinstance(eval_models, list) and bool(eval_models) and all(isinstance(m, str) for m in eval_models),
          f"{path}: eval_models must be a non-empty list of model names (the first scores every cell), got "
          f"{eval_models!r}")
    labels = {m.get("label", m["name"]) for m in suite["method"]}
    check(isinstance(suite.get("anatomy", []), list), f"{path}: anatomy must be a list of {{before, after}} tables")
    for pair in suite.get("anatomy", []):
        check(isinstance(pair, dict) and set(pair) == {"before", "after"} and {pair["before"], pair["after"]} <= labels,
              f"{path}: anatomy entries are {{before = LABEL, after = LABEL}} of two [[method]] labels, got {pair!r}")
    return suite


def check_setting_lists(where: str, entry: dict) -> None:
    """An entry's `ipc` and `imbalance` ([data]'s, or a [[method]]'s where it sets them): non-empty lists of counts
    and of betas >= 1."""
    for key, hint in (("ipc", Count), ("imbalance", Annotated[float, AtLeast(1)])):
        if key in entry:
            values = entry[key]
            check(isinstance(values, list) and bool(values), f"{where} {key} must be a non-empty list, got {values!r}")
            for value in values:
                check_value(f"{where} {key}", value, hint)


def check_method_entry(path: Path, m: dict) -> None:
    """A [[method]] table's name, texts and lists, as its cells' commands will take them (the rest of it: recipe,
    seeds, experts, grid and evaluations, load_suite checks beside it)."""
    name = m["name"]
    check(isinstance(name, str) and name in METHODS, f"{path}: [[method]] name must be one of {sorted(METHODS)}, "
          f"got {name!r}")
    for key in ("label", "preset", "experts"):
        check(m.get(key) is None or isinstance(m[key], str), f"{path}: method {name!r}: {key} must be text, got "
              f"{m.get(key)!r}")
    settings = m.get("set", [])
    check(isinstance(settings, list) and all(isinstance(x, str) for x in settings),
          f"{path}: method {name!r}: set must be a list of 'key=value' texts, got {settings!r}")
    check_setting_lists(f"{path}: method {name!r}", m)  # which of the suite's values its cells take


def check_overridable(path: Path | str, suite: dict) -> None:
    """The suite keys a bench flag may also set (OVERRIDABLE), from the file or from the flags."""
    from ltdistill.models.convnet import STEMS
    from ltdistill.train import PRECISIONS

    check(suite.get("convnet_stem", "official") in STEMS, f"{path}: convnet_stem must be one of {list(STEMS)}")
    check(isinstance(suite.get("compile", False), bool), f"{path}: compile must be true or false, got "
          f"{suite.get('compile')!r}")
    check(suite.get("precision", "float32") in PRECISIONS, f"{path}: precision must be one of {list(PRECISIONS)}, "
          f"got {suite.get('precision')!r}")


def speed_entry(suite: dict) -> dict:
    """What a suite's faster paths add to a key, only where taken, so the keys of suites without them stay as they
    were: `compile` (evaluation, experts and the methods' own loops through torch.compile: the same runs to float
    rounding, not bit for bit) and `precision` (bfloat16 evaluation training, a different run)."""
    return ({"compile": True} if suite.get("compile") else {}) | (
        {"precision": suite["precision"]} if suite.get("precision", "float32") != "float32" else {})


def evaluation_flags(suite: dict) -> list[str]:
    """The flags every evaluation of a suite's cells and baselines ends with, beyond its runs and protocol: how it
    ranks, its epochs, and its faster paths (evaluate --compile, --precision; experts take `compile` only: no
    distillation from bfloat16 experts has been scored)."""
    ranking = suite.get("ranking", "ltdistill")
    flags = [] if ranking == "ltdistill" else ["--ranking", ranking]
    flags += ["--epochs", str(suite["epochs"])] if "epochs" in suite else []
    speed = speed_entry(suite)
    flags += ["--compile"] if "compile" in speed else []
    return flags + (["--precision", speed["precision"]] if "precision" in speed else [])


def check_evaluations(path: Path, entry: dict, who: str) -> None:
    """A suite's or a [[method]]'s lists of evaluations beside the main one (EXTRA_EVALUATIONS)."""
    strings = {key: entry.get(key, []) for key in EXTRA_EVALUATIONS}
    for key, values in strings.items():
        check(isinstance(values, list) and all(isinstance(v, str) for v in values),
              f"{path}: {who}: {key} must be a list of names, got {values!r}")
    check(all(c in CALIBRATIONS for c in strings["calibrations"]),
          f"{path}: {who}: calibrations must be a list of {list(CALIBRATIONS)}")
    check(all(r in RECIPES[1:] for r in strings["recipes"]),
          f"{path}: {who}: recipes must be a list of {list(RECIPES[1:])} (each teacher set is evaluated under them "
          "too)")


def check_grid(path: Path, method: dict, holdout: int) -> None:
    """A [[method]] `grid`: a table of config keys, each with a non-empty list of values to try. A grid is a tuning,
    so it is scored on a validation holdout, never on the test set."""
    grid = method.get("grid")
    if grid is None:
        return
    axes = list(grid.values()) if isinstance(grid, dict) else []
    scalars = (str, int, float, bool)
    check(bool(axes) and all(isinstance(v, list) and v and all(isinstance(x, scalars) for x in v) for v in axes),
          f"{path}: method {method['name']!r}: grid must be a table of non-empty lists of values, e.g. "
          "grid = {lr_img = [100, 1000]}")
    check(holdout > 0, f"{path}: method {method['name']!r} has a grid: a tuning needs [data] holdout = V "
                       "(validation images per class), so that no point is chosen on the test set")


def toml_value(value) -> str:
    """A grid value as `--set key=value` reads it (a TOML value): strings quoted, booleans lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def grid_points(method: dict) -> list[tuple[str, list[str]]]:
    """A [[method]] entry's grid as (label suffix, `key=value` settings) per point, the product of its axes in the
    file's order; one point without suffix or settings when it has no grid."""
    grid = method.get("grid") or {}
    points = []
    for values in itertools.product(*grid.values()):
        settings = [f"{k}={toml_value(v)}" for k, v in zip(grid, values, strict=True)]
        points.append(("@" + "+".join(text.replace("'", "") for text in settings) if settings else "", settings))
    return points


def method_seeds(suite: dict, method: dict) -> list:
    """The seeds of a [[method]] entry's cells: its own `seeds`, else the suite's (0 alone by default)."""
    return method.get("seeds", suite.get("seeds", [0]))


def with_cross_arch(suite: dict, models: list[str] | None) -> dict:
    """The suite with `models` (bench --cross-arch) added to its cross_arch list, and to every method's own; they do
    not enter any cell's key."""
    if not models:
        return suite

    def added(entry: dict) -> dict:
        if "cross_arch" not in entry:
            return entry
        have = entry["cross_arch"]
        return {**entry, "cross_arch": have + [m for m in models if m not in have]}

    return {**added({**suite, "cross_arch": suite.get("cross_arch", [])}),
            "method": [added(m) for m in suite["method"]]}


def evaluations(suite: dict, method: dict) -> list[tuple[str, list[str]]]:
    """A cell's evaluations as (name, evaluate flags after --model), in run order: each eval model, hard labels
    where the suite ranks, the cross-architecture models, label calibrations and other recipes; the last three
    from the method's own lists where it has them, else the suite's."""
    models = suite.get("eval_models", ["convnet"])
    extra = {key: method.get(key, suite.get(key, [])) for key in EXTRA_EVALUATIONS}
    hard = [("hard", [models[0], "--labels", "hard"])] if ranks(suite) else []
    return ([(f"model-{m}", [m]) for m in models] + hard
            + [(f"model-{m}", [m]) for m in extra["cross_arch"] if m not in models]
            + [(f"labels-{c}", [models[0], "--labels", c]) for c in extra["calibrations"]]
            + [(f"recipe-{r}", [models[0], "--recipe", r]) for r in extra["recipes"]])


def cross_arch_left(cell: Cell, result: dict) -> list[str]:
    """The evaluations of a cell that its finished result lacks: models added to the suite's cross_arch, and label
    calibrations added to its calibrations (for a set with soft labels or a teacher), after the cell finished."""
    have = result.get("cross_arch", {})
    calibrated, recipes = result.get("calibrated", {}), result.get("recipes", {})
    relabels = str(result.get("label_regime", "")).startswith("relabel")
    soft = result.get("soft_labels") or relabels
    models = [name for name in (k.removeprefix("model-") for k in cell.evals if k.startswith("model-"))
              if name not in have]
    return (models + [k for k in cell.evals if soft and k.startswith("labels-")
                      and k.removeprefix("labels-") not in calibrated]
            + [k for k in cell.evals if relabels and k.startswith("recipe-")
               and k.removeprefix("recipe-") not in recipes])


def digest(obj) -> str:
    """A cell's or expert buffer's directory suffix: the first 10 hex digits of loop.fingerprint."""
    return fingerprint(obj)[:10]


def preset_settings(text: str | None) -> dict | None:
    """A preset as a cell's key holds it: its parsed settings, so that a preset's comments and layout never change a
    cell (keys written before held the file's text: comparable_key)."""
    return tomllib.loads(text) if text is not None else None


def comparable_key(key: dict) -> dict:
    """A stored cell key as the plan writes one today: a preset held as the file's text is parsed, so a finished
    cell compares with the suite by its preset's settings, not by the preset's comments."""
    preset = key.get("preset")
    if not isinstance(preset, str):
        return key
    try:
        return {**key, "preset": tomllib.loads(preset)}
    except tomllib.TOMLDecodeError:  # not a preset's text: left as it is, so it differs from every planned key
        return key


def class_orders(data: dict) -> list[str]:
    """The suite's class orders ([data] class_order: one or a list; data/order.py), natural by default."""
    orders = data.get("class_order", "natural")
    return [orders] if isinstance(orders, str) else list(orders)


def order_tag(order: str) -> str:
    """A cell-name suffix for a class order: none for natural (names stay as they were), else e.g. _hard-tail,
    _random1, _o3-1-0-2."""
    if order == "natural":
        return ""
    if order.startswith("random:"):
        return "_random" + order[len("random:"):]
    return f"_{order}" if order in ("hard-tail", "easy-tail") else "_o" + order.replace(",", "-").replace(" ", "")


def command_flags(device: str, data_dir: str | None) -> list[str]:
    """The flags every command of a bench run ends with; outside every cell's key, so a run directory may move and a
    CPU run resume on a GPU."""
    return ["--device", device, "--no-progress"] + (["--data-dir", data_dir] if data_dir else [])


def suite_root(path: Path) -> Path:
    """Where a suite's relative preset paths point from when not from the working directory: the repository of a
    suite under <repository>/benchmarks/suites, else the suite file's folder."""
    folder = path.resolve().parent
    return folder.parents[1] if folder.name == "suites" and folder.parent.name == "benchmarks" else folder


def preset_path(preset: str, root: Path | None) -> str:
    """`preset` as written where it names a file from the working directory (commands and logs keep it short), else
    the same path under `root` where that is a file, else as written (refused as missing)."""
    if Path(preset).is_file() or root is None or not (root / preset).is_file():
        return preset
    return str(root / preset)


def plan(suite: dict, out: Path, common: list[str], root: Path | None = None) -> tuple[list[Cell], dict[str, Experts]]:
    """The cells of a suite and the expert commands they need; relative presets are found from the working
    directory or under `root` (suite_root), so a suite runs from any folder."""
    data = suite["data"]
    protocol, runs = suite.get("protocol", "cpu"), suite.get("runs", 3)
    models = suite.get("eval_models", ["convnet"])
    from ltdistill.models import names as model_names

    named = set(models).union(suite.get("cross_arch", []), *(m.get("cross_arch", []) for m in suite["method"]))
    unknown = sorted(named - set(model_names()))
    check(not unknown, f"unknown evaluation model(s) {unknown}; known: {', '.join(model_names())}")
    dataset = data["dataset"]
    stem = suite.get("convnet_stem", "official")  # the ConvNet family's first layer: in every key and command
    holdout = data.get("holdout", 0)  # validation images per class: every score on that split (a tuning)
    holding = {"holdout": holdout} if holdout else {}
    entries = [{**m, "label": m.get("label", m["name"]) + suffix, "set": [*m.get("set", []), *settings]}
               for m in suite["method"] for suffix, settings in grid_points(m)]
    experts_cmds, cells = {}, []
    speed = speed_entry(suite)  # in every key where taken; experts take `compile` only
    compiled = {key: value for key, value in speed.items() if key == "compile"}
    for order, beta in itertools.product(class_orders(data), data.get("imbalance", [1])):
        tag, ordering = order_tag(order), ({} if order == "natural" else {"class_order": order})
        base = ["--dataset", dataset, "--imbalance", str(beta), "--protocol", protocol, "--convnet-stem", stem]
        base += [] if order == "natural" else ["--class-order", order]
        base += ["--holdout", str(holdout)] if holdout else []
        for kind, spec in suite.get("experts", {}).items():
            key = {"dataset": dataset, "beta": beta, "protocol": protocol, **spec, **ordering, **holding}
            key.update(stem_entry(stem))
            key.update(compiled)
            key.update(defaults_entry(ExpertConfig) if kind == "decoupled" else {})  # standard: no classifier expert
            where = out / "experts" / f"{kind}-b{beta}{tag}-{digest(key)}"
            cmd = [*CLI, "experts", *base, "--num-experts", str(spec["num"]), "--epochs", str(spec["epochs"]),
                   *(["--zca", str(spec["zca"])] if "zca" in spec else []),
                   "--out", str(where), *common, *["--compile"] * bool(compiled)]
            cls_epochs = spec.get("cls_epochs", 5) if kind == "decoupled" else 0
            if kind == "decoupled":
                cmd[len(CLI) + 1:len(CLI) + 1] = ["--decoupled", "--cls-epochs", str(cls_epochs)]
            experts_cmds[f"{kind}-b{beta}{tag}"] = Experts(cmd, where, spec["num"] * (spec["epochs"] + cls_epochs))
        ranking = suite.get("ranking", "ltdistill")  # how every evaluation scores its runs (evaluate --ranking)
        eval_tail = ["--runs", str(runs), "--protocol", protocol, "--convnet-stem", stem, *common,
                     *evaluation_flags(suite)]
        eval_tail += ["--split", "val"] if holdout else []
        full_key = {"full": dataset, "beta": beta, "protocol": protocol, "runs": runs, "model": models[0],
                    "epochs": suite.get("epochs"), **stem_entry(stem), **ordering, **ranking_entry(ranking),
                    **holding, **speed}
        full_eval = [*CLI, "evaluate", "--full", *base[:4], *base[8:], "--model", models[0], *eval_tail]
        if suite.get("full", True):
            cells.append(Cell(f"full_{dataset}_b{beta}{tag}", "full", full_key,
                              cell_directory(out, f"full-b{beta}-{digest(full_key)}"), [], {"main": full_eval}))
        for ipc in data.get("ipc", [10]):
            # a method's own `seeds` replace the suite's for its cells (e.g. more seeds where two variants are close)
            pairs = [(seed, m) for m in entries for seed in method_seeds(suite, m)]
            for seed, m in sorted(pairs, key=lambda pair: pair[0]):  # seed by seed, each in the suite's order
                if ipc not in m.get("ipc", [ipc]) or beta not in m.get("imbalance", [beta]):
                    continue
                label = m["label"]
                preset = preset_path(m.get("preset", "").format(ipc=ipc, imbalance=beta), root) or None
                preset_text = Path(preset).read_text() if preset and Path(preset).is_file() else None
                check(preset is None or preset_text is not None, f"suite preset {preset} does not exist")
                check_method_settings(m, preset, protocol)
                experts = experts_cmds[f"{m['experts']}-b{beta}{tag}"] if m.get("experts") else None
                key = {"dataset": dataset, "beta": beta, "ipc": ipc, "seed": seed, "method": m["name"],
                       "preset": preset_settings(preset_text), "set": m.get("set", []), "protocol": protocol,
                       "runs": runs, "epochs": suite.get("epochs"), "models": models,
                       "experts": experts and experts.directory.name, **stem_entry(stem), **ordering,
                       **ranking_entry(ranking), **({"recipe": m["recipe"]} if m.get("recipe") else {}),
                       **defaults_entry(method_config(m["name"]), m.get("recipe")), **holding, **speed}
                cell_name = f"{label}_{dataset}_b{beta}_ipc{ipc}_s{seed}{tag}"
                cell_dir = cell_directory(out, f"{label}-{digest(key)}")
                if preset_text is not None:  # a cell begun while keys held the preset's text resumes where it is
                    before = cell_directory(out, f"{label}-{digest({**key, 'preset': preset_text})}")
                    cell_dir = before if before.exists() and not cell_dir.exists() else cell_dir
                distill = [*CLI, "distill", "--method", m["name"], *base, "--ipc", str(ipc), "--seed", str(seed)]
                distill += ["--config", preset] if preset else []
                for text in m.get("set", []):
                    distill += ["--set", text]
                if "compile" in speed and has_setting(m["name"], "compile"):  # its own first-order loops
                    distill += ["--set", "compile=true"]
                if experts is not None:
                    distill += ["--experts", str(experts.directory)]
                if shares_models(m["name"]):  # one observer/teacher training per beta, not per cell
                    distill += ["--set", f"model_cache={str(out / 'models')!r}"]
                art = str(cell_dir / "artifact")
                distill += ["--out", art, *common]
                recipe = ["--recipe", m["recipe"]] if m.get("recipe") else []  # how its teacher trains
                evals = {name: [*CLI, "evaluate", art, "--model", *flags, *eval_tail,
                                *(recipe if name != "hard" and not name.startswith("recipe-") else [])]
                         for name, flags in evaluations(suite, m)}
                cells.append(Cell(cell_name, label, key, cell_dir, distill, evals,
                                  experts.directory if experts is not None else None))
    names = [c.name for c in cells]
    twice = sorted({n for n in names if names.count(n) > 1})
    check(not twice, f"suite names cell(s) {twice} twice: give one of the [[method]] entries a label, or split "
                     "their ipc/imbalance lists")
    return cells, experts_cmds


def check_method_settings(method: dict, preset: str | None, protocol: str) -> None:
    """A [[method]] entry's config for one cell, from its preset and `set` (grid points included), checked as the
    cell's distill command will check it (config.method_settings, then the method's constructor): an unknown key
    or a bad value refuses the suite before any cell runs, not hours into it."""
    config = method_settings(*(load_preset(preset) if preset else ({}, {})), method.get("set", []))
    try:
        METHODS[method["name"]](protocol=protocol, **config)
    except BadInput as e:
        where = f"[[method]] {method['label']!r}" + (f" (preset {preset})" if preset else "")
        raise BadInput(f"{where}: {e}") from None


def ranks(suite: dict) -> bool:
    """Whether a suite computes DD-Ranking's metrics: its `ddranking`, by default unless it scores on a holdout."""
    return suite.get("ddranking", not suite["data"].get("holdout", 0))


def has_setting(method: str, name: str) -> bool:
    """Whether a registered method's config has the field `name`."""
    cls = METHODS.get(method)
    return cls is not None and name in {f.name for f in dataclasses.fields(cls.Config)}


def shares_models(method: str) -> bool:
    """Whether a method trains models on the data that cells can share (the recovery family's model_cache)."""
    return has_setting(method, "model_cache")


def select(cells: list[Cell], only: list[str] | None) -> list[Cell]:
    """`--only`: the cells whose label (a method variant, or "full" for the whole-set references) or cell name (as
    `--plan` lists them) is named, or matches a shell-style pattern (`edc_*_ipc50_*`); every cell when nothing is
    named. A name or pattern that matches no cell is refused, so a typo does not run nothing quietly."""
    if not only:
        return cells

    def named(cell: Cell, entry: str) -> bool:
        return fnmatch.fnmatchcase(cell.label, entry) or fnmatch.fnmatchcase(cell.name, entry)

    unknown = [entry for entry in only if not any(named(c, entry) for c in cells)]
    check(not unknown, f"--only: no cell has label or name {unknown}; labels: {sorted({c.label for c in cells})} "
                       "(cell names: see --plan)")
    return [c for c in cells if any(named(c, entry) for entry in only)]


def check_finished_cells(cells: list[Cell], out: Path) -> None:
    """A suite may grow (new methods, betas, IPCs: their cells just run), but a finished cell is reused by name, so
    one whose settings changed since (runs, protocol, a method's overrides, ...) is refused rather than reused."""
    for cell in cells:
        target = result_json(out, cell.name)
        if target.exists():
            stored = read_result(target).get("key") or {}
            check(bool(stored), f"{out}: finished cell {cell.name} records no settings key (a result written before "
                                "results kept one), so it cannot be checked against the suite; move "
                                f"{target} aside or choose a new --out")
            changed = settings_changed(cell, stored)
            check(not changed, f"{out}: finished cell {cell.name} was made with other settings than the suite now "
                               f"asks ({changed}); choose a new --out, or move {target} aside to make the cell "
                               "again here")


def settings_changed(cell: Cell, stored: dict, detail: bool = True) -> str:
    """What differs between a finished cell's stored key and the key the suite gives it now ('' when nothing);
    `detail`: with the defaults that changed since."""
    stored = comparable_key(stored)
    changed = sorted(k for k in set(cell.key) | set(stored) if stored.get(k) != cell.key.get(k))
    earlier = earlier_defaults(stored.get("defaults") or {}, cell.key.get("defaults") or {}) if detail else ""
    return f"{', '.join(changed)} differ{earlier}" if changed else ""


def earlier_defaults(stored: dict, today: dict) -> str:
    """': made under the earlier default of f1, f2 (today's: the official code's)' for a cell key's defaults, or ''."""
    fields = sorted(k for k in set(stored) | set(today) if stored.get(k) != today.get(k))
    return (f": made under the earlier default of {', '.join(fields)} (today's: "
            f"{', '.join(f'{k}={today[k]!r}' for k in fields if k in today)}, the official code's)" if fields else "")


@dataclass
class SuitePlan:
    """A suite as a run with these flags plans it: `cells` are all of its cells (a finished cell is checked against
    all of them), `selected` those of `--only`. `bench --plan` builds the same, so it shows what the run would do."""
    path: Path
    suite: dict
    common: list[str]  # the flags every command ends with (command_flags)
    cells: list[Cell]
    experts: dict[str, Experts]
    selected: list[Cell]


def plan_suite(name: str, out: Path, *, only: list[str] | None, device: str, data_dir: str | None,
               cross_arch: list[str] | None, overrides: dict | None = None) -> SuitePlan:
    """Find and check the suite file `name`, add the `--cross-arch` models, apply `overrides` (OVERRIDABLE keys
    the bench flags set over the suite's own; None: the suite's), and plan its cells into `out`."""
    path = find_suite(name)
    suite = with_cross_arch(load_suite(path), cross_arch)
    check((taken := why_not_a_directory(Path(out))) is None, f"--out {out}: {taken}; a run directory is a directory")
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    check(set(given) <= set(OVERRIDABLE), f"a bench run may set {list(OVERRIDABLE)} only, not {sorted(given)}")
    suite = {**suite, **given}
    check_overridable("bench flags", suite)
    common = command_flags(device, data_dir)
    cells, experts = plan(suite, out, common, root=suite_root(path))
    return SuitePlan(path, suite, common, cells, experts, select(cells, only))
