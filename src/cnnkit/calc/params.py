"""Parameter counts of convolution and linear layers, and the chapter's FC-vs-conv comparison.

Pure Python, like `cnnkit.calc.arithmetic` (shapes). `tests/test_arithmetic.py` checks every
count against `sum(p.numel())` of the real torch layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.core.checks import (
    Pair,
    bad_parameter,
    check_bool,
    is_int,
    pair,
    positive_int,
    positive_pair,
)
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.core.i18n import Message

__all__ = [
    "ConvLayerParams",
    "FcConvComparison",
    "ParamCount",
    "compare_fc_conv",
    "conv2d_params",
    "linear_params",
    "percent_text",
]


@dataclass(frozen=True)
class ParamCount:
    """Number of learnable parameters of one layer."""

    weight: int
    bias: int
    total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", self.weight + self.bias)


def conv2d_params(
    in_channels: Any,
    out_channels: Any,
    kernel_size: Any,
    groups: Any = 1,
    bias: bool = True,
) -> ParamCount:
    """Parameters of `nn.Conv2d`: weight `C_out · (C_in / groups) · K_h · K_w`, bias `C_out`."""
    func = "conv2d_params"
    c_in = positive_int(in_channels, "in_channels", func=func)
    c_out = positive_int(out_channels, "out_channels", func=func)
    kh, kw = positive_pair(kernel_size, "kernel_size", func=func)
    g = positive_int(groups, "groups", func=func)
    if c_in % g or c_out % g:
        raise CnnkitError.from_template(
            (
                "The 'groups' parameter of {func} must divide in_channels ({c_in}) and "
                "out_channels ({c_out}). Got {g} instead."
            ),
            func=func,
            c_in=c_in,
            c_out=c_out,
            g=g,
        )
    has_bias = check_bool(bias, "bias", func=func)
    return ParamCount(weight=c_out * (c_in // g) * kh * kw, bias=c_out if has_bias else 0)


def linear_params(in_features: Any, out_features: Any, bias: bool = True) -> ParamCount:
    """Parameters of `nn.Linear`: weight `in · out`, bias `out`."""
    func = "linear_params"
    n_in = positive_int(in_features, "in_features", func=func)
    n_out = positive_int(out_features, "out_features", func=func)
    has_bias = check_bool(bias, "bias", func=func)
    return ParamCount(weight=n_in * n_out, bias=n_out if has_bias else 0)


@dataclass(frozen=True)
class ConvLayerParams:
    in_channels: int
    out_channels: int
    kernel_size: Pair
    params: ParamCount


@dataclass(frozen=True)
class FcConvComparison:
    """A fully-connected first layer vs a stack of convolutions on the same image."""

    input_shape: tuple[int, int, int]  # (H, W, C), as the chapter writes 224×224×3
    input_features: int  # H·W·C, the length of the flattened image
    hidden: int
    fc: ParamCount
    conv_layers: tuple[ConvLayerParams, ...]
    conv_total: int
    ratio: float  # conv_total / fc.total
    reduction_percent: float  # 100·(1 − ratio)


def compare_fc_conv(
    input_shape: Any,
    hidden: Any = 1000,
    conv_channels: Sequence[int] = (64,),
    kernel_size: Any = 3,
    bias: bool = True,
) -> FcConvComparison:
    """Parameters of `Linear(H·W·C, hidden)` vs convolutions `C → c1 → c2 ...` (chapter 1.1, 1.4,
    exercise 5). `input_shape` is `(H, W, C)`; the convolutions' count does not depend on H, W.
    """
    func = "compare_fc_conv"
    if (
        not isinstance(input_shape, Sequence)
        or len(input_shape) != 3
        or not all(is_int(v) and v >= 1 for v in input_shape)
    ):
        raise CnnkitError.from_template(
            (
                "The 'input_shape' parameter of {func} must be three positive ints (H, "
                "W, C). Got {input_shape!r} instead."
            ),
            func=func,
            input_shape=input_shape,
        )
    h, w, c = (int(v) for v in input_shape)
    hidden = positive_int(hidden, "hidden", func=func)
    if isinstance(conv_channels, str | bytes) or not isinstance(conv_channels, Sequence):
        raise CnnkitError.from_template(
            (
                "The 'conv_channels' parameter of {func} must be a sequence of positive "
                "ints. Got {conv_channels!r} instead."
            ),
            func=func,
            conv_channels=conv_channels,
        )
    if len(conv_channels) == 0:
        raise bad_parameter(
            func, "conv_channels", Message("at least one positive int"), conv_channels
        )
    kh, kw = positive_pair(kernel_size, "kernel_size", func=func)
    if kh > h or kw > w:  # as `size` and torch refuse it: the convolution has no output
        raise ShapeError.from_template(
            (
                "The 'kernel_size' parameter of {func} must fit in the input: kernel "
                "{kh}x{kw} is larger than the input {h}x{w}. Got {kernel_size!r} instead."
            ),
            func=func,
            kh=kh,
            kw=kw,
            h=h,
            w=w,
            kernel_size=kernel_size,
        )
    fc = linear_params(h * w * c, hidden, bias)
    layers = []
    c_in = c
    for c_out in conv_channels:
        p = conv2d_params(c_in, c_out, kernel_size, bias=bias)
        layers.append(ConvLayerParams(c_in, int(c_out), pair(kernel_size, "kernel_size"), p))
        c_in = int(c_out)
    conv_total = sum(layer.params.total for layer in layers)
    ratio = conv_total / fc.total
    return FcConvComparison(
        input_shape=(h, w, c),
        input_features=h * w * c,
        hidden=int(hidden),
        fc=fc,
        conv_layers=tuple(layers),
        conv_total=conv_total,
        ratio=ratio,
        reduction_percent=100.0 * (1.0 - ratio),
    )


def percent_text(value: float, decimals: int = 2) -> str:
    """`value` (already in percent) with enough decimals that it never reads as exactly 100 or 0
    when it is not: 99.9988 prints as "99.9988%", not "100.00%"."""
    text = f"{value:.{decimals}f}"
    while decimals < 12 and value not in (0.0, 100.0) and float(text) in (0.0, 100.0):
        decimals += 1
        text = f"{value:.{decimals}f}"
    return text + "%"
