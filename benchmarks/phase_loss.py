"""LTDD's two matching losses measured on finished sets, without updating them: for the same sampled start epochs,
the normalized distance the student ends at on a representation-expert trajectory (with DAM's class weights as
the reference sets them, rescaled to mean 1, or none) and on a classifier-expert trajectory, at the set's own lr
and at multiples of it. A loss near 1 means the student barely moves toward the target; above 1, it moves away.

    python benchmarks/phase_loss.py ART [ART ...] --experts DECOUPLED_BUFFER --out phase-loss.json [--samples 10]

Settings are the CPU-scale LTDD preset's (N_rep = N_cls = 20, start in [0, 10) / epoch 0, 2 expert epochs, DSA).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ltdistill.cli import load_artifact_data
from ltdistill.data.augment import DSA
from ltdistill.families.trajectory import Matching, match_trajectory
from ltdistill.methods.ltdd import dam_class_weights

PHASES = {  # name: (trajectory kind, class weights, backbone-only distance, head-only student)
    "rep (DAM, n_k/N)": ("rep", "frequency", True, False),
    "rep (DAM, mean 1)": ("rep", "mean_one", True, False),
    "rep (unweighted)": ("rep", None, True, False),
    "cls": ("cls", None, False, True),
}
START_WINDOW = {"rep": 10, "cls": 1}  # exclusive upper start epoch: T_rep^+ and T_cls^+ of the CPU-scale preset


def phase_losses(artifact: str, experts: str, samples: int, lr_scales: list[float], seed: int) -> dict:
    synthetic, data = load_artifact_data(artifact, None)
    set_lr = synthetic.lr if synthetic.lr is not None else 0.01
    out = {"artifact": artifact, "lr": set_lr, "losses": {}}
    m = Matching(experts, data, seed, "cpu", kind=None)
    head = m.flat_model.mask("classifier.", "cpu")
    # one sampler per kind (they cache the loaded trajectories) drawing from m.generator, reseeded for every row
    samplers = {kind: m.sampler(kind, "phase_loss", high, 2) for kind, high in START_WINDOW.items()}
    dsa = DSA()
    for scale in lr_scales:
        for phase, (kind, weights, backbone_only, head_only) in PHASES.items():
            m.generator.manual_seed(seed)  # the same start epochs and augmentations for every row
            class_weights = dam_class_weights(data.counts, weights) if weights else None
            values = []
            for _ in range(samples):
                start, target = samplers[kind].sample(0, START_WINDOW[kind], 2)
                values.append(match_trajectory(
                    m.flat_model, start, target, synthetic.images, synthetic.labels, torch.tensor(set_lr * scale),
                    syn_steps=20, batch_syn=None, dsa=dsa, generator=m.generator, class_weights=class_weights,
                    matched=(1 - head) if backbone_only else None, trainable=head if head_only else None))
            mean = sum(values) / len(values)
            out["losses"][f"{phase} at lr x{scale:g}"] = round(mean, 4)
            print(f"{Path(artifact).name}: {phase} at lr {set_lr * scale:.4f}: {mean:.3f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("artifacts", nargs="+")
    parser.add_argument("--experts", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--lr-scales", default="1,10")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if Path(args.out).exists():
        parser.error(f"{args.out} exists; choose a new --out")
    scales = [float(s) for s in args.lr_scales.split(",")]
    result = {"command": "python " + " ".join(sys.argv), "samples": args.samples,
              "sets": [phase_losses(a, args.experts, args.samples, scales, args.seed) for a in args.artifacts]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
