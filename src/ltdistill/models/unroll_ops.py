"""The ConvNet block's instance norm with its ReLU, and its 2x2 average pooling, as autograd functions written out to
the second order, for trajectory unrolls (ConvNet.use_unroll_ops): the part of an unroll's double backward that
`torch.compile` can take, and a pooling that is cheaper than `avg_pool2d` on a CPU.

Trajectory matching differentiates the student's training steps (a double backward), which `torch.compile` does not
take. Autograd's double backward of `group_norm` is a composite of some twenty passes over activation-sized tensors.
Here the norm's first backward is itself an autograd function (`_NormBackward`) whose backward, the double backward,
is the closed form below, once-differentiable (the unroll never needs a third order); each pass is one function of
plain tensors, the ReLU's mask folded in, compiled (inductor) when asked. The pooling sums strided slices (rows,
then columns) and its adjoint spreads each value over its window; being linear, each is the other's backward, to any
order. Both give `relu(group_norm)` / `avg_pool2d`'s values and derivatives to float tolerance
(tests/test_unroll_ops.py).

Per sample and channel, over its M pixels, with g the incoming gradient of y (already masked by the ReLU: the
gradient of relu(y) times 1[y > 0]; the mask is constant almost everywhere, so it multiplies dL/dg too):
    forward   xhat = (x - mean x) r,  r = (var x + eps)^-1/2,  y = w xhat + b,  out = relu(y)
    backward  dx = r P(w g),  dw = sum g xhat,  db = sum g,  P(t) = t - mean t - xhat mean(t xhat)
    double    given a = dL/d(dx), p = dL/d(dw), q = dL/d(db):
              dL/dg = w r P(a) + p xhat + q,  dL/dw = sum g r P(a),
              dL/dx = r (P(u) - xhat mean(a dx)),  u = -r (a mean(w g xhat) + w g mean(a xhat)) + p g
(dx depends on x through xhat and r; both are saved from the forward and their dependence is in the closed form.)
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _channel(t: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, 1, 1)


def _mean(t: torch.Tensor) -> torch.Tensor:
    return t.mean((2, 3), keepdim=True)


def _project(t: torch.Tensor, xhat: torch.Tensor) -> torch.Tensor:
    return t - _mean(t) - xhat * _mean(t * xhat)


def norm_forward(x, weight, bias, eps: float):
    centered = x - _mean(x)
    rstd = (_mean(centered.square()) + eps).rsqrt()
    xhat = centered * rstd
    return torch.relu(xhat * _channel(weight) + _channel(bias)), xhat, rstd


def _passed(g, xhat, weight, bias):
    """g where the ReLU passed its input (the normalized map > 0), else 0."""
    return torch.where(xhat * _channel(weight) + _channel(bias) > 0, g, 0.0)


def norm_backward(g, xhat, rstd, weight, bias):
    g = _passed(g, xhat, weight, bias)
    return rstd * _project(g * _channel(weight), xhat), (g * xhat).sum((0, 2, 3)), g.sum((0, 2, 3))


def norm_double_backward(a, p, q, g, xhat, rstd, weight, bias):
    g = _passed(g, xhat, weight, bias)
    wg = g * _channel(weight)
    ra = rstd * _project(a, xhat)
    grad_g = _channel(weight) * ra + _channel(p) * xhat + _channel(q)
    grad_x = rstd * _project(wg, xhat)
    u = -rstd * (a * _mean(wg * xhat) + wg * _mean(a * xhat)) + _channel(p) * g
    dx = rstd * (_project(u, xhat) - xhat * _mean(a * grad_x))
    return _passed(grad_g, xhat, weight, bias), dx, (g * ra).sum((0, 2, 3))


PASSES = (norm_forward, norm_backward, norm_double_backward)


@functools.cache
def _compiled_passes():
    # shapes static on the first call, symbolic from the second shape on: a ConvNet's layers share one compilation
    return tuple(torch.compile(f) for f in PASSES)


def _run(which: int, compiled: bool, *tensors, **constants):
    """One pass, on contiguous tensors outside any graph (the functions here own the graph), so a compiled pass
    sees one layout and one requires_grad whatever the caller's tensors carry."""
    passes = _compiled_passes() if compiled else PASSES
    return passes[which](*(t.detach().contiguous() for t in tensors), **constants)


class _Norm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps, compiled):
        y, xhat, rstd = _run(0, compiled, x, weight, bias, eps=eps)
        ctx.save_for_backward(x, weight, bias, xhat, rstd)
        ctx.compiled = compiled
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight, bias, xhat, rstd = ctx.saved_tensors
        return (*_NormBackward.apply(g, x, weight, bias, xhat, rstd, ctx.compiled), None, None)


class _NormBackward(torch.autograd.Function):
    """(g, x, weight) -> (dx, dw, db); x enters so that the graph reaches it, bias (through the mask only, constant
    almost everywhere), xhat and rstd as its constants."""

    @staticmethod
    def forward(ctx, g, x, weight, bias, xhat, rstd, compiled):
        ctx.save_for_backward(g, weight, bias, xhat, rstd)
        ctx.compiled = compiled
        return _run(1, compiled, g, xhat, rstd, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, a, p, q):
        g, weight, bias, xhat, rstd = ctx.saved_tensors
        grad_g, dx, dw = _run(2, ctx.compiled, a, p, q, g, xhat, rstd, weight, bias)
        return grad_g, dx, dw, None, None, None, None


def norm_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float, *,
              compiled: bool) -> torch.Tensor:
    """relu(F.group_norm(x, C, weight, bias, eps)), one group per channel, differentiable twice through the closed
    forms above; `compiled`: its passes through torch.compile (one compilation per shape)."""
    return _Norm.apply(x, weight, bias, eps, compiled)


def _pooled(x: torch.Tensor) -> torch.Tensor:
    """2x2 average pooling, floor mode: the rows' pair sums, then the columns'."""
    x = x[..., : x.shape[-2] // 2 * 2, : x.shape[-1] // 2 * 2]
    rows = x[..., 0::2, :] + x[..., 1::2, :]
    return (rows[..., 0::2] + rows[..., 1::2]) * 0.25


def _spread(g: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """The pooling's adjoint: each value / 4 over its 2x2 window, zeros in a row or column the pooling dropped."""
    n, c, h, w = g.shape
    # columns first, then rows: two small copies, cheaper than one expand over both axes
    columns = (g * 0.25)[..., None].expand(n, c, h, w, 2).reshape(n, c, h, 2 * w)
    up = columns[:, :, :, None, :].expand(n, c, h, 2, 2 * w).reshape(n, c, 2 * h, 2 * w)
    pad = (0, size[-1] - 2 * w, 0, size[-2] - 2 * h)
    return F.pad(up, pad) if any(pad) else up


class _Pool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.size = x.shape
        return _pooled(x)

    @staticmethod
    def backward(ctx, g):
        return _Spread.apply(g, ctx.size)


class _Spread(torch.autograd.Function):
    @staticmethod
    def forward(ctx, g, size):
        return _spread(g, size)

    @staticmethod
    def backward(ctx, gg):
        return _Pool.apply(gg), None


def avg_pool2x2(x: torch.Tensor) -> torch.Tensor:
    """F.avg_pool2d(x, 2), differentiable to any order through its adjoint."""
    return _Pool.apply(x)
