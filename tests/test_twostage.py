"""Two-stage grouping classifier: the paper's distance (Eq. 2), the split (Eq. 3), and the hierarchical predictor."""

import itertools
import json

import numpy as np
import pytest
import torch

from ltdistill.twostage import best_split, class_distances, evaluate_two_stage
from ltdistill.twostage.grouping import cut_value


def test_class_distance_follows_equation_2():
    a, b = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 2.0]])
    d = class_distances([a, b])
    assert d[0, 1] == pytest.approx(np.sqrt(4 + 5)) and d[0, 0] > 0 and d[0, 1] == d[1, 0]


def test_exact_split_separates_two_far_clusters_and_is_the_maximum_cut():
    rng = np.random.default_rng(0)
    centers = [rng.normal(size=2) + (0 if c < 3 else 50) for c in range(6)]
    d = class_distances([c[None] for c in centers])
    g1, g2, how = best_split(d)
    assert how == "exact" and sorted(map(sorted, [g1, g2])) == [[0, 1, 2], [3, 4, 5]]
    values = [cut_value(d, np.array((True, *bits))) for bits in itertools.product([True, False], repeat=5)]
    mask = np.zeros(6, dtype=bool)
    mask[g1] = True
    assert cut_value(d, mask) == pytest.approx(max(values))


def test_heuristic_split_beyond_16_classes_finds_the_obvious_cut():
    rng = np.random.default_rng(1)
    centers = [rng.normal(size=3) + (0 if c % 2 else 40) for c in range(20)]
    g1, g2, how = best_split(class_distances([c[None] for c in centers]))
    assert how == "heuristic" and sorted(map(sorted, [g1, g2])) == [list(range(0, 20, 2)), list(range(1, 20, 2))]


def test_two_stage_classifier_routes_groups_and_scores_above_chance(blob_data):
    groups = [[0, 1], [2, 3]]
    result = evaluate_two_stage(blob_data, groups, (blob_data.train_x, blob_data.train_y),
                                (blob_data.train_x, blob_data.train_y), options={"width": 8, "depth": 2},
                                epochs1=30, epochs2=30, runs=1)
    assert result["group_acc"]["mean"] > 0.7 and result["balanced_acc"]["mean"] > 0.5
    assert result["groups"] == groups and len(result["per_class_acc"]) == 4
    soft = torch.nn.functional.one_hot(blob_data.train_y, 4).float() * 5
    again = evaluate_two_stage(blob_data, groups, (blob_data.train_x, blob_data.train_y), (blob_data.train_x, soft),
                               options={"width": 8, "depth": 2}, epochs1=5, epochs2=5, runs=1)
    assert 0 <= again["balanced_acc"]["mean"] <= 1


@pytest.mark.parametrize("groups", [[[0, 1], [1, 2]], [[0, 1], [2]], [[0, 1, 2, 3], []], [[0, 1], [2, 3.0]],
                                    [[0, 1], [2, 3, 4]], "0,1|2,3"])
def test_groups_that_do_not_split_the_classes_are_refused_before_training(blob_data, groups):
    """A class in no group went to whatever group torch.empty held; one in two groups, to the last."""
    from ltdistill.errors import BadInput

    stage = (blob_data.train_x, blob_data.train_y)
    with pytest.raises(BadInput, match=r"groups must split the classes 0\.\.3 into non-empty groups"):
        evaluate_two_stage(blob_data, groups, stage, stage, epochs1=1, epochs2=1, runs=1)
    with pytest.raises(BadInput, match="runs must be an integer >= 1"):
        evaluate_two_stage(blob_data, [[0, 1], [2, 3]], stage, stage, runs=0)
    with pytest.raises(BadInput, match=r"stage2 must be \(images N x C x H x W, labels N or N x 4\)"):
        evaluate_two_stage(blob_data, [[0, 1], [2, 3]], stage, (blob_data.train_x, blob_data.train_y[:-1]), runs=1)


def test_twostage_cli_writes_json_and_figure_and_refuses_existing_outputs(tmp_path, capsys):
    from ltdistill.cli import main

    art = tmp_path / "random"
    assert main(["distill", "--method", "random", "--dataset", "digits", "--imbalance", "10", "--ipc", "3",
                 "--out", str(art), "--no-progress"]) == 0
    out, figure = tmp_path / "two.json", tmp_path / "tsne.png"
    argv = ["twostage", str(art), "--runs", "1", "--epochs", "3", "--original-epochs", "1", "--clusters", "2",
            "--no-progress", "--json", str(out), "--figure", str(figure)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert sorted(sum(result["groups"], [])) == list(range(10)) and len(result["groups"]) == 2
    assert set(result["groupings"]) == {"balanced", "original", "distilled"} and 0 <= result["group_acc"]["mean"] <= 1
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = out.read_bytes(), figure.read_bytes()
    capsys.readouterr()
    assert main(argv) == 2
    assert "exists" in capsys.readouterr().err and (out.read_bytes(), figure.read_bytes()) == before
