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
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

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


def stop() -> None:
    if dist.is_initialized():
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
    """`tensor` summed over the ranks (itself for one process). differentiable: through
    torch.distributed.nn's all_reduce, whose backward sums the gradients of the result over the ranks too."""
    if not dist.is_initialized():
        return tensor
    if differentiable:
        from torch.distributed.nn.functional import all_reduce

        return all_reduce(tensor)
    out = tensor.clone()
    dist.all_reduce(out)
    return out


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
