"""Is the torch.func student as fast as the official code's module-swap student? One unrolled step block
(3 student steps with create_graph, then backward to the images) through FlatModel (functional_call) and through
the reference-style module swap, interleaved, after warm-up; medians over repeats. Single-order timings on the
2-core machine drift by up to 25% between runs, so only interleaved medians compare the two fairly.

    python benchmarks/student_call.py --out docs/data/tm-speed/cpu-2core-w32-interleaved-student-call.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tm_speed import ReferenceStyleUnroll
from torch.nn.utils import parameters_to_vector

from ltdistill import models
from ltdistill.experts.student import FlatModel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--ipc", type=int, default=50)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = args.device
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.manual_seed(0)
    a = models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=args.width, depth=3).to(device)
    b = models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=args.width, depth=3).to(device)
    b.load_state_dict(a.state_dict())
    w0 = parameters_to_vector(a.parameters()).detach()
    students = {"ltdistill FlatModel (functional_call)": FlatModel(a),
                "reference-style module swap": ReferenceStyleUnroll(b).forward}
    x = torch.randn(10 * args.ipc, 1, 28, 28, device=device, requires_grad=True)
    y = (torch.arange(10 * args.ipc) % 10).to(device)

    def block(forward) -> float:
        sync()
        start = time.perf_counter()
        w = w0.clone().requires_grad_(True)
        for _ in range(3):
            g = torch.autograd.grad(F.cross_entropy(forward(w, x), y), w, create_graph=True)[0]
            w = w - 0.01 * g
        w.square().sum().backward()
        sync()
        return time.perf_counter() - start

    for _ in range(2):
        for forward in students.values():
            block(forward)
    times = {name: [] for name in students}
    for _ in range(args.repeats):
        for name, forward in students.items():
            times[name].append(block(forward))
    rows = [{"ipc": args.ipc, "syn_steps": 3, "impl": name, "s_per_iter": statistics.median(t), "all_s": t,
             "peak_mem_mib": None} for name, t in times.items()]
    gpu = torch.cuda.get_device_name() if device.startswith("cuda") else None
    meta = {"device": device, "gpu": gpu, "cpu": platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "width": args.width, "image": [1, 28, 28],
            "model": "convnet depth 3 instance norm (interleaved medians)", "repeats": args.repeats}
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    for r in rows:
        print(f"{r['impl']}: median {r['s_per_iter']:.2f} s")


if __name__ == "__main__":
    main()
