"""What a distillation's iterations changed, part by part: a set before matching (e.g. LTDD with iterations=0) and
after, and the hybrids that swap one part, each evaluated with `ltdistill evaluate` (3 runs, the set's protocol).

    python benchmarks/anatomy.py --before ART0 --after ART1 --out runs/anatomy [--runs 3] [--device cpu]

Cells (one JSON each under --out/json, cached: a rerun recomputes nothing):
    before                    images, labels and lr of the initial set
    after                     the finished set
    after-images+before-labels  the matched images with the initial labels (and the learned lr)
    before-images+after-labels  the initial images with the learned labels (and the learned lr)
    after-lr=before           the finished set evaluated at the initial set's lr (the learned lr's share)
Both sets must hold the same classes in the same order (e.g. the same method and seed with iterations 0 and N).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from runner import Cell, finish, run_cells

from ltdistill.synthetic import SyntheticSet


def hybrid(images_from: SyntheticSet, labels_from: SyntheticSet, lr: float | None, note: str) -> SyntheticSet:
    meta = {**images_from.meta, "hybrid": note, "loss_history": []}
    return SyntheticSet(images_from.images.clone(), labels_from.labels.clone(), lr=lr, meta=meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--out", default="runs/anatomy")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    before, after = SyntheticSet.load(args.before), SyntheticSet.load(args.after)
    if before.meta.get("classes") != after.meta.get("classes") or before.images.shape != after.images.shape:
        sys.exit("anatomy.py: --before and --after must hold the same classes in the same order")
    out = Path(args.out)
    made = out / "sets"
    hybrids = {"after-images+before-labels": hybrid(after, before, after.lr, "matched images, initial labels"),
               "before-images+after-labels": hybrid(before, after, after.lr, "initial images, learned labels")}
    for name, s in hybrids.items():
        if not (made / name / "meta.json").exists():
            s.save(made / name)
    cli = [sys.executable, "-m", "ltdistill.cli", "evaluate"]
    common = ["--runs", str(args.runs), "--device", args.device, "--no-progress"]
    cells = [Cell("before", evaluate=[*cli, args.before, *common]),
             Cell("after", evaluate=[*cli, args.after, *common]),
             *[Cell(name, evaluate=[*cli, str(made / name), *common]) for name in hybrids],
             Cell("after-lr=before", evaluate=[*cli, args.after, "--lr", f"{before.lr or 0.01:g}", *common])]
    run_cells(cells, out)
    finish(out, name_rows_by_file=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
