"""--compile (train.compiled_model): training through torch.compile gives the eager run's model to float
tolerance, and a second model of the same architecture reuses the first compilation."""

import shutil

import pytest
import torch

from ltdistill import models
from ltdistill.train import TrainConfig, train_model

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="torch.compile's CPU backend needs a C compiler")


def trained(compile: bool, seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    model = models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=4, depth=1)
    images, labels = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 4
    config = TrainConfig(epochs=2, batch_size=32, compile=compile)  # 32 divides 64: one batch shape
    train_model(model, images, labels, config, generator=torch.Generator().manual_seed(seed))
    return [p.detach().clone() for p in model.parameters()]


def test_a_compiled_run_ends_where_the_eager_run_ends_and_the_next_model_reuses_the_compilation():
    import torch._dynamo

    torch._dynamo.reset()
    stats = torch._dynamo.utils.counters["stats"]
    graphs = []
    for seed in (0, 1):
        eager, compiled = trained(False, seed), trained(True, seed)
        graphs.append(stats["unique_graphs"])
        for a, b in zip(eager, compiled, strict=True):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
        assert any(not torch.equal(a, p) for a, p in zip(eager, trained(False, seed + 7), strict=True))
    assert graphs[0] >= 1 and graphs[1] == graphs[0]  # compiled once; the second model compiled nothing new


@pytest.mark.parametrize("name, settings", [
    ("dm", {"iterations": 1, "width": 4, "dsa": False}),
    ("dc", {"iterations": 1, "width": 4, "outer_loop": 2, "inner_loop": 1}),
    ("herding", {"epochs": 1, "width": 4}),
    ("sre2l", {"epochs": 1, "iterations": 1, "width": 4}),
    ("edc", {"epochs": 1, "iterations": 1, "width": 4}),
])
def test_a_method_asked_to_compile_trains_through_torch_compile_and_only_then(name, settings, monkeypatch, tmp_path):
    """`compile=True` reaches the method's first-order loops (DM's embeddings; DC's, herding's and the recovery
    family's network training); torch.compile is replaced by a recorder, so nothing compiles here (the compiled
    arithmetic's equivalence is the test above)."""
    from ltdistill import methods, train
    from ltdistill.data.longtail import load_longtail

    calls = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: calls.append(fn) or fn)
    monkeypatch.setattr(train, "_compiled_embed", None)
    data = load_longtail("digits", 10)
    for compile in (False, True):
        methods.create(name, protocol="cpu", compile=compile, **settings).distill(
            data, 1, seed=0, progress=False, workdir=tmp_path / str(compile))
        assert bool(calls) == compile


def test_a_compiled_embedding_gives_the_eager_features_and_image_gradients_for_every_fresh_network():
    from ltdistill import train

    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for seed in (0, 1):  # DM's fresh network of every iteration: the same compilation serves both
        torch.manual_seed(seed)
        net = models.create("convnet", channels=1, num_classes=4, im_size=(8, 8), width=4, depth=1)
        net.requires_grad_(False)
        grads = []
        for compile in (False, True):
            images = x.clone().requires_grad_(True)
            features = train.embedding(net, compile)(images)
            features.pow(2).sum().backward()
            grads.append((features.detach(), images.grad))
        torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-4, atol=1e-5)


def test_a_compiled_run_over_one_channel_dsa_batches_compiles_one_graph():
    """DSA leaves a one-channel batch with either of two strides on its size-1 channel dimension; each would be one
    more compilation (up to dynamo's recompile limit, then eager) without train.canonical_strides."""
    import torch._dynamo

    from ltdistill.train import canonical_strides

    torch._dynamo.reset()
    stats = torch._dynamo.utils.counters["stats"]
    before = stats["unique_graphs"]
    trained(True, 0)
    assert stats["unique_graphs"] - before == 1
    x = torch.randn(3, 8, 8, 1).permute(0, 3, 1, 2)  # (3, 1, 8, 8), channel stride 1
    assert x.is_contiguous() and x.stride() != (64, 64, 8, 1)
    assert canonical_strides(x).stride() == (64, 64, 8, 1) and torch.equal(canonical_strides(x), x)
