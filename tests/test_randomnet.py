"""DC/DSA (gradient matching) and DM (distribution matching): the distance, the loops, and that matching moves the
images toward the real classes."""

import pytest
import torch

from conftest import Crash, crash_after
from ltdistill import methods
from ltdistill.errors import BadInput
from ltdistill.evaluate import EvalConfig, evaluate_synthetic
from ltdistill.methods.dc import default_loops, gradient_distance
from ltdistill.runtime import processor

TINY_NET = {"width": 8, "depth": 2}
EVAL = EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=1, epochs=40)


def test_gradient_distance_is_zero_for_parallel_gradients_and_skips_biases():
    g = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(5, 7)]
    assert gradient_distance(g, g).item() == pytest.approx(0.0, abs=1e-5)
    assert gradient_distance([2 * t for t in g], g).item() == pytest.approx(0.0, abs=1e-5)  # scale-free
    opposite = [-g[0], torch.randn(4), -g[2]]  # a different bias changes nothing
    assert gradient_distance(opposite, g).item() == pytest.approx(2 * (4 + 5), rel=1e-5)


def test_dc_loops_follow_the_reference_table():
    assert default_loops(1) == (1, 1) and default_loops(10) == (10, 50) and default_loops(50) == (50, 10)
    assert default_loops(12) == (10, 50) and default_loops(200) == (50, 10)


def test_dm_from_noise_learns_the_classes(blob_data):
    s = methods.create("dm", iterations=60, init="noise", lr_img=1.0, **TINY_NET).distill(blob_data, 3, seed=0,
                                                                                         progress=False)
    history = s.meta["loss_history"]
    assert sum(history[-10:]) < 0.5 * sum(history[:10])
    assert s.images.shape == (12, 1, 8, 8) and torch.bincount(s.labels).tolist() == [3, 3, 3, 3]
    assert evaluate_synthetic(s, blob_data, EVAL, progress=False)["balanced_acc"]["mean"] > 0.6


def test_a_class_shorter_than_ipc_starts_from_its_real_images_repeated(blob_data):
    """IPC 16 over classes of 60/35/20/12 images: the 12-image class is filled by cycling its real images (no
    refusal, unlike the coresets), and the set says how many of each class's starting images are distinct."""
    s = methods.create("dm", iterations=0, **TINY_NET).distill(blob_data, 16, seed=0, progress=False)
    assert s.meta["distinct_per_class"] == [16, 16, 16, 12]
    assert torch.bincount(s.labels).tolist() == [16, 16, 16, 16]
    short = s.images[s.labels == 3].flatten(1)
    real = blob_data.train_x[blob_data.train_y == 3].flatten(1)
    assert torch.equal(short[12:], short[:4])  # the cycle starts again after the 12 real images
    assert all((row == real).all(1).any() for row in short)  # each is one of the class's real images
    with pytest.raises(BadInput, match="exceeds the real images"):
        methods.create("random").distill(blob_data, 16, seed=0, progress=False)


def test_dc_from_noise_learns_the_classes(blob_data):
    s = methods.create("dc", iterations=12, init="noise", lr_img=0.5, outer_loop=2, inner_loop=2,
                       **TINY_NET).distill(blob_data, 2, seed=0, progress=False)
    assert torch.isfinite(s.images).all() and s.meta["skipped_nonfinite"] == 0
    assert evaluate_synthetic(s, blob_data, EVAL, progress=False)["balanced_acc"]["mean"] > 0.6


@pytest.mark.parametrize("method, extra", [("dm", {}), ("dc", {"outer_loop": 1, "inner_loop": 1})])
def test_resume_after_a_crash_gives_the_same_result(method, extra, blob_data, tmp_path, monkeypatch):
    """DC's balanced Fashion-MNIST cell (docs/results.md) was resumed across sessions; this is why it may be."""
    import ltdistill.families.randomnet as randomnet

    config = {"iterations": 7, "checkpoint_every": 3, **TINY_NET, **extra}
    whole = methods.create(method, **config).distill(blob_data, 2, seed=1, progress=False)
    monkeypatch.setattr(randomnet.Context, "network", crash_after(4, randomnet.Context.network))
    with pytest.raises(Crash):
        methods.create(method, **config).distill(blob_data, 2, seed=1, progress=False, workdir=tmp_path)
    monkeypatch.undo()
    resumed = methods.create(method, **config).distill(blob_data, 2, seed=1, progress=False, workdir=tmp_path)
    assert torch.equal(whole.images, resumed.images)
    assert resumed.meta["loss_history"] == whole.meta["loss_history"]
    # every iteration is timed, those before the crash too (they come back from the checkpoint)
    seconds = resumed.meta["iteration_seconds"]
    assert len(seconds) == 7 and all(isinstance(t, float) and t > 0 for t in seconds)
    assert resumed.meta["resumed_from"] == 3 and whole.meta["resumed_from"] == 0  # the crash came after checkpoint 3
    assert resumed.meta["iteration_devices"] == whole.meta["iteration_devices"] == [[0, f"cpu ({processor()})"]]


def test_bad_init_is_refused(blob_data):
    with pytest.raises(BadInput, match="init must be"):
        methods.create("dm", init="zeros", iterations=1, **TINY_NET).distill(blob_data, 1, progress=False)
