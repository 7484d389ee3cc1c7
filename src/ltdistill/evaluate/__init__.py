"""Evaluation: the train-on-synthetic protocol and the metrics the papers report."""

from ltdistill.evaluate.protocol import EvalConfig, evaluate_full, evaluate_synthetic

__all__ = ["EvalConfig", "evaluate_full", "evaluate_synthetic"]
