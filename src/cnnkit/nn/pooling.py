"""Pooling layers of the NumPy engine, like `torch.nn.MaxPool2d` / `torch.nn.AvgPool2d`.

They call `cnnkit.ops` (forward and backward); SimpleCNN's 2×2, stride-2 max-pooling has its
own faster path, `max_pool_2x2`, checked against torch in `tests/test_nn_layers.py`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnkit.core.checks import pair
from cnnkit.core.errors import CnnkitError
from cnnkit.nn.module import Module

__all__ = ["AvgPool2d", "MaxPool2d", "max_pool_2x2", "max_pool_2x2_backward"]


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
