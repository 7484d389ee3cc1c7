"""N models one after another against N models as one stack (together.py: one network of grouped convolutions, and
torch.func vmap over the stacked weights) on Fashion-MNIST-LT sizes: the N evaluation runs of an IPC-10 set (100
images, one batch an epoch) and N standard experts on a slice of the beta-100 long-tailed set, same epochs, the
ConvNet of the cpu protocol (width 32, depth 3; `--width 128`, the paper protocol's).
Each path trains for its epochs in one call, as a real run does (setup, copying the weights back and the closing
checks paid once); seconds per epoch of all N models, the median over the epochs after the first as the trainers
report them, and the tensor operations one epoch dispatches (OpCount: on a GPU, kernel launches, which bound a
small model's step).

    OMP_NUM_THREADS=1 python benchmarks/together_speed.py --out docs/data/together-speed/cpu.json [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ltdistill import models
from ltdistill.data.longtail import load_longtail
from ltdistill.runtime import host
from ltdistill.safe_io import write_json
from ltdistill.together import train_together
from ltdistill.train import TrainConfig, train_model


def nets(n: int, device: str, width: int = 32) -> list[torch.nn.Module]:
    made = []
    for seed in range(n):
        torch.manual_seed(seed)
        made.append(models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=width,
                                  depth=3).to(device))
    return made


class OpCount(TorchDispatchMode):
    """Counts the tensor operations dispatched that would launch a kernel on a GPU (forward, and backward where it
    runs on this thread, as on a CPU): views and the random draws of the models' host generators apart. Where a
    small model's step is bound by launches, the count predicts its time on any device. Counted on the CPU it misses
    the copies of host-drawn parameters to the device."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not func.is_view and kwargs.get("generator") is None:
            self.ops += 1
        return func(*args, **kwargs)


def one_by_one(images, labels, n: int, epochs: int, device: str, config: TrainConfig, width: int) -> list[list[float]]:
    """Each of n models trained for `epochs` in one train_model call: its seconds per epoch."""
    per_model = []
    for k, net in enumerate(nets(n, device, width)):
        times: list[float] = []
        train_model(net, images, labels, replace(config, epochs=epochs), generator=torch.Generator().manual_seed(k),
                    on_epoch=lambda done, s, times=times: times.append(s))
        per_model.append(times)
    return per_model


def together(images, labels, n: int, epochs: int, device: str, config: TrainConfig, width: int,
             stacking: str) -> list[float]:
    """n models trained together for `epochs` in one train_together call: seconds per epoch of all n."""
    times: list[float] = []
    train_together(nets(n, device, width), images, labels, replace(config, epochs=epochs), stacking=stacking,
                   generators=[torch.Generator().manual_seed(k) for k in range(n)],
                   on_epoch=lambda done, s: times.append(s))
    return times


def ops_per_epoch(train) -> int:
    """The operations one more epoch adds to a whole run (a run of 2 epochs against one of 1: setup apart)."""
    counts = []
    for epochs in (1, 2):
        with OpCount() as counted:
            train(epochs)
        counts.append(counted.ops)
    return counts[1] - counts[0]


def compare(images, labels, n: int, epochs: int, device: str, config: TrainConfig, width: int) -> dict:
    """Seconds per epoch (median over the epochs after the first, each path trained for epochs + 1 in one call as
    a real run is, the per-epoch time as the trainers report it) and operations per epoch: n models one by one
    (their epoch times summed) against the two stacks."""
    images, labels = images.to(device), labels.to(device)
    alone = one_by_one(images, labels, n, epochs + 1, device, config, width)
    sequential = {"first_epoch_s": round(sum(t[0] for t in alone), 4),
                  "epoch_s": sum(statistics.median(t[1:]) for t in alone),
                  "ops": ops_per_epoch(lambda e: one_by_one(images, labels, n, e, device, config, width))}
    row = {"models": n, "epochs": epochs, "one_by_one": sequential}
    for stacking in ("grouped", "vmap"):
        times = together(images, labels, n, epochs + 1, device, config, width, stacking)
        row[f"together_{stacking}"] = {
            "first_epoch_s": round(times[0], 4), "epoch_s": statistics.median(times[1:]),
            "ops": ops_per_epoch(lambda e, s=stacking: together(images, labels, n, e, device, config, width, s))}
        row[f"speedup_{stacking}"] = sequential["epoch_s"] / row[f"together_{stacking}"]["epoch_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--width", type=int, default=32, help="the ConvNet's width (128: the paper protocol's)")
    args = parser.parse_args()
    data = load_longtail("fashion-mnist", 100.0)
    index = torch.cat([data.indices_of(c)[:10] for c in range(10)])
    expert_slice = torch.randperm(len(data.train_y), generator=torch.Generator().manual_seed(0))[:2048]
    rows = {
        f"{args.runs} evaluation runs, IPC 10 (100 images)": compare(
            data.train_x[index], data.train_y[index], args.runs, 20, args.device,
            TrainConfig(epochs=1, lr_decay_at_half=False), args.width),
        f"{args.experts} standard experts, 2048 long-tailed images": compare(
            data.train_x[expert_slice], data.train_y[expert_slice], args.experts, 2, args.device,
            TrainConfig(epochs=1, momentum=0.0, weight_decay=0.0, lr_decay_at_half=False), args.width),
    }
    for name, row in rows.items():
        print(name, json.dumps(row))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, {"rows": rows, "host": host(), "device": args.device, "torch": torch.__version__,
                          "threads": torch.get_num_threads(), "width": args.width,
                          "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
                          "note": "measured beside other jobs on the same machine" if args.device == "cpu" else "",
                          "command": f"OMP_NUM_THREADS=1 python benchmarks/together_speed.py --out {args.out} "
                                     f"--device {args.device} --width {args.width}"})


if __name__ == "__main__":
    main()
