"""models/unroll_ops.py: the instance norm and ReLU with a closed-form double backward and the sliced 2x2 pooling give
relu(group_norm)'s and avg_pool2d's values and first and second derivatives; a ConvNet student unrolled through them
(the norm's passes eager or compiled) gives the native meta-gradient; trajectory methods take them with
compile=true."""

import shutil

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ltdistill import models
from ltdistill.errors import BadInput
from ltdistill.models import unroll_ops
from ltdistill.models.unroll_ops import avg_pool2x2, norm_relu


def second_derivatives(norm, x, weight, bias, probe, seed_grads):
    """d/d(x, weight) of a function of norm's first derivatives, as an unroll's backward takes them."""
    grad_x, grad_w, grad_b = torch.autograd.grad((norm(x, weight, bias) * probe).sum(), (x, weight, bias),
                                                 create_graph=True)
    a, p, q = seed_grads
    outer = (grad_x * a).sum() + (grad_w * p).sum() + (grad_b * q).sum() + grad_x.square().sum()
    return torch.autograd.grad(outer, (x, weight))


@pytest.mark.parametrize("shape", [(3, 4, 6, 6), (2, 3, 7, 5)])
def test_the_closed_form_gives_the_norm_and_relus_output_and_first_and_second_derivatives(shape, float64_default):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g).requires_grad_(True)
    weight, bias = (torch.randn(shape[1], generator=g).requires_grad_(True) for _ in range(2))
    ours = lambda x, w, b: norm_relu(x, w, b, 1e-5, compiled=False)  # noqa: E731
    native = lambda x, w, b: torch.relu(F.group_norm(x, shape[1], w, b, 1e-5))  # noqa: E731
    torch.testing.assert_close(ours(x, weight, bias), native(x, weight, bias), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradgradcheck(ours, (x, weight, bias))
    probe = torch.randn(*shape, generator=g)
    seeds = (torch.randn(*shape, generator=g), torch.randn(shape[1], generator=g), torch.randn(shape[1], generator=g))
    for a, b in zip(second_derivatives(ours, x, weight, bias, probe, seeds),
                    second_derivatives(native, x, weight, bias, probe, seeds), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (2, 3, 7, 5)])
def test_the_sliced_pooling_gives_avg_pool2d_and_its_first_and_second_derivatives(shape, float64_default):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g).requires_grad_(True)
    torch.testing.assert_close(avg_pool2x2(x), F.avg_pool2d(x, 2), rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradgradcheck(avg_pool2x2, (x,))
    probe = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, generator=g)
    grads = []
    for pool in (avg_pool2x2, lambda t: F.avg_pool2d(t, 2)):  # a nonlinear function of the first derivative
        (first,) = torch.autograd.grad((pool(x.square()) * probe).sum(), x, create_graph=True)
        grads.append(torch.autograd.grad((first ** 3).sum(), x)[0])
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)


def meta_gradient(kernels, dtype=torch.float64):
    """dL/d(images, lr) of a 3-step unroll of a tiny ConvNet, L the squared distance to a fixed target."""
    torch.manual_seed(0)
    model = models.create("convnet", channels=1, num_classes=3, im_size=(8, 8), width=4, depth=2).to(dtype)
    model.use_unroll_ops(kernels)
    names = [n for n, _ in model.named_parameters()]
    start = torch.cat([p.detach().flatten() for p in model.parameters()])
    g = torch.Generator().manual_seed(1)
    images = torch.randn(12, 1, 8, 8, generator=g, dtype=dtype).requires_grad_(True)
    labels, lr = torch.arange(12) % 3, torch.tensor(0.1, dtype=dtype, requires_grad=True)
    v = start.clone().requires_grad_(True)
    for step in range(3):
        rows = slice(4 * step, 4 * step + 8)
        views = dict(zip(names, (c.view_as(p) for c, p in zip(v.split([p.numel() for p in model.parameters()]),
                                                                model.parameters(), strict=True)), strict=True))
        loss = F.cross_entropy(functional_call(model, views, (images[rows],)), labels[rows])
        v = v - lr * torch.autograd.grad(loss, v, create_graph=True)[0]
    (v - 0.9 * start).square().sum().backward()
    return images.grad, lr.grad


def test_a_student_unrolled_through_the_unroll_ops_gives_the_native_meta_gradient():
    native = meta_gradient(None)
    for got, want in zip(meta_gradient("eager"), native, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert native[0].abs().sum() > 0


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile's CPU backend needs a C compiler")
def test_the_compiled_passes_give_the_eager_meta_gradient_to_float_tolerance():
    unroll_ops._compiled_passes.cache_clear()
    eager = meta_gradient(None, torch.float32)
    for got, want in zip(meta_gradient("compiled", torch.float32), eager, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-5)


def test_a_one_channel_batch_strided_as_channels_last_reaches_the_unroll_ops_in_nchw_without_a_copy():
    """DSA's crop returns a one-channel batch whose strides read as channels-last too; through the unroll ops its
    first convolution's output would be channels-last, which every pass copies back. The network views it as NCHW
    (copying nothing) and scores it as it scores the same batch in NCHW."""
    from ltdistill.models.convnet import standard_layout

    model = models.create("convnet", channels=1, num_classes=3, im_size=(8, 8), width=4, depth=2)
    crop_like = torch.randn(5, 8, 8, 1).permute(0, 3, 1, 2)  # as the crop builds its output (NHWC, permuted)
    batch = crop_like.clone(memory_format=torch.contiguous_format)
    assert crop_like.stride() == (64, 1, 8, 1) and crop_like.is_contiguous()
    viewed = standard_layout(crop_like)
    assert viewed.stride() == (64, 64, 8, 1) and viewed.data_ptr() == crop_like.data_ptr()
    channels_last = torch.randn(5, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    assert standard_layout(channels_last).stride() == (192, 64, 8, 1)
    outputs = []
    model.blocks[0][0].register_forward_hook(lambda module, inputs, out: outputs.append(out.is_contiguous()))
    model.use_unroll_ops("eager")
    torch.testing.assert_close(model(crop_like), model(batch))
    assert outputs == [True, True]  # NCHW, not channels-last


TINY = {"mtt": {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1},
        "datm": {"syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1, "min_start_epoch": 0,
                 "current_max_start_epoch": 1, "expansion_end_epoch": 2},
        "ltdd": {"n_rep": 2, "n_cls": 2, "expert_epochs": 1, "t_rep_min": 0, "t_rep": 1, "t_rep_max": 1,
                 "t_cls_min": 0, "t_cls": 1, "t_cls_max": 1}}


@pytest.mark.parametrize("name", sorted(TINY))
def test_trajectory_methods_take_compile_for_a_convnet_student_and_refuse_it_for_another(name, tmp_path, monkeypatch):
    from conftest import blob_raw
    from ltdistill import methods
    from ltdistill.data.longtail import build_longtail
    from ltdistill.experts.train import ExpertConfig, train_experts

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    decoupled = methods.METHODS[name].buffer_kind == "decoupled"
    train_experts(data, ExpertConfig(num_experts=1, epochs=2, cls_epochs=1, decoupled=decoupled, width=4, depth=1),
                  tmp_path / "convnet", progress=False)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn) or fn)  # eager passes, recorded
    unroll_ops._compiled_passes.cache_clear()
    sets = {}
    for compile in (False, True):
        sets[compile] = methods.create(name, iterations=2, compile=compile, **TINY[name]).distill(
            data, 2, experts=tmp_path / "convnet", seed=0, progress=False, workdir=tmp_path / str(compile))
        assert bool(compiled) == compile
    unroll_ops._compiled_passes.cache_clear()
    for field in ("images", "labels"):  # soft-label logits where the method learns them
        torch.testing.assert_close(getattr(sets[True], field), getattr(sets[False], field), rtol=1e-3, atol=1e-4)

    train_experts(data, ExpertConfig(num_experts=1, epochs=2, cls_epochs=1, decoupled=decoupled, model="mlp",
                                     width=4), tmp_path / "mlp", progress=False)
    with pytest.raises(BadInput, match="compiles a ConvNet student's instance norms"):
        methods.create(name, iterations=1, compile=True, **TINY[name]).distill(
            data, 2, experts=tmp_path / "mlp", seed=0, progress=False, workdir=tmp_path / "mlp-set")


@pytest.mark.parametrize("model, reaches_the_ops", [("convnet", True), ("convnet_bn", False)])
def test_dc_matches_through_the_unroll_ops_with_compile_where_its_network_takes_them(model, reaches_the_ops, tmp_path,
                                                                                      monkeypatch):
    """DC's matching differentiates the network's gradient (a double backward): with compile=true an instance-norm
    ConvNet runs it through the unroll ops and gives the eager set; a batch-norm one runs as it was."""
    from conftest import blob_raw
    from ltdistill import methods
    from ltdistill.data.longtail import build_longtail

    data = build_longtail(blob_raw(), imbalance_factor=5, seed=0)
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(fn) or fn)  # eager passes, recorded
    unroll_ops._compiled_passes.cache_clear()
    sets = {}
    for compile in (False, True):
        sets[compile] = methods.create("dc", iterations=2, width=4, depth=2, outer_loop=2, inner_loop=1,
                                       batch_real=16, model=model, compile=compile).distill(
            data, 2, seed=0, progress=False, workdir=tmp_path / str(compile))
    unroll_ops._compiled_passes.cache_clear()
    assert set(unroll_ops.PASSES) <= set(compiled) if reaches_the_ops else not set(unroll_ops.PASSES) & set(compiled)
    torch.testing.assert_close(sets[True].images, sets[False].images, rtol=1e-4, atol=1e-5)
