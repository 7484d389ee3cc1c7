"""Trajectory-matching cost: seconds per distillation iteration and peak memory for syn_steps 10/20/40/80 at
IPC 10 and 50, for ltdistill's full back-propagation and constant-memory (TESLA) gradients, and for a
straightforward implementation in the style of the official MTT code (a flat parameter vector swapped into the
modules, ReparamModule-style, full unroll) run side by side in the same process.

    python benchmarks/tm_speed.py --out runs/tm_speed.json [--device cuda] [--width 32] [--repeats 3]

An implementation of ltdistill's is "ltdistill GRADIENT [compiled] [bfloat16]": the gradient mode of
match_trajectory, then the faster paths a trajectory method takes with `--set compile=true` (the instance norm and
pooling through models/unroll_ops.py, the norm's double backward compiled) and `--set precision='bfloat16'` (the
unroll under bfloat16 autocast, train.forward_precision), e.g. `--impls "ltdistill full_bptt,ltdistill full_bptt
compiled bfloat16,reference-style full unroll"`.

`--malloc default` measures with glibc's own malloc settings, as every file written before the ltdistill command
began raising them (ltdistill/runtime.py; `--malloc tuned`, the default, measures what the command runs with).

Peak memory: CPU = peak RSS growth during the measured iterations (VmHWM, reset through /proc/self/clear_refs);
CUDA = torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.utils import parameters_to_vector

from ltdistill import models
from ltdistill.data.augment import DSA
from ltdistill.experts.student import FlatModel
from ltdistill.families.trajectory import match_trajectory
from ltdistill.runtime import keep_freed_memory
from ltdistill.train import forward_precision

FASTER_PATHS = ("compiled", "bfloat16")


def ltdistill_impl(impl: str) -> tuple[str, list[str]]:
    """(gradient mode, faster paths) of "ltdistill GRADIENT [compiled] [bfloat16]"; ValueError for anything else."""
    kind, *rest = impl.split() or [""]
    if kind != "ltdistill" or not rest or any(w not in FASTER_PATHS for w in rest[1:]):
        raise ValueError(f"--impls: {impl!r} is not 'reference-style full unroll' or 'ltdistill GRADIENT "
                         f"[{'] ['.join(FASTER_PATHS)}]'")
    return rest[0], rest[1:]


class ReferenceStyleUnroll:
    """The official code's pattern: modules whose parameters are replaced by views of one flat vector before each
    forward, then a full unroll student_params.append(w - lr * grad(create_graph=True))."""

    def __init__(self, model):
        self.model = model
        self.slots = [(m, n, p.shape, p.numel()) for m in model.modules() for n, p in m.named_parameters(recurse=False)]
        for m, n, _, _ in self.slots:
            delattr(m, n)

    def forward(self, flat, x):
        offset = 0
        for m, n, shape, numel in self.slots:
            setattr(m, n, flat[offset:offset + numel].view(shape))
            offset += numel
        return self.model(x)

    def loss(self, start, target, images, labels, syn_lr, syn_steps, dsa, generator):
        student = [start.detach().clone().requires_grad_(True)]
        for _ in range(syn_steps):
            idx = torch.randperm(len(images), generator=generator)  # the official code's minibatch gather
            x = dsa(images[idx], generator)
            ce = F.cross_entropy(self.forward(student[-1], x), labels[idx])
            grad = torch.autograd.grad(ce, student[-1], create_graph=True)[0]
            student.append(student[-1] - syn_lr * grad)
        return ((student[-1] - target) ** 2).sum() / ((start - target) ** 2).sum()


def reset_peak(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed memory back so the next peak is this run's own
    Path("/proc/self/clear_refs").write_text("5")
    return rss_kib("VmRSS")


def read_peak(device, base):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return (rss_kib("VmHWM") - base) / 1024


def rss_kib_total():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return int(line.split()[1])
    return 0


def rss_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def measure(impl: str, ipc: int, steps: int, args, C: int = 10) -> dict:
    """Seconds per iteration and peak memory of one implementation at one (ipc, syn_steps)."""
    device = args.device
    torch.manual_seed(0)
    model = models.create("convnet", channels=1, num_classes=C, im_size=(args.size, args.size), width=args.width,
                          depth=3).to(device)
    start = parameters_to_vector(model.parameters()).detach()
    target = start + 0.01 * torch.randn_like(start)
    images = torch.randn(C * ipc, 1, args.size, args.size, device=device, requires_grad=True)
    labels = (torch.arange(C * ipc) % C).to(device)
    lr = torch.tensor(0.01, device=device, requires_grad=True)
    dsa, gen = DSA(), torch.Generator().manual_seed(0)
    if impl.startswith("reference"):
        ref = ReferenceStyleUnroll(model)

        def once():
            ref.loss(start, target, images, labels, lr, steps, dsa, gen).backward()
    else:
        mode, paths = ltdistill_impl(impl)
        if "compiled" in paths:
            model.use_unroll_ops("compiled")
        flat, precision = FlatModel(model), "bfloat16" if "bfloat16" in paths else "float32"

        def once():
            with forward_precision(device, precision):
                match_trajectory(flat, start, target, images, labels, lr, syn_steps=steps, batch_syn=None, dsa=dsa,
                                 generator=gen, gradient=mode)
    row = {"ipc": ipc, "syn_steps": steps, "impl": impl}
    try:
        once()  # warm-up
        base = reset_peak(device)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        for _ in range(args.repeats):
            images.grad = None
            once()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        row.update(s_per_iter=(time.perf_counter() - t0) / args.repeats, peak_mem_mib=read_peak(device, base),
                   minor_faults_per_iter=(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) // args.repeats)
    except torch.OutOfMemoryError:
        row.update(s_per_iter=None, peak_mem_mib=None, out_of_memory=True)
    return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/tm_speed.json")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--steps", default="10,20,40,80")
    parser.add_argument("--ipcs", default="10,50")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--impls", default="ltdistill full_bptt,ltdistill tesla_frozen_weights,"
                        "reference-style full unroll", help="implementations, in the order they are measured")
    parser.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                        help="glibc malloc as the ltdistill command sets it (ltdistill/runtime.py) or left as is")
    args = parser.parse_args()
    for impl in args.impls.split(","):
        if not impl.startswith("reference"):
            try:
                ltdistill_impl(impl)
            except ValueError as e:
                parser.error(str(e))
    if args.malloc == "tuned" and not keep_freed_memory():
        parser.error("--malloc tuned: the settings did not take (not glibc, or MALLOC_* / LD_PRELOAD already set)")
    rows = []
    # On the CPU an allocation past RAM is not an exception but the kernel's OOM killer, so a configuration whose
    # memory, projected linearly in syn_steps from the previous measurement, exceeds 60% of RAM is skipped.
    limit_mib = None if args.device.startswith("cuda") else 0.6 * rss_kib_total() / 1024
    for ipc in map(int, args.ipcs.split(",")):
        previous: dict[str, tuple[int, float]] = {}
        for steps in map(int, args.steps.split(",")):
            for impl in args.impls.split(","):
                projected = None
                if impl in previous and previous[impl][1] is not None:
                    projected = previous[impl][1] * steps / previous[impl][0]
                if limit_mib is not None and projected is not None and projected > limit_mib:
                    rows.append({"ipc": ipc, "syn_steps": steps, "impl": impl, "s_per_iter": None,
                                 "peak_mem_mib": None, "skipped": f"projected {projected / 1024:.0f} GiB > 60% of RAM"})
                else:
                    rows.append(measure(impl, ipc, steps, args))
                    previous[impl] = (steps, rows[-1]["peak_mem_mib"])
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
                print(json.dumps(rows[-1]), flush=True)
                write(args.out, args.device, args, rows)


def write(out, device, args, rows):
    meta = {"device": device, "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
            "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "width": args.width, "order": args.impls, "image": [1, args.size, args.size],
            "model": "convnet depth 3 instance norm", "repeats": args.repeats,
            "malloc": args.malloc}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
