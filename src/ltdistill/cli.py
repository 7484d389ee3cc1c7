"""The `ltdistill` command line (design.md's CLI contract). Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path

from ltdistill.distributed import SPLITTING_COMMANDS, SPLITTING_METHODS
from ltdistill.errors import BadInput, Diverged, check
from ltdistill.params import MAX_SEED
from ltdistill.runtime import keep_freed_memory
from ltdistill.train import PRECISIONS


class Parser(argparse.ArgumentParser):
    """One clear line and exit 2 for a usage error (argparse prints usage first by default); no abbreviated flags,
    and a mistyped flag is named, with the closest known one, before any 'required' complaint it causes
    (`--ouput x` is not reported as a missing --out)."""

    argv: list[str] = []  # the arguments being parsed, for error()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def parse_args(self, args=None, namespace=None):
        Parser.argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args(args, namespace)

    def error(self, message: str):
        import difflib

        parser = self
        for action in self._actions:  # the top-level parser reports a subcommand's unknown flags: use its options
            if isinstance(action, argparse._SubParsersAction):
                parser = next((action.choices[a] for a in Parser.argv if a in action.choices), self)
        known = [s for s in parser._option_string_actions if s.startswith("--")]
        caused_by_a_typo = message.startswith(("unrecognized arguments", "the following arguments are required"))
        for token in (t.split("=", 1)[0] for t in Parser.argv if t.startswith("--") and caused_by_a_typo):
            if known and token not in known:
                close = difflib.get_close_matches(token, known, n=1)
                hint = f"; did you mean {close[0]}?" if close else f"; see {parser.prog} --help"
                message = f"unknown option {token}{hint}"
                break
        self.exit(2, f"{parser.prog}: error: {message}\n")


def int_in_range(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}" if high is None
                                             else f"must be in [{low}, {high}], got {value}")
        return value
    return parse


positive_int = int_in_range(1)
non_negative_int = int_in_range(0)  # holdout sizes
seed_int = int_in_range(0, MAX_SEED)  # params.Seed's range


def existing_dir(text: str) -> str:
    """A folder the user names for data: one that is not there is a typo, not a reason to read data elsewhere."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no folder {text!r}")
    return text


def count_or_auto(text: str) -> int | str:
    """"auto", or a whole number of at least 1."""
    try:
        return text if text == "auto" else positive_int(text)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"{e}, or 'auto'") from None


def learning_rate(text: str) -> float:
    """A step size: a finite number > 0 (NaN trains a model to NaN that scores at chance; a negative one ascends)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def imbalance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 1 (n_max/n_min), got {text!r}") from None
    if not value >= 1:
        raise argparse.ArgumentTypeError(f"imbalance factor beta = n_max/n_min must be >= 1, got {value} "
                                         "(an imbalance *rate* 0.01 is beta 100)")
    return value


def add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--dataset", required=required, help="digits | fashion-mnist | mnist | cifar10 | cifar100 | "
                   "tiny-imagenet | imagenet-lt")
    p.add_argument("--imbalance", type=imbalance, default=None,
                   help="imbalance factor beta = n_max/n_min (1 = balanced)")
    p.add_argument("--profile", choices=["exp", "step"], default=None)
    p.add_argument("--data-seed", type=seed_int, default=0, help="seed of the long-tailed subsampling")
    p.add_argument("--data-dir", type=existing_dir, default=None, help="where dataset files are (also $LTDISTILL_DATA)")
    p.add_argument("--class-order", default=None, metavar="ORDER",
                   help="which class gets the most images: natural (class 0 the head), hard-tail (the hardest "
                        "classes the tail, as measured: datasets --rank-classes), easy-tail, random:SEED, or a "
                        "permutation head first, e.g. 3,1,0,2")
    p.add_argument("--holdout", type=non_negative_int, default=0, metavar="V",
                   help="hold V images per class of the source train split out as a validation set (tuning)")


def data_from_args(args, dataset: str, imbalance: float | None, profile: str | None):
    """The long-tailed dataset named by the data flags of add_data_args (seed, directory, holdout)."""
    from ltdistill.data.longtail import load_longtail

    return load_longtail(dataset, imbalance, profile or "exp", args.data_seed, args.data_dir, holdout=args.holdout,
                         class_order=args.class_order or "natural")


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--seed", type=seed_int, default=None,
                   help="random seed (default 0, or [run] seed of --config)")
    p.add_argument("--protocol", choices=["cpu", "paper"], default=None,
                   help="scale protocol: cpu (width-32 nets, 300 eval epochs) or paper (width 128, 1000 epochs)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_stem(p)


def add_compile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile: one compilation (tens of seconds on a CPU) per architecture and "
                        "batch shape, then faster steps; results equal to float tolerance")


def add_precision(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="bfloat16: mixed-precision training (forward passes in bfloat16, weights and optimizer in "
                        "float32): faster where the CPU or GPU has bfloat16 units, scores within seed noise of "
                        "float32's (benchmarks/precision_check.py), not the same runs")


def add_log_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-dir", default=None, metavar="DIR",
                   help="write TensorBoard event files of the run's curves here (tensorboard --logdir DIR); needs "
                        "the tensorboard package")


def add_stem(p: argparse.ArgumentParser) -> None:
    p.add_argument("--convnet-stem", choices=["official", "pad1"], default=None,
                   help="first layer of the ConvNet family: official (default; pads a one-channel input by 3, as "
                        "networks.py does) or pad1 (the network of results recorded without a stem)")


def build_parser() -> Parser:
    parser = Parser(prog="ltdistill", description="Long-tailed dataset distillation.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    s = sub.add_parser("datasets", help="list datasets, whether they are available here, how to get them")
    s.add_argument("--rank-classes", default=None, metavar="DATASET",
                   help="measure per-class accuracy of a ConvNet trained on the balanced training set: the class "
                        "hardness behind --class-order hard-tail/easy-tail")
    s.add_argument("--epochs", type=positive_int, default=20, help="with --rank-classes: training epochs")
    s.add_argument("--runs", type=positive_int, default=1, help="with --rank-classes: runs averaged")
    s.add_argument("--json", default=None, help="with --rank-classes: write the card here")
    s.add_argument("--data-dir", type=existing_dir, default=None)
    add_common(s)
    sub.add_parser("models", help="list registered models")
    sub.add_parser("methods", help="list registered methods and their config fields")

    x = sub.add_parser("experts", help="train expert trajectories on the long-tailed set (resumable)")
    add_data_args(x)
    x.add_argument("--num", "--num-experts", dest="num", type=positive_int, default=10,
                   help="number of experts (papers: 100); under torchrun write --num-experts (torchrun reads --num)")
    x.add_argument("--epochs", type=positive_int, default=20, help="epochs per expert (MTT 50, LTDD 100)")
    x.add_argument("--decoupled", action="store_true",
                   help="LTDD Expert Decoupling: representation experts, then classifier experts")
    x.add_argument("--cls-epochs", type=positive_int, default=None,
                   help="classifier-expert epochs (--decoupled; default 10)")
    x.add_argument("--maxnorm", default=None, help="MaxNorm threshold fraction for classifier experts (--decoupled; "
                   "the paper's text: 0.1), or 'off' (default: the reference's buffer path applies none)")
    x.add_argument("--gsam", type=float, default=None, metavar="RHO",
                   help="train the experts with GSAM of this radius (twice the cost of SGD), as LTDD's and DATM's FTD "
                        "buffers; default: 0.01 for --decoupled (LTDD's released buffers), 0 = plain SGD (MTT) "
                        "otherwise")
    x.add_argument("--gsam-alpha", type=float, default=0.3, help="GSAM's alpha (released LTDD configs: 0.3)")
    add_compile(x)
    add_precision(x)
    x.add_argument("--together", choices=["auto", "on", "off"], default="auto",
                   help="train standard experts as one stack of models (one vmapped step for all): auto (default) on "
                        "a CUDA device, one by one on a CPU; the same trajectories to float rounding")
    x.add_argument("--cls-sampler", choices=["class_aware", "draws"], default=None,
                   help="classifier experts' epoch (--decoupled): the reference's ClassAwareSampler (default: max "
                        "class count x C samples in runs of 4 from one class), or N class-balanced draws")
    x.add_argument("--lr", type=learning_rate, default=0.01, help="expert lr (lr_teacher)")
    x.add_argument("--weight-decay", type=float, default=None,
                   help="default: 0 (standard), 5e-3 (decoupled representation experts)")
    x.add_argument("--model", default="convnet")
    x.add_argument("--width", type=positive_int, default=None)
    x.add_argument("--depth", type=positive_int, default=None)
    x.add_argument("--zca", type=float, default=None, metavar="EPS", help="ZCA-whiten the data (papers: 0.1)")
    x.add_argument("--shard", default="0/1", help="k/n: train experts k, k+n, ... (parallel processes)")
    x.add_argument("--out", required=True)
    add_common(x)
    add_log_dir(x)

    d = sub.add_parser("distill", help="synthesize a class-balanced set from a long-tailed one")
    d.add_argument("--method", default=None)
    add_data_args(d, required=False)
    d.add_argument("--ipc", type=positive_int, default=None, help="images per class")
    d.add_argument("--experts", default=None, help="expert buffer directory (trajectory methods)")
    d.add_argument("--config", default=None, help="TOML preset with [run] and [method] tables")
    d.add_argument("--iterations", type=positive_int, default=None)
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one method config field (TOML value syntax), repeatable")
    d.add_argument("--out", required=True, help="output directory for the SyntheticSet")
    d.add_argument("--restart", action="store_true", help="discard a checkpoint left in --out by an earlier run")
    d.add_argument("--labels", choices=["own", "adsa", "adsa-t1"], default="own",
                   help="own (default): the method's labels; adsa: calibrated once by ADSA (labels/adsa.py) and stored "
                        "with the set (a teacher set keeps the calibration with its teacher), its strength estimated "
                        "at the teacher's temperature; adsa-t1: estimated at T = 1, the paper's equation as written")
    d.add_argument("--keep-every", type=positive_int, default=None, metavar="K",
                   help="keep the set every K iterations (iteration 0 too) in OUT/snapshots, as the reference code "
                        "evaluates it during a run (evaluate --snapshots)")
    add_common(d)
    add_log_dir(d)

    t = sub.add_parser("table", help="print a Markdown table of evaluation JSONs (evaluate --json outputs)")
    t.add_argument("results", nargs="+", help="JSON files written by `ltdistill evaluate --json`")

    w = sub.add_parser("twostage", help="the two-stage (group, then class) classifier on a distilled set")
    w.add_argument("artifact", help="a SyntheticSet directory (any method)")
    w.add_argument("--stage1", choices=["original", "distilled"], default="original",
                   help="training data of the group classifier (paper: original, the whole LT set)")
    w.add_argument("--stage2", choices=["original", "distilled"], default="distilled",
                   help="training data of the intra-group classifiers (paper: distilled)")
    w.add_argument("--grouping", choices=["original", "distilled", "balanced"], default="original",
                   help="data whose features define the groups")
    w.add_argument("--clusters", type=positive_int, default=5, help="k-means centroids per class (M)")
    w.add_argument("--runs", type=positive_int, default=3)
    w.add_argument("--epochs", type=positive_int, default=None, help="epochs on distilled data (protocol default)")
    w.add_argument("--original-epochs", type=positive_int, default=30, help="epochs on the original LT set")
    w.add_argument("--figure", default=None, metavar="PNG",
                   help="also group balanced, original and distilled data and draw their t-SNE (paper Fig. 1)")
    w.add_argument("--json", default=None, help="write the result here")
    w.add_argument("--data-dir", type=existing_dir, default=None)
    add_common(w)

    b = sub.add_parser("bench", help="run a benchmark suite (benchmarks/suites/NAME.toml): cached, resumable cells")
    b.add_argument("--suite", required=True, help="quick | fmnist | ... or a suite .toml path")
    b.add_argument("--out", required=True, help="run directory (rerun the same command to resume)")
    b.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    b.add_argument("--data-dir", type=existing_dir, default=None, help="where dataset files are (also $LTDISTILL_DATA)")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar over cells")
    b.add_argument("--only", default=None, help="comma-separated method labels (full = the whole-set reference) "
                   "or cell names (see --plan), or shell-style patterns of them ('edc_*_ipc50_*'): run just those")
    b.add_argument("--jobs", type=count_or_auto, default="auto", help="commands run at once (default auto: on a "
                   "CPU as many as there are cores, on a GPU one; several small cells can share one GPU); with more "
                   "than one, each cell logs to its own log.txt")
    b.add_argument("--threads", type=count_or_auto, default="auto", help="torch threads of each command (default "
                   "auto: 1 on a CPU, so a cell scores the same however many run beside it; torch's own on a GPU); "
                   "one cell alone runs faster on a CPU with --jobs 1 --threads <cores> (its numbers then differ by "
                   "the float rounding training carries on)")
    b.add_argument("--nproc", type=positive_int, default=1, help="run the commands that split their work (experts, "
                   "evaluate, distill of " + ", ".join(SPLITTING_METHODS) + ") under torchrun with N processes each "
                   "(default 1: one process); results equal one process's")
    b.add_argument("--fresh-interpreters", action="store_true", help="start every command in a new Python "
                   "interpreter; by default (Linux) they are forked from one server that has imported torch and "
                   "ltdistill once, which saves seconds per command; results are the same")
    b.add_argument("--cross-arch", default=None, help="comma-separated models to add to the suite's cross_arch "
                   "for this run (e.g. alexnet,vgg11,resnet18 on a GPU); finished cells get just these evaluations")
    b.add_argument("--plan", action="store_true", help="list the cells and where each stands in --out; run nothing")
    b.add_argument("--no-figures", action="store_true", help="write the table and results but not the report's "
                   "figures (report/; `ltdistill report OUT` draws them later)")
    add_stem(b)
    b.add_argument("--compile", action="store_const", const=True, default=None, help="the suite's evaluations, "
                   "experts and the methods' own first-order loops through torch.compile (the suite's `compile`): "
                   "faster on a CPU, the same runs to float rounding; cells, buffers and references keyed apart")
    b.add_argument("--precision", choices=PRECISIONS, default=None, help="the suite's evaluation training in this "
                   "precision (the suite's `precision`, default float32); bfloat16 scored within seed noise of "
                   "float32 (benchmarks/precision_check.py), keyed apart; experts stay float32")

    r = sub.add_parser("report", help="image grids, per-class bars, loss curves and tables for a run directory")
    r.add_argument("paths", nargs="+", metavar="PATH",
                   help="directories holding artifacts and/or evaluation JSONs (searched; a bench directory gives its "
                        "results/ alone), artifacts, or evaluation JSONs")
    r.add_argument("--out", default=None, help="where to write the report (default: DIR/report, one directory given)")

    e = sub.add_parser("evaluate", help="train fresh models on a SyntheticSet (or the full LT set) and score them")
    e.add_argument("artifact", nargs="?", help="SyntheticSet directory")
    e.add_argument("--full", action="store_true", help="evaluate training on the whole long-tailed set instead")
    add_data_args(e, required=False)
    e.add_argument("--model", default="convnet")
    e.add_argument("--width", type=positive_int, default=None)
    e.add_argument("--depth", type=positive_int, default=None)
    e.add_argument("--runs", type=positive_int, default=3)
    e.add_argument("--epochs", type=positive_int, default=None)
    e.add_argument("--lr", type=learning_rate, default=None, help="default: the learned lr of the set, else 0.01")
    e.add_argument("--batch-size", type=positive_int, default=256)
    e.add_argument("--teacher-from", default=None, metavar="ARTIFACT",
                   help="relabel with the teacher saved in another set (DD-Ranking's random baseline under a "
                        "relabeling method's recipe)")
    e.add_argument("--split", choices=["test", "val"], default="test",
                   help="score on the test sets (default) or on the validation holdout (tuning; needs --holdout data)")
    e.add_argument("--recipe", choices=["ltdistill", "sre2l", "edc"], default=None,
                   help="how a set with a teacher is trained: ltdistill (the protocol of every set), sre2l (SRe2L's "
                        "official relabel recipe: AdamW, cosine, crop+flip+mixup, KL at T=30, batch 128, 400 epochs) "
                        "or edc (EDC's: AdamW, x0.5 steps, batch 10, resized crop+flip+CutMix, MSE to the teacher's "
                        "logits + 0.025 CE, 1000 epochs, the 0.99 weight EMA scored); default: the one the set names "
                        "(EDC sets: edc) where its teacher relabels, else ltdistill")
    e.add_argument("--ranking", choices=["ltdistill", "ddranking"], default="ltdistill",
                   help="how runs are scored: ltdistill (the model after the last epoch) or ddranking (DD-Ranking's "
                        "protocol: the best of every 20 epochs, an lr grid where no lr is given, no augmentation for "
                        "hard labels, a random set redrawn per run; selected on the test set, so optimistic)")
    e.add_argument("--labels", choices=["auto", "hard", "stored", "adsa", "adsa-t1"], default="auto",
                   help="auto: the set's own regime (teacher relabeling when it has a teacher); hard: class labels "
                        "only (DD-Ranking's hard-label accuracy); stored: its stored labels, no teacher; adsa: "
                        "its own regime with ADSA's soft-label calibration (labels/adsa.py), its strength estimated "
                        "at the temperature the labels train at; adsa-t1: estimated at T = 1 (the paper's equation "
                        "as written; differs where a teacher relabels at T != 1, e.g. SRe2L's and uni-level's T = 4)")
    e.add_argument("--json", default=None, help="write the metrics here (refuses an existing file)")
    e.add_argument("--snapshots", action="store_true",
                   help="also evaluate the sets kept along the run (distill --keep-every) and report the best of them "
                        "beside the final set's: the reference code's protocol, optimistic since it selects on the "
                        "test set")
    e.add_argument("--runs-dir", default=None, metavar="DIR",
                   help="keep each finished run in DIR, and a run in progress every 2 minutes; the same command run "
                        "again reads those back and trains only the rest (resume a long evaluation, e.g. the full-set "
                        "reference)")
    add_common(e)
    add_log_dir(e)
    add_compile(e)
    add_precision(e)
    e.add_argument("--runs-together", choices=["auto", "on", "off"], default="auto",
                   help="train the runs as one stack of models (one vmapped step for all): auto (default) on a CUDA "
                        "device, one by one on a CPU; the same runs to float tolerance")
    return parser


MADE_FOR_OUTPUT: list[Path] = []  # the directories this command created for its outputs (the topmost new one of each)


def ensure_writable_dir(directory: Path) -> None:
    """Fail before hours of work, not after: safe_io.check_writable creates the directory and writes a small file
    in it under a name no one can predict, so a link planted in the directory is never opened. What it creates is
    noted, so that a command refused afterwards leaves the disk as it found it (remove_made_dirs)."""
    from ltdistill.safe_io import check_writable

    directory = Path(directory)
    new = [p for p in [directory, *directory.parents] if not os.path.lexists(p)]
    if new:  # noted first: a probe that fails after making the folders leaves them for remove_made_dirs too
        MADE_FOR_OUTPUT.append(new[-1])
    check_writable(directory)


def remove_made_dirs() -> None:
    """Remove the directories this command created for its outputs while they hold nothing but empty directories
    (os.rmdir never removes a file, and os.walk does not descend into links)."""
    for top in reversed(MADE_FOR_OUTPUT):
        if os.path.islink(top):  # replaced by a link since: what it points to is not ours
            continue
        for folder, _, _ in os.walk(top, topdown=False):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    MADE_FOR_OUTPUT.clear()


def new_json_path(name: str | None) -> Path | None:
    """A command's --json file, refused before any work when something is at the name (a link counts as a file:
    never written through, never replaced) or its folder cannot be written."""
    if not name:
        return None
    path = Path(name)
    check(not os.path.lexists(path), f"{path} exists; choose a new --json file (nothing was overwritten)")
    ensure_writable_dir(path.parent)
    return path


def resolve_device(name: str) -> str:
    from ltdistill.params import check_device

    return check_device(name, "--device")


def cmd_datasets(args) -> int:
    from ltdistill.data.sources import SOURCES, is_available

    if args.rank_classes:
        return rank_classes(args)

    print(f"{'dataset':<15} {'available':<10} how to get it")
    for name, source in SOURCES.items():
        print(f"{name:<15} {'yes' if is_available(name) else 'no':<10} {source.how_to_get}")
    return 0


def rank_classes(args) -> int:
    """`datasets --rank-classes D`: measure the class hardness behind the hard-tail/easy-tail orders."""
    from ltdistill.evaluate.hardness import rank_classes as measure

    json_path = new_json_path(args.json)
    card = measure(args.rank_classes, protocol=args.protocol or "cpu", epochs=args.epochs, runs=args.runs,
                   data_dir=args.data_dir, device=resolve_device(args.device), progress=not args.no_progress)
    names = card["class_names"]
    print("easiest to hardest: " + ", ".join(f"{names[c]} {100 * card['per_class_acc'][c]:.1f}"
                                             for c in card["easiest_first"]))
    if json_path is not None:
        from ltdistill.safe_io import write_json

        write_json(json_path, card)
        print(f"wrote {json_path}")
    return 0


def cmd_models(args) -> int:
    from ltdistill import models

    print("\n".join(models.names()))
    return 0


def cmd_methods(args) -> int:
    import dataclasses

    from ltdistill import methods

    def shown(f) -> str:  # a field's default, and its choices where it declares them (params.py)
        kind = str(f.type)
        choices = f" (one of {kind[kind.index('[') + 1:-1]})" if kind.startswith("Literal[") else ""
        return f"{f.name}={f.default!r}{choices}"

    for name, cls in sorted(methods.METHODS.items()):
        print(f"{name}: {', '.join(shown(f) for f in dataclasses.fields(cls.Config))}")
    print("\nwidth and depth come from --protocol where not set (protocols.py): cpu (default) width 32, depth 3 (2 for "
          "images of 16 pixels or less, 4 for 64); paper width 128, depth 3 (4 for 64); the values above are the "
          "configs' own (methods.create(..., protocol=None))")
    return 0


def adsa_at_distill(synthetic, data, device: str, at_unit_temperature: bool = False):
    """`distill --labels adsa` / `adsa-t1`: the set calibrated once (labels/adsa.py stored_calibration), with its
    teacher where it relabels; tau* estimated at the teacher's temperature, or at T = 1."""
    from ltdistill.evaluate.protocol import load_teacher
    from ltdistill.labels import adsa

    teacher, temperature = load_teacher(synthetic, data, device) if synthetic.teacher is not None else (None, 1.0)
    return adsa.stored_calibration(synthetic, data.counts, teacher, 1.0 if at_unit_temperature else temperature)


def cmd_distill(args) -> int:
    from ltdistill import methods
    from ltdistill.config import load_preset, method_settings
    from ltdistill.engine.loop import clear_checkpoint

    method_config, run = load_preset(args.config) if args.config else ({}, {})
    settings = {k: run.get(k) for k in ("method", "dataset", "imbalance", "ipc", "profile", "protocol")}
    for key in settings:
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    for key in ("method", "dataset", "ipc"):
        check(settings[key] is not None, f"distill needs --{key} (or [run] {key} in --config)")
    ipc, dataset = settings["ipc"], str(settings["dataset"])
    check(isinstance(ipc, int) and ipc >= 1, f"ipc must be an integer >= 1, got {ipc!r}")
    assert isinstance(ipc, int)  # for the type checker: check() raised otherwise
    method_config = method_settings(method_config, run, args.set, args.iterations)
    out = Path(args.out)
    from ltdistill.synthetic import holds_result

    check(not holds_result(out), f"{out} already holds a result; choose a new --out (nothing was overwritten)")
    device = resolve_device(args.device)
    if settings["method"] not in methods.METHODS:
        raise BadInput(f"unknown method {settings['method']!r}; known: {', '.join(methods.names())}")
    protocol = settings["protocol"] or "cpu"
    imbalance_factor = settings["imbalance"]
    if imbalance_factor is not None:
        imbalance_factor = float(imbalance_factor)
        check(imbalance_factor >= 1, f"imbalance factor must be >= 1, got {imbalance_factor}")
    args.class_order = args.class_order or run.get("class_order")  # the flag over the preset's [run] key
    data = data_from_args(args, dataset, imbalance_factor, settings["profile"])

    from ltdistill import distributed

    here = distributed.joined()
    check(here.size == 1 or settings["method"] in SPLITTING_METHODS, f"distill --method {settings['method']} does "
          f"not split its work over processes yet; run it as one process (under torchrun: "
          f"{', '.join(SPLITTING_METHODS)})")
    method = methods.create(settings["method"], protocol=protocol, **method_config)  # the library scales it
    check(args.labels == "own" or method.makes_soft_labels() is not False,
          f"--labels {args.labels} calibrates soft labels or a relabeling teacher; {settings['method']} makes sets "
          f"with class labels only (ADSA applies to the sets of {', '.join(methods.soft_label_methods())})")
    experts = args.experts or run.get("experts")
    seed = args.seed if args.seed is not None else run.get("seed", 0)
    ensure_writable_dir(out)  # made (and probed) only now that the settings are good; removed if refused later
    if args.restart:
        clear_checkpoint(out)
    synthetic = method.distill(data, ipc, experts=experts, seed=seed,
                               progress=not args.no_progress, device=device, workdir=out,
                               keep_every=args.keep_every)
    synthetic.meta["protocol"] = protocol
    if not here.main:  # every rank holds the same set; rank 0 writes it
        return 0
    if args.labels != "own":
        try:
            calibrated = adsa_at_distill(synthetic, data, device, at_unit_temperature=args.labels == "adsa-t1")
        except BadInput as e:  # the distillation is kept all the same
            synthetic.save(out)
            clear_checkpoint(out)
            raise BadInput(f"{e}; the set was written to {out} without calibration") from None
        synthetic = calibrated
    synthetic.save(out)
    clear_checkpoint(out)
    print(f"wrote {synthetic.images.shape[0]} images ({settings['method']}, ipc {settings['ipc']}) to {out}")
    return 0


def parse_shard(text: str) -> tuple[int, int]:
    k, sep, n = text.partition("/")
    check(sep == "/" and k.isdigit() and n.isdigit() and 0 <= int(k) < int(n),
          f"--shard must be k/n with 0 <= k < n, got {text!r}")
    return int(k), int(n)


def cmd_experts(args) -> int:
    import dataclasses

    from ltdistill import distributed, protocols
    from ltdistill.experts.train import ExpertConfig, expert_accuracy, train_experts
    from ltdistill.safe_io import write_json

    here = distributed.joined()
    check(here.size == 1 or args.shard == "0/1", "--shard splits experts over separate commands; under torchrun the "
          "ranks split them: give one or the other")
    shard = (here.rank, here.size) if here.size > 1 else parse_shard(args.shard)
    out = Path(args.out)
    device = resolve_device(args.device)
    classifier = {"cls_epochs": args.cls_epochs, "maxnorm": args.maxnorm, "cls_sampler": args.cls_sampler}
    given = [f"--{k.replace('_', '-')}" for k, v in classifier.items() if v is not None]
    check(args.decoupled or not given, f"{', '.join(given)}: the classifier experts of a decoupled buffer; standard "
          "experts have none (add --decoupled)")
    if args.maxnorm is not None:
        classifier["maxnorm"] = None if args.maxnorm == "off" else _float(args.maxnorm, "--maxnorm")
    data = data_from_args(args, args.dataset, args.imbalance, args.profile)
    net = protocols.network(args.protocol or "cpu", data.im_size)
    config = ExpertConfig(num_experts=args.num, epochs=args.epochs, lr=args.lr, decoupled=args.decoupled,
                          weight_decay=args.weight_decay or 0.0,
                          rep_weight_decay=5e-3 if args.weight_decay is None else args.weight_decay,
                          **{k: v for k, v in classifier.items() if v is not None},
                          gsam_rho=args.gsam, gsam_alpha=args.gsam_alpha, compile=args.compile,
                          precision=args.precision, model=args.model,
                          width=args.width or net["width"], depth=args.depth or net["depth"], zca_eps=args.zca,
                          seed=args.seed or 0)
    if not here.main:
        distributed.barrier()  # rank 0 writes the buffer's index first
    ensure_writable_dir(out)
    buffer = train_experts(data, config, out, shard=shard, device=device, progress=not args.no_progress,
                           together=args.together,
                           opened=distributed.barrier if here.main else None)
    distributed.barrier()  # every rank's experts are in the buffer
    if not here.main:
        return 0
    kinds = ["rep", "cls"] if config.decoupled else ["standard"]
    print(f"{out}: " + ", ".join(f"{len(buffer.finished(k))} {k} trajectories" for k in kinds))
    # with a holdout, the experts are judged on it: a tuning run never reads the test set
    scored, split = (data.validation(), "validation") if data.holdout else (data, "test")
    # self-describing, so docs/data/experts can hold the file as it is (benchmarks/results.py reads buffer and config)
    report = [{**expert_accuracy(buffer, scored, k, device), "split": split, "buffer": out.name,
               "config": dataclasses.asdict(config)} for k in kinds if buffer.finished(k)]
    for r in report:
        cost = "" if r["train_seconds"] is None else f" ({r['train_seconds']:.0f} s of training)"
        print(f"{r['kind']} experts, final epoch: balanced {split} acc {100 * r['balanced_acc']:.1f}%{cost}, per class "
              + " ".join(f"{100 * a:.0f}" for a in r["per_class_acc"]))
    write_json(out / "accuracy.json", report)
    return 0


def _float(text: str, flag: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadInput(f"{flag} must be a number or 'off', got {text!r}") from None


def print_summary(result: dict, class_names: list[str]) -> None:
    bal = result["balanced_acc"]
    lt = result["lt_test"]
    print(f"{result['training_set']} ({result.get('method')}), model {result['model']} {result['model_options']}, "
          f"{result['epochs']} epochs, {result['runs']} runs, "
          + (f"lr grid {result['lr_grid']} (chosen per run: {result['lr_per_run']})" if result.get("lr_grid")
             else f"lr {result['lr']:.4g}") + (f", {result['selection']}" if result.get("selection") else ""))
    on = " on the VALIDATION holdout" if result.get("split") == "val" else ""
    spread = f" +- {100 * bal['std']:.2f}" if result["runs"] > 1 else " (one run: no spread)"
    print(f"balanced accuracy  {100 * bal['mean']:.2f}{spread}{on}")
    print("many/medium/few    " + " / ".join("-" if result[k] is None else f"{100 * result[k]:.1f}"
                                              for k in ("many", "medium", "few")))
    print(f"class-acc std      {100 * result['class_acc_std']:.2f}")
    print(f"LT test            acc {100 * lt['acc']:.2f}  P {lt['precision']:.3f}  R {lt['recall']:.3f}  "
          f"F1 {lt['f1']:.3f}")
    stats = result.get("label_stats")
    if stats:
        print(f"soft labels        own-class target prob {stats['own_class_prob']:.2f}, argmax = class for "
              f"{100 * stats['argmax_is_class']:.0f}% of the images")
    labelers = result.get("models_accuracy")
    if labelers:
        accuracies = ", ".join(f"{name} {100 * m['balanced_acc']:.1f}" for name, m in labelers.items())
        print(f"labeling models      {accuracies} (balanced acc: the ceiling its relabeling sets)")
    best = result.get("best_of_snapshots")
    if best:
        print(f"best of {len(result['snapshots']) + 1} kept sets (iteration {best['iteration']}; optimistic: chosen on "
              f"the test set, as the reference code reports)  {100 * best['balanced_acc']:.2f}")
    per_class = zip(class_names, result["per_class_acc"], strict=True)
    print("per class          " + "  ".join(f"{n[:8]}:{100 * a:.0f}" for n, a in per_class))


def cmd_report(args) -> int:
    from ltdistill.report.build import build_report

    print(f"wrote {build_report(*args.paths, out=args.out)}")
    return 0


def cmd_table(args) -> int:
    from ltdistill.report import results_table

    print(results_table([Path(p) for p in args.results]), end="")
    return 0


def cmd_evaluate(args) -> int:
    from ltdistill import protocols
    from ltdistill.evaluate import EvalConfig, evaluate_full, evaluate_synthetic
    from ltdistill.synthetic import SyntheticSet

    json_path = new_json_path(args.json)
    runs_dir = Path(args.runs_dir) if args.runs_dir else None
    if runs_dir is not None:
        ensure_writable_dir(runs_dir)
    device = resolve_device(args.device)
    if args.full:
        check(args.artifact is None, "give either an artifact directory or --full, not both")
        check(args.dataset is not None, "evaluate --full needs --dataset and --imbalance")
        # options that act on a set's labels, teacher or kept sets: the full set has class labels and nothing else
        check(args.labels in ("auto", "hard"), f"--labels {args.labels} acts on a set's soft labels or teacher; "
              "the full long-tailed set has class labels only")
        check(args.teacher_from is None, "--teacher-from relabels a set's images; the full long-tailed set is "
              "scored with its class labels")
        check(not args.snapshots, "--snapshots evaluates the sets an artifact kept; the full long-tailed set has none")
        synthetic = None
        data = data_from_args(args, args.dataset, args.imbalance, args.profile)
        protocol = args.protocol or "cpu"
    else:
        check(args.artifact is not None, "evaluate needs a SyntheticSet directory (or --full --dataset D)")
        check(args.holdout == 0, "--holdout is read from the artifact's metadata; give it only with --full")
        synthetic, data = load_artifact_data(args.artifact, args.data_dir)
        meta = synthetic.meta
        if args.snapshots:  # before the final set's evaluation, not after it
            from ltdistill.evaluate.protocol import kept_snapshots

            kept_snapshots(Path(args.artifact))
        protocol = args.protocol or meta.get("protocol", "cpu")
    if args.split == "val":
        check(args.full or data.val_x is not None, f"{args.artifact} was distilled without a holdout, so its data has "
              "no validation split: distill it with --holdout V to score it on one")
        data = data.validation()
    from ltdistill.evaluate.protocol import eval_network

    options = eval_network(EvalConfig(model=args.model, protocol=protocol), data.im_size)  # the ConvNet family's
    if args.width is not None:
        options["width"] = args.width
    if args.depth is not None:
        options["depth"] = args.depth
    from ltdistill.evaluate.protocol import RECIPE_EPOCHS
    from ltdistill.synthetic import check_fits

    source = None if synthetic is None or args.teacher_from is None else SyntheticSet.load(args.teacher_from)
    labeler = source if source is not None else synthetic  # the set whose teacher relabels, if any
    relabels = labeler is not None and labeler.teacher is not None and args.labels in ("auto", "adsa", "adsa-t1")
    recipe = args.recipe or (str(labeler.meta.get("recipe", "ltdistill")) if relabels and labeler else "ltdistill")
    default_epochs = RECIPE_EPOCHS.get(recipe) or protocols.eval_epochs(protocol)
    config = EvalConfig(model=args.model, model_options=tuple(sorted(options.items())), runs=args.runs,
                        epochs=args.epochs or default_epochs, lr=args.lr, batch_size=args.batch_size,
                        labels=args.labels, recipe=recipe, ranking=args.ranking, compile=args.compile,
                        precision=args.precision, protocol=protocol, runs_together=args.runs_together)
    progress = not args.no_progress
    if synthetic is None:
        result = evaluate_full(data, config, seed=args.seed or 0, device=device, progress=progress,
                               runs_dir=runs_dir)
    else:
        if source is not None:
            check(source.teacher is not None, f"{args.teacher_from} holds no teacher to relabel with")
            check_fits(source, data, f"--teacher-from {args.teacher_from}")  # the same long-tailed set, classes, order
            synthetic.teacher, synthetic.meta["teacher"] = source.teacher, source.meta["teacher"]
            synthetic.meta["teacher_from"] = str(args.teacher_from)
        result = evaluate_synthetic(synthetic, data, config, seed=args.seed or 0, device=device, progress=progress,
                                    runs_dir=runs_dir)
    result.update(protocol=protocol, dataset=data.name, imbalance_factor=data.imbalance_factor,
                  profile=data.profile, train_counts=data.counts, class_names=list(data.class_names),
                  split=args.split, holdout=data.holdout, class_order=data.class_order)
    if args.snapshots:
        from ltdistill.evaluate.protocol import evaluate_snapshots

        result.update(evaluate_snapshots(Path(args.artifact), result, data, config, seed=args.seed or 0,
                                         device=device, progress=progress, runs_dir=runs_dir))
    print_summary(result, data.class_names)
    from ltdistill import distributed

    main_rank = distributed.joined().main  # every rank holds the gathered result; rank 0 writes it
    return 0 if json_path is None or not main_rank else write_result_json(json_path, result)


def write_result_json(path: Path, result: dict) -> int:
    """Write an evaluation's metrics; when that fails at the end (the disk filled during the run, a link appeared at
    the name), print them to stdout instead, so hours of evaluation are not lost, and exit 1 with one line."""
    from ltdistill.safe_io import atomic_write_bytes, json_bytes

    data = json_bytes(result)
    try:
        atomic_write_bytes(path, data)
    except (OSError, BadInput) as e:
        print(data.decode())
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        print(f"ltdistill: error: cannot write {path} ({reason}); its metrics are printed above", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def load_artifact_data(artifact, data_dir):
    """A SyntheticSet and the LTDataset it was distilled from (checked to fit)."""
    from ltdistill.data.longtail import load_longtail
    from ltdistill.synthetic import SyntheticSet

    synthetic = SyntheticSet.load(artifact)
    meta = synthetic.meta
    check("dataset" in meta, f"{artifact}/meta.json does not name its dataset")
    from ltdistill.synthetic import check_data_meta, check_fits

    check_data_meta(Path(artifact), meta)
    data = load_longtail(meta["dataset"], meta.get("imbalance_factor") if meta.get("profile") != "native" else None,
                         meta.get("profile", "exp"), meta.get("data_seed", 0), data_dir, zca_eps=meta.get("zca_eps"),
                         holdout=meta.get("holdout", 0), class_order=meta.get("class_order", "natural"))
    check_fits(synthetic, data, str(artifact))
    return synthetic, data


def cmd_twostage(args) -> int:
    import torch

    from ltdistill import models, protocols
    from ltdistill.data.longtail import load_longtail
    from ltdistill.safe_io import write_json
    from ltdistill.train import TrainConfig, embed, train_model
    from ltdistill.twostage import evaluate_two_stage, find_groups

    check(args.figure is None or not Path(args.figure).exists(), f"{args.figure} exists; choose a new --figure")
    json_path = new_json_path(args.json)
    device = resolve_device(args.device)
    synthetic, data = load_artifact_data(args.artifact, args.data_dir)
    protocol = args.protocol or synthetic.meta.get("protocol", "cpu")
    options = protocols.network(protocol, data.im_size)
    epochs = args.epochs or protocols.eval_epochs(protocol)
    seed = args.seed or 0
    sources = {"original": (data.train_x, data.train_y, args.original_epochs),
               "distilled": (synthetic.images, synthetic.hard_labels, epochs)}
    wanted = {"original", "distilled", "balanced"} if args.figure else {args.grouping}
    if "balanced" in wanted:
        check(data.zca_eps is None, "--grouping balanced / --figure need a set without ZCA")
        balanced = load_longtail(data.name, 1.0, "exp", 0, args.data_dir)
        sources["balanced"] = (balanced.train_x, balanced.train_y, args.original_epochs)
    groupings, panels = {}, {}
    for name in ["balanced", "original", "distilled"]:
        if name not in wanted:
            continue
        x, y, n_epochs = sources[name]
        torch.manual_seed(seed)
        net = models.create("convnet", channels=data.channels, num_classes=data.num_classes, im_size=data.im_size,
                            **options).to(device)
        train_model(net, x, y, TrainConfig(epochs=n_epochs), generator=torch.Generator().manual_seed(seed),
                    progress=not args.no_progress, desc=f"features ({name})")
        groupings[name] = find_groups(net, x, y, data.num_classes, args.clusters, seed)
        panels[name] = (embed(net, data.test_x[:2000]).numpy(), data.test_y[:2000].numpy())
        print(f"grouping on {name}: {groupings[name]['groups']} ({groupings[name]['search']} search)")
    groups = groupings[args.grouping]["groups"]
    stage = {"original": (data.train_x, data.train_y), "distilled": (synthetic.images, synthetic.labels)}
    result = evaluate_two_stage(data, groups, stage[args.stage1], stage[args.stage2], model="convnet",
                                options=options, epochs1=args.original_epochs if args.stage1 == "original" else epochs,
                                epochs2=args.original_epochs if args.stage2 == "original" else epochs,
                                runs=args.runs, seed=seed, device=device)
    result.update(training_set=f"{args.stage1}+{args.stage2}", method=synthetic.meta.get("method"),
                  ipc=synthetic.meta.get("ipc"), dataset=data.name, imbalance_factor=data.imbalance_factor,
                  protocol=protocol, groupings=groupings, grouping=args.grouping, device=device,
                  stable=len({str(sorted(map(sorted, g["groups"]))) for g in groupings.values()}) == 1)
    print_summary({**result, "lr": 0.01, "seconds_per_run": 0}, data.class_names)
    print(f"group accuracy     {100 * result['group_acc']['mean']:.2f}")
    if args.figure:
        from ltdistill.report.plots import tsne_panels

        tsne_panels(panels, data.class_names, {k: v["groups"] for k, v in groupings.items()}, Path(args.figure))
        print(f"wrote {args.figure}")
    if json_path is not None:
        write_json(json_path, result)
        print(f"wrote {json_path}")
    return 0


def cmd_bench(args) -> int:
    from ltdistill.bench import run_suite, suite_plan

    only = args.only.split(",") if args.only else None
    cross_arch = args.cross_arch.split(",") if args.cross_arch else None
    overrides = {"convnet_stem": args.convnet_stem, "compile": args.compile, "precision": args.precision}
    if args.plan:
        print(suite_plan(args.suite, args.out, only=only, device=args.device, data_dir=args.data_dir,
                         cross_arch=cross_arch, overrides=overrides, jobs=args.jobs), end="")
        return 0
    resolve_device(args.device)
    table = run_suite(args.suite, args.out, device=args.device, data_dir=args.data_dir,
                      progress=not args.no_progress, only=only, jobs=args.jobs, threads=args.threads,
                      cross_arch=cross_arch,
                      overrides=overrides, nproc=args.nproc,
                      fresh_interpreters=args.fresh_interpreters, figures=not args.no_figures)
    print(table.read_text(), end="")
    print(f"wrote {table}" + ("" if args.no_figures else f" and {Path(args.out) / 'report' / 'index.md'} (figures)"))
    return 0


COMMANDS = {"bench": cmd_bench, "twostage": cmd_twostage, "datasets": cmd_datasets, "models": cmd_models,
            "methods": cmd_methods, "experts": cmd_experts, "distill": cmd_distill, "evaluate": cmd_evaluate,
            "table": cmd_table, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # glibc keeps freed activations for reuse (ltdistill/runtime.py)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return int(e.code or 0)
    from ltdistill import distributed, watch
    from ltdistill.models import option_defaults

    MADE_FOR_OUTPUT.clear()
    try:
        here = join_world(args)
        with (option_defaults(stem=getattr(args, "convnet_stem", None)),
              watch.logging_to(getattr(args, "log_dir", None), rank=here.rank)):
            code = COMMANDS[args.command](args)
        distributed.stop(finished=True)
        return code
    except BadInput as e:
        remove_made_dirs()
        print(f"ltdistill: error: {e}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"ltdistill: diverged: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ltdistill: interrupted", file=sys.stderr)
        return 130
    finally:
        distributed.stop()


def serve_commands(argv: list[str]) -> None:
    """The entry of `bench`'s command server (ltdistill/bench/warm.py): it runs this module's `main` per command."""
    from ltdistill.bench.warm import server_main

    server_main(argv, main)


def join_world(args):
    """Under torchrun (WORLD_SIZE > 1): join the process group; ranks other than 0 print nothing and show no bar
    (rank 0 alone writes the results). One process: nothing to do."""
    from ltdistill import distributed

    here = distributed.world()
    if here.size == 1:
        return here
    check(args.command in SPLITTING_COMMANDS, f"{args.command} does not split its work over processes yet; run it "
          f"as one process (under torchrun: {', '.join(SPLITTING_COMMANDS)})")
    distributed.start(args.device)
    args.device = distributed.local_device(args.device)
    if not here.main:
        args.no_progress = True
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's lifetime)
    return here


if __name__ == "__main__":
    sys.exit(main())
