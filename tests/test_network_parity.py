"""Every registered model against the official networks.py (DatasetCondensation and mtt-distillation): parameter
count and feature size before the head; by value (logits, loss, gradients), the ConvNet, ConvNet-BN, MLP and LeNet
on 1x28x28 and AlexNet, VGG-11 and ResNet-18 on 3x32x32. Both measured by running the official code
(tests/parity/networks/README.md)."""

import json
from pathlib import Path

import pytest
import torch

from ltdistill import models

GOLDEN = json.loads((Path(__file__).parent / "parity" / "networks" / "shapes.json").read_text())
SUPPORTED = [e for e in GOLDEN["entries"] if e["official_supported"]]
NOT_IN_THE_OFFICIAL_CODE = {"resnet18_bn_w16"}  # networks.py fixes ResNet's base width at 64 (test_models.py checks it)


def build(entry: dict, **extra):
    channels, height, width = map(int, entry["shape"].split("x"))
    model = models.create(entry["ltdistill"], channels=channels, num_classes=GOLDEN["num_classes"],
                          im_size=(height, width), **entry["ltdistill_options"], **extra)
    return model.eval(), torch.zeros(2, channels, height, width)


def test_the_golden_file_covers_every_registered_model_at_every_official_shape():
    assert {e["ltdistill"] for e in GOLDEN["entries"]} == set(models.names()) - NOT_IN_THE_OFFICIAL_CODE
    assert {"1x28x28", "3x32x32"} <= {e["shape"] for e in SUPPORTED if e["ltdistill"] == "mlp"}


@pytest.mark.parametrize("entry", SUPPORTED, ids=lambda e: f"{e['ltdistill']}-w{e.get('width')}-{e['shape']}")
def test_parameter_count_and_feature_size_equal_the_official_network(entry):
    model, x = build(entry)
    assert sum(p.numel() for p in model.parameters()) == entry["params"]
    with torch.no_grad():
        assert model.embed(x).shape[1] == entry["feature"] == model.classifier.in_features


def test_the_pad1_stem_is_the_earlier_network_and_differs_only_on_one_channel():
    gray = next(e for e in SUPPORTED if e["ltdistill"] == "convnet" and e.get("width") == 32
                and e["shape"] == "1x28x28")
    model, _ = build(gray, stem="pad1")
    assert sum(p.numel() for p in model.parameters()) == 21898 != gray["params"]  # 28 -> 14 -> 7 -> 3
    color = next(e for e in SUPPORTED if e["ltdistill"] == "convnet" and e["shape"] == "3x32x32")
    assert sum(p.numel() for p in build(color, stem="pad1")[0].parameters()) == color["params"]


def test_a_record_without_a_stem_reads_as_the_pad1_network_and_new_records_name_theirs():
    assert models.recorded_options("convnet", {"width": 32})["stem"] == "pad1"
    assert models.recorded_options("mlp", {}) == {}
    assert models.resolved_options("convnet_bn", {"width": 32})["stem"] == "official"
    with models.option_defaults(stem="pad1"):
        assert models.convnet_stem() == "pad1"
        assert models.identity("convnet")["stem"] == "pad1"
    assert models.convnet_stem() == "official"


def test_an_expert_buffer_names_its_stem_and_one_recorded_without_is_read_as_the_pad1_network(tmp_path):
    """A buffer made before the stem existed stays usable: its student is the pad1 network its trajectories fit."""
    from conftest import blob_raw
    from ltdistill.data.longtail import build_longtail
    from ltdistill.experts.buffer import INDEX, ExpertBuffer
    from ltdistill.experts.student import student_model
    from ltdistill.experts.train import ExpertConfig, train_experts

    data = build_longtail(blob_raw(size=16), imbalance_factor=5, seed=0)
    config = ExpertConfig(num_experts=1, epochs=1, width=4, depth=2, batch_size=64)
    with models.option_defaults(stem="pad1"):
        train_experts(data, config, tmp_path / "old", progress=False)
    index = json.loads((tmp_path / "old" / INDEX).read_text())
    assert index["model_options"]["stem"] == "pad1"
    del index["model_options"]["stem"]  # as a buffer made before the stem existed recorded it
    (tmp_path / "old" / INDEX).write_text(json.dumps(index))
    student = student_model(ExpertBuffer.open(tmp_path / "old"), data, "cpu")
    assert student.model.blocks[0][0].padding == (1, 1)
    new = train_experts(data, config, tmp_path / "new", progress=False)
    assert new.index["model_options"]["stem"] == "official"
    assert student_model(new, data, "cpu").model.blocks[0][0].padding == (3, 3)


def test_an_evaluation_records_its_network_in_full_and_keys_its_runs_by_it(tmp_path, blob_data):
    from ltdistill.evaluate.protocol import EvalConfig, evaluate_training_set

    config = EvalConfig(model="convnet", model_options=(("depth", 2), ("width", 4)), runs=1, epochs=1)
    images, targets = blob_data.train_x[:20], blob_data.train_y[:20]
    official = evaluate_training_set(images, targets, blob_data, config, lr=0.01, progress=False, runs_dir=tmp_path)
    assert official["model_options"] == {"width": 4, "depth": 2, "norm": "instance", "stem": "official"}
    with models.option_defaults(stem="pad1"):
        pad1 = evaluate_training_set(images, targets, blob_data, config, lr=0.01, progress=False, runs_dir=tmp_path)
    assert pad1["model_options"]["stem"] == "pad1" and pad1["runs_read_back"] == 0  # not the official run's file
    assert len(list(tmp_path.glob("*.json"))) == 2


VALUES = Path(__file__).parent / "parity" / "networks"


def official_values(entry: str) -> dict:
    return json.loads((VALUES / "official_values.json").read_text())[entry]


def inputs_28x28() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(VALUES / "inputs_28x28.safetensors")


def with_drawn_weights(net: torch.nn.Module, golden: dict) -> torch.nn.Module:
    """The weights as the official side drew them: parameter order, 0.1 * randn in float32 from one generator
    seeded 2; the parameter shapes must come in the official order."""
    assert [list(p.shape) for p in net.parameters()] == golden["parameter_shapes"]
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator, dtype=torch.float32))
    return net


def loss_and_gradients(net: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *more: torch.Tensor):
    """(logits, cross-entropy loss, its gradients in the images and in `more`), the images in float64."""
    images = images.double().requires_grad_(True)
    logits = net(images)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    return logits, loss, torch.autograd.grad(loss, [images, *more])


def equal(ours: torch.Tensor, theirs: list) -> None:
    expected = torch.tensor(theirs, dtype=torch.float64).flatten()
    assert torch.allclose(ours.detach().flatten(), expected, rtol=1e-9, atol=1e-12), \
        (ours.detach().flatten() - expected).abs().max()


@pytest.mark.parametrize("name, unroll_ops", [("convnet", None), ("convnet", "eager"), ("convnet_bn", None)])
def test_the_convnet_on_28x28_computes_what_the_official_convnet_computes(name, unroll_ops):
    """Every Fashion-MNIST number rests on this network: with the same weights (ours, moved off their initial
    norm affines) and images, its logits, loss, image gradients and first-layer weight gradient equal those of the
    official networks.py ConvNet in float64 (tests/parity/networks/README.md), the instance-norm net in eval mode,
    also through the unroll ops trajectory matching differentiates, and the BatchNorm net in train mode with its
    running statistics."""
    inputs, golden = inputs_28x28(), official_values(name)
    net = models.create(name, channels=1, num_classes=10, im_size=(28, 28), width=32, depth=3).double()
    state = {k.removeprefix(f"{name}."): v.double() for k, v in inputs.items() if k.startswith(f"{name}.")}
    assert set(state) == {k for k, _ in net.named_parameters()}
    net.load_state_dict(state, strict=False)
    net.train(golden["mode"] == "train")
    if unroll_ops:
        net.use_unroll_ops(unroll_ops)
    logits, loss, (grad_images, grad_weight) = loss_and_gradients(net, inputs["x"], inputs["y"],
                                                                  net.blocks[0][0].weight)
    equal(logits, golden["logits"])
    assert loss.item() == pytest.approx(golden["loss"], rel=1e-12)
    equal(grad_images, golden["grad_images"])
    equal(grad_weight, golden["grad_first_conv_weight"])
    if golden["mode"] == "train":
        equal(net.blocks[0][1].running_mean, golden["running_mean_block0"])
        equal(net.blocks[0][1].running_var, golden["running_var_block0"])


@pytest.mark.parametrize("name", ["mlp", "lenet"])
def test_the_cross_architecture_models_on_28x28_compute_what_the_official_ones_compute(name):
    """MLP and LeNet, the suites' cross-architecture models, with weights drawn in parameter order from one
    generator (the official side drew them the same way, tests/parity/networks/README.md): the same parameter
    shapes in the same order, and the same logits, loss and image gradients in float64."""
    inputs, golden = inputs_28x28(), official_values(name)
    net = with_drawn_weights(models.create(name, channels=1, num_classes=10, im_size=(28, 28)).double(), golden)
    logits, loss, (grad_images,) = loss_and_gradients(net.train(), inputs["x"], inputs["y"])
    equal(logits, golden["logits"])
    assert loss.item() == pytest.approx(golden["loss"], rel=1e-12)
    equal(grad_images, golden["grad_images"])


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg11_bn", "resnet18", "resnet18_bn"])
def test_the_gpu_cross_architecture_models_on_3x32x32_compute_what_the_official_ones_compute(name):
    """AlexNet, VGG-11 and ResNet-18 (with BatchNorm in train mode where they have it), the uni-level paper's
    cross-architecture set, with weights, images and the image gradient's projections drawn from seeded generators
    as the official side drew them (tests/parity/networks/README.md): the same parameter shapes in the same order,
    logits, loss and projected image gradient in float64."""
    golden = official_values(f"{name}_3x32x32")
    net = with_drawn_weights(models.create(name, channels=3, num_classes=10, im_size=(32, 32)).double(), golden)
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    logits, loss, (grad_images,) = loss_and_gradients(net.train(golden["mode"] == "train"), images,
                                                      inputs_28x28()["y"])
    directions = torch.randn(grad_images.numel(), 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    equal(logits, golden["logits"])
    assert loss.item() == pytest.approx(golden["loss"], rel=1e-12)
    equal(grad_images.flatten() @ directions, golden["grad_images_projected"])
