"""DD-Ranking (NUS-HPC-AI-Lab/DD-Ranking; Li et al. arXiv 2505.13300), per cell and evaluation seed-averaged:
    HLR = Acc_real-hard - Acc_syn-hard   (full long-tailed set vs the set with its class labels only; lower is better)
    IOR = Acc_syn-any - Acc_rdm-any      (the set under its own recipe vs the `random` cell of the same IPC under the
                                          same recipe: with the set's teacher when it relabels; higher is better)
    LRS = (e^a - e^-1) / (e - e^-1), a = w IOR - (1 - w) HLR, w = 0.5, accuracies as fractions.
Decision (DD-Ranking assumes balanced data): Acc_real-hard trains on the whole long-tailed set; the random subset takes
IPC images per class (all of a shorter class). For sets with learned stored soft labels (DATM, LTDD) there is no
teacher to relabel random images with, so their Acc_rdm-any uses hard labels: their IOR includes the soft labels'
gain, which is what DD-Ranking warns of; HLR shows the hard-label view.
"""

from __future__ import annotations

import math
from pathlib import Path

from ltdistill.bench.commands import Log, evaluation_json
from ltdistill.bench.suite import CLI, cell_directory


def random_cell(results: dict[str, dict], key: dict) -> dict | None:
    """The `random` cell of the same beta, IPC and seed: DD-Ranking's random baseline of a cell."""
    return next((x for x in results.values() if x.get("key", {}).get("method") == "random"
                 and all(x["key"].get(k) == key[k] for k in ("beta", "ipc", "seed"))), None)


def ddranking(results: dict[str, dict], teacher_evals: dict[str, dict]) -> None:
    """Add HLR / IOR / LRS to every distilled cell (see the module docstring). A cell whose full-set reference is
    not run yet gets IOR only, one whose random cell is missing HLR only; LRS needs both. A relabeling cell's
    baseline is the random set relabeled by its teacher (`teacher_evals`); where that evaluation cannot be made now
    (an --out holding results copied without their artifacts), the relabeled baseline the cell already stored is
    kept rather than replaced by the hard-label random set."""
    for name, r in results.items():
        if r.get("label") == "full" or "syn_hard" not in r:
            continue
        k = r["key"]
        full = next((x for x in results.values() if x.get("label") == "full" and x["key"]["beta"] == k["beta"]), None)
        stored = r.get("ddranking", {})
        if name in teacher_evals:
            relabeled = teacher_evals[name]
            baseline = relabeled["balanced_acc"]["mean"], relabeled.get("label_regime", "relabel")
        elif str(stored.get("rdm_regime", "")).startswith("relabel"):
            baseline = stored["acc_rdm_any"], stored["rdm_regime"]
        else:
            random = random_cell(results, k)
            baseline = None if random is None else (random["balanced_acc"]["mean"], random.get("label_regime", "hard"))
        dd = {}
        if full is not None:
            dd.update(hlr=full["balanced_acc"]["mean"] - r["syn_hard"]["mean"],
                      acc_real_hard=full["balanced_acc"]["mean"], acc_syn_hard=r["syn_hard"]["mean"])
        if baseline is not None:
            dd.update(ior=r["balanced_acc"]["mean"] - baseline[0], acc_syn_any=r["balanced_acc"]["mean"],
                      acc_rdm_any=baseline[0], rdm_regime=baseline[1])
        if full is not None and baseline is not None:
            a = 0.5 * dd["ior"] - 0.5 * dd["hlr"]
            dd["lrs"] = (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))
        if dd:
            r["ddranking"] = dd


def random_with_teachers(results: dict, out: Path, common, suite, log: Log, jobs: int) -> dict[str, dict]:
    """Acc_rdm-any for relabeling sets: the random cell's images relabeled by that set's teacher."""
    evals = {}
    for name, r in results.items():
        if not str(r.get("label_regime", "")).startswith("relabel"):
            continue
        random = random_cell(results, r["key"])
        dirs = [cell_directory(out, x["cell"]) for x in (r, random or {}) if "cell" in x]
        if random is None or len(dirs) < 2 or not all((d / "artifact" / "meta.json").exists() for d in dirs):
            continue  # an artifact is gone (results copied without cells): ddranking keeps the stored baseline
        set_dir, random_dir = dirs
        cmd = [*CLI, "evaluate", str(random_dir / "artifact"), "--teacher-from", str(set_dir / "artifact"),
               "--runs", str(suite.get("runs", 3)), "--protocol", suite.get("protocol", "cpu"), *common]
        evals[name] = evaluation_json(cmd, set_dir / "eval-random-relabeled.json", log.of(set_dir / "log.txt", jobs))
    return evals
