"""--precision bfloat16 (train.forward_precision): the forward passes run in bfloat16 while the weights, their
gradients and the optimizer stay float32; a run lands near float32's without being it, and an evaluation or expert
buffer made in bfloat16 is never taken for a float32 one."""

from dataclasses import replace

import pytest
import torch

from ltdistill import models
from ltdistill.evaluate.protocol import EvalConfig, evaluate_full
from ltdistill.together import unsupported
from ltdistill.train import TrainConfig, predict, train_model


def trained(precision: str, data, seen: list | None = None):
    torch.manual_seed(0)
    model = models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=8, depth=2)
    if seen is not None:
        model.blocks[0][0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        model.classifier.register_full_backward_hook(lambda m, gi, go: seen.append(go[0].dtype))
    config = TrainConfig(epochs=8, batch_size=32, precision=precision)
    train_model(model, data.train_x, data.train_y, config, generator=torch.Generator().manual_seed(0))
    return model


def accuracy(model, data) -> float:
    return float((predict(model, data.test_x) == data.test_y).float().mean())


def test_bfloat16_runs_the_forward_in_bfloat16_keeps_float32_weights_and_lands_near_float32(blob_data):
    seen: list = []
    half = trained("bfloat16", blob_data, seen)
    full = trained("float32", blob_data)
    assert torch.bfloat16 in seen  # the convolutions ran in bfloat16
    assert all(p.dtype == torch.float32 for p in half.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(half.parameters(), full.parameters(), strict=True))
    assert accuracy(full, blob_data) > 0.8
    assert abs(accuracy(half, blob_data) - accuracy(full, blob_data)) < 0.1


def test_a_bfloat16_evaluation_is_recorded_and_never_reuses_a_float32_run(blob_data, tmp_path):
    config = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=1, epochs=2, batch_size=32)
    runs_dir = tmp_path / "runs"
    evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)
    half = evaluate_full(blob_data, replace(config, precision="bfloat16"), progress=False, runs_dir=runs_dir)
    assert half["runs_read_back"] == 0 and half["eval_config"]["precision"] == "bfloat16"
    assert evaluate_full(blob_data, config, progress=False, runs_dir=runs_dir)["runs_read_back"] == 1


def test_an_unknown_precision_is_refused_and_bfloat16_is_not_batched():
    from ltdistill.errors import BadInput
    from ltdistill.experts.train import ExpertConfig

    for make in (lambda: EvalConfig(precision="float16"), lambda: ExpertConfig(precision="half")):
        with pytest.raises(BadInput, match="precision"):
            make()
    model = models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=4, depth=1)
    assert unsupported(model, TrainConfig(epochs=1, precision="bfloat16")) == "bfloat16 training is not batched"
    assert unsupported(model, TrainConfig(epochs=1)) is None


@pytest.mark.parametrize("name", ["mtt", "datm", "ltdd"])
def test_a_trajectory_method_in_bfloat16_unrolls_its_student_in_autocast_and_moves_the_images_as_float32(
        name, tmp_path, monkeypatch):
    """precision="bfloat16" on MTT, DATM and LTDD: every unroll of the student runs under bfloat16 autocast (float32's
    never does), the pixels stay float32 and move the way float32's move, not bit for bit; a bad value is
    refused at the boundary."""
    from conftest import blob_raw
    from ltdistill import methods
    from ltdistill.data.longtail import build_longtail
    from ltdistill.errors import BadInput
    from ltdistill.experts.train import ExpertConfig, train_experts
    from ltdistill.families import trajectory
    from test_unroll_ops import TINY

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    decoupled = methods.METHODS[name].buffer_kind == "decoupled"
    train_experts(data, ExpertConfig(num_experts=1, epochs=2, cls_epochs=1, decoupled=decoupled, width=4, depth=1),
                  tmp_path / "experts", progress=False)
    autocast: list[bool] = []  # at each unroll (a soft-label initialization outside it keeps float32)
    unroll = trajectory.match_trajectory
    monkeypatch.setattr(trajectory, "match_trajectory", lambda *a, **k: autocast.append(
        torch.is_autocast_enabled("cpu")) or unroll(*a, **k))
    sets = {}
    for precision, iterations in (("float32", 0), ("float32", 3), ("bfloat16", 3)):
        autocast.clear()
        method = methods.create(name, iterations=iterations, precision=precision, **TINY[name])
        sets[precision, iterations] = method.distill(data, 2, experts=tmp_path / "experts", seed=0, progress=False,
                                                     workdir=tmp_path / f"{precision}{iterations}")
        if iterations:
            assert autocast and all(autocast) == any(autocast) == (precision == "bfloat16")
    start = sets["float32", 0].images
    moved = {p: (sets[p, 3].images - start).flatten() for p in ("float32", "bfloat16")}
    assert sets["bfloat16", 3].images.dtype == torch.float32 and moved["float32"].abs().max() > 0
    assert not torch.equal(moved["float32"], moved["bfloat16"])
    assert torch.nn.functional.cosine_similarity(moved["float32"], moved["bfloat16"], dim=0) > 0.95
    with pytest.raises(BadInput, match="precision"):
        methods.create(name, precision="float16")


def test_the_unroll_timing_takes_the_faster_paths_by_name_and_refuses_an_unknown_one(tmp_path, monkeypatch):
    """benchmarks/tm_speed.py (the GPU speed goal's unroll against the official pattern): "ltdistill GRADIENT
    [compiled] [bfloat16]" runs match_trajectory under that precision; a misspelt path is an error, not eager."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import tm_speed

    out = tmp_path / "tm.json"
    argv = ["tm_speed.py", "--out", str(out), "--width", "4", "--size", "8", "--ipcs", "1", "--steps", "2",
            "--repeats", "1", "--malloc", "default"]
    seen: list[torch.dtype] = []
    real = tm_speed.match_trajectory

    def recording(flat, *args, **kwargs):
        seen.append(flat.model.blocks[0][0](torch.zeros(1, 1, 8, 8)).dtype)  # a conv under the caller's autocast
        return real(flat, *args, **kwargs)

    monkeypatch.setattr(tm_speed, "match_trajectory", recording)
    monkeypatch.setattr(sys, "argv", [*argv, "--impls", "ltdistill full_bptt bfloat16,ltdistill full_bptt"])
    tm_speed.main()
    rows = json.loads(out.read_text())["rows"]
    assert [r["impl"] for r in rows] == ["ltdistill full_bptt bfloat16", "ltdistill full_bptt"]
    assert all(r["s_per_iter"] > 0 for r in rows)
    assert set(seen[:2]) == {torch.bfloat16} and set(seen[2:]) == {torch.float32}  # warm-up + 1 repeat each
    monkeypatch.setattr(sys, "argv", [*argv, "--impls", "ltdistill full_bptt fast"])
    with pytest.raises(SystemExit) as refused:
        tm_speed.main()
    assert refused.value.code == 2
