"""The student of trajectory matching, beside the experts it replays: the registry's model called at a flat
parameter vector (the layout an expert buffer stores), and the buffer opened and checked for a run."""

from __future__ import annotations

import torch
from torch.func import functional_call

from ltdistill import models
from ltdistill.errors import BadInput
from ltdistill.experts.buffer import ExpertBuffer
from ltdistill.models.convnet import ConvNet


class FlatModel:
    """Call a registry model at a flat parameter vector (named_parameters order, as the expert buffer stores)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        named = list(model.named_parameters())
        self.names = [n for n, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.numels = [p.numel() for _, p in named]
        self.num_params = sum(self.numels)
        self.index = {n: i for i, n in enumerate(self.names)}

    def __call__(self, flat: torch.Tensor, x: torch.Tensor, fixed: dict | None = None) -> torch.Tensor:
        """The model at `flat`; with `fixed` (name -> tensor), flat holds only the other parameters, in order."""
        names = self.names if fixed is None else [n for n in self.names if n not in fixed]
        return functional_call(self.model, {**(fixed or {}), **self.views(flat, names)}, (x,))

    def views(self, flat: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """Parameter-shaped views of a flat vector holding the parameters `names` (default: all) in order."""
        names = self.names if names is None else names
        chunks = flat.split([self.numels[self.index[n]] for n in names])
        return {n: c.view(self.shapes[self.index[n]]) for n, c in zip(names, chunks, strict=True)}

    def mask(self, prefix: str, device) -> torch.Tensor:
        """1.0 on the entries of parameters whose name starts with prefix (e.g. 'classifier.'), else 0.0."""
        parts = [torch.full((n,), float(name.startswith(prefix))) for name, n in zip(self.names, self.numels,
                                                                                        strict=True)]
        return torch.cat(parts).to(device)


def open_experts(experts, data, kind: str | None = "standard"):
    """Open the expert buffer a trajectory method needs, checked against the data; returns (buffer, data) with
    the data ZCA-whitened as the experts saw it. kind None: the buffer's main kind ('rep' when decoupled)."""
    if experts is None:
        raise BadInput("this method matches expert trajectories: give --experts DIR (make one with "
                       "`ltdistill experts`)")
    buffer = experts if isinstance(experts, ExpertBuffer) else ExpertBuffer.open(experts)
    zca = buffer.index.get("zca_eps")
    if zca is not None and data.zca_eps is None:  # whitened as the experts saw it, then compared (whitening too)
        data = data.whitened(zca)
    buffer.check_matches(data.describe())
    if kind is None:
        kind = "rep" if buffer.index.get("decoupled") else "standard"
    if not buffer.finished(kind):
        raise BadInput(f"expert buffer {buffer.directory} holds no finished '{kind}' trajectory"
                       + (" (train it with --decoupled)" if kind in ("rep", "cls") else ""))
    return buffer, data


def student_model(buffer, data, device: str, *, compile: bool = False) -> FlatModel:
    """The buffer's model; `compile`: its instance norms and pooling through models/unroll_ops.py (the norm's
    closed-form double backward compiled), a ConvNet's only."""
    model = models.create(buffer.index["model"], channels=data.channels, num_classes=data.num_classes,
                          im_size=data.im_size, **models.recorded_options(buffer.index["model"],
                                                              buffer.index["model_options"])).to(device)
    if compile:
        if not isinstance(model, ConvNet):
            raise BadInput(f"compile=true compiles a ConvNet student's instance norms; the experts' model is "
                           f"{buffer.index['model']!r}")
        model.use_unroll_ops("compiled")
    flat = FlatModel(model)
    expected = [list(s) for _, s in buffer.param_shapes]
    if [list(s) for s in flat.shapes] != expected:
        raise BadInput(f"expert buffer {buffer.directory} was made for another model or class count")
    return flat
