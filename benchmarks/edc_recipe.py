"""EDC's student recipe (evaluate --recipe edc) on one EDC set, as shipped and as it was before it took up two
settings of the official script (direct_train.py, train/utils.py): as shipped, weight decay on kernels and weight
matrices only (get_parameters) and the run scored with the 0.99 EMA of its parameters (EMAMODEL); before, weight
decay on every parameter and the last weights scored. Same set, same seeds, same everything else: each is one
`ltdistill evaluate ARTIFACT --recipe edc` (the cpu protocol's ConvNet, official stem), the earlier one with the
recipe's two settings put back for this process only. Writes both evaluation JSONs and prints their scores.

    OMP_NUM_THREADS=1 python benchmarks/edc_recipe.py runs/edc-recipe/b100-s0 --out docs/data/edc-recipe/b100-s0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ltdistill import cli
from ltdistill.evaluate import protocol

EARLIER = {"ema_decay": None, "decay_matrices_only": False}  # keys.LATER_FIELDS: what the recipe did before


def evaluate(artifact: Path, out: Path, runs: int) -> dict:
    code = cli.main(["evaluate", str(artifact), "--model", "convnet", "--runs", str(runs), "--protocol", "cpu",
                     "--convnet-stem", "official", "--recipe", "edc", "--device", "cpu", "--no-progress",
                     "--json", str(out)])
    if code != 0:
        raise SystemExit(code)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path, help="an EDC set (distill --method edc)")
    parser.add_argument("--out", type=Path, required=True, help="a new folder for the two evaluation JSONs")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scores = {"official": evaluate(args.artifact, args.out / "official.json", args.runs)}
    protocol.RECIPE_SETTINGS["edc"] = {**protocol.RECIPE_SETTINGS["edc"], **EARLIER}
    scores["earlier"] = evaluate(args.artifact, args.out / "earlier.json", args.runs)
    for name, r in scores.items():
        print(f"{name}: balanced {100 * r['balanced_acc']['mean']:.2f} ± {100 * r['balanced_acc']['std']:.2f}, "
              f"tail {100 * r['few']:.1f}, runs {[round(100 * a, 2) for a in r['balanced_acc_runs']]}")


if __name__ == "__main__":
    main()
