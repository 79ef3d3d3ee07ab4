"""Max and average pooling in NumPy, forward and backward, with PyTorch's semantics.

Input (N, C, H, W) or unbatched (C, H, W) like torch, or a single (H, W) image (returned 2-D).
Output sizes, padding limits (at most half the kernel) and `ceil_mode` windows follow
`cnnkit.arithmetic.pool2d_output_shape`. Max pooling pads with -inf; `indices` are, as in torch,
flat positions `row · W + col` in each (H, W) input plane, and ties go to the first maximum in
window scan order (row by row). Windows that tile the input (kernel == stride, no padding, no
dilation) take a reshape fast path instead of strided windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnkit.arithmetic import pair, pool2d_output_shape
from cnnkit.errors import CnnkitError, ShapeError
from cnnkit.ops.padding import pad2d

Pair = tuple[int, int]

__all__ = ["avg_pool2d", "avg_pool2d_backward", "max_pool2d", "max_pool2d_backward"]


@dataclass(frozen=True)
class _PoolGeometry:
    input_shape: tuple[int, int, int, int]  # (N, C, H, W)
    kernel: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    output_hw: Pair
    added_axes: int  # 0: (N, C, H, W) given; 1: (C, H, W); 2: (H, W)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (*self.input_shape[:2], *self.output_hw)

    @property
    def tiles(self) -> bool:
        """Windows are the cells of a grid over the input: the reshape fast path applies."""
        (h, w), (ho, wo) = self.input_shape[2:], self.output_hw
        return (
            self.kernel == self.stride
            and self.padding == (0, 0)
            and self.dilation == (1, 1)
            and ho * self.kernel[0] <= h
            and wo * self.kernel[1] <= w
        )

    def restore(self, array: np.ndarray) -> np.ndarray:
        return array.reshape(array.shape[self.added_axes :]) if self.added_axes else array

    def pads(self) -> tuple[Pair, Pair]:
        """Padding per side that holds every window, ceil_mode's last ones included."""
        sides = []
        for size, k, s, p, d, out in zip(
            self.input_shape[2:],
            self.kernel,
            self.stride,
            self.padding,
            self.dilation,
            self.output_hw,
            strict=True,
        ):
            end = (out - 1) * s + d * (k - 1) + 1  # last window's end, in padded coordinates
            sides.append((p, max(0, end - size - p)))
        return (sides[0], sides[1])


def _prepare(
    input: Any,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    ceil_mode: bool,
    func: str,
) -> tuple[np.ndarray, _PoolGeometry]:
    x = np.asarray(input)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    elif x.dtype.kind != "f":
        raise CnnkitError(
            f"The 'input' parameter of {func} must be a real-valued array. "
            f"Got dtype {x.dtype} instead."
        )
    if x.ndim not in (2, 3, 4):
        raise ShapeError(
            f"{func} expects input (N, C, H, W), (C, H, W) or (H, W). Got shape {x.shape} instead."
        )
    added_axes = 4 - x.ndim
    x = x.reshape((1,) * added_axes + x.shape)  # (N, C, H, W)
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ShapeError(f"{func} needs a non-empty image. Got input shape {np.shape(input)}.")
    # Validates kernel_size, stride, padding (at most half the kernel), dilation, window fit.
    output_hw = pool2d_output_shape(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    kernel = pair(kernel_size, "kernel_size", func=func)
    geometry = _PoolGeometry(
        input_shape=x.shape,  # 4-D by construction
        kernel=kernel,
        stride=kernel if stride is None else pair(stride, "stride", func=func),
        padding=pair(padding, "padding", func=func),
        dilation=pair(dilation, "dilation", func=func),
        output_hw=output_hw,
        added_axes=added_axes,
    )
    return x, geometry


def _windows(xp: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """View (N, C, H_out, W_out, K_h, K_w) of the padded input xp."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = geo.kernel, geo.stride, geo.dilation, geo.output_hw
    s_n, s_c, s_h, s_w = xp.strides
    return as_strided(
        xp,
        shape=(*xp.shape[:2], ho, wo, kh, kw),
        strides=(s_n, s_c, sh * s_h, sw * s_w, dh * s_h, dw * s_w),
        writeable=False,
    )


def _tiles(x: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """View (N, C, H_out, K_h, W_out, K_w) of x cut into the pooling tiles."""
    n, c = geo.input_shape[:2]
    (kh, kw), (ho, wo) = geo.kernel, geo.output_hw
    return x[:, :, : ho * kh, : wo * kw].reshape(n, c, ho, kh, wo, kw)


def _window_argmax(x: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Index of the first maximum in each window, in scan order: (N, C, H_out, W_out) ints."""
    n, c, ho, wo = geo.output_shape
    kh, kw = geo.kernel
    if geo.tiles:
        flat = _tiles(x, geo).transpose(0, 1, 2, 4, 3, 5)  # (N, C, H_out, W_out, K_h, K_w)
    else:
        xp = pad2d(x, geo.pads(), value=-np.inf)
        flat = _windows(xp, geo)  # (N, C, H_out, W_out, K_h, K_w)
    return flat.reshape(n, c, ho, wo, kh * kw).argmax(axis=-1)


def _flat_indices(offset: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Window offsets (N, C, H_out, W_out) -> torch's indices `row · W + col` (int64)."""
    kw, (sh, sw), (ph, pw), (dh, dw) = geo.kernel[1], geo.stride, geo.padding, geo.dilation
    ho, wo = geo.output_hw
    rows = np.arange(ho)[:, None] * sh - ph + (offset // kw) * dh
    cols = np.arange(wo)[None, :] * sw - pw + (offset % kw) * dw
    return (rows * geo.input_shape[3] + cols).astype(np.int64)


def max_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """`torch.nn.functional.max_pool2d`: the maximum of each window (padding counts as -inf).

    With `return_indices`, also returns torch's flat indices, which `max_pool2d_backward` takes.
    """
    x, geo = _prepare(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    if return_indices:
        offset = _window_argmax(x, geo)  # (N, C, H_out, W_out)
        indices = _flat_indices(offset, geo)
        out = np.take_along_axis(
            x.reshape(*x.shape[:2], -1), indices.reshape(*x.shape[:2], -1), axis=-1
        ).reshape(geo.output_shape)  # (N, C, H_out, W_out)
        return geo.restore(out), geo.restore(indices)
    if geo.tiles:
        out = _tiles(x, geo).max(axis=(3, 5))  # (N, C, H_out, W_out)
    else:
        out = _windows(pad2d(x, geo.pads(), value=-np.inf), geo).max(axis=(4, 5))
    return geo.restore(out)


def max_pool2d_backward(
    grad_output: Any,
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    indices: Any = None,
) -> np.ndarray:
    """Gradient of `max_pool2d` w.r.t. its input: each window's gradient goes to its (first)
    maximum; overlapping windows add up. Pass the forward pass's `indices` to skip the search."""
    x, geo = _prepare(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    g = _grad_output(grad_output, geo, x.dtype, "max_pool2d_backward")
    n, c, h, w = geo.input_shape
    if indices is None:
        offset = _window_argmax(x, geo)  # (N, C, H_out, W_out)
        if geo.tiles:
            return geo.restore(_scatter_tiles(g, offset, geo))
        idx = _flat_indices(offset, geo)
    else:
        idx = np.asarray(indices).reshape(geo.output_shape)
    plane = np.arange(n * c).reshape(n, c, 1, 1) * (h * w)
    grad = np.bincount((idx + plane).ravel(), weights=g.ravel(), minlength=n * c * h * w)
    return geo.restore(grad.astype(x.dtype, copy=False).reshape(n, c, h, w))


def _scatter_tiles(g: np.ndarray, offset: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Non-overlapping windows: put each gradient at its window offset. -> (N, C, H, W)."""
    n, c, h, w = geo.input_shape
    (kh, kw), (ho, wo) = geo.kernel, geo.output_hw
    one_hot = offset[..., None] == np.arange(kh * kw)  # (N, C, H_out, W_out, K_h·K_w)
    tiles = (one_hot * g[..., None]).reshape(n, c, ho, wo, kh, kw)
    grad = np.zeros((n, c, h, w), dtype=g.dtype)
    _tiles(grad, geo)[...] = tiles.transpose(0, 1, 2, 4, 3, 5)  # (N, C, H_out, K_h, W_out, K_w)
    return grad


def _grad_output(grad_output: Any, geo: _PoolGeometry, dtype: np.dtype, func: str) -> np.ndarray:
    g = np.asarray(grad_output, dtype=dtype)
    expected = geo.output_shape[geo.added_axes :]
    if g.shape != expected:
        raise ShapeError(
            f"The 'grad_output' parameter of {func} must have the output shape {expected}. "
            f"Got shape {g.shape} instead."
        )
    return g.reshape(geo.output_shape)  # (N, C, H_out, W_out)


def _avg_divisor(
    geo: _PoolGeometry, count_include_pad: bool, divisor_override: Any, dtype: np.dtype
) -> np.ndarray:
    """torch's divisor per output pixel, (H_out, W_out): the window clipped to the padded input
    (`count_include_pad`) or to the input itself."""
    if divisor_override is not None:
        if (
            isinstance(divisor_override, bool)
            or not isinstance(divisor_override, int | np.integer)
            or divisor_override == 0
        ):
            raise CnnkitError(
                "The 'divisor_override' parameter of avg_pool2d must be a non-zero int. "
                f"Got {divisor_override!r} instead."
            )
        return np.full(geo.output_hw, divisor_override, dtype=dtype)
    counts = []
    for size, k, s, p, out in zip(
        geo.input_shape[2:], geo.kernel, geo.stride, geo.padding, geo.output_hw, strict=True
    ):
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    return np.outer(counts[0], counts[1]).astype(dtype)  # (H_out, W_out)


def avg_pool2d(
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """`torch.nn.functional.avg_pool2d`: the sum of each window over torch's divisor."""
    x, geo = _prepare(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    divisor = _avg_divisor(geo, count_include_pad, divisor_override, x.dtype)
    if geo.tiles:
        total = _tiles(x, geo).sum(axis=(3, 5))  # (N, C, H_out, W_out)
    else:
        total = _windows(pad2d(x, geo.pads()), geo).sum(axis=(4, 5))
    return geo.restore(total / divisor)


def avg_pool2d_backward(
    grad_output: Any,
    input: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of `avg_pool2d` w.r.t. its input (input is needed for its shape and dtype)."""
    x, geo = _prepare(input, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    g = _grad_output(grad_output, geo, x.dtype, "avg_pool2d_backward")
    g = g / _avg_divisor(geo, count_include_pad, divisor_override, x.dtype)
    n, c, h, w = geo.input_shape
    (kh, kw), (sh, sw), (ho, wo) = geo.kernel, geo.stride, geo.output_hw
    (top, bottom), (left, right) = geo.pads()
    grad = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, :, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += g
    return geo.restore(grad[:, :, top : top + h, left : left + w].copy())
