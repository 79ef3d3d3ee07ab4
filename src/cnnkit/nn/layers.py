"""Layer objects for the NumPy engine, named and parameterised like `torch.nn`.

`Module`, `Parameter` and `Sequential` are in `cnnkit.nn.module`, the pooling layers in
`cnnkit.nn.pooling`; `cnnkit.nn` exports them all.

Each layer has `forward(x)` (keeps what its backward needs) and `backward(grad_output)`
(returns dL/dx and accumulates dL/dθ into each `Parameter.grad`, as torch does). Convolution
and pooling call `cnnkit.ops`; activations call `cnnkit.ops.activations`. Parameters are
initialised from torch's default distributions (`kaiming_uniform_(a=√5)`: U(±1/√fan_in) for
weights and biases of `Conv2d` and `Linear`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cnnkit.core.checks import (
    non_negative_int,
    non_negative_pair,
    positive_int,
    positive_pair,
)
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.nn import functional as F
from cnnkit.nn.module import DType, Module, Parameter

__all__ = [
    "CONV_PADDING_MODES",
    "ELU",
    "GELU",
    "Conv2d",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
]


def _uniform(
    rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype: DType
) -> np.ndarray:
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _accumulate(
    weight: Parameter, bias: Parameter | None, gw: np.ndarray, gb: Any, gi: Any
) -> np.ndarray:
    """Add dL/dW (and dL/db) into the parameters' grads, as torch does; return dL/dx."""
    weight.accumulate(gw)
    if bias is not None and gb is not None:
        bias.accumulate(gb)
    return gi  # None only when needs_input_grad is False


def _torch_default_init(
    weight_shape: tuple[int, ...], fan_in: int, bias: bool, rng: np.random.Generator, dtype: DType
) -> tuple[Parameter, Parameter | None]:
    """torch's `reset_parameters` of Conv2d/Linear: kaiming_uniform_(a=√5) gives U(±1/√fan_in)."""
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    weight = Parameter(_uniform(rng, bound, weight_shape, dtype))
    return weight, (Parameter(_uniform(rng, bound, weight_shape[:1], dtype)) if bias else None)


class Linear(Module):
    """y = x Wᵀ + b with W (out_features, in_features), as `torch.nn.Linear`."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DType = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.in_features = non_negative_int(in_features, "in_features", func="Linear")
        self.out_features = non_negative_int(out_features, "out_features", func="Linear")
        rng = np.random.default_rng() if rng is None else rng
        shape = (self.out_features, self.in_features)
        self.weight, self.bias = _torch_default_init(shape, self.in_features, bias, rng, dtype)
        self._input: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        assert self._input is not None, "backward before forward"
        gi, gw, gb = F.linear_backward(
            grad_output,
            self._input,
            self.weight.data,
            has_bias=self.bias is not None,
            needs_input_grad=self.needs_input_grad,
        )
        return _accumulate(self.weight, self.bias, gw, gb, gi)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


CONV_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv2d(Module):
    """`torch.nn.Conv2d` on `cnnkit.ops.conv2d_forward` / `conv2d_backward` (NCHW).

    It accepts exactly what torch's layer accepts; the extras of `cnnkit.ops.conv2d` (per-side
    padding, "full", padding_mode "symmetric") stay with the function. The forward pass keeps
    the ops' im2col cache, so the backward pass does not build it again.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        dtype: DType = np.float32,
        rng: np.random.Generator | None = None,
    ) -> None:
        groups = positive_int(groups, "groups", func="Conv2d")
        self.in_channels = non_negative_int(in_channels, "in_channels", func="Conv2d")
        self.out_channels = non_negative_int(out_channels, "out_channels", func="Conv2d")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value % groups:
                raise CnnkitError.from_template(
                    "{name} must be divisible by groups: {name}={value}, groups={groups}.",
                    name=name,
                    value=value,
                    groups=groups,
                )
        if padding_mode not in CONV_PADDING_MODES:
            raise CnnkitError.from_template(
                (
                    "The 'padding_mode' parameter of Conv2d must be one of "
                    "{conv_padding_modes}. Got {padding_mode!r} instead."
                ),
                conv_padding_modes=list(CONV_PADDING_MODES),
                padding_mode=padding_mode,
            )
        self.kernel_size = positive_pair(kernel_size, "kernel_size", func="Conv2d")
        self.stride = positive_pair(stride, "stride", func="Conv2d")
        self.dilation = positive_pair(dilation, "dilation", func="Conv2d")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise CnnkitError.from_template(
                    (
                        "The 'padding' parameter of Conv2d must be an int, a pair of ints, "
                        "'valid' or 'same'. Got {padding!r} instead."
                    ),
                    padding=padding,
                )
            if padding == "same" and self.stride != (1, 1):
                raise CnnkitError("padding='same' is not supported for strided convolutions")
        else:
            padding = non_negative_pair(padding, "padding", func="Conv2d")
        self.padding = padding
        self.groups = groups
        self.padding_mode = padding_mode
        rng = np.random.default_rng() if rng is None else rng
        kh, kw = self.kernel_size
        fan_in = self.in_channels // groups * kh * kw
        shape = (self.out_channels, self.in_channels // groups, kh, kw)
        self.weight, self.bias = _torch_default_init(shape, fan_in, bias, rng, dtype)
        self._input: np.ndarray | None = None
        self._cache: Any = None  # cnnkit.ops.Conv2dCache of the last forward (its im2col)

    def _args(self) -> dict[str, Any]:
        return dict(
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
            padding_mode=self.padding_mode,
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        from cnnkit.ops import conv2d_forward

        self._input = x
        bias = None if self.bias is None else self.bias.data
        out, self._cache = conv2d_forward(x, self.weight.data, bias, **self._args())
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        from cnnkit.ops import conv2d_backward

        assert self._input is not None, "backward before forward"
        gi, gw, gb = conv2d_backward(
            grad_output,
            self._input,
            self.weight.data,
            **self._args(),
            needs_input_grad=self.needs_input_grad,
            cache=self._cache,
        )
        return _accumulate(self.weight, self.bias, gw, gb, gi)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


class ReLU(Module):
    """max(x, 0); the backward multiplies by the mask of positive outputs (ReLU'(0) = 0).

    `inplace=True` (as torch) overwrites the input, which no other layer may still need.
    """

    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.maximum(x, 0, out=x if self.inplace else None)
        self._mask = out > 0
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        assert self._mask is not None, "backward before forward"
        return grad_output * self._mask


class _Activation(Module):
    """An element-wise function from `cnnkit.ops.activations`; backward is grad_output · f'(x)."""

    name = ""

    def __init__(self, **params: Any) -> None:
        from cnnkit.ops.activations import get_activation

        self.activation = get_activation(self.name, **params)
        self._input: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return self.activation.forward(x)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        assert self._input is not None, "backward before forward"
        return grad_output * self.activation.grad(self._input)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.activation.params.items())


class LeakyReLU(_Activation):
    name = "leaky-relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__(negative_slope=negative_slope)


class ELU(_Activation):
    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha=alpha)


class GELU(_Activation):
    name = "gelu"

    def __init__(self, approximate: str = "none") -> None:
        super().__init__(approximate=approximate)


class Sigmoid(_Activation):
    name = "sigmoid"


class Tanh(_Activation):
    name = "tanh"


class Dropout(Module):
    """Zeroes each element with probability p in training, scales the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator | None = None) -> None:
        self.p = F.check_dropout_p(p)
        self.rng = np.random.default_rng() if rng is None else rng
        self.mask: np.ndarray | None = None  # the last training mask (None in eval)

    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self.mask = F.dropout(x, self.p, self.training, rng=self.rng)
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return grad_output if self.mask is None else grad_output * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Flatten(Module):
    """Merge dims start_dim..end_dim into one, as `torch.nn.Flatten` (a view when possible)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim = start_dim
        self.end_dim = end_dim
        self._shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        nd = max(x.ndim, 1)
        start, end = (d + nd if d < 0 else d for d in (self.start_dim, self.end_dim))
        if not (0 <= start < nd and 0 <= end < nd):
            raise ShapeError.from_template(
                (
                    "Flatten(start_dim={start_dim}, end_dim={end_dim}) does not fit an input "
                    "of shape {shape}: dimensions must be in range [{nd}, {nd_1}]."
                ),
                start_dim=self.start_dim,
                end_dim=self.end_dim,
                shape=x.shape,
                nd=-nd,
                nd_1=nd - 1,
            )
        if start > end:
            raise ShapeError("flatten() has invalid args: start_dim cannot come after end_dim")
        self._shape = x.shape
        if x.ndim == 0:
            return x.reshape(1)
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        assert self._shape is not None, "backward before forward"
        return grad_output.reshape(self._shape)
