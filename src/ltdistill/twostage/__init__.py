"""The two-stage (group, then class) classifier of "Dataset distillation for long-tailed learning: a two-stage
grouping approach" (../shared/papers/two-stage-grouping.txt)."""

from ltdistill.twostage.grouping import best_split, class_centroids, class_distances, find_groups
from ltdistill.twostage.hierarchical import TwoStageResult, evaluate_two_stage

__all__ = ["best_split", "class_centroids", "class_distances", "find_groups", "TwoStageResult", "evaluate_two_stage"]
