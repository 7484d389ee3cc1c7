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
