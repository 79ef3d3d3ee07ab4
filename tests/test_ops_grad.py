"""Backward passes of cnnkit.ops against torch autograd (float64, rtol 1e-7) and finite
differences (including the `symmetric` padding mode, which torch does not have)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ops_conv import conv_configs, conv_kwargs, make_arrays, torch_conv2d
from test_ops_pool import data, pool_configs, pool_kwargs

from cnnkit.core.errors import ShapeError
from cnnkit.ops import (
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv2d_forward,
    max_pool2d,
    max_pool2d_backward,
    pad2d,
    pad2d_backward,
)

RTOL = 1e-7


def close(ours: np.ndarray | None, theirs: torch.Tensor | None) -> None:
    assert ours is not None and theirs is not None
    expected = theirs.numpy()
    atol = RTOL * max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=atol)
    assert ours.shape == expected.shape and ours.dtype == expected.dtype


# --------------------------------------------------------------------------- conv2d vs autograd


@settings(max_examples=100, deadline=None)
@given(cfg=conv_configs(), use_cache=st.booleans())
def test_conv2d_backward_matches_autograd(cfg: dict[str, Any], use_cache: bool) -> None:
    x, w, b = make_arrays(cfg, np.float64)
    kwargs = conv_kwargs(cfg)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    out = torch_conv2d(xt, wt, bt, **kwargs)
    grad_output = np.random.default_rng(cfg["seed"] + 1).standard_normal(tuple(out.shape))
    out.backward(torch.from_numpy(grad_output))

    cache = conv2d_forward(x, w, b, **kwargs)[1] if use_cache else None
    gx, gw, gb = conv2d_backward(grad_output, x, w, **kwargs, cache=cache)
    close(gx, xt.grad)
    close(gw, wt.grad)
    if bt is not None:
        close(gb, bt.grad)
    # without bias torch has no grad_bias; ours is still the sum over (N, H_out, W_out)
    np.testing.assert_allclose(gb, grad_output.sum(axis=(0, 2, 3)), rtol=RTOL)


def test_needs_input_grad_false_skips_grad_input() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((2, 4, 6, 6))
    gx, gw, gb = conv2d_backward(g, x, w, padding=1, needs_input_grad=False)
    assert gx is None
    np.testing.assert_array_equal(gw, conv2d_backward(g, x, w, padding=1)[1])


def test_2d_and_unbatched_gradients_keep_the_input_shapes() -> None:
    rng = np.random.default_rng(1)
    image, kernel = rng.standard_normal((6, 7)), rng.standard_normal((3, 2))
    g = rng.standard_normal(conv2d(image, kernel, padding=1).shape)
    gx, gw, gb = conv2d_backward(g, image, kernel, padding=1)
    assert gx is not None and gx.shape == image.shape and gw.shape == kernel.shape
    four_d = conv2d_backward(g[None, None], image[None, None], kernel[None, None], padding=1)
    np.testing.assert_array_equal(gx, four_d[0][0, 0])
    x = rng.standard_normal((3, 6, 7))
    w = rng.standard_normal((2, 3, 3, 3))
    gx3, _, _ = conv2d_backward(rng.standard_normal((2, 6, 7)), x, w, padding="same")
    assert gx3 is not None and gx3.shape == x.shape


def test_float32_gradients_stay_float32() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out, cache = conv2d_forward(x, w, stride=2, padding=1)
    grads = conv2d_backward(np.ones_like(out), x, w, stride=2, padding=1, cache=cache)
    assert all(g is not None and g.dtype == np.float32 for g in grads)


def test_grad_output_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ShapeError, match="grad_output"):
        conv2d_backward(np.ones((1, 4, 5, 5)), np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3)))


# --------------------------------------------------------------------------- padding vs autograd


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    pads=st.tuples(*(st.integers(0, 5) for _ in range(4))),
    mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
)
def test_pad2d_backward_matches_autograd(
    h: int, w: int, pads: tuple[int, int, int, int], mode: str
) -> None:
    top, bottom, left, right = pads
    if mode == "reflect" and max(pads) > 0 and (max(top, bottom) >= h or max(left, right) >= w):
        return
    if mode == "circular" and (max(top, bottom) > h or max(left, right) > w):
        return
    generator = torch.Generator().manual_seed(h * 100 + w)
    x = torch.randn(2, 3, h, w, dtype=torch.float64, generator=generator, requires_grad=True)
    padded = F.pad(x, (left, right, top, bottom), mode="constant" if mode == "zeros" else mode)
    grad = torch.randn(padded.shape, dtype=torch.float64, generator=generator)
    padded.backward(grad)
    sides = ((top, bottom), (left, right))
    np.testing.assert_array_equal(pad2d(x.detach().numpy(), sides, mode), padded.detach().numpy())
    close(pad2d_backward(grad.numpy(), sides, mode, (h, w)), x.grad)


# --------------------------------------------------------------------------- pools vs autograd


@settings(max_examples=100, deadline=None)
@given(cfg=pool_configs(), ties=st.booleans(), use_indices=st.booleans())
def test_max_pool2d_backward_matches_autograd(
    cfg: dict[str, Any], ties: bool, use_indices: bool
) -> None:
    x = data(cfg, np.float64, ties)  # ties: gradient to the first maximum, like torch
    kwargs = pool_kwargs(cfg)
    xt = torch.tensor(x, requires_grad=True)
    out = F.max_pool2d(xt, **kwargs)
    g = np.random.default_rng(cfg["seed"]).standard_normal(tuple(out.shape))
    out.backward(torch.from_numpy(g))
    indices = max_pool2d(x, return_indices=True, **kwargs)[1] if use_indices else None
    close(max_pool2d_backward(g, x, **kwargs, indices=indices), xt.grad)


@settings(max_examples=100, deadline=None)
@given(
    cfg=pool_configs(dilation=False),
    count_include_pad=st.booleans(),
    divisor_override=st.sampled_from([None, 2, -3]),
)
def test_avg_pool2d_backward_matches_autograd(
    cfg: dict[str, Any], count_include_pad: bool, divisor_override: int | None
) -> None:
    x = data(cfg, np.float64, ties=False)
    kwargs = dict(
        pool_kwargs(cfg), count_include_pad=count_include_pad, divisor_override=divisor_override
    )
    xt = torch.tensor(x, requires_grad=True)
    out = F.avg_pool2d(xt, **kwargs)
    g = np.random.default_rng(cfg["seed"]).standard_normal(tuple(out.shape))
    out.backward(torch.from_numpy(g))
    close(avg_pool2d_backward(g, x, **kwargs), xt.grad)


def test_max_pool_ties_send_the_gradient_to_the_first_maximum() -> None:
    x = np.zeros((1, 1, 4, 4))  # every window ties (ReLU zeros)
    grad = max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0  # top-left of each window
    np.testing.assert_array_equal(grad[0, 0], expected)
    xt = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    F.max_pool2d(xt, 2).sum().backward()
    np.testing.assert_array_equal(grad, xt.grad.numpy())


# --------------------------------------------------------------------------- finite differences


def numeric_grad(f: Callable[[np.ndarray], float], a: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar f with respect to every entry of a (a is restored)."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        saved = a[i]
        a[i] = saved + eps
        up = f(a)
        a[i] = saved - eps
        down = f(a)
        a[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular", "symmetric"])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(padding=1),
        dict(padding=(2, 0, 1, 3), stride=(2, 1), dilation=(1, 2)),
        dict(padding="same", groups=2),
    ],
)
def test_conv2d_backward_matches_finite_differences(mode: str, kwargs: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((2, 1, 3, 2)), np.ones(2)
    if kwargs.get("groups", 1) == 1:
        w = rng.standard_normal((2, 2, 3, 2))
    out = conv2d(x, w, b, padding_mode=mode, **kwargs)
    g = rng.standard_normal(out.shape)

    def loss_x(a: np.ndarray) -> float:
        return float(np.sum(conv2d(a, w, b, padding_mode=mode, **kwargs) * g))

    def loss_w(a: np.ndarray) -> float:
        return float(np.sum(conv2d(x, a, b, padding_mode=mode, **kwargs) * g))

    def loss_b(a: np.ndarray) -> float:
        return float(np.sum(conv2d(x, w, a, padding_mode=mode, **kwargs) * g))

    gx, gw, gb = conv2d_backward(g, x, w, padding_mode=mode, **kwargs)
    np.testing.assert_allclose(gx, numeric_grad(loss_x, x.copy()), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw, numeric_grad(loss_w, w.copy()), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, numeric_grad(loss_b, b.copy()), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=(2, 3), stride=1),
    ],
)
def test_pool_backward_matches_finite_differences(kwargs: dict[str, Any]) -> None:
    x = np.random.default_rng(4).permutation(2 * 5 * 6).reshape(1, 2, 5, 6) / 7.0  # no ties
    g = np.random.default_rng(5).standard_normal(avg_pool2d(x, **kwargs).shape)

    def avg_loss(a: np.ndarray) -> float:
        return float(np.sum(avg_pool2d(a, **kwargs) * g))

    def max_loss(a: np.ndarray) -> float:
        return float(np.sum(max_pool2d(a, **kwargs) * g))

    np.testing.assert_allclose(
        avg_pool2d_backward(g, x, **kwargs), numeric_grad(avg_loss, x.copy()), atol=1e-8
    )
    np.testing.assert_allclose(
        max_pool2d_backward(g, x, **kwargs), numeric_grad(max_loss, x.copy()), atol=1e-8
    )
