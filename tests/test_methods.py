import pytest
import torch

from ltdistill import methods
from ltdistill.errors import BadInput
from ltdistill.evaluate import EvalConfig, evaluate_synthetic
from ltdistill.methods.herding import herd


def test_registry_and_config_validation():
    assert {"random", "herding"} <= set(methods.names())
    with pytest.raises(BadInput, match="unknown method"):
        methods.create("magic")
    with pytest.raises(BadInput, match="no config key"):
        methods.create("herding", learning_rate=0.1)
    with pytest.raises(BadInput, match="must be an integer"):
        methods.create("herding", epochs="ten")
    assert methods.create("herding", lr=1).config.lr == 1.0  # int accepted for a float field


def test_random_takes_ipc_per_class_and_all_of_a_short_tail(blob_data):
    assert blob_data.counts == [60, 35, 20, 12]
    s = methods.create("random", short_class="all").distill(blob_data, 15, seed=0, progress=False)
    assert torch.bincount(s.labels).tolist() == [15, 15, 15, 12]
    assert s.meta["images_per_class"] == [15, 15, 15, 12] and s.meta["method"] == "random"
    again = methods.create("random", short_class="all").distill(blob_data, 15, seed=0, progress=False)
    assert torch.equal(s.images, again.images)
    with pytest.raises(BadInput, match="exceeds the real images"):  # by default: an unbalanced set is asked for
        methods.create("random").distill(blob_data, 15, progress=False)
    with pytest.raises(BadInput, match="ipc must be"):
        methods.create("random").distill(blob_data, 0, progress=False)
    # more per class than the head class holds: refused before any work (a mistyped IPC once filled memory)
    for method in ("random", "dm"):
        with pytest.raises(BadInput, match=r"ipc 61 is more images per class than the largest class .* \(60\)"):
            methods.create(method).distill(blob_data, 61, progress=False)
    assert len(methods.create("dm", iterations=0).distill(blob_data, 60, progress=False).images) == 4 * 60


def test_distill_refuses_a_workdir_or_experts_it_could_not_use_before_any_work(blob_data, tmp_path):
    """A workdir that is a file failed at the first checkpoint, after the work, asking to free space; experts given
    as something other than a path or buffer ended in a TypeError."""
    taken = tmp_path / "file"
    taken.write_text("kept")
    with pytest.raises(BadInput, match=r"workdir .*file: it exists and is not a directory"):
        methods.create("dm", iterations=1).distill(blob_data, 2, workdir=taken, progress=False)
    assert taken.read_text() == "kept"
    with pytest.raises(BadInput, match="experts must be an expert buffer's directory, got int"):
        methods.create("mtt").distill(blob_data, 2, experts=5, progress=False)


def test_herding_tracks_the_class_mean():
    features = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-10.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    # mean is (0.2, 1.0): first pick is the closest point, (0, 0); then the pick keeping the mean closest
    picks = herd(features, 3)
    assert picks[0] == 0 and len(set(picks)) == 3


def test_herding_selects_real_images_and_beats_chance(blob_data):
    s = methods.create("herding", width=8, depth=2, epochs=3).distill(blob_data, 3, seed=0, progress=False)
    assert torch.bincount(s.labels).tolist() == [3, 3, 3, 3]
    # every selected image is an image of the training set
    assert all((blob_data.train_x == img).flatten(1).all(1).any() for img in s.images)
    result = evaluate_synthetic(s, blob_data, EvalConfig(model_options=(("width", 8), ("depth", 2)), runs=1,
                                                         epochs=40), progress=False)
    assert result["balanced_acc"]["mean"] > 0.5


def test_the_library_owns_the_scale_protocol_of_methods_and_evaluation(blob_data):
    """methods.create scales a method's networks by protocol as the CLI does (cpu: width 32; depth 2 for images of
    16 pixels or less), at distill time when the image size is known; explicit fields win, protocol=None keeps the
    config's own defaults; EvalConfig scales the ConvNet family the same way and leaves other models alone."""
    from ltdistill.evaluate.protocol import eval_network

    herding = methods.create("herding", epochs=1)
    herding.distill(blob_data, 2, progress=False)
    assert (herding.config.width, herding.config.depth) == (32, 2)
    assert methods.create("dm", protocol="paper").scaled((28, 28)).width == 128
    assert methods.create("dm", width=8).scaled((28, 28)).width == 8
    assert methods.create("dm", protocol=None).scaled((28, 28)).width == methods.METHODS["dm"].Config().width
    with pytest.raises(BadInput, match="protocol must be one of"):
        methods.create("dm", protocol="laptop")
    assert eval_network(EvalConfig(), (28, 28)) == {"width": 32, "depth": 3}
    assert eval_network(EvalConfig(model="convnet_bn", protocol="paper"), (16, 16)) == {"width": 128, "depth": 3}
    assert eval_network(EvalConfig(model="mlp"), (28, 28)) == {}  # an MLP's width is its own, not the ConvNet's
    assert eval_network(EvalConfig(model_options=(("width", 8),)), (28, 28)) == {"width": 8, "depth": 3}


@pytest.mark.parametrize("bad, message", [({"device": "tpu"}, "device must be cpu or cuda"),
                                          ({"seed": "a"}, r"seed must be an integer in \[0, 4294967295\], got 'a'"),
                                          ({"seed": 2**64}, r"seed must be an integer in \[0, 4294967295\], got 1844"),
                                          ({"data": "digits"}, "an LTDataset is needed .*, got str")])
def test_distill_refuses_a_bad_device_or_seed_before_any_work(blob_data, bad, message):
    with pytest.raises(BadInput, match=message):
        methods.create("random").distill(bad.pop("data", blob_data), 1, progress=False, **bad)
