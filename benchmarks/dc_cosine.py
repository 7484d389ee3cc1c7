"""How far DC's two cosine denominators are apart on a real match: the per-class distance and its image gradient
under `cosine_denominator = "norms_plus_eps"` (DatasetCondensation utils.py:233, the default) and "clamped"
(torch's cosine_similarity, ltdistill's earlier default), on Fashion-MNIST-LT beta 100 with the cpu protocol's
ConvNet (official stem): a real batch of 256 and a real-initialized IPC-10 set per class (a head, a middle and the
tail class), on fresh networks and on the same networks after DC's inner training at IPC 10 (50 epochs on the
whole real-initialized set, SGD lr 0.01, no momentum). Prints a
Markdown table; `--out` also writes it as JSON.

    OMP_NUM_THREADS=1 python benchmarks/dc_cosine.py --networks 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from ltdistill import models
from ltdistill.data.longtail import load_longtail
from ltdistill.methods.dc import gradient_distance
from ltdistill.safe_io import write_json
from ltdistill.train import TrainConfig, train_model

IPC, BATCH_REAL, CLASSES = 10, 256, (0, 5, 9)  # a head, a middle and the tail class


def compare(net, real: torch.Tensor, syn: torch.Tensor, label: int) -> dict:
    """The distance and its gradient with respect to the synthetic images under both denominators."""
    params = [p for p in net.parameters() if p.requires_grad]
    g_real = [g.detach() for g in torch.autograd.grad(F.cross_entropy(net(real), torch.full((len(real),), label)),
                                                      params)]
    out = {}
    for denominator in ("norms_plus_eps", "clamped"):
        x = syn.clone().requires_grad_(True)
        g_syn = torch.autograd.grad(F.cross_entropy(net(x), torch.full((len(x),), label)), params, create_graph=True)
        distance = gradient_distance(g_syn, g_real, denominator)
        (image_grad,) = torch.autograd.grad(distance, x)
        out[denominator] = (distance.item(), image_grad)
    products = torch.cat([(a.reshape(a.shape[0], -1).norm(dim=1) * b.reshape(b.shape[0], -1).norm(dim=1)).detach()
                          for a, b in zip(g_syn, g_real, strict=True) if a.ndim > 1])  # one per row of D
    official, clamped = out["norms_plus_eps"], out["clamped"]
    return {"distance_relative": abs(official[0] - clamped[0]) / abs(official[0]),
            "image_grad_relative": ((official[1] - clamped[1]).norm() / official[1].norm()).item(),
            "smallest_norm_product": products.min().item(), "rows_under_1e-4": int((products < 1e-4).sum()),
            "rows": len(products)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=3, help="random networks (seeds 0..N-1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    data = load_longtail("fashion-mnist", 100)
    rows = []
    for seed in range(args.networks):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        net = models.create("convnet", channels=data.channels, num_classes=data.num_classes, im_size=data.im_size,
                            width=32)
        picks = [data.indices_of(c)[torch.randperm(len(data.indices_of(c)), generator=generator)]
                 for c in range(data.num_classes)]
        syn = torch.cat([data.train_x[p[:IPC]] for p in picks])
        labels = torch.arange(data.num_classes).repeat_interleave(IPC)
        for state in ("fresh", "after inner training"):
            if state != "fresh":
                train_model(net, syn, labels, TrainConfig(epochs=50, lr=0.01, momentum=0.0, weight_decay=0.0,
                                                          lr_decay_at_half=False, augment=False), generator=generator)
            for c in CLASSES:
                real = data.train_x[picks[c][torch.randint(len(picks[c]), (BATCH_REAL,), generator=generator)]]
                rows.append({"network": seed, "state": state, "class": c,
                             **compare(net, real, syn[c * IPC:(c + 1) * IPC], c)})
    print("| network | state | class | distance: relative change | image gradient: relative change | "
          "smallest norm product of a row | rows under 1e-4 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['network']} | {r['state']} | {r['class']} | {r['distance_relative']:.1e} | "
              f"{r['image_grad_relative']:.1e} | {r['smallest_norm_product']:.1e} | {r['rows_under_1e-4']} of "
              f"{r['rows']} |")
    if args.out:
        write_json(args.out, {"rows": rows, "command": "python benchmarks/dc_cosine.py"})


if __name__ == "__main__":
    main()
