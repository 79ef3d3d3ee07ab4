"""Layer objects for the NumPy engine, named and parameterised like `torch.nn`.

Each layer has `forward(x)` (keeps what its backward needs) and `backward(grad_output)`
(returns dL/dx and accumulates dL/dθ into each `Parameter.grad`, as torch does). Convolution
and pooling call `cnnkit.ops`; activations call `cnnkit.ops.activations`. Parameters are
initialised from torch's default distributions (`kaiming_uniform_(a=√5)`: U(±1/√fan_in) for
weights and biases of `Conv2d` and `Linear`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from cnnkit.core.checks import (
    non_negative_int,
    non_negative_pair,
    pair,
    positive_int,
    positive_pair,
)
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.nn import functional as F

DType = np.dtype | type


class Parameter:
    """A trainable array and its gradient (None until a backward pass writes one)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def accumulate(self, grad: np.ndarray) -> None:
        self.grad = grad if self.grad is None else self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters and sub-modules are found among the attributes, in order.

    Like torch, a module's own parameters come before those of its children, so the names
    (`conv1.weight`, `fc2.bias`, `0.weight` inside `Sequential`) match torch's `state_dict`.
    """

    training: bool = True
    needs_input_grad: bool = True  # False on a first layer: its backward skips dL/dx

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under torch's names."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays (NumPy, or anything `np.asarray` takes, e.g. CPU torch tensors) in.

        Strict like torch: missing or unexpected keys and shape mismatches are refused, and
        nothing is changed unless every entry fits. Values are cast to each parameter's dtype.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise CnnkitError(
                f"Error(s) in loading state_dict for {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}."
            )
        arrays = {}
        for name, p in params.items():
            value = state[name]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            arr = np.asarray(value)
            if arr.shape != p.shape:
                raise ShapeError(
                    f"size mismatch for {name}: copying a param with shape {arr.shape} from "
                    f"the state dict, the shape in current model is {p.shape}."
                )
            arrays[name] = arr
        for name, p in params.items():
            p.data[...] = arrays[name]

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def _uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype: DType):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


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
        self.weight.accumulate(gw)
        if self.bias is not None and gb is not None:
            self.bias.accumulate(gb)
        return gi  # type: ignore[return-value]  # None only when needs_input_grad is False

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
                raise CnnkitError(
                    f"{name} must be divisible by groups: {name}={value}, groups={groups}."
                )
        if padding_mode not in CONV_PADDING_MODES:
            raise CnnkitError(
                f"The 'padding_mode' parameter of Conv2d must be one of {list(CONV_PADDING_MODES)}."
                f" Got {padding_mode!r} instead."
            )
        self.kernel_size = positive_pair(kernel_size, "kernel_size", func="Conv2d")
        self.stride = positive_pair(stride, "stride", func="Conv2d")
        self.dilation = positive_pair(dilation, "dilation", func="Conv2d")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise CnnkitError(
                    "The 'padding' parameter of Conv2d must be an int, a pair of ints, 'valid' or "
                    f"'same'. Got {padding!r} instead."
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
        self.weight.accumulate(gw)
        if self.bias is not None:
            self.bias.accumulate(gb)
        return gi  # type: ignore[return-value]  # None only when needs_input_grad is False

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )


def _is_square(value: Any, n: int) -> bool:
    """`value` is `n` or `(n, n)` by the package's int rule (not `2.0`, not `True`)."""
    try:
        return pair(value, "value") == (n, n)
    except CnnkitError:
        return False


def max_pool_2x2(x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """2×2 max-pooling with stride 2 of x (N, C, H, W): (output, route for the backward).

    The four cells of each window, in torch's scan order, are a b / c d. The route holds
    b > a, d > c and max(c, d) > max(a, b): on ties the first cell wins, as in torch.
    """
    n, c, h, w = x.shape
    v = x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)
    a, b, cc, d = v[:, :, :, 0, :, 0], v[:, :, :, 0, :, 1], v[:, :, :, 1, :, 0], v[:, :, :, 1, :, 1]
    top, bottom = np.maximum(a, b), np.maximum(cc, d)  # (N, C, H/2, W/2) each
    route = (b > a, d > cc, bottom > top)
    return np.maximum(top, bottom), route


def max_pool_2x2_backward(
    grad_output: np.ndarray, route: tuple[np.ndarray, ...], input_shape: tuple[int, ...]
) -> np.ndarray:
    """Send each window's gradient to the cell `max_pool_2x2` picked: (N, C, H, W)."""
    right_top, right_bottom, from_bottom = route
    n, c, h, w = input_shape
    grad = (np.zeros if h % 2 or w % 2 else np.empty)(input_shape, dtype=grad_output.dtype)
    v = grad[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2)  # a view
    g_top = np.where(from_bottom, 0, grad_output)  # (N, C, H/2, W/2)
    g_bottom = grad_output - g_top
    np.multiply(g_top, ~right_top, out=v[:, :, :, 0, :, 0])
    np.multiply(g_top, right_top, out=v[:, :, :, 0, :, 1])
    np.multiply(g_bottom, ~right_bottom, out=v[:, :, :, 1, :, 0])
    np.multiply(g_bottom, right_bottom, out=v[:, :, :, 1, :, 1])
    return grad


class MaxPool2d(Module):
    """`torch.nn.MaxPool2d` on `cnnkit.ops.max_pool2d` / `max_pool2d_backward`.

    The 2×2, stride 2 case (SimpleCNN's) takes `max_pool_2x2`, which keeps three boolean
    masks instead of torch's int64 indices. Inputs with NaN: use the general path.
    """

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        ceil_mode: bool = False,
    ) -> None:
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self._two_by_two = (
            _is_square(self.kernel_size, 2)
            and _is_square(self.stride, 2)
            and _is_square(self.padding, 0)
            and _is_square(self.dilation, 1)
        )
        self._input_shape: tuple[int, ...] = ()
        self._input: np.ndarray | None = None  # general path only
        self._indices: np.ndarray | None = None  # general path only
        self._route: tuple[np.ndarray, ...] | None = None  # 2×2 path only

    def _args(self) -> dict[str, Any]:
        return dict(
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            ceil_mode=self.ceil_mode,
        )

    def _fast(self, x: np.ndarray) -> bool:
        return (
            self._two_by_two
            and x.ndim == 4
            and x.dtype.kind == "f"
            and min(x.shape[2:]) >= 2
            and not (self.ceil_mode and (x.shape[2] % 2 or x.shape[3] % 2))
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        from cnnkit.ops import max_pool2d

        self._input_shape = x.shape
        if self._fast(x):
            self._input = self._indices = None
            out, self._route = max_pool_2x2(x)
            return out
        self._input, self._route = x, None
        out, self._indices = max_pool2d(x, **self._args(), return_indices=True)
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        from cnnkit.ops import max_pool2d_backward

        if self._route is not None:
            return max_pool_2x2_backward(grad_output, self._route, self._input_shape)
        assert self._input is not None, "backward before forward"
        return max_pool2d_backward(grad_output, self._input, **self._args(), indices=self._indices)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """`torch.nn.AvgPool2d` on `cnnkit.ops.avg_pool2d` / `avg_pool2d_backward`."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self._input: np.ndarray | None = None

    def _args(self) -> dict[str, Any]:
        return dict(
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
            divisor_override=self.divisor_override,
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        from cnnkit.ops import avg_pool2d

        self._input = x
        return avg_pool2d(x, **self._args())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        from cnnkit.ops import avg_pool2d_backward

        assert self._input is not None, "backward before forward"
        return avg_pool2d_backward(grad_output, self._input, **self._args())

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


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
            raise ShapeError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit an "
                f"input of shape {x.shape}: dimensions must be in range [{-nd}, {nd - 1}]."
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


class Sequential(Module):
    """Modules applied in order; their parameters are named "0.weight", "1.bias", ..."""

    def __init__(self, *modules: Module) -> None:
        for i, module in enumerate(modules):
            setattr(self, str(i), module)

    def __iter__(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __getitem__(self, index: int) -> Module:
        return list(self)[index]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for module in self:
            x = module(x)
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        return grad_output
