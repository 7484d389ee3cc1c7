"""ADSA: Adaptive Soft-label Alignment, from "Rectifying Soft-Label Entangled Bias in Long-Tailed Dataset
Distillation" (Jiang et al., NeurIPS 2025, arXiv 2511.17914; official code github.com/j-cyoung/ADSA_DD).

Soft labels of a long-tailed distillation carry two entangled biases toward the head classes: one from the model
that labels (trained on the long-tailed set) and one from the distilled images. ADSA removes both after the fact,
without training, by one shift in logit space whose strength is measured on the distilled set itself:

  (A) logit-adjusted soft label (the paper's calibration, Menon et al.'s post-hoc logit adjustment)
          p(y | x; tau) = softmax_y( (f(x) - tau * log pi) / T ),  pi_y = n_y / sum_k n_k
      f(x): the soft-label logits of distilled image x (stored, or a relabeling teacher's output); pi: the class
      frequencies of the long-tailed training set (`LTDataset.counts`).
  (B) class-averaged confidence, the distilled images of each class used as a held-out validation set
          c_i(tau) = mean_{x in D_i} p(y = i | x; tau),  D_i: the distilled images of class i
  (C) calibration strength
          tau* = argmin_tau sqrt( (1/K) sum_i (c_i(tau) - mean_j c_j(tau))^2 )
      (an unbiased labeler is about equally confident on every class; the model's and the images' bias both
      show up as head classes more confident than tail classes)
  and the set's soft labels (or the teacher's logits on every batch) become f(x) - tau* * log pi.

Equations (A)-(C) are the paper's method (ADSA) as written in its paper note (en.papernotes.org, NeurIPS 2025,
"Rectifying Soft-Label Entangled Bias ..."), labelled (A)-(C) here because the full text's equation numbers and the
official repository could not be read where this was written (no snapshot of j-cyoung/ADSA_DD could be had): this
module follows the equations, not an official file, and has no parity test against official numbers.
Choices that are ltdistill's, not the paper's (the code's defaults are unknown):
- tau* is the first minimizer on the grid tau_min, tau_min + tau_step, ..., tau_max (defaults 0, 0.01, 5: a
  strength >= 0; 5 leaves room above tau = 1, which removes a labeler's bias that is exactly the training prior,
  for the image bias the paper adds on top). A tau* equal to tau_max means the search was cut short.
- the shift uses log pi centered to mean 0 over classes: a per-row constant, so every softmax and every tau is
  unchanged, and balanced counts give exactly the identity.
- (A) and (B) are evaluated at a temperature T (`temperature`, default 1 = the paper's equation, which has none):
  `evaluate --labels adsa` estimates tau* at the temperature the consumer turns the calibrated logits into targets
  with (stored soft labels and EDC's recipe T = 1, SRe2L's and uni-level's relabeling T = 4, SRe2L's relabel recipe
  T = 30), so that the confidences evened are the targets' own; `--labels adsa-t1` estimates at T = 1, the paper's
  equation as written, and the consumer still trains at its own T. The two differ only where T != 1.

API: `estimate` (logits N x K + each image's class + class counts -> `ADSACalibration`), `calibrate` (logits ->
logits), `estimate_from_teacher` / `CalibratedTeacher` (relabeling sets), `estimate_for_set` / `calibrated_set`
(SyntheticSet in, SyntheticSet out).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from ltdistill.errors import BadInput, check
from ltdistill.params import Rate, check_fields
from ltdistill.synthetic import SyntheticSet

__all__ = ["ADSAConfig", "ADSACalibration", "CalibratedTeacher", "calibrate", "calibrated_set", "estimate",
           "estimate_for_set", "estimate_from_teacher", "make_config", "spread", "stored_calibration",
           "teacher_logits"]

_MAX_GRID = 100_001  # tau values one estimate may try
_CHUNK = 1 << 24  # elements of (taus x N x K) evaluated at once


@dataclass(frozen=True)
class ADSAConfig:
    tau_min: float = 0.0  # lower end of the search for tau* (ltdistill: a calibration strength is >= 0)
    tau_max: float = 5.0  # upper end (ltdistill); tau* == tau_max says the search was cut short
    tau_step: Rate = 0.01  # grid step of the search (ltdistill)
    temperature: Rate = 1.0  # T of (A) and (B) in the search for tau* (paper: 1; see the module docstring)


def make_config(**values) -> ADSAConfig:
    """An ADSAConfig from user values, refused with one BadInput line if a value does not fit."""
    config = ADSAConfig(**check_fields(ADSAConfig, values, "adsa", kind="label calibration"))
    check(config.tau_max >= config.tau_min, f"adsa.tau_max must be >= tau_min ({config.tau_min:g}), "
          f"got {config.tau_max:g}")
    points = math.floor((config.tau_max - config.tau_min) / config.tau_step + 1e-9) + 1
    check(points <= _MAX_GRID, f"adsa: {points} tau values to try (tau_max - tau_min) / tau_step; at most "
          f"{_MAX_GRID - 1} steps, so raise tau_step")
    return config


@dataclass(frozen=True)
class ADSACalibration:
    tau: float  # tau*: the calibration strength found
    log_prior: tuple[float, ...]  # log pi_y of the long-tailed training set, centered to mean 0
    config: ADSAConfig
    confidence_before: tuple[float, ...]  # c_i(0): each class's mean own-class probability, uncalibrated
    confidence_after: tuple[float, ...]  # c_i(tau*)
    spread_before: float  # std over classes of c_i(0)
    spread_after: float  # std over classes of c_i(tau*): the minimum found

    @property
    def num_classes(self) -> int:
        return len(self.log_prior)

    @property
    def cut_short(self) -> bool:
        """Whether tau* sits at the top of the searched range (above tau_min): a stronger calibration might have
        evened the classes more; raise tau_max to see."""
        return self.tau > self.config.tau_min and self.tau >= self.config.tau_max - self.config.tau_step / 2

    @property
    def offsets(self) -> torch.Tensor:
        """What calibration adds to every row of logits: -tau* * log pi (centered), float64 (K,)."""
        return -self.tau * torch.tensor(self.log_prior, dtype=torch.float64)

    def as_dict(self) -> dict:
        """For meta.json and evaluation JSON: the method, tau*, the per-class offsets and the diagnostics."""
        return {"method": "adsa", **asdict(self), "offsets": self.offsets.tolist()}

    @classmethod
    def from_dict(cls, record, num_classes: int) -> ADSACalibration:
        """A calibration as a set's meta.json holds it (as_dict), checked: its strength, prior and settings."""
        check(isinstance(record, dict) and record.get("method") == "adsa", "a stored label calibration must be an "
              "ADSA record (method 'adsa')")
        try:
            config = make_config(**record["config"])
            tau, prior = float(record["tau"]), tuple(float(v) for v in record["log_prior"])
            before, after = (tuple(float(v) for v in record[k]) for k in ("confidence_before", "confidence_after"))
            spreads = float(record["spread_before"]), float(record["spread_after"])
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"a stored ADSA calibration is incomplete or malformed ({e})") from None
        check(len(prior) == num_classes and math.isfinite(tau) and all(map(math.isfinite, prior)),
              f"a stored ADSA calibration must hold a finite tau and {num_classes} finite log-prior values")
        return cls(tau, prior, config, before, after, *spreads)


def _check_logits(logits: torch.Tensor, num_classes: int | None, what: str) -> None:
    got = f"{tuple(logits.shape)} {logits.dtype}" if isinstance(logits, torch.Tensor) else type(logits).__name__
    check(isinstance(logits, torch.Tensor) and logits.ndim == 2 and logits.is_floating_point(),
          f"ADSA needs {what} as float logits of shape (N, classes), got {got}")
    if num_classes is not None:
        check(logits.shape[1] == num_classes, f"ADSA: {what} have {logits.shape[1]} classes but the calibration "
              f"was estimated for {num_classes}")
    check(bool(torch.isfinite(logits).all()), f"ADSA: {what} hold NaN/Inf")


def _centered_log_prior(counts) -> torch.Tensor:
    needs = "ADSA needs the long-tailed training set's per-class counts, every one > 0"
    try:
        counts = torch.as_tensor(counts, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError):  # text, ragged lists, objects
        raise BadInput(f"{needs}, got {counts!r:.80}") from None
    check(counts.numel() >= 2 and bool(torch.isfinite(counts).all()) and bool((counts > 0).all()),
          f"{needs}, got {counts.tolist()}")
    log_prior = (counts / counts.sum()).log()
    return log_prior - log_prior.mean()


def spread(logits: torch.Tensor, classes: torch.Tensor, log_prior: torch.Tensor, taus: torch.Tensor,
           temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(B) and the objective of (C) for every tau in `taus`: the per-class confidences c_i(tau), (len(taus), K),
    and their population std over classes, (len(taus),). Inputs are trusted (float64, every class present)."""
    n, k = logits.shape
    per_class = torch.bincount(classes, minlength=k).to(logits.dtype)
    rows = torch.arange(n)
    confidences = []
    for chunk in taus.split(max(1, _CHUNK // (n * k))):
        shifted = (logits.unsqueeze(0) - chunk.view(-1, 1, 1) * log_prior) / temperature  # (A), per tau
        own = (shifted[:, rows, classes] - shifted.logsumexp(2)).exp()  # p(y = class(x) | x; tau), (t, N)
        sums = torch.zeros(len(chunk), k, dtype=logits.dtype).index_add_(1, classes, own)
        confidences.append(sums / per_class)
    c = torch.cat(confidences)
    return c, c.std(dim=1, unbiased=False)


def estimate(logits: torch.Tensor, classes: torch.Tensor, counts, config: ADSAConfig | None = None) -> ADSACalibration:
    """tau* of (C) for a set's soft-label logits (N, K), the class each image stands for (N,) and the long-tailed
    training set's per-class counts (K,): the distilled images are the validation set, every class needs one."""
    config = make_config(**asdict(config or ADSAConfig()))
    _check_logits(logits, None, "soft labels")
    log_prior = _centered_log_prior(counts)
    k = logits.shape[1]
    check(log_prior.numel() == k, f"ADSA: soft labels have {k} classes but there are {log_prior.numel()} class "
          "counts")
    classes = torch.as_tensor(classes).detach().cpu()
    check(classes.shape == (logits.shape[0],) and not classes.is_floating_point() and classes.dtype != torch.bool,
          f"ADSA needs one integer class per image ({logits.shape[0]}), got {tuple(classes.shape)} {classes.dtype}")
    classes = classes.long()
    check(bool(((classes >= 0) & (classes < k)).all()), f"ADSA: image classes must be in [0, {k}), got "
          f"{int(classes.min())}..{int(classes.max())}")
    missing = sorted(set(range(k)) - set(classes.tolist()))
    check(not missing, f"ADSA measures each class's confidence on its own distilled images; class(es) {missing[:5]} "
          "have none")
    z = logits.detach().to("cpu", torch.float64)
    steps = math.floor((config.tau_max - config.tau_min) / config.tau_step + 1e-9)
    taus = config.tau_min + config.tau_step * torch.arange(steps + 1, dtype=torch.float64)
    confidence, std = spread(z, classes, log_prior, taus, config.temperature)
    best = int(torch.argmin(std))  # the first minimizer: ties (a flat objective) keep the weakest calibration
    c0, s0 = spread(z, classes, log_prior, torch.zeros(1, dtype=torch.float64), config.temperature)
    return ADSACalibration(tau=float(taus[best]), log_prior=tuple(log_prior.tolist()), config=config,
                           confidence_before=tuple(c0[0].tolist()), confidence_after=tuple(confidence[best].tolist()),
                           spread_before=float(s0[0]), spread_after=float(std[best]))


def calibrate(logits: torch.Tensor, calibration: ADSACalibration) -> torch.Tensor:
    """Calibrated logits f(x) - tau* * log pi (centered) of the same shape, dtype and device; softmax of the result
    at the consumer's temperature is (A) at tau*."""
    _check_logits(logits, calibration.num_classes, "logits")
    return logits + calibration.offsets.to(logits.device, logits.dtype)


@torch.no_grad()
def teacher_logits(teacher: nn.Module, images: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """A teacher's logits on `images` (N, C, H, W) in eval mode, batch by batch on the teacher's device; the
    teacher's training mode is restored afterwards."""
    check(isinstance(images, torch.Tensor) and images.ndim == 4, "ADSA needs images of shape (N, C, H, W)")
    device = next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    try:
        return torch.cat([teacher(x.to(device)).float().cpu() for x in images.split(batch_size)])
    finally:
        teacher.train(was_training)


def estimate_from_teacher(teacher: nn.Module, images: torch.Tensor, classes: torch.Tensor, counts,
                          config: ADSAConfig | None = None, *, batch_size: int = 256) -> ADSACalibration:
    """tau* for a relabeling teacher: f(x) of (A) are its logits on the distilled images, not augmented."""
    return estimate(teacher_logits(teacher, images, batch_size=batch_size), classes, counts, config)


class CalibratedTeacher(nn.Module):
    """A relabeling teacher whose every output is calibrated: forward(x) = teacher(x) - tau* * log pi. train()/eval()
    reach the teacher as for any child module. Use it for training only; save the teacher, never the wrapper."""

    def __init__(self, teacher: nn.Module, calibration: ADSACalibration):
        super().__init__()
        self.teacher = teacher
        self.calibration = calibration
        device = next(teacher.parameters()).device
        self.register_buffer("offsets", calibration.offsets.to(device, torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.teacher(x)
        return out + self.offsets.to(out.dtype)  # no checks here: this runs on every training batch


def estimate_for_set(synthetic: SyntheticSet, counts, config: ADSAConfig | None = None, *,
                     teacher: nn.Module | None = None, batch_size: int = 256) -> ADSACalibration:
    """tau* for a SyntheticSet: from its stored soft labels (DATM, LTDD), or from `teacher`'s logits on its images
    (SRe2L, unilevel; a teacher takes precedence, since it relabels every batch). `counts`: `LTDataset.counts`."""
    if teacher is not None:
        return estimate_from_teacher(teacher, synthetic.images, synthetic.hard_labels, counts, config,
                                     batch_size=batch_size)
    if not synthetic.soft:
        raise BadInput("ADSA calibrates soft labels: this set has hard labels and no teacher was given "
                       "(use a soft-label set, or a set with a relabeling teacher)")
    if "classes" not in synthetic.meta:  # hard_labels would fall back to the argmax of the very labels to correct
        raise BadInput("ADSA needs the class each image stands for: this soft-label set's meta.json has no "
                       "'classes' (DATM and LTDD sets write it; distill the set again)")
    return estimate(synthetic.labels, synthetic.hard_labels, counts, config)


def stored_calibration(synthetic: SyntheticSet, counts, teacher: nn.Module | None = None,
                       temperature: float = 1.0) -> SyntheticSet:
    """`distill --labels adsa`: the set with ADSA applied once, at distill time. Soft labels are calibrated and
    stored (calibrated_set); a teacher set keeps its teacher and stores the calibration with it
    (meta["teacher"]["calibration"]), which every evaluation then applies to the teacher's logits on each batch
    (evaluate/protocol.py load_teacher), its stored soft labels calibrated too. tau* is estimated at `temperature`:
    the teacher's for `distill --labels adsa`, as evaluation's --labels adsa does, 1 for adsa-t1."""
    calibration = estimate_for_set(synthetic, counts, make_config(temperature=temperature), teacher=teacher)
    if teacher is None:
        return calibrated_set(synthetic, calibration)
    record = calibration.as_dict()
    meta = {**synthetic.meta, "classes": synthetic.hard_labels.tolist(), "label_calibration": record,
            "teacher": {**synthetic.meta["teacher"], "calibration": record}}
    labels = calibrate(synthetic.labels, calibration) if synthetic.soft else synthetic.labels
    return replace(synthetic, labels=labels, meta=meta)


def calibrated_set(synthetic: SyntheticSet, calibration: ADSACalibration) -> SyntheticSet:
    """A copy of a soft-label set whose labels are calibrated (images shared); meta records the calibration and
    the classes the uncalibrated labels stood for."""
    if not synthetic.soft:
        raise BadInput("ADSA calibrates soft labels: this set has hard labels (for a teacher set, wrap the teacher "
                       "in CalibratedTeacher instead)")
    meta = {**synthetic.meta, "classes": synthetic.hard_labels.tolist(), "label_calibration": calibration.as_dict()}
    return replace(synthetic, labels=calibrate(synthetic.labels, calibration), meta=meta)
