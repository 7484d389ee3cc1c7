"""N models one after another against N models as one stack (together.py: one network of grouped convolutions, and
torch.func vmap over the stacked weights) on Fashion-MNIST-LT sizes: the N evaluation runs of an IPC-10 set (100
images, one batch an epoch) and N standard experts on a slice of the beta-100 long-tailed set, same epochs, the
ConvNet of the cpu protocol (width 32, depth 3; `--width 128`, the paper protocol's).
Seconds per epoch of all N models together, median over the epochs after the first.

    OMP_NUM_THREADS=1 python benchmarks/together_speed.py --out docs/data/together-speed/cpu.json [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

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


def per_epoch(train_one_epoch, epochs: int, device: str) -> dict:
    times = []
    for _ in range(epochs + 1):
        started = time.perf_counter()
        train_one_epoch()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return {"first_epoch_s": round(times[0], 4), "epoch_s": statistics.median(times[1:])}


def compare(images, labels, n: int, epochs: int, device: str, config: TrainConfig, width: int) -> dict:
    images, labels = images.to(device), labels.to(device)
    alone = nets(n, device, width)
    generators = [torch.Generator().manual_seed(k) for k in range(n)]

    def one_by_one():
        for net, generator in zip(alone, generators, strict=True):
            train_model(net, images, labels, config, generator=generator)

    def together(stacking: str):
        stack = nets(n, device, width)
        stacked_generators = [torch.Generator().manual_seed(k) for k in range(n)]
        return lambda: train_together(stack, images, labels, config, generators=stacked_generators,
                                      stacking=stacking)

    sequential = per_epoch(one_by_one, epochs, device)
    row = {"models": n, "epochs": epochs, "one_by_one": sequential}
    for stacking in ("grouped", "vmap"):
        row[f"together_{stacking}"] = per_epoch(together(stacking), epochs, device)
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
