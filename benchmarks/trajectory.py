"""Trajectory-matching table (LTDD with its ablations, DATM, MTT) with the presets in configs/, 3 evaluation runs
each, cpu protocol: `--setting fmnist` (Fashion-MNIST-LT beta 100, IPC 10/50; hours on CPU) or `--setting digits`
(digits-LT beta 10, IPC 10; minutes), `--setting fmnist-b10` / `fmnist-b50` (Fashion-MNIST-LT beta 10 IPC 10/50, beta 50
IPC 10, on the beta-100 presets with `--imbalance`, as the fmnist suite runs its other betas).

    python benchmarks/trajectory.py --setting digits --out runs/trajectory-digits [--work DIR] [--device cuda]

Experts and artifacts go under --work (default: --out); cell JSONs and the table under --out.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runner import Cell, finish, run, run_cells

SETTINGS = {  # name: (dataset, beta, buffer name, preset prefix, experts, epochs, classifier epochs, IPCs)
    "fmnist": ("fashion-mnist", 100, "fmnist-lt-b100", "fmnist-lt-b100", 8, 20, 5, (10, 50)),
    "fmnist-b10": ("fashion-mnist", 10, "fmnist-lt-b10", "fmnist-lt-b100", 8, 20, 5, (10, 50)),
    "fmnist-b50": ("fashion-mnist", 50, "fmnist-lt-b50", "fmnist-lt-b100", 8, 20, 5, (10,)),
    "digits": ("digits", 10, "digits-lt-b10", "digits-lt-b10", 5, 15, 5, (10,)),
}
# init-only cells: the initial set of LTDD (decoupled-expert images and labels, or one-hot labels) with no matching
# iteration, so the table shows what the initialization alone is worth and what the matching adds or takes away.
# ltdd-bptt: LTDD with MTT's exact gradient (back-propagation through the unroll) instead of the reference's
# constant-memory one that drops the Hessian terms (families/trajectory.py), to see which gradient the pixels need;
# ltdd-dam-mean1: DAM's class weights rescaled to mean 1 (methods/ltdd.py dam_class_weights).
ABLATIONS = {"ltdd": [], "ltdd-no-dam": ["--set", "dam=false"], "ltdd-no-ed": ["--set", "expert_decoupling=false"],
             "ltdd-onehot-init": ["--set", "label_init='onehot'"], "ltdd-init-only": ["--set", "iterations=0"],
             "ltdd-init-only-onehot": ["--set", "iterations=0", "--set", "label_init='onehot'"],
             "ltdd-bptt": ["--set", "gradient='full_bptt'"], "ltdd-dam-mean1": ["--set", "dam_weights='mean_one'"]}
# the standard-expert methods; mtt-tesla: MTT with LTDD's constant-memory gradient, the mirror of ltdd-bptt.
BASELINES = {"mtt": ("mtt", []), "datm": ("datm", []),
             "mtt-tesla": ("mtt", ["--set", "gradient='tesla_frozen_weights'"])}
# Preset variants: variant -> setting -> IPCs whose configs/ltdd/<prefix>-ipc<k>-<variant>.toml (chosen by
# benchmarks/tune.py on the IPC-10 holdout) runs on this setting's decoupled buffer (IPC 50 and the other betas: the
# beta-100 IPC-10 tuning carried over). dam-mean1 at IPC 10 is the ltdd-dam-mean1 ablation cell (same settings);
# digits' tuned preset needs longer experts of its own, so it is not a cell here.
VARIANTS = {"tuned": {"fmnist": (10, 50), "fmnist-b10": (10, 50), "fmnist-b50": (10,)},
            "dam-mean1": {"fmnist": (50,)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="runs/trajectory")
    parser.add_argument("--work", default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cells", default=None, help="comma-separated cell names to run (default: all)")
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="fmnist")
    parser.add_argument("--ltdistill", default="ltdistill", help="how to call the CLI")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work or args.out)
    out.mkdir(parents=True, exist_ok=True)
    cli = args.ltdistill.split()
    common = ["--device", args.device, "--no-progress"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    dataset, beta, buffer, prefix, num, epochs, cls_epochs, ipcs = SETTINGS[args.setting]
    base = ["--dataset", dataset, "--imbalance", str(beta), "--num", str(num), "--epochs", str(epochs)]
    decoupled, standard = work / "experts" / f"{buffer}-decoupled", work / "experts" / buffer
    cells = []
    for ipc in ipcs:
        for name, extra in ABLATIONS.items():
            if ipc == 50 and name not in ("ltdd", "ltdd-init-only"):  # the rest: GPU work
                continue
            cells.append((f"{dataset}-b{beta}-{name}-ipc{ipc}", f"configs/ltdd/{prefix}-ipc{ipc}.toml", decoupled,
                          extra))
        for variant, ipcs_by_setting in VARIANTS.items():
            if ipc in ipcs_by_setting.get(args.setting, ()):
                cells.append((f"{dataset}-b{beta}-ltdd-{variant}-ipc{ipc}",
                              f"configs/ltdd/{prefix}-ipc{ipc}-{variant}.toml", decoupled, []))
        for name, (method, extra) in BASELINES.items():
            if ipc == 50 and name not in ("mtt", "datm"):
                continue
            cells.append((f"{dataset}-b{beta}-{name}-ipc{ipc}", f"configs/{method}/{prefix}-ipc{ipc}.toml",
                          standard, extra))
    wanted = set(args.cells.split(",")) if args.cells else None
    todo = []
    for name, preset, experts, extra in cells:
        if wanted is not None and name not in wanted:
            continue
        art = work / "artifacts" / name
        todo.append(Cell(name, prepare=[[*cli, "distill", "--config", preset, "--imbalance", str(beta),
                                         "--experts", str(experts), *extra, "--out", str(art), *common]],
                         evaluate=[*cli, "evaluate", str(art), "--runs", str(args.runs), *common],
                         done_marker=art / "meta.json"))
    if any("ltdd" in c.name for c in todo):
        run([*cli, "experts", *base, "--decoupled", "--cls-epochs", str(cls_epochs), "--out", str(decoupled),
             *common], out / "log.txt")
    if any("mtt" in c.name or "datm" in c.name for c in todo):
        run([*cli, "experts", *base, "--out", str(standard), *common], out / "log.txt")
    run_cells(todo, out)
    finish(out)


if __name__ == "__main__":
    main()
