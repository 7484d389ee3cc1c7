"""The evaluation protocol: train fresh models on a training set (a SyntheticSet, or the whole long-tailed set as
the upper reference), N runs with seeds seed..seed+N-1, and report every metric of evaluate/metrics.py.

Defaults follow MTT/DATM/LTDD evaluate_synset: SGD momentum 0.9, weight decay 5e-4, DSA, lr x0.1 at half,
soft cross-entropy for soft labels, the method's learned lr when it learned one, else lr 0.01; batch 256.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import torch
from torch import nn
from tqdm import tqdm

from ltdistill import distributed, models, protocols, watch
from ltdistill.data.longtail import LTDataset, check_dataset
from ltdistill.data.subset import random_per_class
from ltdistill.errors import BadInput
from ltdistill.evaluate.metrics import SHOT_RULE, aggregate, model_accuracy, run_metrics, shot_groups
from ltdistill.evaluate.runstore import PartialRun, RunStore, tensor_digest
from ltdistill.keys import LATER_FIELDS, fingerprint
from ltdistill.models import ensemble
from ltdistill.params import Count, ModelName, OneOf, Rate, Seed, check_device, check_own_fields, check_value
from ltdistill.runtime import host
from ltdistill.synthetic import SyntheticSet, check_fits
from ltdistill.together import chosen, train_together, unsupported
from ltdistill.train import PRECISIONS, TrainConfig, TrainingDiverged, predict, train_model


@dataclass(frozen=True)
class EvalConfig:
    """How a set is evaluated; every field is checked when the config is made (one BadInput line for a bad one)."""
    model: ModelName = "convnet"
    model_options: tuple = ()  # ((key, value), ...) passed to models.create, e.g. (("width", 32),)
    runs: Count = 3
    epochs: Count = 300
    lr: Rate | None = None  # None: the learned lr of the set when present, else 0.01
    batch_size: Count = 256
    class_balanced: bool = False
    temperature: Rate = 1.0
    labels: Annotated[str, OneOf(LABEL_REGIMES)] = "auto"  # auto: the set's own regime (relabel with its
    #   teacher, else its soft or hard labels); hard: class labels only (DD-Ranking's Acc_syn-hard); stored: no
    #   teacher relabeling; adsa: the set's own regime with ADSA-calibrated labels
    recipe: Annotated[str, OneOf(RECIPES)] = "ltdistill"  # how a set with a teacher is trained: see RECIPES
    ranking: Annotated[str, OneOf(RANKINGS)] = "ltdistill"  # "ddranking": DD-Ranking's protocol (see RANKINGS)
    # the scale of a ConvNet-family evaluation network where model_options leave it open (protocols.py: cpu width 32,
    # paper 128); None: the model's own defaults
    protocol: Annotated[str, OneOf(("cpu", "paper"))] | None = "cpu"
    compile: bool = False  # train through torch.compile (train.compiled_model); the same runs to float tolerance
    precision: Annotated[str, OneOf(PRECISIONS)] = "float32"  # "bfloat16": mixed-precision training (train.PRECISIONS)
    # train the runs as one stack of models (together.py): "auto" on a CUDA device; the same runs to float tolerance
    runs_together: Annotated[str, OneOf(("auto", "on", "off"))] = "auto"

    def __post_init__(self) -> None:
        check_own_fields(self, "evaluate", kind="evaluation", skip=("model_options",))


def eval_network(config: EvalConfig, im_size: tuple[int, int]) -> dict:
    """The evaluation model's options: a ConvNet's width and depth from the protocol (the protocols scale the
    ConvNet family; other models keep their own), under those model_options gives."""
    convnet = "stem" in models.resolved_options(config.model)
    scale = protocols.network(config.protocol, im_size) if config.protocol is not None and convnet else {}
    return {**models.options_for(config.model, **scale), **dict(config.model_options)}


# How a relabeling set (one with a teacher) is trained. "ltdistill": the protocol of every other set (SGD 0.01,
# momentum 0.9, x0.1 at half, DSA) with the teacher's logits on each augmented batch, T^2 x soft CE at the set's
# temperature. "sre2l": SRe2L's official CIFAR relabel recipe (small_dataset/relabel_cifar.py and
# relabel_cifar.sh): AdamW lr 1e-3 weight decay 0.01, cosine over the epochs, batch 128, RandomCrop(pad 4) + flip,
# mixup Beta(0.8, 0.8) with the teacher on the mixed batch in training mode, KL(batchmean) at T = 30 without T^2,
# 400 epochs (its script) unless --epochs says otherwise.
# "edc": EDC's CIFAR-10 student recipe (shaoshitong/EDC Branch_CIFAR_10 train/train.sh and direct_train.py): AdamW
# lr 1e-3 weight decay 0.01, x0.5 at epochs 800, 900 and 950 (--ls-type multisteplr), batch 10, RandomResizedCrop
# (0.08-1) + flip per image, CutMix on every batch, the teacher (the mean logits of all observers) on the mixed
# batch in eval mode, MSE to its logits + 0.025 x CE to each image's class (mse_gt), weight decay on weight matrices
# and kernels only (train/utils.py get_parameters), the run scored with the 0.99 EMA of its parameters (EMAMODEL,
# --ema-dr 0.99), 1000 epochs. Departure: no RandAugment before the crop.
RECIPES = ("ltdistill", "sre2l", "edc")
SRE2L_RECIPE: dict[str, Any] = {
    "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "schedule": "cosine", "batch_size": 128,
    "augmentation": "crop_flip", "mixup": 0.8, "relabel": "kl", "temperature": 30.0, "teacher_batch_stats": True}
EDC_RECIPE: dict[str, Any] = {
    "optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "schedule": "multistep", "batch_size": 10,
    "augmentation": "resized_crop_flip", "cutmix": True, "relabel": "mse_gt", "ce_weight": 0.025, "temperature": 1.0,
    "ema_decay": 0.99, "decay_matrices_only": True}
RECIPE_SETTINGS = {"sre2l": SRE2L_RECIPE, "edc": EDC_RECIPE}
SRE2L_EPOCHS = 400
RECIPE_EPOCHS = {"sre2l": SRE2L_EPOCHS, "edc": 1000}  # each recipe's own script's epochs


def recipe_later_settings(recipe: str) -> dict:
    """The settings a recipe took up after results made under its name existed (keys.LATER_FIELDS: EDC's EMA and
    weight-decay groups): what a key of its runs and cells adds, so a result made before is not taken for one made
    now. {} for a recipe that took up none (its keys stay as they were)."""
    return {k: v for k, v in RECIPE_SETTINGS.get(recipe, {}).items() if k in LATER_FIELDS and v != LATER_FIELDS[k]}

# How a run is scored. "ltdistill": the model after the last epoch, the set's learned lr (else 0.01), DSA on every
# batch. "ddranking": DD-Ranking's protocol (NUS-HPC-AI-Lab/DD-Ranking b8b0966, ddranking/metrics/soft_label.py):
# the balanced test set scored every 20 epochs and the best kept (test_interval, :130, :319-326, :375-382); every
# run without a given lr (a set without a learned one, hard labels, the random baseline) trains once per lr of the
# grid and keeps the best (_hyper_param_search_for_hard_label / _soft_label, :210-266); hard-label runs without
# augmentation (use_aug_for_hard False, :312); a random set redrawn for every run (_get_random_data_helper with the
# run's index, :458-490). Both selections are made on the test set: an optimistic number, as DD-Ranking reports it.
RANKINGS = ("ltdistill", "ddranking")
DDRANKING_TEST_EVERY = 20
DDRANKING_LR_GRID = (0.001, 0.005, 0.01, 0.05, 0.1)


def train_config(config: EvalConfig, data: LTDataset, *, lr: float, temperature: float | None,
                 teacher: bool, hard: bool = False) -> TrainConfig:
    """The trainer's settings of one evaluation run: the protocol's, or a teacher set's recipe; `hard`: the run
    learns class labels (DD-Ranking trains those without augmentation)."""
    base = TrainConfig(epochs=config.epochs, lr=lr, batch_size=config.batch_size, class_balanced=config.class_balanced,
                       temperature=temperature if temperature is not None else config.temperature,
                       augment=not (config.ranking == "ddranking" and hard and not teacher), compile=config.compile,
                       precision=config.precision)
    if config.recipe == "ltdistill":
        return base
    if not teacher:
        raise BadInput(f"recipe {config.recipe!r} relabels with a teacher; this set has none (give --teacher-from "
                       "a relabeling set, or --labels auto)")
    black = tuple(-m / s for m, s in zip(data.mean, data.std, strict=True))
    recipe = {**RECIPE_SETTINGS[config.recipe], **({"lr": config.lr} if config.lr is not None else {})}
    return replace(base, crop_fill=black, **recipe)


def trained_lr(config: EvalConfig, lr: float) -> float:
    """The lr the runs train with (train_config): a recipe's own unless one is given with --lr."""
    if config.recipe == "ltdistill" or config.lr is not None:
        return lr
    return RECIPE_SETTINGS[config.recipe]["lr"]


LABEL_REGIMES = ("auto", "hard", "stored", "adsa", "adsa-t1")  # adsa: the set's own regime with ADSA-calibrated
# labels (tau* estimated at the temperature the labels train at); adsa-t1: tau* estimated at T = 1 (labels/adsa.py)
ADSA_REGIMES = ("adsa", "adsa-t1")


def fresh_model(config: EvalConfig, data: LTDataset, seed: int, device: str):
    """The untrained evaluation model of the run with this seed."""
    torch.manual_seed(seed)
    return models.create(config.model, channels=data.channels, num_classes=data.num_classes,
                         im_size=data.im_size, **eval_network(config, data.im_size)).to(device)


def score(model, data: LTDataset) -> dict:
    """Every metric of a trained model on both test sets (evaluate/metrics.py run_metrics)."""
    return run_metrics(data.test_y.numpy(), predict(model, data.test_x).numpy(),
                       data.test_lt_y.numpy(), predict(model, data.test_lt_x).numpy(), data.counts)


def train_and_score(images, targets, data: LTDataset, config: EvalConfig, *, lr: float, seed: int,
                    device: str = "cpu", progress: bool = False, desc: str = "eval", teacher=None,
                    temperature: float | None = None, checkpoint=None, watch_as: str | None = None,
                    on_epoch=None, classes=None, data_parallel: bool = False) -> dict:
    """One run: a fresh model trained on (images, targets), scored on both test sets; `checkpoint`: a
    runstore.PartialRun that keeps the run's state while it trains (train_model); `watch_as`: the TensorBoard tag
    of its curves and scores (watch.py, --log-dir); `on_epoch` and `data_parallel`: train_model's."""
    model = fresh_model(config, data, seed, device)
    generator = torch.Generator().manual_seed(seed)
    settings = train_config(config, data, lr=lr, temperature=temperature, teacher=teacher is not None,
                            hard=targets.ndim == 1)

    best: dict = {}

    def every_epoch(done: int, seconds: float) -> None:
        if on_epoch is not None:
            on_epoch(done, seconds)
        if config.ranking == "ddranking" and done % DDRANKING_TEST_EVERY == 0:
            scored = score(model, data)
            if not best or scored["balanced_acc"] > best["balanced_acc"]:
                best.update(scored, selected_epoch=done)
            model.train()

    try:
        train_model(model, images, targets, settings, generator=generator, progress=progress, desc=desc,
                    teacher=teacher, checkpoint=checkpoint, watch_as=watch_as, on_epoch=every_epoch, classes=classes,
                    data_parallel=data_parallel)
        diverged = None
    except TrainingDiverged as e:  # scored as the model it left (NaN logits: every image to class 0), and said so
        diverged = e.epoch
        print(f"warning: {desc} ({config.model}) diverged: {e}; it scores as the model it left", file=sys.stderr)
    metrics = best or score(model, data)  # ddranking: the best of the scored epochs (none under 20 epochs: the last)
    if watch_as is not None:
        watch.scalars(f"{watch_as}/test", {"balanced_acc": 100 * metrics["balanced_acc"],
                                           **{f"class/{name}": 100 * acc for name, acc in
                                              zip(data.class_names, metrics["per_class_acc"], strict=True)}},
                      settings.epochs)
    return metrics if diverged is None else {**metrics, "diverged_at_epoch": diverged}


def runs_together(images, targets, data: LTDataset, config: EvalConfig, *, lr: float, seeds: list[int],
                  device: str, progress: bool, temperature: float | None) -> list[tuple[dict, float]] | None:
    """The runs of these seeds trained as one stack (together.py) and scored, with each run's share of the wall
    time; None where they train one by one: fewer than two, config.runs_together off (or auto off a CUDA device), or
    a model or recipe the stack does not cover (together.unsupported)."""
    if len(seeds) < 2 or not chosen(config.runs_together, device):
        return None
    settings = train_config(config, data, lr=lr, temperature=temperature, teacher=False, hard=targets.ndim == 1)
    nets = [fresh_model(config, data, seed, device) for seed in seeds]
    reason = unsupported(nets[0], settings)
    if reason is not None:
        if config.runs_together == "on":
            print(f"warning: the evaluation runs train one by one: {reason}", file=sys.stderr)
        return None
    start = time.perf_counter()
    diverged = train_together(nets, images, targets, settings, progress=progress, desc=f"{len(seeds)} eval runs",
                              generators=[torch.Generator().manual_seed(seed) for seed in seeds],
                              on_epoch=pace_warning(config.epochs, 0, "rerun the same command") if progress else None)
    share = (time.perf_counter() - start) / len(seeds)
    results = []
    for net, epoch in zip(nets, diverged, strict=True):
        metrics = score(net, data)
        results.append((metrics if epoch is None else {**metrics, "diverged_at_epoch": epoch}, share))
    return results


def evaluate_training_set(images, targets, data: LTDataset, config: EvalConfig, *, lr: float, seed: int = 0,
                          device: str = "cpu", progress: bool = True, teacher=None,
                          temperature: float | None = None, runs_dir: Path | None = None,
                          lr_grid: tuple[float, ...] | None = None, redraw=None, classes=None,
                          data_parallel: bool = False) -> dict:
    """config.runs runs with seeds seed, seed+1, ...; with runs_dir, finished runs are kept there and a rerun reads
    them back instead of training again (evaluate/runstore.py). `lr` must be finite and > 0 (a set's learned lr is
    checked here too): NaN trains every run to NaN, a negative lr ascends. `lr_grid`: each run trains once per lr
    and keeps the best-scoring (DD-Ranking's search); `redraw(seed)`: the (images, targets) of the run of that seed
    (DD-Ranking's random set, drawn anew for every run: RandomRedraw), the images given being the set's own;
    `classes`: each image's class, for a teacher loss that also learns them (EDC's mse_gt). Under torchrun the runs
    are spread over the ranks (run r on rank r % size), or with `data_parallel` every rank trains every run on its
    rows of each batch (train_model's), rank 0 alone keeping them."""
    if not (math.isfinite(lr) and lr > 0):
        raise BadInput(f"evaluation lr must be a finite number > 0, got {lr}; give one with --lr")
    # a run depends neither on how many run nor on the protocol's name (its network is keyed in full below)
    per_run = {k: v for k, v in asdict(config).items() if k not in ("runs", "protocol", "runs_together")}
    for field, value in (("recipe", "ltdistill"), ("ranking", "ltdistill"), ("compile", False),
                         ("precision", "float32")):
        if per_run[field] == value:  # keys of runs kept before recipes and rankings existed stay as they were
            del per_run[field]
    per_run.update(recipe_later_settings(config.recipe))
    if lr_grid is not None or redraw is not None:  # a redraw keys its draws (RandomRedraw.key)
        per_run.update(lr_grid=lr_grid, redrawn=getattr(redraw, "key", True) if redraw is not None else False)
    teacher_weights = teacher.state_dict() if teacher is not None else {}
    options = models.resolved_options(config.model, eval_network(config, data.im_size))  # the network, in full
    key = fingerprint({"network": options, "train": [tensor_digest(images), tensor_digest(targets)],
                       "test": [tensor_digest(t) for t in (data.test_x, data.test_y, data.test_lt_x, data.test_lt_y)],
                       "counts": data.counts, "config": per_run, "lr": lr, "temperature": temperature,
                       "teacher": {k: tensor_digest(v) for k, v in teacher_weights.items()},
                       "device": torch.device(device).type,
                       **({"classes": tensor_digest(classes)} if classes is not None else {})})
    here = distributed.joined()
    split_batches = data_parallel and here.size > 1
    store = RunStore(runs_dir, key, writes=here.main or not split_batches)
    records, read_back = [], 0
    mine = list(range(config.runs)) if split_batches else here.mine(list(range(config.runs)))
    resume = (f"finished runs and the one in progress are kept in {runs_dir}: stop it and rerun the same command to "
              "resume" if runs_dir is not None else "give --runs-dir DIR to keep finished runs and resume")
    fresh: dict[int, dict] = {}  # runs trained as one stack, kept in the store like any other
    if lr_grid is None and redraw is None and teacher is None and config.ranking == "ltdistill" and not split_batches:
        todo = [r for r in mine if store.get(seed + r) is None]
        together = runs_together(images, targets, data, config, lr=lr, seeds=[seed + r for r in todo], device=device,
                                 progress=progress, temperature=temperature)
        for r, (metrics, seconds) in zip(todo, together or [], strict=False):
            fresh[r] = store.put(seed + r, metrics, seconds)
    for position, r in enumerate(tqdm(mine, desc="evaluation runs", disable=not progress or config.runs == 1)):
        record = fresh[r] if r in fresh else store.get(seed + r)
        if split_batches:  # every rank trains this run, or none does
            record = distributed.from_main(record)
        if record is None:
            # a ddranking run keeps the best of its scored epochs in memory: it resumes from its start, not mid-run
            partial = store.partial(seed + r) if config.ranking == "ltdistill" else PartialRun(None)
            start = time.perf_counter()
            runs_after = len(mine) - position - 1  # runs of this process still to train after this one, at most
            run_x, run_y = redraw(seed + r) if redraw is not None else (images, targets)
            candidates = []
            for rate in lr_grid or (lr,):
                metrics = train_and_score(run_x, run_y, data, config, lr=rate, seed=seed + r, device=device,
                                          progress=progress, desc=f"eval run {r + 1}/{config.runs}", teacher=teacher,
                                          temperature=temperature, checkpoint=partial,
                                          watch_as=f"evaluate/run{r + 1}" + (f"/lr{rate:g}" if lr_grid else ""),
                                          on_epoch=pace_warning(config.epochs * len(lr_grid or (lr,)), runs_after,
                                                                resume) if progress else None, classes=classes)
                candidates.append({**metrics, "lr": rate})
            metrics = max(candidates, key=lambda m: m["balanced_acc"])  # one candidate without a grid
            if partial.epochs_done and progress:
                tqdm.write(f"eval run {r + 1}/{config.runs}: resumed at epoch {partial.epochs_done}")
            record = store.put(seed + r, metrics, partial.seconds + time.perf_counter() - start)
        elif r not in fresh:
            read_back += 1
            if progress:
                tqdm.write(f"eval run {r + 1}/{config.runs}: read back from {store.path(seed + r)}")
        records.append((r, record))
    share = (records, read_back, len(fresh))  # every rank's runs (one process, or every rank of split batches: all)
    shares = [share] if split_batches else distributed.gather(share)
    gathered = sorted((item for share in shares for item in share[0]), key=lambda item: item[0])
    read_back = sum(share[1] for share in shares)
    ordered: list[dict] = [record for _, record in gathered]  # in run order, as one process has them
    result = aggregate([rec["metrics"] for rec in ordered])
    result["diverged_runs"] = sum("diverged_at_epoch" in rec["metrics"] for rec in ordered)
    result["balanced_acc_runs"] = [rec["metrics"]["balanced_acc"] for rec in ordered]  # per-run scores (DD-Ranking)
    if config.ranking != "ltdistill":
        result.update(ranking=config.ranking, selection=f"best of every {DDRANKING_TEST_EVERY} epochs on the test "
                      "set (optimistic)", lr_grid=lr_grid, lr_per_run=[rec["metrics"].get("lr") for rec in ordered],
                      redrawn=redraw is not None)
    result.update(runs=config.runs, model=config.model, model_options=options, recipe=config.recipe,
                  epochs=config.epochs, lr=trained_lr(config, lr), seed=seed, shot_rule=SHOT_RULE,
                  shot_groups=shot_groups(data.counts),
                  eval_config=asdict(config), seconds_per_run=statistics.mean(rec["seconds"] for rec in ordered),
                  runs_read_back=read_back, runs_trained_together=sum(share[2] for share in shares),
                  device=str(device), host=host())
    return result


def pace_warning(epochs: int, runs_after: int, resume: str):
    """train_model's `on_epoch` for one run: after the first epoch it trains (a resumed run: the first of this
    sitting), warn when the run's epochs left and `runs_after` more runs exceed watch.LONG_RUN_S at that pace."""
    told = False

    def on_epoch(done: int, seconds: float) -> None:
        nonlocal told
        if not told and done < epochs:
            watch.warn_if_long("evaluate", seconds, epochs - done + epochs * runs_after, "epoch", resume)
        told = True

    return on_epoch


def check_config(config) -> None:
    """One BadInput line where an API call is given something other than an EvalConfig."""
    if not isinstance(config, EvalConfig):
        raise BadInput(f"an EvalConfig is needed (evaluate.EvalConfig(...)), got {type(config).__name__}")


def evaluate_synthetic(synthetic: SyntheticSet, data: LTDataset, config: EvalConfig, *, seed: int = 0,
                       device: str = "cpu", progress: bool = True, runs_dir: Path | None = None) -> dict:
    check_fits(synthetic, data)
    check_config(config)
    check_value("seed", seed, Seed)
    device = check_device(device)
    lr = config.lr if config.lr is not None else (synthetic.lr if synthetic.lr is not None else 0.01)
    targets, teacher, temperature, calibration = synthetic.labels, None, None, None

    stored_teacher = load_teacher(synthetic, data, device) if synthetic.teacher is not None else None
    labelers = {} if stored_teacher is None else {  # the ceiling relabeling puts on the set, before it trains
        **synthetic.meta.get("models_accuracy", {}), "teacher (as evaluated)": model_accuracy(stored_teacher[0], data)}
    if config.labels in ADSA_REGIMES:
        synthetic, teacher, temperature, calibration, regime = adsa_calibrated(synthetic, data, config,
                                                                               stored_teacher)
        targets = synthetic.labels
    elif config.labels == "hard":
        targets, regime = synthetic.hard_labels, "hard"
    elif config.labels == "auto" and stored_teacher is not None:
        teacher, temperature = stored_teacher[0], recipe_temperature(config, stored_teacher[1])
        regime = f"relabel (teacher on every augmented batch, T={temperature:g}, recipe {config.recipe})"
    else:
        regime = "soft (stored logits)" if synthetic.soft else "hard"
    lr_grid, redraw = None, None
    if config.ranking == "ddranking":
        # an lr given, a recipe's own (train_config puts it over any other), or the set's learned one for its own
        # labels (DD-Ranking's syn_lr); else the grid
        given = config.lr is not None or config.recipe != "ltdistill" or (synthetic.lr is not None
                                                                          and config.labels != "hard")
        lr_grid = None if given else DDRANKING_LR_GRID
        if synthetic.meta.get("method") == "random":
            redraw = RandomRedraw(data, synthetic)
    result = evaluate_training_set(synthetic.images, targets, data, config, lr=lr, seed=seed, device=device,
                                   progress=progress, teacher=teacher, temperature=temperature, runs_dir=runs_dir,
                                   lr_grid=lr_grid, redraw=redraw,
                                   classes=synthetic.hard_labels if teacher is not None and RECIPE_SETTINGS.get(
                                       config.recipe, {}).get("relabel") == "mse_gt" else None)
    result["label_regime"] = regime
    if calibration is not None:
        result["label_calibration"] = calibration.as_dict()
    if labelers:
        result["models_accuracy"] = labelers
    meta = synthetic.meta
    result.update(training_set="synthetic", method=meta.get("method"), ipc=meta.get("ipc"), soft_labels=synthetic.soft,
                  label_stats=synthetic.label_stats(),
                  distill={"wall_time_s": meta.get("wall_time_s"), "peak_rss_mb": meta.get("peak_rss_mb"),
                           "cuda_peak_mb": meta.get("cuda_peak_mb"), "models_seconds": meta.get("models_seconds"),
                           "host": meta.get("host"), "config": meta.get("config"), **distill_timing(meta)})
    return result


class RandomRedraw:
    """DD-Ranking's random baseline: the run of seed r of a random set made with seed s trains on the random
    selection of seed r + SEEDS_APART * s (data/subset.py, as methods/random.py draws it) with as many images of
    each class as the set holds, so every run trains on another draw, and the runs of sets of other seeds on draws
    of their own (a suite's Random cells over seeds, and the relabeled baselines made from them, sample other
    images). Seed 0's runs draw seeds 0, 1, ... as they always did; `key` is what the kept runs are keyed by."""

    SEEDS_APART = 1000

    def __init__(self, data: LTDataset, synthetic: SyntheticSet):
        self.data = data
        self.quota = torch.bincount(synthetic.hard_labels, minlength=data.num_classes).tolist()
        self.first = self.SEEDS_APART * int(synthetic.meta.get("seed") or 0)
        self.key = {"draw_seeds_from": self.first} if self.first else True

    def __call__(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = random_per_class(self.data, self.quota, self.first + seed)
        return self.data.train_x[index].clone(), self.data.train_y[index].clone()


def recipe_temperature(config: EvalConfig, stored: float) -> float:
    """The temperature a teacher's logits become targets at: the set's own, or the recipe's (SRe2L: 30)."""
    return float(RECIPE_SETTINGS[config.recipe]["temperature"]) if config.recipe in RECIPE_SETTINGS else stored


def adsa_calibrated(synthetic: SyntheticSet, data: LTDataset, config: EvalConfig, stored_teacher):
    """--labels adsa / adsa-t1 (labels/adsa.py): a teacher set's teacher (`stored_teacher`: load_teacher's (model,
    temperature), None for a set without one) wrapped to calibrate every batch's logits, a soft-label set's stored
    logits calibrated; tau* measured on the set itself at the temperature the labels are trained at (adsa), or at
    T = 1, the paper's equation as written, whatever that temperature (adsa-t1).
    Returns (set, teacher, temperature, calibration, regime)."""
    from ltdistill.labels import adsa

    def said(calibration):  # a strength at the top of the search is reported, not passed off as found
        if calibration.cut_short:
            print(f"warning: ADSA's strength reached the top of its search (tau* = {calibration.tau:g} = tau_max): "
                  "the calibration may be too weak for this set", file=sys.stderr)
        return calibration

    def estimation(temperature: float):  # the search's settings, and what the regime says of them
        at = temperature if config.labels == "adsa" else 1.0
        return adsa.make_config(temperature=at), "" if at == temperature else " estimated at T=1"

    if stored_teacher is not None:
        teacher, temperature = stored_teacher[0], recipe_temperature(config, stored_teacher[1])
        settings, said_at = estimation(temperature)
        calibration = said(adsa.estimate_for_set(synthetic, data.counts, settings, teacher=teacher))
        return (synthetic, adsa.CalibratedTeacher(teacher, calibration), temperature, calibration,
                f"relabel, ADSA-calibrated (tau {calibration.tau:g}{said_at}, T={temperature:g}, recipe "
                f"{config.recipe})")
    if not synthetic.soft:
        raise BadInput(f"--labels {config.labels} calibrates soft labels or a relabeling teacher; this set has hard "
                       "labels only")
    settings, said_at = estimation(config.temperature)
    calibration = said(adsa.estimate_for_set(synthetic, data.counts, settings))
    return (adsa.calibrated_set(synthetic, calibration), None, None, calibration,
            f"soft (stored logits), ADSA-calibrated (tau {calibration.tau:g}{said_at})")


def kept_snapshots(artifact: Path) -> list[Path]:
    """The sets an artifact kept along its run (distill --keep-every), in iteration order; BadInput if none."""
    from ltdistill.engine.loop import SNAPSHOT_DIR

    folders = sorted((Path(artifact) / SNAPSHOT_DIR).glob("iteration_*"))
    if not folders:
        raise BadInput(f"{artifact} keeps no snapshots: distill it with --keep-every K")
    return folders


def evaluate_snapshots(artifact: Path, final: dict, data: LTDataset, config: EvalConfig, *, seed: int = 0,
                       device: str = "cpu", progress: bool = True, runs_dir: Path | None = None) -> dict:
    """The reference code's protocol (MTT distill.py, DATM.py, LTDD DAM-ED_tesla.py evaluate the set every eval_it
    iterations, iteration 0 included, and report the best): every set kept in <artifact>/snapshots evaluated as the
    final one was (`final`, its result), and the best of them all. The best is chosen on the test set, so it is an
    optimistic number, labelled as such; the final set's is the one ltdistill's tables report."""
    rows = []
    for folder in kept_snapshots(artifact):
        snapshot = SyntheticSet.load(folder)
        if tuple(snapshot.images.shape[1:]) != tuple(data.train_x.shape[1:]):
            raise BadInput(f"{folder}: its images do not fit {data.name}")
        with watch.under(folder.name):
            result = evaluate_synthetic(snapshot, data, config, seed=seed, device=device, progress=False,
                                        runs_dir=runs_dir / folder.name if runs_dir is not None else None)
        rows.append({"iteration": int(snapshot.meta.get("snapshot_iteration", -1)),
                     "balanced_acc": result["balanced_acc"], "few": result["few"],
                     "per_class_acc": result["per_class_acc"]})
        if progress:
            tqdm.write(f"snapshot at iteration {rows[-1]['iteration']}: balanced acc "
                       f"{100 * result['balanced_acc']['mean']:.2f}")
    last = int((final.get("distill") or {}).get("iterations") or max(r["iteration"] for r in rows))
    candidates = [*rows, {"iteration": last, "balanced_acc": final["balanced_acc"]}]
    best = max(candidates, key=lambda r: r["balanced_acc"]["mean"])
    return {"snapshots": rows, "best_of_snapshots": {
        "iteration": best["iteration"], "balanced_acc": best["balanced_acc"]["mean"],
        "balanced_acc_std": best["balanced_acc"]["std"], "candidates": len(candidates),
        "note": "best of the kept sets and the final one, chosen on the test set as the reference code reports: "
                "optimistic"}}


def distill_timing(meta: dict) -> dict:
    """An artifact's iteration count and what an iteration cost: wall seconds over the iterations the finishing
    process ran, and the loop's per-iteration timings summarized. For a run that changed device on a resume (a
    GPU's checkpoint finished on the CPU) the timings are the finishing device's stretch alone, the one wall_time_s
    and the listed command speak of; `iteration_devices` says where the earlier iterations ran."""
    iterations = len(meta.get("loss_history", [])) or None
    start = resumed_from(meta)
    devices = meta.get("iteration_devices") or []
    since = devices[-1][0] if len(devices) > 1 else 0
    return {"iterations": iterations,
            "s_per_iteration": wall_seconds_per_iteration(meta.get("wall_time_s"), iterations, start),
            "resumed_from": start, "iteration_devices": devices or None,
            **iteration_timing((meta.get("iteration_seconds") or [])[since:])}


def resumed_from(meta: dict) -> int:
    """The iteration the process that finished the artifact started at (0: one uninterrupted run), so wall_time_s
    covers only the iterations after it. Artifacts from before the loop recorded it: the untimed iterations that
    open their iteration_seconds came from an older checkpoint."""
    if "resumed_from" in meta:
        return int(meta["resumed_from"])
    seconds = meta.get("iteration_seconds") or []
    return next((i for i, t in enumerate(seconds) if t is not None), 0)


def wall_seconds_per_iteration(wall_time_s: float | None, iterations: int | None, start: int) -> float | None:
    """wall_time_s over the iterations the finishing process ran: after a resume that is iterations - start, since
    wall_time_s covers only them (dividing by all iterations understated a resumed run's cost)."""
    ran = (iterations or 0) - start
    return wall_time_s / ran if ran > 0 and wall_time_s is not None else None


def iteration_timing(seconds: list[float | None] | None) -> dict:
    """The loop's per-iteration wall seconds summarized: the median (what one iteration costs, without the setup
    that wall_time_s / iterations spreads over the run) and the median of each quarter of the run (a cost that
    grows over the run shows here). Iterations without a timing (resumed from an old checkpoint) are left out."""
    timed = [t for t in seconds or [] if t is not None]
    if not timed:
        return {}
    quarters = [timed[len(timed) * q // 4:len(timed) * (q + 1) // 4] for q in range(4)]
    return {"s_per_iteration_median": statistics.median(timed), "timed_iterations": len(timed),
            "s_per_iteration_by_quarter": [statistics.median(q) if q else None for q in quarters]}


def load_teacher(synthetic: SyntheticSet, data: LTDataset, device: str):
    """The relabeling teacher saved with a set (SRe2L, unilevel; EDC's ensemble, models/ensemble.py): the model, in
    eval mode, and its temperature."""
    info = synthetic.meta["teacher"]
    if synthetic.teacher is None:
        raise BadInput("this set names a teacher in its meta.json but holds no teacher weights")
    teacher: nn.Module
    if "members" in info:  # several models answering as one (EDC's observers)
        teacher = ensemble.from_meta(info["members"], channels=data.channels, num_classes=data.num_classes,
                                     im_size=data.im_size)
    else:
        teacher = models.create(info["model"], channels=data.channels, num_classes=data.num_classes,
                                im_size=data.im_size, **models.recorded_options(info["model"], info.get("options", {})))
    try:
        teacher.load_state_dict(synthetic.teacher)
    except RuntimeError as e:
        raise BadInput(f"the set's teacher weights do not fit {info['model']} {info.get('options')}: {e}") from None
    teacher = teacher.to(device).eval().requires_grad_(False)
    if "calibration" in info:  # distill --labels adsa: the calibration made with the set, on every batch
        from ltdistill.labels import adsa

        teacher = adsa.CalibratedTeacher(teacher, adsa.ADSACalibration.from_dict(info["calibration"],
                                                                                 data.num_classes)).eval()
    return teacher, float(info.get("temperature", 1.0))


def evaluate_full(data: LTDataset, config: EvalConfig, *, seed: int = 0, device: str = "cpu",
                  progress: bool = True, runs_dir: Path | None = None) -> dict:
    """The upper reference of every table: train on the whole long-tailed set (instance-balanced sampling); under
    torchrun every rank trains every run on its rows of each batch (data-parallel)."""
    check_dataset(data)
    check_config(config)
    check_value("seed", seed, Seed)
    device = check_device(device)
    lr = config.lr if config.lr is not None else 0.01
    result = evaluate_training_set(data.train_x, data.train_y, data, config, lr=lr, seed=seed, device=device,
                                   progress=progress, runs_dir=runs_dir, data_parallel=True)
    result.update(training_set="full-longtail", method="full", ipc=None, soft_labels=False)
    return result
