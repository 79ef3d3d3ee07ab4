"""Max and average pooling in NumPy, forward and backward, with PyTorch's semantics.

Input (N, C, H, W) or unbatched (C, H, W) like torch, or a single (H, W) image (returned 2-D).
Output sizes, padding limits (at most half the kernel) and `ceil_mode` windows follow
`cnnkit.calc.arithmetic.pool2d_output_shape`. Max pooling pads with -inf; `indices` are, as in
torch,
flat positions `row · W + col` in each (H, W) input plane, and ties go to the first maximum in
window scan order (row by row). Every pass loops over the K_h·K_w kernel positions, each a strided
slice covering all windows at once (for 2×2/2 pooling: four slices), never over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.calc.arithmetic import effective_kernel, pool2d_output_shape
from cnnkit.core.checks import bad_parameter, check_int, pair
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.core.i18n import Message
from cnnkit.ops.padding import check_padded_size, pad2d

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
            end = (out - 1) * s + effective_kernel(k, d)  # last window's end, padded coordinates
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
        raise CnnkitError.from_template(
            (
                "The 'input' parameter of {func} must be a real-valued array. Got dtype "
                "{dtype} instead."
            ),
            func=func,
            dtype=x.dtype,
        )
    if x.ndim not in (2, 3, 4):
        raise ShapeError.from_template(
            ("{func} expects input (N, C, H, W), (C, H, W) or (H, W). Got shape {shape} instead."),
            func=func,
            shape=x.shape,
        )
    added_axes = 4 - x.ndim
    x = x.reshape((1,) * added_axes + x.shape)  # (N, C, H, W)
    if x.shape[2] < 1 or x.shape[3] < 1:
        raise ShapeError.from_template(
            "{func} needs a non-empty image. Got input shape {shape}.",
            func=func,
            shape=np.shape(input),
        )
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
    check_padded_size(x.shape, geometry.pads(), func)
    return x, geometry


def _window_slices(geo: _PoolGeometry) -> list[tuple[int, tuple[slice, slice]]]:
    """For each kernel position k (scan order), the (rows, cols) slices of the padded input that
    hold that position's value in every window: `xp[..., rows, cols]` is (N, C, H_out, W_out).

    Pooling loops over these K_h·K_w slices, never over pixels.
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = geo.kernel, geo.stride, geo.dilation, geo.output_hw
    return [
        (
            i * kw + j,
            (
                slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
                slice(j * dw, j * dw + sw * (wo - 1) + 1, sw),
            ),
        )
        for i in range(kh)
        for j in range(kw)
    ]


def _reduce(xp: np.ndarray, geo: _PoolGeometry, ufunc: np.ufunc) -> np.ndarray:
    """`ufunc` (np.maximum, np.add) over each window of the padded input: (N, C, H_out, W_out)."""
    slices = _window_slices(geo)
    out = xp[..., slices[0][1][0], slices[0][1][1]].copy()  # (N, C, H_out, W_out)
    for _, (rows, cols) in slices[1:]:
        ufunc(out, xp[..., rows, cols], out=out)
    return out


def _max_and_indices(
    x: np.ndarray, geo: _PoolGeometry, with_indices: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Window maxima (N, C, H_out, W_out) and, if asked, torch's indices of the first maximum
    of each window in scan order (-1 for a window that holds no input pixel, only padding)."""
    xp = pad2d(x, geo.pads(), value=-np.inf)  # (N, C, H_pad, W_pad)
    if not with_indices:
        return _reduce(xp, geo, np.maximum), None
    slices = _window_slices(geo)
    # Running maximum over the kernel positions in scan order; only a strictly larger value
    # moves the index, so ties keep the first maximum, as torch does.
    out = xp[..., slices[0][1][0], slices[0][1][1]].copy()  # (N, C, H_out, W_out)
    offset = np.zeros(out.shape, dtype=np.min_scalar_type(len(slices) - 1))
    step = np.empty_like(offset)
    for k, (rows, cols) in slices[1:]:
        tap = xp[..., rows, cols]
        larger = np.greater(tap, out)
        np.maximum(out, tap, out=out)
        # offset = where(larger, k, offset) without branches (unsigned wrap-around cancels):
        # a masked write mispredicts on random data and was 5x slower
        np.subtract(offset.dtype.type(k), offset, out=step)
        np.multiply(step, larger, out=step)
        offset += step
    return out, _flat_indices(offset, geo)


def _flat_indices(offset: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Kernel positions k (N, C, H_out, W_out) -> torch's indices `row · W + col` (int64).

    index = (window's top-left corner) + (position k inside the window), both as `row · W + col`.
    """
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = geo.kernel, geo.stride, geo.padding, geo.dilation
    (h, w), (ho, wo) = geo.input_shape[2:], geo.output_hw
    k = np.arange(kh * kw)
    inside = (k // kw) * dh * w + (k % kw) * dw  # (K_h·K_w,)
    rows, cols = np.arange(ho) * sh - ph, np.arange(wo) * sw - pw  # window corners
    indices = (rows[:, None] * w + cols[None, :]) + inside[offset]  # (N, C, H_out, W_out)
    # With dilation a window can fall entirely into the padding: it has no input pixel.
    has_row = (rows[:, None] + np.arange(kh) * dh >= 0) & (rows[:, None] + np.arange(kh) * dh < h)
    has_col = (cols[:, None] + np.arange(kw) * dw >= 0) & (cols[:, None] + np.arange(kw) * dw < w)
    empty = ~np.outer(has_row.any(axis=1), has_col.any(axis=1))  # (H_out, W_out)
    if empty.any():
        indices[..., empty] = -1
    return indices


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
    out, indices = _max_and_indices(x, geo, with_indices=return_indices)
    if indices is None:
        return geo.restore(out)
    return geo.restore(out), geo.restore(indices)


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
    """Gradient of `max_pool2d` w.r.t. its input: each window's gradient goes to its first
    maximum (scan order, as torch); overlapping windows add up. `indices` from the forward pass
    (`return_indices=True`, or torch's) skip the search for the maxima."""
    x, geo = _prepare(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    g = _grad_output(grad_output, geo, x.dtype, "max_pool2d_backward")
    if indices is None:
        _, idx = _max_and_indices(x, geo, with_indices=True)
        assert idx is not None
    else:
        idx = np.asarray(indices)
        expected = geo.output_shape[geo.added_axes :]
        if idx.shape != expected or idx.dtype.kind not in "iu":
            raise ShapeError.from_template(
                (
                    "The 'indices' parameter of max_pool2d_backward must be integers of the "
                    "output shape {expected}. Got {dtype} of shape {shape} instead."
                ),
                expected=expected,
                dtype=idx.dtype,
                shape=idx.shape,
            )
        idx = idx.reshape(geo.output_shape)
    n, c, h, w = geo.input_shape
    plane = np.arange(n * c, dtype=np.int64).reshape(n, c, 1, 1) * (h * w)
    flat, values = (idx + plane).ravel(), g.ravel()  # positions in the flattened input
    if idx.size and idx.min() < 0:  # windows without an input pixel pass no gradient
        keep = idx.ravel() >= 0
        flat, values = flat[keep], values[keep]
    (kh, kw), (sh, sw), (dh, dw) = geo.kernel, geo.stride, geo.dilation
    if sh >= effective_kernel(kh, dh) and sw >= effective_kernel(kw, dw):  # disjoint windows
        grad = np.zeros(n * c * h * w, dtype=x.dtype)
        grad[flat] = values
    else:  # a pixel can be the maximum of several windows: add up
        grad = np.bincount(flat, weights=values, minlength=n * c * h * w).astype(x.dtype)
    return geo.restore(grad.reshape(n, c, h, w))


def _grad_output(grad_output: Any, geo: _PoolGeometry, dtype: np.dtype, func: str) -> np.ndarray:
    g = np.asarray(grad_output, dtype=dtype)
    expected = geo.output_shape[geo.added_axes :]
    if g.shape != expected:
        raise ShapeError.from_template(
            (
                "The 'grad_output' parameter of {func} must have the output shape "
                "{expected}. Got shape {shape} instead."
            ),
            func=func,
            expected=expected,
            shape=g.shape,
        )
    return g.reshape(geo.output_shape)  # (N, C, H_out, W_out)


def _avg_divisor(
    geo: _PoolGeometry, count_include_pad: bool, divisor_override: Any, dtype: np.dtype
) -> np.ndarray:
    """torch's divisor per output pixel, (H_out, W_out): the window clipped to the padded input
    (`count_include_pad`) or to the input itself."""
    if divisor_override is not None:
        check_int(divisor_override, "divisor_override", func="avg_pool2d")
        if divisor_override == 0:
            raise bad_parameter("avg_pool2d", "divisor_override", Message("a non-zero int"), 0)
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
    total = _reduce(pad2d(x, geo.pads()), geo, np.add)  # (N, C, H_out, W_out)
    total /= divisor
    return geo.restore(total)


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
    (top, bottom), (left, right) = geo.pads()
    grad = np.zeros((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    for _, (rows, cols) in _window_slices(geo):  # every pixel of a window gets g / divisor
        grad[..., rows, cols] += g
    return geo.restore(grad[..., top : top + h, left : left + w].copy())  # (N, C, H, W)
