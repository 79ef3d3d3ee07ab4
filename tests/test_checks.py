"""cnnkit.core.checks: one int rule for the whole package, and every entry point follows it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit import nn as nn_layers
from cnnkit.calc.arithmetic import conv_output_size, effective_kernel, effective_kernel_hw
from cnnkit.calc.params import conv2d_params, linear_params
from cnnkit.calc.receptive_field import LayerSpec
from cnnkit.core.checks import (
    bad_parameter,
    check_bool,
    check_int,
    is_int,
    non_negative_pair,
    pair,
    positive_int,
    positive_pair,
)
from cnnkit.core.errors import CnnkitError
from cnnkit.imaging.kernels import get_kernel
from cnnkit.ops import conv2d, max_pool2d

INTS = [3, np.int64(3), np.int32(3), np.uint8(3)]
NOT_INTS = [True, False, 3.0, np.float64(3.0), "3", None, 3 + 0j]


def test_bad_parameter_is_the_style_template():
    err = bad_parameter("conv2d", "stride", "a positive int or pair of ints", 0)
    assert isinstance(err, CnnkitError)
    assert str(err) == (
        "The 'stride' parameter of conv2d must be a positive int or pair of ints. Got 0 instead."
    )
    assert str(bad_parameter(None, "size", "an int", "x")) == (
        "The 'size' parameter must be an int. Got 'x' instead."
    )


@pytest.mark.parametrize("value", INTS)
def test_python_and_numpy_ints_are_ints(value):
    assert is_int(value)
    assert positive_int(value, "n") == 3 and type(positive_int(value, "n")) is int
    assert pair(value, "n") == (3, 3) and all(type(v) is int for v in pair(value, "n"))


@pytest.mark.parametrize("value", NOT_INTS)
def test_bools_floats_and_strings_are_not_ints(value):
    assert not is_int(value)
    with pytest.raises(CnnkitError, match=r"The 'n' parameter of f must be a positive int"):
        positive_int(value, "n", func="f")
    with pytest.raises(CnnkitError, match=r"must be an int or a pair of ints"):
        pair(value, "n")
    with pytest.raises(CnnkitError):
        pair((value, 3), "n")


def test_ranges_and_their_words():
    assert check_int(0, "n", minimum=0) == 0
    with pytest.raises(CnnkitError, match=r"must be a non-negative int. Got -1 instead"):
        check_int(-1, "n", minimum=0)
    with pytest.raises(CnnkitError, match=r"must be an int from 1 to 9. Got 10 instead"):
        check_int(10, "n", minimum=1, maximum=9)
    with pytest.raises(CnnkitError, match=r"positive int or pair of ints. Got \(1, 0\) instead"):
        positive_pair((1, 0), "stride")
    assert non_negative_pair((0, 2), "padding") == (0, 2)
    for bad in ["ab", (1, 2, 3), (1,), [1, 2.0]]:
        with pytest.raises(CnnkitError):
            pair(bad, "k")


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_])
def test_check_bool_accepts_python_and_numpy_bools(value):
    assert check_bool(value, "bias") is bool(value)


@pytest.mark.parametrize("value", ["no", "", 0, 1, None, 1.0])
def test_check_bool_refuses_look_alikes(value):
    with pytest.raises(CnnkitError, match=r"The 'bias' parameter of f must be a bool"):
        check_bool(value, "bias", func="f")


@pytest.mark.parametrize("bias", ["no", "False", 0, None])
def test_param_counts_refuse_a_non_bool_bias(bias):
    """Regression: conv2d_params(..., bias="no") used to count a bias ("no" is truthy)."""
    with pytest.raises(CnnkitError, match=r"'bias' parameter of conv2d_params must be a bool"):
        conv2d_params(1, 8, 3, bias=bias)
    with pytest.raises(CnnkitError, match=r"'bias' parameter of linear_params must be a bool"):
        linear_params(4, 2, bias=bias)


@pytest.mark.parametrize("bias", [True, False])
def test_param_counts_match_torch(bias):
    conv = torch.nn.Conv2d(4, 6, (3, 5), groups=2, bias=bias)
    assert conv2d_params(4, 6, (3, 5), groups=2, bias=bias).total == sum(
        p.numel() for p in conv.parameters()
    )
    fc = torch.nn.Linear(7, 3, bias=bias)
    assert linear_params(7, 3, bias=bias).total == sum(p.numel() for p in fc.parameters())


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_effective_kernel_is_the_span_torch_sees(k, d):
    """Oracle: the smallest input a dilated torch conv accepts (output 1) is K_eff wide."""
    k_eff = effective_kernel(k, d)
    conv = torch.nn.Conv2d(1, 1, (k, 1), dilation=(d, 1))
    assert conv(torch.zeros(1, 1, k_eff, 1)).shape[2] == 1
    if k_eff > 1:
        with pytest.raises(RuntimeError):
            conv(torch.zeros(1, 1, k_eff - 1, 1))
    assert effective_kernel_hw((k, 2), (d, 1)) == (k_eff, 2)


# One rule everywhere: each entry point takes np.int64 and refuses True and 3.0 for a size.
ENTRY_POINTS = {
    "conv_output_size": lambda k: conv_output_size(8, k),
    "conv2d_params": lambda k: conv2d_params(1, 1, k),
    "LayerSpec.conv": lambda k: LayerSpec.conv(k),
    "nn.Conv2d": lambda k: nn_layers.Conv2d(1, 1, k),
    "ops.conv2d groups": lambda k: conv2d(np.zeros((1, 3, 4, 4)), np.zeros((3, 1, 1, 1)), groups=k),
    "ops.max_pool2d": lambda k: max_pool2d(np.zeros((1, 1, 6, 6)), k),
    "get_kernel": lambda k: get_kernel("box", size=k),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_follows_the_same_int_rule(name):
    call = ENTRY_POINTS[name]
    call(np.int64(3))  # accepted
    for bad in (True, 3.0):
        with pytest.raises(CnnkitError, match=r"parameter of .* must be "):
            call(bad)


def test_numpy_max_pool_2x2_fast_path_only_for_real_ints():
    """MaxPool2d(2.0) used to take the 2×2 fast path (2.0 == 2) instead of being refused."""
    x = np.zeros((1, 1, 4, 4))
    assert nn_layers.MaxPool2d(np.int64(2))(x).shape == (1, 1, 2, 2)
    with pytest.raises(CnnkitError, match=r"'kernel_size' parameter"):
        nn_layers.MaxPool2d(2.0)(x)
