"""Cost of one matching phase per method, in one process, interleaved (LTDD supplement Table 9's question: what does
an LTDD iteration cost next to MTT and DATM?).

    python benchmarks/phase_cost.py --out docs/data/phase-cost/NAME.json [--steps 20] [--repeats 5] [--device cpu]

Student: ConvNet width 32 depth 3 on 28x28 (the cpu protocol on Fashion-MNIST), 100 synthetic images (IPC 10),
DSA, random parameters as start and target (the cost does not depend on their values). Phases, each `--steps`
student steps:
    mtt           full back-propagation through the unroll, hard labels (MTT)
    datm          the same with learnable soft labels (DATM: the labels are a leaf too)
    ltdd-rep      constant-memory gradient, class-weighted loss, backbone-only distance (DAM)
    ltdd-cls      constant-memory gradient, head-only student (Expert Decoupling)
    ltdd-*-frozen the same two with frozen pixels (lr_img 0, the holdout-tuned Fashion-MNIST presets): no gradient
                  to the images, so the head-only phase never back-propagates through the backbone
An LTDD iteration is ltdd-rep + ltdd-cls (N_rep = N_cls = steps); MTT/DATM take one phase. Times are medians of
the repeats after one warm-up round; every time is in the JSON. Run it on a machine with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch
from torch.nn.utils import parameters_to_vector

from ltdistill import models
from ltdistill.data.augment import DSA
from ltdistill.experts.student import FlatModel
from ltdistill.families.trajectory import match_trajectory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = args.device
    torch.manual_seed(0)
    net = models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=32, depth=3).to(device)
    flat = FlatModel(net)
    start = parameters_to_vector(net.parameters()).detach()
    target = start + 0.01 * torch.randn_like(start)
    head = flat.mask("classifier.", device)
    images = torch.randn(100, 1, 28, 28, device=device, requires_grad=True)
    hard = torch.arange(10, device=device).repeat_interleave(10)
    soft = torch.randn(100, 10, device=device, requires_grad=True)
    lr = torch.tensor(0.01, device=device, requires_grad=True)
    phases = {
        "mtt": dict(labels=hard, gradient="full_bptt"),
        "datm": dict(labels=soft, gradient="full_bptt"),
        "ltdd-rep": dict(labels=soft, gradient="tesla_frozen_weights", matched=1 - head,
                         class_weights=torch.linspace(0.3, 0.01, 10, device=device)),
        "ltdd-cls": dict(labels=soft, gradient="tesla_frozen_weights", trainable=head),
    }
    pixels = images.detach()  # lr_img 0: the pixels take no gradient
    phases.update({f"{name}-frozen": dict(phases[name], images=pixels) for name in ("ltdd-rep", "ltdd-cls")})
    times: dict[str, list[float]] = {k: [] for k in phases}
    for round_ in range(args.repeats + 1):
        for name, kw in phases.items():
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            options = {k: v for k, v in kw.items() if k not in ("labels", "images")}
            match_trajectory(flat, start, target, kw.get("images", images), kw["labels"], lr, syn_steps=args.steps,
                             batch_syn=None, dsa=DSA(), generator=torch.Generator().manual_seed(0), **options)
            if device == "cuda":
                torch.cuda.synchronize()
            if round_ > 0:  # round 0 warms up
                times[name].append(time.perf_counter() - t)
    median = {k: statistics.median(v) for k, v in times.items()}
    ltdd = median["ltdd-rep"] + median["ltdd-cls"]
    ltdd_frozen = median["ltdd-rep-frozen"] + median["ltdd-cls-frozen"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"meta": {"commit": commit, "torch": torch.__version__, "device": device, "cpu": platform.processor()
                       or platform.machine(), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                       "steps": args.steps, "repeats": args.repeats},
              "median_s": median, "times_s": times, "ltdd_iteration_s": ltdd,
              "ltdd_over_mtt": ltdd / median["mtt"], "datm_over_mtt": median["datm"] / median["mtt"],
              "ltdd_frozen_iteration_s": ltdd_frozen, "ltdd_frozen_over_mtt": ltdd_frozen / median["mtt"]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("median_s", "ltdd_iteration_s", "ltdd_over_mtt", "datm_over_mtt",
                                             "ltdd_frozen_iteration_s", "ltdd_frozen_over_mtt")}, indent=2))


if __name__ == "__main__":
    main()
