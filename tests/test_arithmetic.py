"""`cnnkit.calc.arithmetic` against the real PyTorch layers (shapes, refusals, parameter counts)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal
from torch import nn

from cnnkit.calc.arithmetic import (
    conv2d_output_shape,
    conv_output_size,
    conv_pool_blocks_output_shape,
    conv_transpose2d_output_shape,
    pool2d_output_shape,
    resolve_padding,
    same_padding,
)
from cnnkit.calc.params import compare_fc_conv, conv2d_params, linear_params
from cnnkit.core.checks import pair
from cnnkit.core.errors import CnnkitError, ShapeError

SWEEP = settings(max_examples=100, deadline=None)
sizes = st.integers(1, 24)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)
pads = st.integers(0, 4)
dilations = st.integers(1, 3)


def _x(h: int, w: int) -> torch.Tensor:
    return torch.zeros(1, 1, h, w)


def _torch_shape(fn) -> tuple[int, int] | None:
    """Output (H, W) of `fn()`, or None if torch refuses."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except RuntimeError:
        return None
    return tuple(out.shape[-2:])


def _ours(fn) -> tuple[int, int] | None:
    try:
        return fn()
    except ShapeError:
        return None


# --------------------------------------------------------------------------- convolution


@SWEEP
@given(sizes, sizes, kernels, kernels, strides, strides, pads, pads, dilations, dilations)
def test_conv2d_output_shape_matches_nn_conv2d(h, w, kh, kw, sh, sw, ph, pw, dh, dw):
    conv = nn.Conv2d(1, 1, (kh, kw), (sh, sw), (ph, pw), (dh, dw), bias=False)
    expected = _torch_shape(lambda: conv(_x(h, w)))
    ours = _ours(lambda: conv2d_output_shape((h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw)))
    assert ours == expected  # None on both sides: both refuse


@SWEEP
@given(sizes, sizes, kernels, kernels, strides, st.tuples(pads, pads, pads, pads), dilations)
def test_per_side_padding_order_is_top_bottom_left_right(h, w, kh, kw, s, sides, d):
    top, bottom, left, right = sides
    x = torch.randn(1, 1, h, w, dtype=torch.float64)
    weight = torch.randn(1, 1, kh, kw, dtype=torch.float64)
    # F.pad lists the last axis first: (left, right, top, bottom)
    expected = _torch_shape(
        lambda: F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=s, dilation=d)
    )
    assert resolve_padding(sides, (kh, kw), d) == ((top, bottom), (left, right))
    assert _ours(lambda: conv2d_output_shape((h, w), (kh, kw), s, sides, d)) == expected


@settings(max_examples=50, deadline=None)
@given(sizes, sizes, kernels, kernels, dilations, dilations)
def test_same_padding_matches_torch_same_including_the_extra_pixel(h, w, kh, kw, dh, dw):
    x = torch.randn(1, 1, h, w, dtype=torch.float64)
    weight = torch.randn(1, 1, kh, kw, dtype=torch.float64)
    (top, bottom), (left, right) = same_padding((kh, kw), (dh, dw))
    assert resolve_padding("same", (kh, kw), (dh, dw)) == ((top, bottom), (left, right))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about even kernels
        expected = F.conv2d(x, weight, padding="same", dilation=(dh, dw))
    ours = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, dilation=(dh, dw))
    # The values, not only the shape: they tell on which side the extra pixel went.
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-12)
    assert conv2d_output_shape((h, w), (kh, kw), 1, "same", (dh, dw)) == (h, w)


def test_same_padding_puts_the_extra_pixel_at_the_bottom_right():
    assert same_padding(4) == ((1, 2), (1, 2))
    assert same_padding((2, 3), (3, 1)) == ((1, 2), (1, 1))


@pytest.mark.parametrize("stride", [2, (1, 2), (3, 1)])
def test_same_padding_with_stride_is_refused_like_torch(stride):
    with pytest.raises(RuntimeError):
        F.conv2d(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 3, 3), stride=stride, padding="same")
    with pytest.raises(CnnkitError, match="stride"):
        conv2d_output_shape(8, 3, stride, "same")


@SWEEP
@given(sizes, sizes, kernels, kernels, strides, dilations)
def test_valid_padding_matches_torch(h, w, kh, kw, s, d):
    x, weight = _x(h, w), torch.zeros(1, 1, kh, kw)
    expected = _torch_shape(lambda: F.conv2d(x, weight, stride=s, padding="valid", dilation=d))
    assert _ours(lambda: conv2d_output_shape((h, w), (kh, kw), s, "valid", d)) == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 5), st.integers(1, 5))
def test_full_padding_matches_scipy_full_correlation(h, w, kh, kw):
    rng = np.random.default_rng(h * 1000 + w * 100 + kh * 10 + kw)
    image, kernel = rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
    expected = signal.correlate2d(image, kernel, mode="full")
    (top, bottom), (left, right) = resolve_padding("full", (kh, kw))
    assert conv2d_output_shape((h, w), (kh, kw), 1, "full") == expected.shape
    ours = F.conv2d(
        F.pad(torch.from_numpy(image)[None, None], (left, right, top, bottom)),
        torch.from_numpy(kernel)[None, None],
    )[0, 0]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_kernel_larger_than_padded_input_names_the_sizes():
    with pytest.raises(ShapeError, match=r"Kernel size 5 is larger than the padded input size 3"):
        conv2d_output_shape(3, 5)
    with pytest.raises(ShapeError, match=r"Kernel size 9 \(kernel 5, dilation 2\).*size 8"):
        conv2d_output_shape((20, 6), 5, padding=1, dilation=2)
    with pytest.raises(RuntimeError):
        nn.Conv2d(1, 1, 5, padding=1, dilation=2)(_x(20, 6))


# --------------------------------------------------------------------------- pooling


@SWEEP
@given(sizes, sizes, kernels, kernels, st.none() | strides, pads, pads, dilations, st.booleans())
def test_pool2d_output_shape_matches_max_pool2d(h, w, kh, kw, s, ph, pw, d, ceil):
    pool = nn.MaxPool2d((kh, kw), s, (ph, pw), d, ceil_mode=ceil)
    expected = _torch_shape(lambda: pool(_x(h, w)))
    try:
        ours = pool2d_output_shape((h, w), (kh, kw), s, (ph, pw), d, ceil)
    except CnnkitError:  # ShapeError, or padding above half the kernel
        ours = None
    assert ours == expected


@SWEEP
@given(sizes, sizes, kernels, kernels, st.none() | strides, pads, pads, st.booleans())
def test_pool2d_output_shape_matches_avg_pool2d(h, w, kh, kw, s, ph, pw, ceil):
    pool = nn.AvgPool2d((kh, kw), s, (ph, pw), ceil_mode=ceil)
    expected = _torch_shape(lambda: pool(_x(h, w)))
    try:
        ours = pool2d_output_shape((h, w), (kh, kw), s, (ph, pw), 1, ceil)
    except CnnkitError:
        ours = None
    assert ours == expected


def test_ceil_mode_drops_a_last_window_that_would_start_in_the_right_padding():
    # 5 + 1 + 1 = 7 padded, kernel 2, stride 2: ceil((7 - 2) / 2) + 1 = 4, but window 4 would
    # start at padded index 6 (the right padding), so torch keeps 3.
    assert conv_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert pool2d_output_shape(5, 2, 2, 1, ceil_mode=True) == (3, 3)
    assert nn.MaxPool2d(2, 2, 1, ceil_mode=True)(_x(5, 5)).shape[-2:] == (3, 3)
    # Without that rule: ceil((6 - 2) / 2) + 1 = 3 stays 3 (window 3 starts at 4 < 5 + 1).
    assert pool2d_output_shape(6, 2, 2, 0, ceil_mode=True) == (3, 3)


def test_pool_padding_above_half_the_kernel_is_refused_like_torch():
    with pytest.raises(RuntimeError, match="half"):
        nn.MaxPool2d(3, padding=2)(_x(10, 10))
    with pytest.raises(CnnkitError, match=r"'padding'.*half the kernel.*Got 2 instead"):
        pool2d_output_shape(10, 3, padding=2)


def test_the_chapter_max_pool_halves_and_floors():
    assert pool2d_output_shape(28, 2, 2) == (14, 14)
    assert pool2d_output_shape(13, 2) == (6, 6)
    assert pool2d_output_shape(13, 2, ceil_mode=True) == (7, 7)


# --------------------------------------------------------------------------- transposed conv


@SWEEP
@given(sizes, sizes, kernels, kernels, strides, strides, pads, pads, st.integers(0, 3), dilations)
def test_conv_transpose2d_output_shape_matches_torch(h, w, kh, kw, sh, sw, ph, pw, op, d):
    def run():
        layer = nn.ConvTranspose2d(
            1, 1, (kh, kw), (sh, sw), (ph, pw), output_padding=op, dilation=d, bias=False
        )
        return layer(_x(h, w))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = tuple(run().shape[-2:])
    except (RuntimeError, ValueError):
        expected = None
    if expected is not None and 0 in expected:
        # Deliberate: torch returns an empty tensor for an output size of exactly 0 (it refuses
        # negative sizes); cnnkit refuses both, like convolution and pooling do.
        expected = None
    try:
        ours = conv_transpose2d_output_shape((h, w), (kh, kw), (sh, sw), (ph, pw), op, d)
    except CnnkitError:
        ours = None
    assert ours == expected


def test_conv_transpose_refuses_an_empty_output_that_torch_returns():
    layer = nn.ConvTranspose2d(1, 1, 4, padding=(4, 0), dilation=2)
    assert layer(_x(2, 1)).shape[-2:] == (0, 7)  # torch: empty along the height
    with pytest.raises(ShapeError, match=r"Output size 0 along height"):
        conv_transpose2d_output_shape((2, 1), 4, 1, (4, 0), 0, 2)


def test_conv_transpose_inverts_conv_shape():
    # The usual decoder pairing: conv k3 s2 p1 on 28 -> 14; transpose with output_padding 1 -> 28.
    assert conv2d_output_shape(28, 3, 2, 1) == (14, 14)
    assert conv_transpose2d_output_shape(14, 3, 2, 1, output_padding=1) == (28, 28)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("bad", [True, 2.5, "3", (1, 2, 3), (1, 2.0), None, [True, 1]])
def test_pair_refuses_non_integers_and_names_the_parameter(bad):
    with pytest.raises(CnnkitError) as info:
        pair(bad, "kernel_size")
    assert "'kernel_size'" in str(info.value)
    assert f"Got {bad!r} instead." in str(info.value)


def test_pair_accepts_ints_pairs_and_numpy_integers():
    assert pair(3, "k") == (3, 3)
    assert pair((3, 5), "k") == (3, 5)
    assert pair([2, 1], "k") == (2, 1)
    assert pair(np.int64(4), "k") == (4, 4)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"stride": 0}, "stride"),
        ({"stride": -1}, "stride"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"dilation": 0}, "dilation"),
        ({"padding": -1}, "padding"),
        ({"padding": (1, -1)}, "padding"),
        ({"padding": (0, 0, 0, -1)}, "padding"),
        ({"padding": "half"}, "padding"),
        ({"stride": 1.5}, "stride"),
    ],
)
def test_bad_arguments_are_refused_with_the_parameter_and_value(kwargs, name):
    args = {"kernel_size": 3, **kwargs}
    with pytest.raises(CnnkitError) as info:
        conv2d_output_shape(28, **args)
    assert f"'{name}'" in str(info.value)
    assert repr(kwargs[name]) in str(info.value)
    # torch refuses each of these too
    with pytest.raises((RuntimeError, ValueError, TypeError)), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        padding = args.get("padding", 0)
        if isinstance(padding, tuple) and len(padding) == 4:
            raise ValueError("torch has no per-side padding; F.pad(-1) would crop instead")
        nn.Conv2d(1, 1, **args)(_x(28, 28))


def test_stride_message_follows_the_house_template():
    with pytest.raises(CnnkitError) as info:
        conv2d_output_shape(28, 3, stride=0)
    assert str(info.value) == (
        "The 'stride' parameter of conv2d must be a positive int or pair of ints. Got 0 instead."
    )


# --------------------------------------------------------------------------- parameter counts


def _numel(module: nn.Module) -> tuple[int, int]:
    weight = module.weight.numel()
    bias = module.bias.numel() if module.bias is not None else 0
    return weight, bias


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 8),
    st.integers(1, 8),
    st.integers(1, 4),
    kernels,
    kernels,
    st.booleans(),
)
def test_conv2d_params_match_numel(c_in_per_group, c_out_per_group, groups, kh, kw, bias):
    c_in, c_out = c_in_per_group * groups, c_out_per_group * groups
    layer = nn.Conv2d(c_in, c_out, (kh, kw), groups=groups, bias=bias, device="meta")
    p = conv2d_params(c_in, c_out, (kh, kw), groups=groups, bias=bias)
    assert (p.weight, p.bias) == _numel(layer)
    assert p.total == sum(t.numel() for t in layer.parameters())


@pytest.mark.parametrize(("c_in", "c_out", "groups"), [(3, 6, 2), (4, 6, 4), (4, 4, 3)])
def test_groups_that_do_not_divide_the_channels_are_refused_like_torch(c_in, c_out, groups):
    with pytest.raises(ValueError):
        nn.Conv2d(c_in, c_out, 3, groups=groups)
    with pytest.raises(CnnkitError, match="'groups'"):
        conv2d_params(c_in, c_out, 3, groups=groups)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.booleans())
def test_linear_params_match_numel(n_in, n_out, bias):
    layer = nn.Linear(n_in, n_out, bias=bias, device="meta")
    p = linear_params(n_in, n_out, bias=bias)
    assert (p.weight, p.bias) == _numel(layer)


@pytest.mark.parametrize("channels", [(64,), (64, 64, 64), (32, 64, 128)])
@pytest.mark.parametrize("bias", [True, False])
def test_compare_fc_conv_matches_real_layers(channels, bias):
    h, w, c = 224, 224, 3
    fc = nn.Linear(h * w * c, 1000, bias=bias, device="meta")  # meta: no 600 MB of weights
    convs, c_in = [], c
    for c_out in channels:
        convs.append(nn.Conv2d(c_in, c_out, 3, bias=bias, device="meta"))
        c_in = c_out
    result = compare_fc_conv((h, w, c), 1000, channels, kernel_size=3, bias=bias)
    fc_total = sum(p.numel() for p in fc.parameters())
    conv_total = sum(p.numel() for m in convs for p in m.parameters())
    assert result.input_features == h * w * c
    assert result.fc.total == fc_total
    assert [layer.params.total for layer in result.conv_layers] == [
        sum(p.numel() for p in m.parameters()) for m in convs
    ]
    assert result.conv_total == conv_total
    assert result.ratio == pytest.approx(conv_total / fc_total, rel=1e-15)
    assert result.reduction_percent == pytest.approx(100 * (1 - conv_total / fc_total), rel=1e-15)


def test_compare_fc_conv_refuses_a_two_dimensional_input():
    with pytest.raises(CnnkitError, match=r"'input_shape'.*Got \(224, 224\) instead"):
        compare_fc_conv((224, 224), 1000)


def test_arithmetic_imports_neither_torch_nor_numpy():
    code = (
        "import sys, cnnkit.calc.arithmetic;"
        "print(sorted(m for m in ('torch', 'numpy', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("hw", [(28, 28), (32, 32), (7, 9), (2, 3)])
@pytest.mark.parametrize("num_blocks", [0, 1, 2])
def test_conv_pool_blocks_output_shape_matches_torch_layers(hw, num_blocks):
    x = torch.zeros(1, 1, *hw)
    try:
        for _ in range(num_blocks):
            x = nn.MaxPool2d(2, 2)(nn.Conv2d(1, 1, 3, padding=1)(x))
    except RuntimeError:  # the input is too small for torch: cnnkit must refuse it too
        with pytest.raises(CnnkitError):
            conv_pool_blocks_output_shape(hw, num_blocks)
        return
    assert conv_pool_blocks_output_shape(hw, num_blocks) == tuple(x.shape[2:])
