"""2-D convolution in NumPy: forward (im2col + one GEMM per group) and backward (col2im).

Semantics are `torch.nn.functional.conv2d`'s — cross-correlation, NCHW — plus `padding_mode`
(as `nn.Conv2d`) and two conveniences: a (C_in, H, W) input is unbatched, like torch, and a 2-D
image with a 2-D kernel gives a 2-D result, like the chapter's `manual_convolution`.

Shapes: input (N, C_in, H, W), weight (C_out, C_in/G, K_h, K_w), output (N, C_out, H_out, W_out),
with G groups. The im2col matrix ("cols") holds, for each group, one column per window position
(P per image, see `ConvGeometry.pitch`: the output pixels, plus unused positions with stride 1):

    cols[g] : (C_in/G · K_h · K_w, N · P)
    out[g]  = weight[g] (C_out/G, C_in/G · K_h · K_w) @ cols[g]

`conv2d_forward` returns the output together with a `Conv2dCache` (the geometry and `cols`) that
`conv2d_backward` accepts, so a training step builds `cols` once for both passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnkit.calc.arithmetic import conv2d_output_shape, resolve_padding
from cnnkit.core.checks import pair, positive_int
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.core.i18n import Message
from cnnkit.ops.padding import (
    Sides,
    check_padded_size,
    check_padding_mode,
    pad2d,
    pad2d_backward,
)

Pair = tuple[int, int]

__all__ = ["Conv2dCache", "ConvGeometry", "conv2d", "conv2d_backward", "conv2d_forward"]


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one convolution call except the numbers themselves."""

    input_shape: tuple[int, int, int, int]  # (N, C_in, H, W), after adding batch/channel axes
    weight_shape: tuple[int, int, int, int]  # (C_out, C_in/G, K_h, K_w)
    stride: Pair
    pads: Sides  # ((top, bottom), (left, right))
    dilation: Pair
    groups: int
    padding_mode: str
    output_hw: Pair
    added_axes: int  # 0: (N, C, H, W) given; 1: (C, H, W) given; 2: (H, W) image and kernel
    dtype: np.dtype

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.input_shape[0], self.weight_shape[0], *self.output_hw)

    @property
    def contiguous_rows(self) -> bool:
        """Stride 1: number the window positions `row · W_pad + col`, so that the windows of
        one image form a single run in the padded input (`_im2col`)."""
        return self.stride == (1, 1)

    @property
    def pitch(self) -> int:
        """Distance between two output rows in the columns of the im2col matrix: W_pad with
        contiguous rows (the last W_pad − W_out positions of each row are unused), else W_out."""
        (left, right), w = self.pads[1], self.input_shape[3]
        return w + left + right if self.contiguous_rows else self.output_hw[1]

    @property
    def positions(self) -> int:
        """P, the im2col columns per image: (H_out − 1) · pitch + W_out."""
        return (self.output_hw[0] - 1) * self.pitch + self.output_hw[1]

    def image_view(self, array: np.ndarray) -> np.ndarray:
        """View (..., H_out, W_out) of the output pixels among P positions (..., P)."""
        item = array.itemsize
        assert array.shape[-1] == self.positions and array.strides[-1] == item
        return as_strided(
            array,
            shape=(*array.shape[:-1], *self.output_hw),
            strides=(*array.strides[:-1], self.pitch * item, item),
        )

    def restore(self, array: np.ndarray) -> np.ndarray:
        """Drop the axes added to a (C, H, W) or (H, W) input again."""
        return array.reshape(array.shape[self.added_axes :]) if self.added_axes else array


@dataclass
class Conv2dCache:
    """What `conv2d_forward` computed and `conv2d_backward` can reuse.

    `cols` is the im2col matrix, (G, C_in/G · K_h · K_w, N · P), for the input the forward pass
    saw; pass the cache only together with that same input and weight.
    """

    geometry: ConvGeometry
    cols: np.ndarray


def _real_array(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise CnnkitError.from_template(
            (
                "The {name!r} parameter of conv2d must be a real-valued array. Got dtype "
                "{dtype} instead."
            ),
            name=name,
            dtype=array.dtype,
        )
    return array


def _compute_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """The floating dtype the arrays share (float32 stays float32); all-integer -> float64."""
    floats = [a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    return np.result_type(*floats) if floats else np.dtype(np.float64)


def _batched(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(input (N, C_in, H, W), weight (C_out, C_in/G, K_h, K_w), how many axes were added)."""
    if x.ndim == 2 and w.ndim == 2:
        return x[None, None], w[None, None], 2  # (1, 1, H, W), (1, 1, K_h, K_w)
    if x.ndim == 3 and w.ndim == 4:
        return x[None], w, 1  # (1, C_in, H, W)
    if x.ndim == 4 and w.ndim == 4:
        return x, w, 0
    # Message(...) marks the template for the catalog; the CLI words it in the reader's language
    template = Message(
        "conv2d expects input (N, C_in, H, W) or (C_in, H, W) with weight "
        "(C_out, C_in/groups, K_h, K_w), or a 2-D image with a 2-D kernel. "
        "Got input shape {x} and weight shape {w} instead."
    )
    raise ShapeError.from_template(template, x=x.shape, w=w.shape)


def prepare_conv(
    input: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    dilation: Any,
    groups: Any,
    padding_mode: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, ConvGeometry]:
    """Validate like torch; return (input (N, C, H, W), weight (C_out, C_in/G, K_h, K_w), bias,
    geometry), all in one floating dtype."""
    x, w, added_axes = _batched(_real_array(input, "input"), _real_array(weight, "weight"))
    b = None if bias is None else _real_array(bias, "bias")
    dtype = _compute_dtype(x, w, b)

    groups = positive_int(groups, "groups", func="conv2d")
    n, c_in, h, width = x.shape
    c_out, c_in_g, kh, kw = w.shape
    shapes = {"x": tuple(np.shape(input)), "w": tuple(np.shape(weight)), "groups": groups}
    if c_in_g * groups != c_in:
        template = Message(
            "Input shape {x} does not match weight shape {w}: {c_in} input channels vs "
            "{c_in_g} per group × groups={groups} = {total}."
        )
        raise ShapeError.from_template(
            template, c_in=c_in, c_in_g=c_in_g, total=c_in_g * groups, **shapes
        )
    if c_out % groups or c_out == 0:
        template = Message(
            "Input shape {x} does not match weight shape {w}: {c_out} output channels is not "
            "a positive multiple of groups={groups}."
        )
        raise ShapeError.from_template(template, c_out=c_out, **shapes)
    if b is not None and not (b.shape == (c_out,) or (added_axes == 2 and b.shape == ())):
        raise ShapeError.from_template(
            (
                "The 'bias' parameter of conv2d must have shape ({c_out},) for weight "
                "shape {shape}. Got shape {shape2} instead."
            ),
            c_out=c_out,
            shape=tuple(np.shape(weight)),
            shape2=b.shape,
        )
    if h < 1 or width < 1 or kh < 1 or kw < 1:
        raise ShapeError.from_template(
            (
                "conv2d needs a non-empty image and kernel. Got input shape {shape} and "
                "weight shape {shape2} instead."
            ),
            shape=tuple(np.shape(input)),
            shape2=tuple(np.shape(weight)),
        )
    # Validates stride, dilation and padding (naming the parameter) and kernel vs padded input.
    output_hw = conv2d_output_shape((h, width), (kh, kw), stride, padding, dilation)
    dilation_hw = pair(dilation, "dilation")
    stride_hw = pair(stride, "stride")
    pads = resolve_padding(padding, (kh, kw), dilation_hw, stride=stride_hw, func="conv2d")
    mode = check_padding_mode(padding_mode, pads, (h, width), "conv2d")
    check_padded_size(x.shape, pads, "conv2d")

    geometry = ConvGeometry(
        input_shape=(n, c_in, h, width),
        weight_shape=(c_out, c_in_g, kh, kw),
        stride=stride_hw,
        pads=pads,
        dilation=dilation_hw,
        groups=groups,
        padding_mode=mode,
        output_hw=output_hw,
        added_axes=added_axes,
        dtype=dtype,
    )
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    if b is not None:
        b = b.astype(dtype, copy=False).reshape(c_out)
    return x, w, b, geometry


def _im2col(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The im2col matrix of x (N, C_in, H, W): (G, C_in/G · K_h · K_w, N · P).

    Column `n · P + p` holds the window at output position p of image n (see `pitch`).
    """
    xp = np.ascontiguousarray(pad2d(x, geo.pads, geo.padding_mode))  # (N, C_in, H_pad, W_pad)
    n, c_in = xp.shape[:2]
    _, _, kh, kw = geo.weight_shape
    (sh, sw), (dh, dw), (ho, wo) = geo.stride, geo.dilation, geo.output_hw
    s_n, s_c, s_h, s_w = xp.strides
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    if geo.contiguous_rows:  # position p = row · W_pad + col: one run of P values
        shape, strides = (geo.positions,), (s_w,)
    else:
        shape, strides = (ho, wo), (sh * s_h, sw * s_w)
    windows = as_strided(
        xp,
        shape=(c_in, kh, kw, n, *shape),
        strides=(s_c, dh * s_h, dw * s_w, s_n, *strides),
        writeable=False,
    )  # (C_in, K_h, K_w, N, P) or (C_in, K_h, K_w, N, H_out, W_out), a view
    g = geo.groups
    return windows.reshape(g, c_in // g * kh * kw, n * geo.positions)  # one copy


def conv2d_forward(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, Conv2dCache]:
    """`conv2d` that also returns the `Conv2dCache` for `conv2d_backward`."""
    x, w, b, geo = prepare_conv(
        input, weight, bias, stride, padding, dilation, groups, padding_mode
    )
    cols = _im2col(x, geo)  # (G, K, N·P)
    n, c_out = geo.output_shape[:2]
    g = geo.groups
    product = np.matmul(w.reshape(g, c_out // g, -1), cols)  # (G, C_out/G, N·P)
    pixels = geo.image_view(product.reshape(c_out, n, geo.positions))  # (C_out, N, H_out, W_out)
    out = np.empty(geo.output_shape, dtype=geo.dtype)  # (N, C_out, H_out, W_out)
    np.copyto(out, pixels.transpose(1, 0, 2, 3))
    if b is not None:  # (adding during the copy above is several times slower)
        out += b[:, None, None]
    return geo.restore(out), Conv2dCache(geo, cols)


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """2-D cross-correlation with `torch.nn.functional.conv2d`'s semantics.

    - `stride`, `dilation`: int or (h, w); `padding`: int, (h, w), `(top, bottom, left, right)`,
      `"valid"` or `"same"` (stride 1; an odd total puts the extra pixel bottom/right, as torch).
    - `padding_mode`: `"zeros"`, `"reflect"`, `"replicate"`, `"circular"` (as `nn.Conv2d`) or
      `"symmetric"` (SciPy's `boundary="symm"`).
    - input (N, C_in, H, W) -> (N, C_out, H_out, W_out); (C_in, H, W) -> (C_out, H_out, W_out);
      a 2-D image with a 2-D kernel -> 2-D result.
    - float32 and float64 are kept (float32 with an integer image stays float32); an
      all-integer call is computed in float64.
    """
    out, _ = conv2d_forward(input, weight, bias, stride, padding, dilation, groups, padding_mode)
    return out


def conv2d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    *,
    needs_input_grad: bool = True,
    cache: Conv2dCache | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of `conv2d` -> `(grad_input or None, grad_weight, grad_bias)`.

    `grad_output` has the shape `conv2d` returned; `grad_input` and `grad_weight` have the shapes
    of `input` and `weight`, `grad_bias` is (C_out,). With `cache` (from `conv2d_forward` on the
    same input and weight) the im2col matrix is reused. The gradient that reaches padded cells is
    added to the input pixels they copy, for every `padding_mode`.
    """
    x, w, _, geo = prepare_conv(
        input, weight, None, stride, padding, dilation, groups, padding_mode
    )
    n, c_out, ho, wo = geo.output_shape
    g_out = np.asarray(grad_output, dtype=geo.dtype)
    expected = geo.output_shape[geo.added_axes :]
    if g_out.shape != expected:
        raise ShapeError.from_template(
            (
                "The 'grad_output' parameter of conv2d_backward must have the output "
                "shape {expected}. Got shape {shape} instead."
            ),
            expected=expected,
            shape=g_out.shape,
        )
    g_out = g_out.reshape(geo.output_shape)  # (N, C_out, H_out, W_out)
    g = geo.groups
    cols = cache.cols if cache is not None else _im2col(x, geo)  # (G, K, N·P)

    # grad_output laid out like the im2col columns, zero at the unused positions
    unused = geo.positions != ho * wo
    g_mat = (np.zeros if unused else np.empty)((c_out, n, geo.positions), dtype=geo.dtype)
    geo.image_view(g_mat)[...] = g_out.transpose(1, 0, 2, 3)  # (C_out, N, H_out, W_out)
    g_mat = g_mat.reshape(g, c_out // g, n * geo.positions)  # (G, C_out/G, N·P)
    grad_bias = g_mat.sum(axis=-1).reshape(c_out)
    # cols @ g_mat.T rather than g_mat @ cols.T: the same numbers, but with two threads
    # OpenBLAS stalled far less often on this orientation of SimpleCNN's conv2 (288 × 64 result,
    # inner dimension N·P = 14 208) than on the transposed one.
    grad_weight = np.matmul(cols, g_mat.transpose(0, 2, 1))  # (G, K, C_out/G)
    grad_weight = grad_weight.transpose(0, 2, 1).reshape(np.shape(weight))

    grad_input = None
    if needs_input_grad:
        w_mat = w.reshape(g, c_out // g, -1).transpose(0, 2, 1)  # (G, K, C_out/G)
        d_cols = np.matmul(w_mat, g_mat)  # (G, K, N·P), zero at the unused positions
        grad_input = geo.restore(_col2im(d_cols, geo))
    return grad_input, grad_weight, grad_bias


def _col2im(d_cols: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """Scatter-add im2col gradients back onto the input: (G, K, N·P) -> (N, C_in, H, W)."""
    n, c_in, h, w = geo.input_shape
    _, _, kh, kw = geo.weight_shape
    (sh, sw), (dh, dw), (ho, wo) = geo.stride, geo.dilation, geo.output_hw
    (top, bottom), (left, right) = geo.pads
    h_pad, w_pad = h + top + bottom, w + left + right
    d_cols = d_cols.reshape(c_in, kh, kw, n, geo.positions)  # (C_in, K_h, K_w, N, P)
    d_padded = np.zeros((c_in, n, h_pad, w_pad), dtype=d_cols.dtype)
    runs = d_padded.reshape(c_in, n, h_pad * w_pad)  # a view
    for i in range(kh):
        for j in range(kw):
            if geo.contiguous_rows:  # each (c, n) window run is contiguous: see `_im2col`
                start = i * dh * w_pad + j * dw
                runs[:, :, start : start + geo.positions] += d_cols[:, i, j]
            else:
                rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                d_padded[:, :, rows, cols] += d_cols[:, i, j].reshape(c_in, n, ho, wo)
    d_input = pad2d_backward(d_padded, geo.pads, geo.padding_mode, (h, w))  # (C_in, N, H, W)
    return np.ascontiguousarray(d_input.transpose(1, 0, 2, 3))  # (N, C_in, H, W)
