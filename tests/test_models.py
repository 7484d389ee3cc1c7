import pytest
import torch

from ltdistill import models
from ltdistill.errors import BadInput

SHAPES = [(1, (16, 16)), (1, (28, 28)), (3, (32, 32)), (3, (64, 64))]


@pytest.mark.parametrize("name", models.names())
def test_every_model_takes_every_dataset_size_and_class_count(name):
    for channels, size in SHAPES:
        for num_classes in (3, 10):
            model = models.create(name, channels=channels, num_classes=num_classes, im_size=size)
            out = model(torch.randn(2, channels, *size))
            assert out.shape == (2, num_classes)
            assert model.embed(torch.randn(2, channels, *size)).shape[1] == model.classifier.in_features


def test_convnet_matches_the_reference_parameter_count():
    # MTT/DATM ConvNet-3 width 128 on CIFAR-10: 299520 feature + 20490 classifier parameters
    model = models.create("convnet", channels=3, num_classes=10, im_size=(32, 32))
    assert sum(p.numel() for p in model.parameters()) == 320010
    assert sum(p.numel() for p in model.classifier.parameters()) == 20490


def test_options_and_unknown_names():
    small = models.create("convnet", channels=1, num_classes=10, im_size=(28, 28), width=32, depth=2)
    assert len(small.blocks) == 2 and small.blocks[0][0].out_channels == 32
    with pytest.raises(BadInput, match="unknown model"):
        models.create("vit", channels=1, num_classes=10, im_size=(28, 28))
    with pytest.raises(BadInput, match="takes no option"):
        models.create("mlp", channels=1, num_classes=10, im_size=(28, 28), depth=3)
    # the shape arguments: torch's error about weights of size 0 (or a TypeError) before
    for shape, match in (({"channels": 0}, "channels must be an integer >= 1, got 0"),
                         ({"num_classes": 0}, "num_classes must be an integer >= 1, got 0"),
                         ({"im_size": 28}, r"im_size must be \(height, width\), two integers >= 1, got 28"),
                         ({"im_size": (28.0, 28)}, "two integers >= 1, got"), ({"im_size": (0, 28)}, "two integers")):
        with pytest.raises(BadInput, match=match):
            models.create("convnet", **{"channels": 1, "num_classes": 10, "im_size": (28, 28), **shape})


def test_gradients_reach_the_input_images():
    model = models.create("convnet", channels=1, num_classes=4, im_size=(16, 16), width=8)
    x = torch.randn(3, 1, 16, 16, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_quarter_width_resnet18_bn_is_resnet18_bn_with_a_quarter_of_every_width():
    full, narrow = (models.create(name, channels=1, num_classes=10, im_size=(28, 28))
                    for name in ("resnet18_bn", "resnet18_bn_w16"))

    def layers(model):
        return [(type(m).__name__, getattr(m, "stride", None), getattr(m, "kernel_size", None))
                for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d | torch.nn.Linear)]

    def widths(model):
        return [m.out_channels if isinstance(m, torch.nn.Conv2d) else m.num_features
                for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d)]

    assert layers(narrow) == layers(full)  # as deep, the same strides and kernels: 20 convolutions, 20 BN layers
    assert widths(full) == [4 * w for w in widths(narrow)] and max(widths(narrow)) == 128
    assert narrow.classifier.in_features == 128 and full.classifier.in_features == 512


def test_the_models_with_batchnorm_are_the_bn_ones():
    assert [name for name in models.names() if models.has_batchnorm(name)] == [
        "convnet_bn", "resnet18_bn", "resnet18_bn_w16", "vgg11_bn"]
