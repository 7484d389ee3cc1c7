"""Many processes on PyTorch's own engine: torch.distributed, launched by torchrun (no home-made launcher).

`torchrun --nproc_per_node N ltdistill-cli ...` (or `python -m torch.distributed.run ... -m ltdistill.cli ...`)
sets RANK, WORLD_SIZE, LOCAL_RANK and MASTER_ADDR/PORT; the command line reads them (`world()`), joins the group
(`start`: nccl on GPUs, gloo on CPU, a timeout on every collective so a dead rank ends the job instead of hanging
it) and splits its work over the ranks; rank 0 alone writes results and prints. One process is world (0, 1), and
every function here is then a no-op, so single-process code paths are the same code.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ltdistill.errors import BadInput

SPLITTING_COMMANDS = ("experts", "evaluate", "distill")  # what splits its work over the ranks of a torchrun launch
# distill: the methods that split theirs (DM, DC: their classes; the trajectory methods: every student minibatch;
# SRe2L and uni-level: their recovery groups)
SPLITTING_METHODS = ("dm", "dc", "mtt", "datm", "ltdd", "sre2l", "unilevel")
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=30)  # a rank that died, or hangs, ends the job after this


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def mine(self, items: list) -> list:
        """This rank's share of `items`: every size-th one, from its rank (the shard rule of `experts --shard`)."""
        return items[self.rank::self.size]


def world() -> World:
    """The world torchrun describes in the environment; one process without it."""
    try:
        rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise BadInput("RANK and WORLD_SIZE must be integers (torchrun sets them)") from None
    if not 0 <= rank < size:
        raise BadInput(f"RANK {rank} is not in [0, WORLD_SIZE {size})")
    return World(rank, size)


def joined() -> World:
    """The world this process has joined: torchrun's once `start` ran, else one process. Library code splits its
    work by this, so a function called under torchrun without the group (an API user's script) computes everything
    itself rather than a share that nothing would sum."""
    return world() if dist.is_initialized() else World()


def start(device: str) -> World:
    """Join the process group of a torchrun launch (a no-op for one process); on GPUs each rank takes the device of
    its LOCAL_RANK."""
    here = world()
    if here.size == 1 or dist.is_initialized():
        return here
    on_gpu = str(device).startswith("cuda")
    if on_gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if on_gpu else "gloo", timeout=COLLECTIVE_TIMEOUT)
    return here


def stop(finished: bool = False) -> None:
    """Leave the group. The collection frees the autograd graphs of the last step (which hold summed tensors) while
    the group exists, not during the interpreter's teardown. finished (the command returned on every rank): leave
    together, so that no rank closes its connections while another is still in a collective; after an error the
    other ranks may never come, so leave at once."""
    if dist.is_initialized():
        gc.collect()
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def gather(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank (all_gather_object; [obj] for one process)."""
    if not dist.is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def sum_gradients(tensors: list[torch.Tensor], loss: float) -> float:
    """Each tensor's gradient summed over the ranks, in place, and the loss summed: a step whose terms (classes)
    were split over the ranks then moves every rank's copy as one process would (to float rounding). One process:
    the loss unchanged."""
    if not dist.is_initialized():
        return loss
    for t in tensors:
        dist.all_reduce(t.grad)
    total = torch.tensor([loss], dtype=torch.float64)
    dist.all_reduce(total)
    return float(total[0])


def local_device(device: str) -> str:
    """The device string of this rank: cuda:LOCAL_RANK under a GPU launch, else `device` unchanged."""
    if str(device) == "cuda" and world().size > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    return device


def summed(tensor: torch.Tensor, differentiable: bool = False) -> torch.Tensor:
    """`tensor` summed over the ranks (itself for one process). differentiable: through SumOverRanks, whose
    backward sums the gradients of the result over the ranks too."""
    if not dist.is_initialized():
        return tensor
    if differentiable:
        return SumOverRanks.apply(tensor)
    out = tensor.clone()
    dist.all_reduce(out)
    return out


class SumOverRanks(torch.autograd.Function):
    """y = sum over the ranks of x; the gradient of x on each rank is the sum over the ranks of y's gradient (each
    rank's loss depends on every rank's x). Differentiable to any order, as the unrolled student needs."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return SumOverRanks.apply(grad)


@contextlib.contextmanager
def reduced_gradients(tensors: list[torch.Tensor]) -> Iterator[None]:
    """Within the block each tensor's gradient gathers only what this rank computes; after it, that contribution
    is summed over the ranks and added to the gradient the tensor held before (so a caller that accumulates
    several terms into .grad sums each term once). One process: nothing changes."""
    if not dist.is_initialized():
        yield
        return
    kept = [t.grad for t in tensors]
    for t in tensors:
        t.grad = None
    try:
        yield
    finally:
        for t, before in zip(tensors, kept, strict=True):
            grad = t.grad if t.grad is not None else torch.zeros_like(t)
            dist.all_reduce(grad)
            t.grad = grad if before is None else before + grad


def from_main(obj):
    """Rank 0's `obj` on every rank (broadcast_object_list; `obj` itself for one process): a decision every rank must
    take alike, such as whether a run is read back or trained together."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class BatchSplit:
    """Data-parallel training of one model over the ranks (train_model's `data_parallel`), with the arithmetic of one
    process: every rank draws every batch and its augmentation alike, computes the rows rank::size of it, weighs
    its loss by its share of the rows, and the gradients and the loss are summed over the ranks (one all_reduce of
    a flat buffer), so every rank's copy takes the step one process takes, to float rounding. BatchNorm layers
    normalize by the statistics of the whole batch (each layer's sums all-reduced differentiably, as SyncBatchNorm,
    which runs on GPUs only), so their outputs and running statistics are the one-process ones too. A batch with
    fewer rows than ranks is computed whole by every rank (the same draws give the same step). What the split
    cannot reproduce: a loss normalized over the whole batch by something other than its row count (a class-weighted
    cross-entropy divided by the sum of its weights) is normalized over each rank's rows."""

    def __init__(self, model: nn.Module):
        self.world = joined()
        self.active = False
        self.norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def rows(self, n: int) -> slice | None:
        """This rank's rows of a batch of n (None: the whole batch, computed by every rank)."""
        self.active = self.world.size > 1 and n >= self.world.size
        return slice(self.world.rank, None, self.world.size) if self.active else None

    def reduce(self, parameters: list[torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        """Sum each parameter's gradient and the (share-weighted) loss over the ranks, in place; the summed loss."""
        if not self.active:
            return loss
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = torch.cat([loss.detach().reshape(1), *(g.reshape(-1) for g in grads)])
        dist.all_reduce(flat)
        offset = 1
        for p, g in zip(parameters, grads, strict=True):
            if p.grad is not None:  # one without (no part in this loss on any rank: the same graph) stays without
                p.grad = flat[offset:offset + g.numel()].view_as(g).clone()
            offset += g.numel()
        return flat[0]

    @contextlib.contextmanager
    def synced_norms(self) -> Iterator[None]:
        """Within the block, the model's BatchNorm layers (in training mode, on a split batch) normalize by the
        statistics of the whole batch."""
        for norm in self.norms:
            norm.forward = functools.partial(self._synced_forward, norm)  # type: ignore[method-assign]
        try:
            yield
        finally:
            for norm in self.norms:
                del norm.forward

    def _synced_forward(self, norm: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
        if not (self.active and norm.training):
            return type(norm).forward(norm, x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.ndim)]
        shape = [1, -1, *[1] * (x.ndim - 2)]
        count = summed(x.new_tensor([x.numel() / x.shape[1]]))
        mean = all_reduce(x.sum(dims)) / count
        centered = x - mean.view(shape)
        var = all_reduce((centered * centered).sum(dims)) / count  # two passes, as one process computes it
        if norm.track_running_stats and norm.running_mean is not None and norm.running_var is not None:
            with torch.no_grad():
                assert norm.num_batches_tracked is not None
                norm.num_batches_tracked += 1
                momentum = norm.momentum if norm.momentum is not None else 1 / float(norm.num_batches_tracked)
                n = float(count)
                norm.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
                norm.running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / max(n - 1, 1))
        out = centered / torch.sqrt(var.view(shape) + norm.eps)
        if norm.affine:
            out = out * norm.weight.view(shape) + norm.bias.view(shape)
        return out
