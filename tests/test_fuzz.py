"""Property tests over the boundaries a user's input crosses: method settings (methods.create, as --set and TOML
presets reach it), artifacts on disk (what `evaluate` loads) and suite files (what `bench` plans). Whatever the input:
a result or one BadInput line, never another exception, and nothing on disk changed."""

import copy
import json
import math
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from ltdistill import methods
from ltdistill.cli import load_artifact_data
from ltdistill.config import parse_override
from ltdistill.errors import BadInput

VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                   st.lists(st.integers(), max_size=3), st.sampled_from(["decoupled", "batch", "convnet", "noise"]))
FIELDS = sorted({(name, f) for name, cls in methods.METHODS.items() for f in cls.Config.__dataclass_fields__})


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_any_config_value_builds_a_method_or_is_one_bad_input_line(field, value):
    name, key = field
    try:
        method = methods.create(name, **{key: value})
    except BadInput as e:
        assert "\n" not in str(e) and str(e)
        return
    got = getattr(method.config, key)
    assert not (isinstance(got, float) and not math.isfinite(got))  # nothing non-finite gets through


@settings(max_examples=150, deadline=None)
@given(field=st.sampled_from(FIELDS), text=st.text(max_size=20))
def test_any_set_override_text_parses_to_a_value_or_one_bad_input_line(field, text):
    name, key = field
    try:
        k, v = parse_override(f"{key}={text}")
        methods.create(name, **{k: v})
    except BadInput as e:
        assert "\n" not in str(e)


DTYPES = st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int32, torch.int64, torch.uint8])
META = st.fixed_dictionaries({}, optional={
    "dataset": st.one_of(st.just("digits"), st.text(max_size=8), st.integers(), st.lists(st.just("digits"))),
    "imbalance_factor": st.one_of(st.just(10.0), st.floats(allow_nan=True), st.text(max_size=4), st.booleans()),
    "profile": st.one_of(st.just("exp"), st.text(max_size=5), st.integers()),
    "data_seed": st.one_of(st.just(0), st.floats(), st.text(max_size=3)),
    "holdout": st.one_of(st.just(0), st.integers(-5, 5), st.text(max_size=3)),
    "zca_eps": st.one_of(st.none(), st.floats(), st.text(max_size=3)),
    "class_order": st.one_of(st.just("natural"), st.text(max_size=6), st.integers()),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=META, images_dtype=DTYPES, labels_dtype=DTYPES, n=st.integers(0, 3), ndim=st.integers(1, 5),
       lr=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
       lr_shape=st.sampled_from([(1,), (), (2,)]))
def test_any_artifact_on_disk_loads_or_is_one_bad_input_line_and_stays_as_it_was(tmp_path_factory, meta, images_dtype,
                                                                                labels_dtype, n, ndim, lr, lr_shape):
    folder = tmp_path_factory.mktemp("artifact")
    shape = [n, 1, 16, 16][:ndim] + [1] * max(0, ndim - 4)
    tensors = {"images": torch.zeros(shape).to(images_dtype), "labels": torch.zeros(n).to(labels_dtype)}
    if lr is not None:
        tensors["lr"] = torch.full(lr_shape, lr, dtype=torch.float64)
    save_file(tensors, str(folder / "synthetic.safetensors"))
    (folder / "meta.json").write_text(json.dumps({"imbalance_factor": 10.0, "dataset": "digits", **meta}))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    try:
        synthetic, data = load_artifact_data(folder, None)
        assert synthetic.images.is_floating_point() and synthetic.images.ndim == 4 and len(synthetic.images) >= 1
        assert synthetic.lr is None or (math.isfinite(synthetic.lr) and synthetic.lr > 0)
    except BadInput as e:
        assert "\n" not in str(e)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


SUITE = {"description": "fuzz", "protocol": "cpu", "runs": 1, "epochs": 2, "eval_models": ["convnet"],
         "data": {"dataset": "digits", "imbalance": [10], "ipc": [2]},
         "experts": {"standard": {"num": 1, "epochs": 2}},
         "method": [{"name": "random"}, {"name": "mtt", "experts": "standard"}]}
SUITE_PLACES = [("runs",), ("epochs",), ("eval_models",), ("protocol",), ("seeds",), ("cross_arch",), ("ddranking",),
                ("full",), ("calibrations",), ("recipes",), ("ranking",), ("convnet_stem",), ("compile",),
                ("precision",), ("anatomy",), ("data", "dataset"), ("data", "imbalance"), ("data", "ipc"),
                ("data", "class_order"), ("data", "holdout"), ("experts", "standard"), ("experts", "standard", "num"),
                ("experts", "standard", "epochs"), ("experts", "standard", "zca"), ("experts", "decoupled"),
                ("method", 0, "name"), ("method", 0, "label"), ("method", 0, "preset"), ("method", 0, "set"),
                ("method", 0, "ipc"), ("method", 0, "imbalance"), ("method", 0, "seeds"), ("method", 0, "recipe"),
                ("method", 0, "cross_arch"), ("method", 0, "calibrations"), ("method", 0, "grid"),
                ("method", 1, "experts"), ("method", 1, "name")]
SUITE_VALUES = st.one_of(VALUES, st.dictionaries(st.sampled_from(["a", "num", "lr_img"]), VALUES, max_size=2),
                         st.lists(st.one_of(st.text(max_size=6), st.floats(), st.integers()), max_size=3),
                         st.sampled_from(["natural", "hard-tail", "standard", "edc", "adsa", "sre2l"]))


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(SUITE_PLACES), SUITE_VALUES), min_size=1, max_size=3))
def test_any_suite_plans_or_is_one_bad_input_line(changes):
    """A suite whose values are of any kind (TOML's: text, numbers, lists, tables): mistyped [[method]] names,
    labels, presets, sets and per-method lists, a class order or evaluation list of another kind ended in
    TypeErrors, KeyErrors and IndexErrors from the planning before they were checked."""
    from ltdistill.bench import plan
    from ltdistill.bench.suite import check_suite

    suite = copy.deepcopy(SUITE)
    for place, value in changes:
        where = suite
        for key in place[:-1]:  # (an earlier change may have replaced a table on the way: nothing to change there)
            inside = isinstance(where, dict) and key in where or isinstance(where, list) and key < len(where)
            where = where[key] if inside else None
        if not isinstance(where, dict):
            continue
        if value is None:
            where.pop(place[-1], None)  # TOML has no null: a value left out
        else:
            where[place[-1]] = value
    try:
        plan(check_suite(Path("fuzz.toml"), suite), Path("unused-out"), [])
    except BadInput as e:
        assert "\n" not in str(e) and str(e)
