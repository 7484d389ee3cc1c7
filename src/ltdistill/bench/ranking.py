"""DD-Ranking (NUS-HPC-AI-Lab/DD-Ranking; Li et al. arXiv 2505.13300), per cell and evaluation seed-averaged:
    HLR = Acc_real-hard - Acc_syn-hard   (full long-tailed set vs the set with its class labels only; lower is better)
    IOR = Acc_syn-any - Acc_rdm-any      (the set under its own recipe vs the `random` cell of the same IPC under the
                                          same recipe: with the set's teacher when it relabels; higher is better)
    LRS = (e^a - e^-1) / (e - e^-1), a = w IOR - (1 - w) HLR, w = 0.5, accuracies as fractions.
Under a suite's `ranking = "ddranking"` every evaluation follows DD-Ranking's protocol (evaluate --ranking ddranking:
best of every 20 epochs, lr grid, no augmentation for hard labels, the random set redrawn per run) and the scores are
DD-Ranking's per-run ones averaged (soft_label.py:561-568,595: HLR, IOR and LRS of run i from the runs i, then
means), with `lrs_percent` beside LRS: the same formula fed percentages, as DD-Ranking's pipeline feeds it
(meter.py:168), which saturates near -e^-1 / (e - e^-1) for any set. ltdistill's ranking scores the run means.
Decision (DD-Ranking assumes balanced data): Acc_real-hard trains on the whole long-tailed set; the random subset takes
IPC images per class (all of a shorter class). For sets with learned stored soft labels (DATM, LTDD) there is no
teacher to relabel random images with, so their Acc_rdm-any uses hard labels: their IOR includes the soft labels'
gain, which is what DD-Ranking warns of; HLR shows the hard-label view.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from ltdistill.bench.commands import Log, evaluation_json
from ltdistill.bench.schedule import in_parallel
from ltdistill.bench.suite import CLI, cell_directory, evaluation_flags


def same_data(a: dict, b: dict) -> bool:
    """Whether the cells keyed `a` and `b` were made from the same long-tailed training set: dataset, beta, class
    order (absent: natural) and validation holdout. A suite over several orders has one random cell and one full-set
    reference per order, and a cell is ranked against those of its own."""
    def training_set(key: dict) -> tuple:
        return key.get("dataset") or key.get("full"), key.get("beta"), key.get("class_order"), key.get("holdout")

    return training_set(a) == training_set(b)


def random_for(candidate: dict, key: dict) -> bool:
    """Whether the cell keyed `candidate` is the `random` cell of the same training set (same_data), IPC and seed as
    the cell keyed `key`: DD-Ranking's random baseline of that cell."""
    return (candidate.get("method") == "random" and same_data(candidate, key)
            and all(candidate.get(k) == key.get(k) for k in ("ipc", "seed")))


def random_cell(results: dict[str, dict], key: dict) -> dict | None:
    """The finished `random` cell that is the random baseline of the cell keyed `key` (random_for)."""
    return next((x for x in results.values() if random_for(x.get("key", {}), key)), None)


def ddranking(results: dict[str, dict], teacher_evals: dict[str, dict]) -> list[tuple[str, str]]:
    """Add HLR / IOR / LRS to every distilled cell (see the module docstring). A cell whose full-set reference is
    not run yet, or made without its hard-label evaluation (by a suite without DD-Ranking then, ranked now that a
    relabeled baseline is made), gets IOR only, one whose random cell is missing HLR only; LRS needs both. A
    relabeling cell's baseline is the random set relabeled by its teacher (`teacher_evals`); where that evaluation
    cannot be made now (an --out holding results copied without their artifacts), the relabeled baseline the cell
    already stored is kept rather than replaced by the hard-label random set.

    Returns (cell, random cell) for each relabeling cell ranked against the random cell's own labels for want of
    the relabeled baseline: the bench says so (`unrelabeled_warning`); a page rendered from stored results does not."""
    unrelabeled = []
    for name, r in results.items():
        if r.get("label") == "full" or ("syn_hard" not in r and name not in teacher_evals):
            continue  # (a cell of a suite without DD-Ranking: ranked only against a relabeled baseline made now)
        k = r["key"]
        # the full-set reference of its training set, where the cell has the hard-label accuracy HLR sets against it
        full = next((x for x in results.values() if x.get("label") == "full" and same_data(x["key"], k)
                     and "syn_hard" in r), None)
        stored = r.get("ddranking", {})
        baseline: tuple[float, str, list[float] | None] | None
        if name in teacher_evals:
            relabeled = teacher_evals[name]
            baseline = (relabeled["balanced_acc"]["mean"], relabeled.get("label_regime", "relabel"),
                        relabeled.get("balanced_acc_runs"))
        elif str(stored.get("rdm_regime", "")).startswith("relabel"):
            baseline = stored["acc_rdm_any"], stored["rdm_regime"], stored.get("rdm_runs")
        else:
            random = random_cell(results, k)
            baseline = None if random is None else (random["balanced_acc"]["mean"], random.get("label_regime", "hard"),
                                                    random.get("balanced_acc_runs"))
            if random is not None and str(r.get("label_regime", "")).startswith("relabel"):
                unrelabeled.append((name, next(n for n, x in results.items() if x is random)))
        dd: dict = {}
        if full is not None:
            dd.update(hlr=full["balanced_acc"]["mean"] - r["syn_hard"]["mean"],
                      acc_real_hard=full["balanced_acc"]["mean"], acc_syn_hard=r["syn_hard"]["mean"])
        if baseline is not None:
            dd.update(ior=r["balanced_acc"]["mean"] - baseline[0], acc_syn_any=r["balanced_acc"]["mean"],
                      acc_rdm_any=baseline[0], rdm_regime=baseline[1], **({"rdm_runs": baseline[2]} if baseline[2]
                                                                          else {}))
        if full is not None and baseline is not None:
            dd["lrs"] = label_robust_score(dd["ior"], dd["hlr"])
            if k.get("ranking") == "ddranking":
                dd.update(per_run_scores(full, r, baseline[2]))
        if dd:
            r["ddranking"] = dd
    return unrelabeled


def unrelabeled_warning(cell: str, random_stem: str) -> str:
    """What the bench says of a relabeling cell ranked against Random's own labels (see `ddranking`)."""
    return (f"warning: {cell} relabels with a teacher, but no Random set relabeled by it could be made here "
            f"(results/{random_stem}.json came without its cell's artifact): its IOR is against Random's own labels; "
            f"remove results/{random_stem}.json and run the suite again to make both")


def label_robust_score(ior: float, hlr: float, weight: float = 0.5) -> float:
    a = weight * ior - (1 - weight) * hlr
    return (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))


def per_run_scores(full: dict, r: dict, random_runs: list[float] | None) -> dict:
    """DD-Ranking's scores (soft_label.py:561-568,595): run i's HLR, IOR and LRS from the accuracies of runs i,
    then their means; {} where a per-run list is missing (results made before runs were listed)."""
    lists = [full.get("balanced_acc_runs"), r.get("syn_hard_runs"), r.get("balanced_acc_runs"), random_runs]
    runs = [x for x in lists if x]
    if len(runs) < 4 or len({len(x) for x in runs}) != 1:
        return {}
    hlr = [a - b for a, b in zip(runs[0], runs[1], strict=True)]
    ior = [a - b for a, b in zip(runs[2], runs[3], strict=True)]
    mean = statistics.mean
    return {"protocol": "ddranking", "hlr": mean(hlr), "ior": mean(ior),
            "lrs": mean(label_robust_score(i, h) for i, h in zip(ior, hlr, strict=True)),
            "lrs_percent": mean(label_robust_score(100 * i, 100 * h) for i, h in zip(ior, hlr, strict=True)),
            "hlr_runs": hlr, "ior_runs": ior}


def random_with_teachers(results: dict, out: Path, common, suite, log: Log,
                         jobs: int) -> tuple[dict[str, dict], dict[str, dict[str, dict]]]:
    """Acc_rdm-any for relabeling sets: the random cell's images relabeled by that set's teacher, under the set's own
    recipe (cell name -> evaluation) and under each of the suite's `recipes` (cell name -> recipe -> evaluation), so
    that a set evaluated under another recipe is ranked against the baseline of that recipe. The evaluations still
    to make (`relabeled_baselines`) run `jobs` at a time."""
    wanted = [w for name, r in results.items() for w in relabeled_baselines(name, r, results, out, common, suite)]
    made: dict[tuple[str, str | None], dict] = {}

    def evaluate(item: tuple[str, str | None, list[str], Path]) -> None:
        name, other, cmd, path = item
        made[name, other] = evaluation_json(cmd, path, log.of(path.parent / "log.txt", jobs))

    in_parallel(evaluate, wanted, jobs)
    evals = {name: made[name, None] for name, other, *_ in wanted if other is None}
    recipe_evals: dict[str, dict[str, dict]] = {}
    for name, other, *_ in wanted:
        if other is not None:
            recipe_evals.setdefault(name, {})[other] = made[name, other]
    return evals, recipe_evals


def relabeled_baselines(name: str, r: dict, results: dict, out: Path, common,
                        suite) -> list[tuple[str, str | None, list[str], Path]]:
    """The evaluations that give the finished cell `name` (result `r`) its relabeled-random baselines, as (cell
    name, another recipe or None for the set's own, command, evaluation JSON); none for a cell that does not
    relabel, or whose random cell is not finished here."""
    if not str(r.get("label_regime", "")).startswith("relabel"):
        return []
    random = random_cell(results, r["key"])
    dirs = [cell_directory(out, x["cell"]) for x in (r, random or {}) if "cell" in x]
    if random is None or len(dirs) < 2 or not all((d / "artifact" / "meta.json").exists() for d in dirs):
        return []  # an artifact is gone (results copied without cells): ddranking keeps the stored baseline
    set_dir, random_dir = dirs
    cmd = [*CLI, "evaluate", str(random_dir / "artifact"), "--teacher-from", str(set_dir / "artifact"),
           "--runs", str(suite.get("runs", 3)), "--protocol", suite.get("protocol", "cpu"), *common,
           *evaluation_flags(suite)]  # as the cells' evaluations
    recipe = (r.get("eval_config") or {}).get("recipe", "ltdistill")  # the set's own: the same for both
    usual = set_dir / "eval-random-relabeled.json"
    if usual.exists() and json.loads(usual.read_text()).get("recipe", "ltdistill") != recipe:
        usual.unlink()  # made when the baseline took ltdistill's recipe whatever the set's: made again
    wanted: list[tuple[str, str | None, list[str], Path]] = [
        (name, None, cmd + ([] if recipe == "ltdistill" else ["--recipe", recipe]), usual)]
    return wanted + [(name, other, [*cmd, "--recipe", other], set_dir / f"eval-random-relabeled-recipe-{other}.json")
                     for other in (r.get("recipes") or {}) if other != recipe]  # the recipes the set was scored under


def rank_recipes(results: dict[str, dict], recipe_evals: dict[str, dict[str, dict]]) -> None:
    """Each relabeling cell's evaluation under another recipe gets its own Acc_rdm-any (the random set relabeled by
    the same teacher under that recipe), IOR and, with the cell's HLR (hard labels: no recipe), LRS."""
    for name, by_recipe in recipe_evals.items():
        r = results[name]
        hlr = (r.get("ddranking") or {}).get("hlr")
        for recipe, baseline in by_recipe.items():
            variant = (r.get("recipes") or {}).get(recipe)
            if not variant:
                continue
            ior = variant["balanced_acc"]["mean"] - baseline["balanced_acc"]["mean"]
            variant["ddranking"] = {"acc_rdm_any": baseline["balanced_acc"]["mean"], "acc_rdm_any_std":
                                    baseline["balanced_acc"]["std"], "rdm_few": baseline.get("few"),
                                    "rdm_regime": baseline.get("label_regime", "relabel"), "ior": ior,
                                    **({"lrs": label_robust_score(ior, hlr)} if hlr is not None else {})}
