"""Expert training: standard trajectories (MTT/DATM) and decoupled ones (LTDD Expert Decoupling).

Standard (MTT buffer.py): SGD, constant lr 0.01, no momentum, no weight decay, DSA, instance-balanced batches of
256; the parameters are saved at init and after every epoch.
Decoupled (LTDD buffer_FTD.py configs): representation experts as above but with weight decay 5e-3 (the "weight
balancing" decay of Alshammari et al. 2022); then one classifier expert per representation expert: backbone
frozen at that expert's final parameters, only the linear head trained for `cls_epochs` with the reference's
class-aware sampling.

Decisions, with sources (defaults follow the runnable reference, ichbill/LTDD buffer_FTD.py; the parity tests in
tests/test_parity_trajectory.py run against it):
- Classifier-expert epochs: `cls_sampler="class_aware"` (default) is the reference's ClassAwareSampler
  (class_aware_sampler.py, runs of 4 from one class, max class count x C samples; buffer_FTD.py:180-183), about 4x
  the long-tailed set at beta 100 (train.class_aware_order); "draws" takes N class-balanced draws per epoch (the
  default before it followed the reference).
- MaxNorm: off by default (`maxnorm=None`), as the reference's buffer path trains classifier experts
  (buffer_FTD.py:246-248 -> utils_gsam.py epoch: no MaxNorm_via_PGD call; measured equal by the parity test). The
  paper's text fine-tunes them "with MaxNorm constraint" (LTDD Sec. 4.2): `maxnorm=0.1` (`--maxnorm 0.1`) applies
  it after every step, the cap min(r) + 0.1 (max(r) - min(r)) of the head's row norms r at the start of classifier
  training (utils_baseline.py's MaxNorm_via_PGD sets it once, from the weights at its first call).
- Optimizer: decoupled experts (both stages) train with GSAM as LTDD's released buffers do (buffer_FTD.py:226-235
  -> gsam/gsam.py, constant rho; the released configs and buffer names: rho 0.01, alpha 0.3, "first_stage_GSAM_...";
  train.gsam_gradient), at twice the cost of an SGD step; standard experts with plain SGD, as MTT's buffer.py
  (DATM's FTD buffers are GSAM ones: `gsam_rho=0.01`). `gsam_rho=0` is plain SGD for either kind.
- Momentum is 0 in MTT and LTDD expert configs; without it, resuming needs no optimizer state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from tqdm import tqdm

from ltdistill import __version__, models, watch
from ltdistill.data.longtail import LTDataset
from ltdistill.errors import BadInput, Diverged
from ltdistill.experts.buffer import ExpertBuffer
from ltdistill.keys import LATER_FIELDS, keyed_config
from ltdistill.params import Between, Count, ModelName, OneOf, Rate, Seed, Weight, check_own_fields
from ltdistill.together import chosen, train_together, unsupported
from ltdistill.train import PRECISIONS, TrainConfig, TrainingDiverged, train_model


@dataclass(frozen=True)
class ExpertConfig:
    num_experts: Count = 10  # MTT/LTDD: 100
    epochs: Count = 20  # MTT: 50; LTDD representation experts: 100
    lr: Rate = 0.01  # lr_teacher
    batch_size: Count = 256
    weight_decay: Weight = 0.0  # MTT: 0; decoupled representation experts default to 5e-3 (LTDD)
    decoupled: bool = False
    rep_weight_decay: Weight = 5e-3  # LTDD representation experts ("weight balancing" decay)
    cls_epochs: Count = 10  # LTDD classifier experts
    cls_lr: Rate = 0.01
    maxnorm: Annotated[float, Between(0, 1)] | None = None  # MaxNorm threshold fraction on the head's rows (paper
    #   text: 0.1); None: off
    # classifier experts' epochs: "class_aware" (the reference's ClassAwareSampler: max_count x C samples in runs of
    # 4 from one class, train.class_aware_order) or "draws" (N class-balanced draws)
    cls_sampler: Annotated[str, OneOf(("class_aware", "draws"))] = "class_aware"
    gsam_rho: Weight | None = None  # GSAM radius; None: 0.01 for decoupled experts (LTDD), 0 (plain SGD) for standard
    gsam_alpha: Annotated[float, Between(0, 1)] = 0.3  # GSAM's alpha (the released LTDD configs: 0.3)
    compile: bool = False  # train through torch.compile (train.compiled_model)
    precision: Annotated[str, OneOf(PRECISIONS)] = "float32"  # "bfloat16": mixed-precision training (train.PRECISIONS)
    model: ModelName = "convnet"
    width: Count = 128
    depth: Count = 3
    zca_eps: Rate | None = None  # ZCA whitening of the data the experts see (MTT/DATM/LTDD: 0.1 on CIFAR)
    augment: bool = True  # DSA during expert training (MTT buffer.py)
    seed: Seed = 0

    @property
    def rho(self) -> float:
        """The GSAM radius (gsam_rho, resolved at construction)."""
        return float(self.gsam_rho or 0.0)

    def __post_init__(self) -> None:
        check_own_fields(self, "experts", kind="expert")
        if self.gsam_rho is None:  # resolved here, so records hold the radius that trained the buffer
            object.__setattr__(self, "gsam_rho", 0.01 if self.decoupled else 0.0)

class MaxNorm:
    """Projected step of Alshammari et al. 2022: rescale every head row whose L2 norm exceeds the cap to the cap."""

    def __init__(self, fraction: float, threshold: float | None = None):
        self.fraction = fraction
        self.threshold = threshold

    def set_threshold(self, weight: torch.Tensor) -> None:
        norms = weight.detach().norm(dim=1)
        self.threshold = float(norms.min() + self.fraction * (norms.max() - norms.min()))

    @torch.no_grad()
    def __call__(self, model) -> None:
        weight = model.classifier.weight
        if self.threshold is None:
            self.set_threshold(weight)
        norms = weight.norm(dim=1).clamp_min(1e-12)
        weight.mul_((self.threshold / norms).clamp(max=1.0)[:, None])


def model_options(config: ExpertConfig) -> dict:
    """Every option of the experts' network (its width, depth and stem among them), as the buffer records it."""
    return models.resolved_options(config.model, models.options_for(config.model, width=config.width,
                                                                    depth=config.depth))


DECOUPLED_ONLY = ("rep_weight_decay", "cls_epochs", "cls_lr", "maxnorm", "cls_sampler")  # unused by standard experts


def classifier_config(config: ExpertConfig) -> TrainConfig:
    """One classifier-expert epoch (buffer_FTD.py second_stage_expert: lr cls_lr, momentum 0, no weight decay),
    sampled as `cls_sampler` says (the ClassAwareSampler draws runs of 4 from one class)."""
    return TrainConfig(epochs=1, lr=config.cls_lr, batch_size=config.batch_size, momentum=0.0, weight_decay=0.0,
                       lr_decay_at_half=False, augment=config.augment, class_balanced=True,
                       class_aware_runs=4 if config.cls_sampler == "class_aware" else None,
                       gsam_rho=config.rho, gsam_alpha=config.gsam_alpha, compile=config.compile,
                       precision=config.precision)


def comparable_index(index: dict) -> dict:
    """What of a buffer's index must match for a run to resume it: its config with LATER_FIELDS spelled out (a
    buffer indexed before a field existed means its earlier value), less the classifier-expert fields in a
    standard buffer, which trains no classifier expert (a default of theirs that changed leaves it as it is)."""
    earlier = {k: v for k, v in LATER_FIELDS.items() if k in ExpertConfig.__dataclass_fields__}
    config = {**earlier, **index.get("config", {})}
    if not index.get("decoupled"):
        config = {k: v for k, v in config.items() if k not in DECOUPLED_ONLY}
    return {**index, "config": config}


def make_model(config: ExpertConfig, data: LTDataset, device: str):
    return models.create(config.model, channels=data.channels, num_classes=data.num_classes, im_size=data.im_size,
                         **model_options(config)).to(device)


def buffer_index(config: ExpertConfig, data: LTDataset, model) -> dict:
    return {"format": "ltdistill.ExpertBuffer/1", **data.describe(), "model": config.model,
            "model_options": model_options(config), "decoupled": config.decoupled,
            "config": keyed_config(config), "classifier_params": [n for n, _ in model.named_parameters()
                                                                        if n.startswith("classifier.")],
            "param_shapes": [[n, list(p.shape)] for n, p in model.named_parameters()], "version": __version__}


def _train_trajectory(buffer: ExpertBuffer, kind: str, i: int, model, data: LTDataset, epochs: int,
                      train_config: TrainConfig, seed: int, params=None, maxnorm: MaxNorm | None = None,
                      bar=None, pace=None) -> torch.Tensor:
    """Train one expert epoch by epoch, saving resumable state after each epoch; return its trajectory. The wall
    seconds of every epoch are saved with it (`epoch_seconds`), so a cost table can add the buffer's price;
    `pace(seconds)` is told each epoch's."""
    generator = torch.Generator().manual_seed(seed)
    state = buffer.load_partial(kind, i)
    seconds: list[float] = []
    if state is not None and state["trajectory"].shape[1] == parameters_to_vector(model.parameters()).numel():
        snapshots = list(state["trajectory"])
        seconds = state["epoch_seconds"].tolist() if "epoch_seconds" in state else []
        generator.set_state(state["generator"])
        if maxnorm is not None and "maxnorm_threshold" in state:
            maxnorm.threshold = float(state["maxnorm_threshold"])
        vector_to_parameters(snapshots[-1].clone().to(next(model.parameters()).device), model.parameters())
    else:
        snapshots = [parameters_to_vector(model.parameters()).detach().cpu().clone()]
        if maxnorm is not None:
            maxnorm.set_threshold(model.classifier.weight)
    if bar is not None:
        bar.update(len(snapshots) - 1)
    while len(snapshots) <= epochs:
        started = time.perf_counter()
        diverged = Diverged(f"expert {kind}_{i} diverged (NaN/Inf parameters) at epoch {len(snapshots)}; its "
                            f"epochs before are kept in {buffer.directory}/.partial; try a lower --lr")
        try:
            train_model(model, data.train_x, data.train_y, train_config, generator=generator, params=params,
                        after_step=maxnorm, watch_as=f"experts/{kind}_{i}", watch_from=len(snapshots) - 1)
        except TrainingDiverged:  # the loss went first; the parameters would follow
            raise diverged from None
        snapshots.append(parameters_to_vector(model.parameters()).detach().cpu().clone())
        seconds.append(time.perf_counter() - started)
        if pace is not None:
            pace(seconds[-1])
        if not torch.isfinite(snapshots[-1]).all():
            raise diverged
        state = {"trajectory": torch.stack(snapshots), "generator": generator.get_state(),
                 "epoch_seconds": torch.tensor(seconds, dtype=torch.float64)}
        if maxnorm is not None:
            state["maxnorm_threshold"] = torch.tensor(maxnorm.threshold)
        buffer.save_partial(kind, i, state)
        if bar is not None:
            bar.update(1)
    trajectory = torch.stack(snapshots)
    buffer.save(kind, i, trajectory, epoch_seconds=seconds)
    buffer.drop_partial(kind, i)
    return trajectory


def _train_trajectories_together(buffer: ExpertBuffer, kind: str, ids: list[int], nets: list, data: LTDataset,
                                 epochs: int, train_config: TrainConfig, seeds: list[int], bar=None,
                                 pace=None) -> None:
    """_train_trajectory for several fresh experts at once (together.py): the same draws per expert, so the same
    trajectories to float rounding, and the same resumable state per expert after every epoch (a stopped run
    resumes them one by one or together). Each expert is charged an equal share of an epoch's wall time."""
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    snapshots = [[parameters_to_vector(net.parameters()).detach().cpu().clone()] for net in nets]
    seconds: list[float] = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        diverged = train_together(nets, data.train_x, data.train_y, train_config, generators=generators)
        share = (time.perf_counter() - started) / len(nets)
        seconds.append(share)
        for i, net, generator, trajectory, stop in zip(ids, nets, generators, snapshots, diverged, strict=True):
            trajectory.append(parameters_to_vector(net.parameters()).detach().cpu().clone())
            if stop is not None or not torch.isfinite(trajectory[-1]).all():
                raise Diverged(f"expert {kind}_{i} diverged (NaN/Inf parameters) at epoch {epoch}; its epochs "
                               f"before are kept in {buffer.directory}/.partial; try a lower --lr")
            buffer.save_partial(kind, i, {"trajectory": torch.stack(trajectory), "generator": generator.get_state(),
                                          "epoch_seconds": torch.tensor(seconds, dtype=torch.float64)})
            if pace is not None:
                pace(share)
        if bar is not None:
            bar.update(len(nets))
    for i, trajectory in zip(ids, snapshots, strict=True):
        buffer.save(kind, i, torch.stack(trajectory), epoch_seconds=seconds)
        buffer.drop_partial(kind, i)


def train_experts(data: LTDataset, config: ExpertConfig, out, *, shard: tuple[int, int] = (0, 1),
                  device: str = "cpu", progress: bool = True, opened=None, together: str = "auto") -> ExpertBuffer:
    """Fill (or resume filling) an expert buffer; `shard=(k, n)` trains experts k, k+n, k+2n, ... (a process of
    `--shard k/n`, or rank k of n under torchrun); `opened()` is called once the buffer's index exists (the other
    ranks of a torchrun launch wait for rank 0's). `together` ("auto": on a CUDA device, "on", "off"): standard
    experts not yet begun train as one stack of models (together.py), where their model and settings allow it."""
    k, n = shard
    if not (0 <= k < n):
        raise BadInput(f"--shard must be k/n with 0 <= k < n, got {k}/{n}")
    if config.zca_eps is not None and data.zca_eps != config.zca_eps:
        data = data.whitened(config.zca_eps)
    probe = make_model(config, data, "cpu")
    buffer = ExpertBuffer.create_or_open(out, buffer_index(config, data, probe), comparable=comparable_index)
    if opened is not None:
        opened()
    mine = [i for i in range(config.num_experts) if i % n == k]
    main_kind = "rep" if config.decoupled else "standard"
    per_expert = config.epochs + (config.cls_epochs if config.decoupled else 0)
    rep_config = TrainConfig(epochs=1, lr=config.lr, batch_size=config.batch_size, momentum=0.0,
                             weight_decay=config.rep_weight_decay if config.decoupled else config.weight_decay,
                             lr_decay_at_half=False, augment=config.augment, gsam_rho=config.rho,
                             gsam_alpha=config.gsam_alpha, compile=config.compile, precision=config.precision)
    cls_config = classifier_config(config)
    left = per_expert * len(mine)  # epochs this process may still train (finished experts are taken off as met)

    def pace(seconds: float) -> None:
        nonlocal left
        left -= 1
        if progress:
            watch.warn_if_long("experts", seconds, left, "epoch", "every finished epoch is kept: stop it and rerun "
                               "the same command to resume")

    with tqdm(total=len(mine) * per_expert, desc="expert epochs", disable=not progress) as bar:
        fresh = [i for i in mine if i not in buffer.finished(main_kind) and buffer.load_partial(main_kind, i) is None]
        if (not config.decoupled and len(fresh) > 1 and chosen(together, device)
                and unsupported(probe, rep_config) is None):
            nets = []
            for i in fresh:
                torch.manual_seed(config.seed * 100_003 + i)
                nets.append(make_model(config, data, device))
            _train_trajectories_together(buffer, main_kind, fresh, nets, data, config.epochs, rep_config,
                                         [config.seed * 100_003 + i for i in fresh], bar=bar, pace=pace)
            mine = [i for i in mine if i not in fresh]
        for i in mine:
            seed = config.seed * 100_003 + i
            done_main = i in buffer.finished(main_kind)
            done_cls = not config.decoupled or i in buffer.finished("cls")
            if done_main and done_cls:
                bar.update(per_expert)
                left -= per_expert
                continue
            torch.manual_seed(seed)
            model = make_model(config, data, device)
            if done_main:
                vector_to_parameters(buffer.load(main_kind, i)[-1].to(device), model.parameters())
                bar.update(config.epochs)
                left -= config.epochs
            else:
                _train_trajectory(buffer, main_kind, i, model, data, config.epochs, rep_config, seed, bar=bar,
                                  pace=pace)
            if config.decoupled:
                for name, p in model.named_parameters():
                    p.requires_grad_(name.startswith("classifier."))
                maxnorm = MaxNorm(config.maxnorm) if config.maxnorm is not None else None
                _train_trajectory(buffer, "cls", i, model, data, config.cls_epochs, cls_config, seed + 1,
                                  params=list(model.classifier.parameters()), maxnorm=maxnorm, bar=bar, pace=pace)
    return buffer


@torch.no_grad()
def expert_accuracy(buffer: ExpertBuffer, data: LTDataset, kind: str, device: str = "cpu") -> dict:
    """Balanced-test accuracy of the final parameters of every finished expert of one kind: a buffer whose tail
    classes sit at 0% gives soft labels and matching targets that no distillation can repair."""
    from ltdistill.experts.student import open_experts, student_model

    buffer, data = open_experts(buffer, data, kind)  # the same checks and ZCA as distillation
    flat_model = student_model(buffer, data, device)
    per_class = []
    for i in buffer.finished(kind):
        final = buffer.load(kind, i)[-1].to(device)
        pred = torch.cat([flat_model(final, data.test_x[j:j + 1024].to(device)).argmax(1).cpu()
                          for j in range(0, len(data.test_x), 1024)])
        per_class.append([float((pred[data.test_y == c] == c).float().mean()) for c in range(data.num_classes)])
    mean = torch.tensor(per_class).mean(0)
    return {"kind": kind, "experts": len(per_class), "balanced_acc": float(mean.mean()),
            "per_class_acc": mean.tolist(), "train_seconds": buffer.train_seconds(kind)}
