"""The contract every registered method keeps, parametrized over methods.names(): a method added to the registry
(or by an entry point) is tested here without a line of its own. It distills a tiny set that saves, loads back and
evaluates; it refuses a bad config value with one BadInput before any work; where it runs the checkpointed loop
(loop.optimize), a run that dies after a checkpoint resumes to the uninterrupted set."""

import dataclasses
import json
import math
from importlib.metadata import EntryPoint

import pytest
import torch

from conftest import Crash, crash_after
from ltdistill import methods
from ltdistill.engine import loop
from ltdistill.engine.method import Method
from ltdistill.errors import BadInput
from ltdistill.evaluate import EvalConfig, evaluate_synthetic
from ltdistill.experts.train import ExpertConfig, train_experts
from ltdistill.methods.registry import ENTRY_POINT_GROUP, load_entry_points
from ltdistill.synthetic import SyntheticSet

# what makes any method tiny, for whichever of these fields its config has; windows fit the 3-epoch buffer below
SMALL = {"iterations": 4, "checkpoint_every": 2, "width": 4, "depth": 1, "epochs": 1, "syn_steps": 2, "n_rep": 2,
         "n_cls": 2, "expert_epochs": 1, "max_start_epoch": 1, "min_start_epoch": 0, "current_max_start_epoch": 1,
         "t_rep_min": 0, "t_rep": 1, "t_rep_max": 1, "t_cls_min": 0, "t_cls": 1, "t_cls_max": 1, "batch_real": 8,
         "crops": 2, "max_real_per_class": 8, "outer_loop": 2, "inner_loop": 1, "expansion_end_epoch": 2,
         "lr_lr": 1e-7}  # a tiny net's student lr would otherwise cross zero within a few iterations


BUILT_IN = ("random", "herding", "dc", "dm", "mtt", "datm", "ltdd", "sre2l", "unilevel", "edc")


def tiny(name: str) -> dict:
    fields = {f.name for f in dataclasses.fields(methods.METHODS[name].Config)}
    return {k: v for k, v in SMALL.items() if k in fields}


@pytest.fixture(scope="module")
def buffers(tmp_path_factory):
    """A tiny expert buffer of each kind a method may declare (Method.buffer_kind)."""
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    made = {}
    for kind in ("standard", "decoupled"):
        made[kind] = tmp_path_factory.mktemp(kind)
        train_experts(data, ExpertConfig(num_experts=2, epochs=3, cls_epochs=1, decoupled=kind == "decoupled",
                                         width=4, depth=1), made[kind], progress=False)
    return made


@pytest.fixture
def experts(request, buffers):
    kind = methods.METHODS[request.node.callspec.params["name"]].buffer_kind
    return None if kind is None else str(buffers[kind])


@pytest.mark.parametrize("name", methods.names())
def test_every_method_distills_saves_loads_and_evaluates_a_tiny_set(name, blob_data, experts, tmp_path):
    synthetic = methods.create(name, **tiny(name)).distill(blob_data, 2, experts=experts, seed=3,
                                                             progress=False)
    assert synthetic.images.shape[1:] == blob_data.train_x.shape[1:]
    assert torch.bincount(synthetic.hard_labels, minlength=blob_data.num_classes).tolist() == [2] * 4
    synthetic.save(tmp_path / "set")
    loaded = SyntheticSet.load(tmp_path / "set")
    assert torch.equal(loaded.images, synthetic.images) and loaded.meta["method"] == name
    assert json.loads((tmp_path / "set" / "meta.json").read_text())["config"] == json.loads(json.dumps(
        dataclasses.asdict(methods.create(name, **tiny(name)).scaled(blob_data.im_size))))  # (a tuple: a list)
    result = evaluate_synthetic(loaded, blob_data, EvalConfig(runs=1, epochs=2, model_options=(("width", 4),)),
                                progress=False)
    assert 0 <= result["balanced_acc"]["mean"] <= 1 and len(result["per_class_acc"]) == 4
    # the labels it declares (distill --labels adsa is refused up front on that word) are the labels it made
    declared = methods.create(name, **tiny(name)).makes_soft_labels()
    assert declared in (None, synthetic.soft or synthetic.teacher is not None)
    assert declared is not None or name not in BUILT_IN  # every built-in method declares its labels


@pytest.mark.parametrize("name", methods.names())
def test_every_method_refuses_a_bad_config_value_before_any_work(name):
    config = methods.METHODS[name].Config
    for field in dataclasses.fields(config):
        with pytest.raises(BadInput, match=rf"^{name}\.{field.name} must be"):
            methods.create(name, **{field.name: math.nan if isinstance(field.default, float) else object()})
    with pytest.raises(BadInput, match="has no config key"):
        methods.create(name, no_such_field=1)


@pytest.mark.parametrize("saved_by", ["iterations", "seconds"])
@pytest.mark.parametrize("name", methods.names())
def test_every_checkpointing_method_resumes_a_killed_run_to_the_same_set(name, saved_by, blob_data, experts, tmp_path,
                                                                         monkeypatch):
    """Killed after its checkpoint of iteration 2 (checkpoint_every 2), or of iteration 3 where the clock, not the
    count, called for it: a resume from any iteration repeats the unbroken run."""
    config, calls = tiny(name), []
    done = 2 if saved_by == "iterations" else 3
    if saved_by == "seconds":
        config.update({"checkpoint_every": 100} if "checkpoint_every" in config else {})  # not by count before the end
        monkeypatch.setattr(loop, "CHECKPOINT_SECONDS", 0.0)
    optimize = loop.optimize

    def counted(state, iterations, step, *args, **kwargs):
        calls.append(iterations)
        return optimize(state, iterations, step, *args, **kwargs)

    monkeypatch.setattr(loop, "optimize", counted)
    whole = methods.create(name, **config).distill(blob_data, 2, experts=experts, seed=1, progress=False)
    if not calls:
        pytest.skip(f"{name} runs no checkpointed loop")

    def dying(state, iterations, step, *args, **kwargs):  # killed during the iteration after checkpoint `done`
        return optimize(state, iterations, crash_after(done, step), *args, **kwargs)

    monkeypatch.setattr(loop, "optimize", dying)
    with pytest.raises(Crash):
        methods.create(name, **config).distill(blob_data, 2, experts=experts, seed=1, progress=False,
                                               workdir=tmp_path)
    monkeypatch.setattr(loop, "optimize", optimize)
    resumed = methods.create(name, **config).distill(blob_data, 2, experts=experts, seed=1, progress=False,
                                                     workdir=tmp_path)
    assert resumed.meta["resumed_from"] == done
    assert torch.equal(resumed.images, whole.images) and torch.equal(resumed.labels, whole.labels)
    assert resumed.meta["loss_history"] == whole.meta["loss_history"]


class Nearest(Method):
    """A method from outside the package: the IPC real images of each class nearest its mean."""

    name = "nearest"

    def _distill(self, data, ipc, *, experts, seed, progress, device, workdir):
        chosen = []
        for c in range(data.num_classes):
            pool = data.indices_of(c)
            x = data.train_x[pool].flatten(1)
            chosen.append(pool[(x - x.mean(0)).norm(dim=1).argsort()[:ipc]])
        index = torch.cat(chosen)
        return SyntheticSet(data.train_x[index].clone(), data.train_y[index].clone())


def test_a_method_declared_by_an_entry_point_is_a_method_for_the_cli_and_the_suites(monkeypatch, tmp_path, capsys):
    point = EntryPoint(name="nearest", value=f"{__name__}:Nearest", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr("ltdistill.methods.registry.entry_points",
                        lambda group: [point] if group == ENTRY_POINT_GROUP else [])
    monkeypatch.setitem(methods.METHODS, "nearest", Nearest)  # so that teardown takes it out of the registry again
    del methods.METHODS["nearest"]
    assert load_entry_points() == ["nearest"] and "nearest" in methods.names()
    from ltdistill.cli import main

    assert main(["distill", "--method", "nearest", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                 "--out", str(tmp_path / "set"), "--no-progress"]) == 0
    assert SyntheticSet.load(tmp_path / "set").meta["method"] == "nearest"
    # it declares no labels (Method.labels): distill --labels adsa finds out once the set is made, says so, keeps it
    assert main(["distill", "--method", "nearest", "--dataset", "digits", "--imbalance", "10", "--ipc", "2",
                 "--labels", "adsa", "--out", str(tmp_path / "hard"), "--no-progress"]) == 2
    assert "without calibration" in capsys.readouterr().err and (tmp_path / "hard" / "meta.json").exists()
    suite = tmp_path / "s.toml"
    suite.write_text('description = "t"\nruns = 1\nepochs = 2\n[data]\ndataset = "digits"\nimbalance = [10]\n'
                     'ipc = [2]\n[[method]]\nname = "nearest"\n')
    from ltdistill.bench.suite import plan_suite

    cells = plan_suite(str(suite), tmp_path / "run", only=["nearest"], device="cpu", data_dir=None,
                       cross_arch=None).selected
    assert [c.label for c in cells] == ["nearest"] and "nearest" in cells[0].distill
    monkeypatch.setattr("ltdistill.methods.registry.entry_points",
                        lambda group: [EntryPoint(name="x", value="json:dumps", group=ENTRY_POINT_GROUP)])
    with pytest.raises(BadInput, match="is not a Method subclass"):
        load_entry_points()
