import pytest
import torch

from ltdistill.data.augment import DSA, OPS


@pytest.mark.parametrize("op", OPS)
def test_each_op_keeps_shape_and_passes_gradients_to_images(op):
    x = torch.randn(6, 3, 16, 16, requires_grad=True)
    y = DSA(strategy=op)(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("op", OPS)
def test_siamese_parameters_transform_real_and_synthetic_alike(op):
    dsa = DSA(strategy=op)
    params = dsa.sample(8, (1, 12, 12), torch.Generator().manual_seed(3))
    real = torch.randn(8, 1, 12, 12)
    syn = real[:5].clone()  # a smaller batch uses the first rows of the shared parameters
    assert torch.allclose(dsa.apply(real, params)[:5], dsa.apply(syn, params))


def test_sampling_is_seeded_and_varies_across_calls():
    dsa = DSA()
    x = torch.randn(4, 1, 12, 12)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(dsa(x, g1), dsa(x, g2))
    outs = [dsa(x, g1) for _ in range(5)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_flip_and_crop_do_what_they_say():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    flipped = DSA(strategy="flip").apply(x, {"op": "flip", "mask": torch.ones(1, 1, 1, 1, dtype=torch.bool)})
    assert torch.equal(flipped, x.flip(3))
    shifted = DSA(strategy="crop").apply(x, {"op": "crop", "shift_x": torch.tensor([1]), "shift_y": torch.tensor([0])})
    assert torch.equal(shifted[0, 0, :3], x[0, 0, 1:]) and shifted[0, 0, 3].abs().sum() == 0


def test_unknown_op_is_refused():
    with pytest.raises(ValueError, match="unknown DSA ops"):
        DSA(strategy="color_blur")


def test_batch_siamese_dsa_gives_every_image_the_same_transform():
    from ltdistill.data.augment import DSA

    dsa = DSA()
    x = torch.randn(1, 1, 8, 8).repeat(5, 1, 1, 1)  # five copies of one image
    for seed in range(12):  # every op comes up
        p = dsa.one_for_all(dsa.sample(1, (1, 8, 8), torch.Generator().manual_seed(seed)), 5)
        out = dsa.apply(x, p)
        assert all(torch.equal(out[0], out[i]) for i in range(1, 5)), p["op"]


def test_dc_and_dm_take_the_official_one_draw_per_batch_siamese_mode(blob_data):
    from ltdistill import methods

    tiny = {"width": 4, "depth": 2, "iterations": 2}
    per_image = methods.create("dm", dsa_siamese="per_image", **tiny).distill(blob_data, 2, progress=False)
    batch = methods.create("dm", **tiny).distill(blob_data, 2, progress=False)  # the default: the official mode
    assert not torch.equal(per_image.images, batch.images)
    assert batch.meta["config"]["dsa_siamese"] == "batch"
