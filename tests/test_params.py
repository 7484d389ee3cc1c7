"""The validation boundary (ltdistill/params.py): every method's config declares its types, ranges and choices, and
methods.create refuses anything else with one line, before a run starts. Parametrized over the registry, so a new
method is covered by adding it."""

import dataclasses
import math
import re
import typing

import pytest

from ltdistill import methods
from ltdistill.errors import BadInput
from ltdistill.params import check_fields, describe

METHODS = sorted(methods.METHODS.items())


def hints(cls):
    return typing.get_type_hints(cls.Config, include_extras=True)


@pytest.mark.parametrize("name, cls", METHODS)
def test_every_default_passes_its_own_declaration(name, cls):
    defaults = {f.name: f.default for f in dataclasses.fields(cls.Config)}
    assert check_fields(cls.Config, defaults, name) == defaults


@pytest.mark.parametrize("name, cls", METHODS)
def test_every_field_refuses_a_value_of_the_wrong_kind_and_a_non_finite_number(name, cls):
    for field, hint in hints(cls).items():
        with pytest.raises(BadInput, match=rf"^{name}\.{field} must be "):
            methods.create(name, **{field: ["a list fits no field"]})
        if "number" in describe(hint):
            for value in (math.nan, math.inf):  # a typo, not a setting: inf passes "> 0"
                with pytest.raises(BadInput, match=f"got {value}"):
                    methods.create(name, **{field: value})


@pytest.mark.parametrize("bad, message", [
    ({"label_init": "bogus"}, "ltdd.label_init must be one of 'decoupled', 'biased', 'onehot', got 'bogus'"),
    ({"iterations": -3}, "ltdd.iterations must be an integer >= 0, got -3"),  # 0: the initial set
    ({"n_rep": True}, "ltdd.n_rep must be an integer >= 1, got True"),  # TOML `n_rep = true` is not 1
    ({"gradient": "bogus"}, "ltdd.gradient must be one of"),
    ({"momentum_y": 1.5}, "ltdd.momentum_y must be a number in [0, 1], got 1.5"),
    ({"lr_teacher": 0}, "ltdd.lr_teacher must be a number > 0, got 0"),
])
def test_the_cases_found_by_probing_are_refused_with_one_line(bad, message):
    with pytest.raises(BadInput, match=message.replace("[", r"\[").replace("]", r"\]")):
        methods.create("ltdd", **bad)


def test_models_must_be_registered_and_ints_are_taken_for_floats():
    with pytest.raises(BadInput, match=r"dm.model must be a registered model \(alexnet"):
        methods.create("dm", model="vit")
    with pytest.raises(BadInput, match="dm.width must be an integer >= 1, got 0"):
        methods.create("dm", width=0)
    assert methods.create("dm", lr_img=2).config.lr_img == 2.0 and methods.create("ltdd", lr_img=0).config.lr_img == 0


def test_an_ipc_above_a_class_is_refused_unless_asked_for(blob_data):
    with pytest.raises(BadInput, match="exceeds the real images"):
        methods.create("herding", width=4, depth=2, epochs=1).distill(blob_data, 20, progress=False)
    taken = methods.create("random", short_class="all").distill(blob_data, 20, progress=False)
    assert taken.meta["ipc"] == 20 and taken.meta["images_per_class"] == [20, 20, 20, 12]


@pytest.mark.parametrize("bad, message", [
    ({"epochs": 0}, "evaluate.epochs must be an integer >= 1, got 0"),
    ({"runs": 0}, "evaluate.runs must be an integer >= 1, got 0"),
    ({"lr": -1}, "evaluate.lr must be a number > 0 or none, got -1"),
    ({"labels": "soft"}, "evaluate.labels must be one of 'auto', 'hard', 'stored', 'adsa', 'adsa-t1', got 'soft'"),
    ({"protocol": "gpu"}, "evaluate.protocol must be one of 'cpu', 'paper' or none, got 'gpu'"),
    ({"model": "vit"}, "evaluate.model must be a registered model"),
])
def test_an_evaluation_config_is_checked_when_it_is_made(bad, message):
    from ltdistill.evaluate import EvalConfig

    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        EvalConfig(**bad)
    assert EvalConfig(lr=1).lr == 1.0 and isinstance(EvalConfig(lr=1).lr, float)


@pytest.mark.parametrize("bad, message", [
    ({"imbalance_factor": "10"}, "imbalance_factor must be a number >= 1 or none, got '10'"),
    ({"seed": -5}, "seed must be an integer in [0, 4294967295], got -5"),
    ({"seed": 2**32}, "seed must be an integer in [0, 4294967295], got 4294967296"),
    ({"holdout": 2.5}, "holdout must be an integer >= 0, got 2.5"),
    ({"profile": "linear"}, "profile must be one of 'exp', 'step', 'native', got 'linear'"),
])
def test_load_longtail_refuses_bad_arguments_with_one_line(bad, message):
    """load_longtail checks before reading any file; build_longtail, given a raw source, the same way (a TypeError or
    numpy's ValueError before)."""
    from ltdistill.data.longtail import build_longtail, load_longtail
    from ltdistill.data.sources import load_source

    with pytest.raises(BadInput, match=re.escape(message)):
        load_longtail(**{"name": "digits", "imbalance_factor": 10, **bad})
    with pytest.raises(BadInput, match=re.escape(message)):
        build_longtail(**{"raw": load_source("digits"), "imbalance_factor": 10, **bad})
    with pytest.raises(BadInput, match="a raw dataset is needed .*, got str"):
        build_longtail("digits", 10)


@pytest.mark.parametrize("bad, message", [
    ({"num_experts": 0}, "experts.num_experts must be an integer >= 1, got 0"),
    ({"lr": math.nan}, "experts.lr must be a number > 0, got nan"),
    ({"cls_sampler": "uniform"}, "experts.cls_sampler must be one of 'class_aware', 'draws', got 'uniform'"),
    ({"gsam_alpha": 1.5}, "experts.gsam_alpha must be a number in [0, 1], got 1.5"),
    ({"gsam_rho": -0.1}, "experts.gsam_rho must be a number >= 0 or none, got -0.1"),
    ({"maxnorm": 2.0}, "experts.maxnorm must be a number in [0, 1] or none, got 2.0"),
    ({"model": "vit"}, "experts.model must be a registered model"),
    ({"seed": -1}, "experts.seed must be an integer in [0, 4294967295], got -1"),
    ({"decoupled": 1}, "experts.decoupled must be true or false, got 1"),
    ({"epochs": 2.5}, "experts.epochs must be an integer >= 1, got 2.5"),
])
def test_an_expert_config_is_checked_when_it_is_made(bad, message):
    from ltdistill.experts.train import ExpertConfig

    escaped = message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(BadInput, match=escaped):
        ExpertConfig(**bad)
    assert ExpertConfig(lr=1).lr == 1.0 and isinstance(ExpertConfig(lr=1).lr, float)
    assert (ExpertConfig().gsam_rho, ExpertConfig(decoupled=True).gsam_rho) == (0.0, 0.01)


def test_the_evaluation_entry_points_refuse_what_is_not_a_dataset_a_config_or_a_network_size(blob_data):
    """What the API is handed is checked in one line before any training (the CLI's flags check the same)."""
    from ltdistill import models
    from ltdistill.evaluate import EvalConfig, evaluate_full

    config = EvalConfig(epochs=1, runs=1)
    with pytest.raises(BadInput, match="an LTDataset is needed .*, got str"):
        evaluate_full("digits", config, progress=False)
    with pytest.raises(BadInput, match="an EvalConfig is needed .*, got NoneType"):
        evaluate_full(blob_data, None, progress=False)
    for size in (-1, 0, 2.5, True):
        with pytest.raises(BadInput, match=f"model 'convnet': option width must be an integer >= 1, got {size!r}"):
            evaluate_full(blob_data, EvalConfig(epochs=1, runs=1, model_options=(("width", size),)), progress=False)
    assert models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=2, depth=1) is not None


def test_a_negative_seed_is_refused_by_every_entry_point(blob_data):
    from ltdistill.evaluate import EvalConfig, evaluate_full

    with pytest.raises(BadInput, match=r"^seed must be an integer in \[0, 4294967295\], got -1$"):
        methods.create("random").distill(blob_data, 2, seed=-1, progress=False)
    with pytest.raises(BadInput, match=r"^seed must be an integer in \[0, 4294967295\], got -1$"):
        evaluate_full(blob_data, EvalConfig(epochs=1, runs=1), seed=-1, progress=False)
