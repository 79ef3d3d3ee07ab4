"""Max and average pooling in NumPy, forward and backward, with PyTorch's semantics.

Input (N, C, H, W) or unbatched (C, H, W) like torch, or a single (H, W) image (returned 2-D).
Output sizes, padding limits (at most half the kernel) and `ceil_mode` windows follow
`cnnkit.arithmetic.pool2d_output_shape`. Max pooling pads with -inf; `indices` are, as in torch,
flat positions `row · W + col` in each (H, W) input plane, and ties go to the first maximum in
window scan order (row by row). Every pass loops over the K_h·K_w kernel positions, each a strided
slice covering all windows at once (for 2×2/2 pooling: four slices), never over pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def _max(xp: np.ndarray, slices: list[tuple[int, tuple[slice, slice]]]) -> np.ndarray:
    """Window maxima (N, C, H_out, W_out) of the padded input xp."""
    out = xp[..., slices[0][1][0], slices[0][1][1]].copy()  # (N, C, H_out, W_out)
    for _, (rows, cols) in slices[1:]:
        np.maximum(out, xp[..., rows, cols], out=out)
    return out


def _first_max_masks(
    xp: np.ndarray, out: np.ndarray, slices: list[tuple[int, tuple[slice, slice]]]
) -> Iterator[tuple[int, tuple[slice, slice], np.ndarray]]:
    """For each kernel position k in scan order: where it holds its window's first maximum."""
    taken = np.zeros(out.shape, dtype=bool)  # windows whose maximum was already found
    for k, (rows, cols) in slices:
        hit = xp[..., rows, cols] == out
        hit &= ~taken
        taken |= hit
        yield k, (rows, cols), hit


def _flat_indices(offset: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Window offsets k (N, C, H_out, W_out) -> torch's indices `row · W + col` (int64)."""
    kw, (sh, sw), (ph, pw), (dh, dw) = geo.kernel[1], geo.stride, geo.padding, geo.dilation
    ho, wo = geo.output_hw
    rows = np.arange(ho)[:, None] * sh - ph + (offset // kw) * dh
    cols = np.arange(wo)[None, :] * sw - pw + (offset % kw) * dw
    return rows * geo.input_shape[3] + cols


def _offsets_from_indices(indices: np.ndarray, geo: _PoolGeometry) -> np.ndarray:
    """Inverse of `_flat_indices`: torch's indices -> window offsets k."""
    kw, (sh, sw), (ph, pw), (dh, dw) = geo.kernel[1], geo.stride, geo.padding, geo.dilation
    ho, wo = geo.output_hw
    row, col = np.divmod(indices, geo.input_shape[3])
    i = (row - (np.arange(ho)[:, None] * sh - ph)) // dh
    j = (col - (np.arange(wo)[None, :] * sw - pw)) // dw
    return i * kw + j


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
    xp = pad2d(x, geo.pads(), value=-np.inf)  # (N, C, H_pad, W_pad)
    slices = _window_slices(geo)
    out = _max(xp, slices)  # (N, C, H_out, W_out)
    if not return_indices:
        return geo.restore(out)
    offset = np.zeros(out.shape, dtype=np.int64)
    for k, _, hit in _first_max_masks(xp, out, slices):
        offset[hit] = k
    return geo.restore(out), geo.restore(_flat_indices(offset, geo))


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
    (`return_indices=True`) skip the search for the maxima."""
    x, geo = _prepare(input, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    g = _grad_output(grad_output, geo, x.dtype, "max_pool2d_backward")
    slices = _window_slices(geo)
    if indices is None:
        xp = pad2d(x, geo.pads(), value=-np.inf)  # (N, C, H_pad, W_pad)
        masks = ((sl, hit) for _, sl, hit in _first_max_masks(xp, _max(xp, slices), slices))
    else:
        idx = np.asarray(indices)
        if idx.shape != g.shape[geo.added_axes :] and idx.shape != g.shape:
            raise ShapeError(
                f"The 'indices' parameter of max_pool2d_backward must have the output shape "
                f"{g.shape[geo.added_axes :]}. Got shape {idx.shape} instead."
            )
        offset = _offsets_from_indices(idx.reshape(geo.output_shape), geo)
        masks = ((sl, offset == k) for k, sl in slices)
    return _scatter(((sl, g * hit) for sl, hit in masks), geo, x.dtype)


def _scatter(
    parts: Iterable[tuple[tuple[slice, slice], np.ndarray]], geo: _PoolGeometry, dtype: np.dtype
) -> np.ndarray:
    """Add each (N, C, H_out, W_out) part at its window slice of the padded input; crop."""
    n, c, h, w = geo.input_shape
    (top, bottom), (left, right) = geo.pads()
    grad = np.zeros((n, c, h + top + bottom, w + left + right), dtype=dtype)
    for (rows, cols), part in parts:
        grad[..., rows, cols] += part
    if top or bottom or left or right:
        grad = grad[..., top : top + h, left : left + w].copy()  # (N, C, H, W)
    return geo.restore(grad)


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
    xp = pad2d(x, geo.pads())  # (N, C, H_pad, W_pad)
    slices = _window_slices(geo)
    total = xp[..., slices[0][1][0], slices[0][1][1]].copy()  # (N, C, H_out, W_out)
    for _, (rows, cols) in slices[1:]:
        total += xp[..., rows, cols]
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
    return _scatter(((sl, g) for _, sl in _window_slices(geo)), geo, x.dtype)
