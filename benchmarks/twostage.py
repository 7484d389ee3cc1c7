"""The two-stage paper's Tables 1-3 on Fashion-MNIST-LT beta 100, IPC 10 (cpu protocol), through the CLI.

    python benchmarks/twostage.py [--out runs/twostage-fmnist] [--device cpu] [--data-dir DIR]

Every step is one `ltdistill` command, skipped when its output exists, so a killed run is resumed by rerunning this
script. What it measures (3 runs each; original = the whole long-tailed set, `--original-epochs` (10: one run on
the 2-core CPU is ~150 s at 10 epochs, so the Table-3 ablation with both stages on the original set stays under half an
hour); distilled = IPC 10, the protocol's 300 epochs):
    original single    `ltdistill evaluate --full` at the same epochs (Table 1's "original" row)
    single stage       `ltdistill evaluate` of each distilled set (Table 1's GM / MTT rows; our sets below)
    original+distilled group classifier on original, intra-group classifiers on the set (Table 2, the method)
    distilled+distilled both stages on the set (Table 3 ablation)
    original+original  both stages on the long-tailed set (Table 3 ablation; independent of the set)
The distilled sets: Random, DM (2000 iterations), DC (DSA, `--dc-iterations`, far below the reference's 1000 on
CPU) and MTT (the paper's second distillation method; preset configs/mtt/fmnist-lt-b100-ipc10.toml, 300 iterations,
on 8 standard experts x 20 epochs trained into `--experts`, or an existing buffer there; hours on CPU). The t-SNE
figure and the groupings on balanced / long-tailed / distilled data come with the Random run.
Copy runs/twostage-fmnist/*.json into docs/data/twostage-fmnist-cpu/ and the PNG into docs/figures/, then
`python benchmarks/results.py`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "ltdistill.cli"]


def run(cmd: list[str], output: Path) -> None:
    if output.exists():
        print(f"have {output}")
        return
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/twostage-fmnist")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dc-iterations", type=int, default=20)
    parser.add_argument("--sets", default="random,dm,dc", help="comma-separated: random, dm, dc, mtt")
    parser.add_argument("--experts", default=None, help="MTT's standard expert buffer (default: OUT/experts)")
    parser.add_argument("--original-epochs", type=int, default=10,
                        help="epochs of every model trained on the whole long-tailed (or balanced) set")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common = ["--device", args.device, "--no-progress"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    data = ["--dataset", "fashion-mnist", "--imbalance", "100", "--protocol", "cpu"]
    full = out / "original-single.json"
    run([*CLI, "evaluate", "--full", *data[:4], "--epochs", str(args.original_epochs), "--runs", "3", *common,
         "--json", str(full)], full)
    common_two = [*common, "--original-epochs", str(args.original_epochs)]
    experts = Path(args.experts) if args.experts else out / "experts"
    settings = {"random": ["--method", "random", *data], "dm": ["--method", "dm", *data, "--set", "iterations=2000"],
                "dc": ["--method", "dc", *data, "--set", f"iterations={args.dc_iterations}", "--set",
                       "checkpoint_every=1"],
                "mtt": ["--config", "configs/mtt/fmnist-lt-b100-ipc10.toml", "--experts", str(experts)]}
    names = args.sets.split(",")
    if unknown := set(names) - set(settings):
        parser.error(f"--sets: unknown {sorted(unknown)}; choose from {sorted(settings)}")
    if "mtt" in names:
        run([*CLI, "experts", *data, "--num", "8", "--epochs", "20", "--out", str(experts), *common],
            experts / "accuracy.json")
    for name in names:  # the distilled sets and the paper's method (Table 2) first, the ablations after
        artifact = out / name
        run([*CLI, "distill", *settings[name], "--ipc", "10", "--out", str(artifact), *common], artifact / "meta.json")
        run([*CLI, "evaluate", str(artifact), "--runs", "3", *common, "--json", str(out / f"{name}-single.json")],
            out / f"{name}-single.json")
        figure = ["--figure", str(out / "tsne-groupings.png")] if name == "random" else []
        twostage(artifact, "original", "distilled", out / f"{name}-original+distilled.json", figure, common_two)
    for name in names:
        twostage(out / name, "distilled", "distilled", out / f"{name}-distilled+distilled.json", [], common_two)
    twostage(out / names[0], "original", "original", out / "original+original.json", [], common_two)


def twostage(artifact: Path, stage1: str, stage2: str, target: Path, extra: list[str], common: list[str]) -> None:
    run([*CLI, "twostage", str(artifact), "--stage1", stage1, "--stage2", stage2, "--runs", "3", *extra, *common,
         "--json", str(target)], target)


if __name__ == "__main__":
    main()
