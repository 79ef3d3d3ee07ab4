"""Shape arithmetic for convolution, pooling and transposed convolution.

Parameter counts are in `cnnkit.calc.params`.

Pure Python (no torch, no NumPy), so `cnnkit size` and the receptive-field code stay fast.
Every rule follows PyTorch (`nn.Conv2d`, `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.ConvTranspose2d`,
`F.conv2d(padding="same")`); `tests/test_arithmetic.py` checks them against the real layers.

One axis (size I, kernel K, stride S, padding P_before + P_after, dilation D):

    K_eff = D·(K − 1) + 1
    O     = floor((I + P_before + P_after − K_eff) / S) + 1          (convolution, pooling)
    O     = (I − 1)·S − 2P + D·(K − 1) + output_padding + 1          (transposed convolution)

Padding given per side is ordered `(top, bottom, left, right)` — note that this is *not*
`torch.nn.functional.pad`'s order, which starts with the last axis: `(left, right, top, bottom)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnkit.core.checks import (
    Pair,
    bad_parameter,
    is_int,
    non_negative_int,
    non_negative_pair,
    pair,
    positive_int,
    positive_pair,
)
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.core.i18n import Message

Sides = tuple[Pair, Pair]  # ((top, bottom), (left, right))

PADDING_STRINGS = ("valid", "same", "full")
_AXES = ("height", "width")

__all__ = [
    "LAYER_KINDS",
    "PADDING_STRINGS",
    "LayerShape",
    "conv2d_output_shape",
    "conv_pool_blocks_output_shape",
    "conv_output_size",
    "conv_transpose2d_output_shape",
    "conv_transpose_output_size",
    "effective_kernel",
    "effective_kernel_hw",
    "layer_output_shape",
    "pool2d_output_shape",
    "resolve_padding",
    "same_padding",
]


# --------------------------------------------------------------------------- validation
# The checks themselves live in `cnnkit.core.checks` (one rule for ints, pairs and bools).


def effective_kernel(kernel_size: int, dilation: int = 1) -> int:
    """The span of a dilated kernel on one axis, `D·(K − 1) + 1` (checked ints in, int out)."""
    return dilation * (kernel_size - 1) + 1


def effective_kernel_hw(kernel_size: Pair, dilation: Pair = (1, 1)) -> Pair:
    """`effective_kernel` on both axes: `(K_eff_h, K_eff_w)`."""
    return (
        effective_kernel(kernel_size[0], dilation[0]),
        effective_kernel(kernel_size[1], dilation[1]),
    )


# --------------------------------------------------------------------------- padding


def resolve_padding(
    padding: Any,
    kernel_size: Any,
    dilation: Any = 1,
    *,
    stride: Any = 1,
    func: str | None = None,
) -> Sides:
    """Padding per side, `((top, bottom), (left, right))`, from any accepted form.

    - `int` p: p on all four sides; `(ph, pw)`: ph top and bottom, pw left and right;
    - `(top, bottom, left, right)`: explicit per side (not `F.pad`'s `(left, right, top, bottom)`);
    - `"valid"`: no padding;
    - `"same"`: output size = input size; stride must be 1 (like torch). The total
      `D·(K − 1)` is split with the extra pixel at the end (bottom / right), as torch does;
    - `"full"`: `D·(K − 1)` on every side (every partial overlap, like `scipy.signal`'s mode).
    """
    kh, kw = positive_pair(kernel_size, "kernel_size", func=func)
    dh, dw = positive_pair(dilation, "dilation", func=func)
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            allowed = ", ".join(map(repr, PADDING_STRINGS))
            raise bad_parameter(
                func,
                "padding",
                Message(
                    "an int, a pair, a 4-tuple (top, bottom, left, right) or one of {allowed}",
                    allowed=allowed,
                ),
                padding,
            )
        total_h, total_w = (e - 1 for e in effective_kernel_hw((kh, kw), (dh, dw)))
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "full":
            return ((total_h, total_h), (total_w, total_w))
        if positive_pair(stride, "stride", func=func) != (1, 1):
            raise CnnkitError.from_template(
                (
                    "padding='same' needs stride 1 (like torch); got stride={stride!r}. Use "
                    "explicit padding with strided convolutions."
                ),
                stride=stride,
            )
        return ((total_h // 2, total_h - total_h // 2), (total_w // 2, total_w - total_w // 2))
    if isinstance(padding, Sequence) and len(padding) == 4:
        if all(is_int(v) and v >= 0 for v in padding):
            top, bottom, left, right = (int(v) for v in padding)
            return ((top, bottom), (left, right))
        raise bad_parameter(
            func, "padding", Message("non-negative ints (top, bottom, left, right)"), padding
        )
    ph, pw = non_negative_pair(padding, "padding", func=func)
    return ((ph, ph), (pw, pw))


def same_padding(kernel_size: Any, dilation: Any = 1) -> Sides:
    """The `"same"` padding per side, `((top, bottom), (left, right))`, extra pixel at the end."""
    return resolve_padding("same", kernel_size, dilation)


# --------------------------------------------------------------------------- output sizes


def _axis_padding(padding: Any, func: str | None) -> Pair:
    """One axis' padding, an int or `(before, after)`, both >= 0."""
    return non_negative_pair(padding, "padding", func=func)


def conv_output_size(
    size: Any,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    *,
    ceil_mode: bool = False,
    axis: str | None = None,
    func: str | None = "conv_output_size",
) -> int:
    """Output length along one axis of a convolution or pooling window.

    `padding` is an int or `(before, after)`. With `ceil_mode` (pooling) the division rounds up,
    but, like PyTorch, a last window that would start in the right padding is dropped, and a
    single window may run past the end of a padded input smaller than the kernel.
    """
    size = positive_int(size, "size", func=func)
    k = positive_int(kernel_size, "kernel_size", func=func)
    s = positive_int(stride, "stride", func=func)
    d = positive_int(dilation, "dilation", func=func)
    before, after = _axis_padding(padding, func)
    k_eff = effective_kernel(k, d)
    padded = size + before + after
    span = padded - k_eff
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + before:
        out -= 1  # the last window must start inside the input or the left padding
    # Without ceil_mode, out < 1 exactly when the kernel is larger than the padded input. With
    # it, torch accepts a single window that runs past the end (input 2, kernel 3, stride 2).
    if out < 1:
        fields = dict(k_eff=k_eff, padded=padded, size=size, before=before, after=after)
        fields.update(axis=axis or "", func=func or "the layer", k=k, d=d)
        # the template (not an f-string) so that the CLI can word it in another language
        template = "Kernel size {k_eff}{dil} is larger than the padded input size {padded}"
        template = template.replace("{dil}", " (kernel {k}, dilation {d})" if d != 1 else "")
        template += " along {axis}" if axis else ""
        template += " (input {size} + padding {before} + {after}) in {func}."
        raise ShapeError.from_template(template, **fields)
    return out


def conv2d_output_shape(
    input_hw: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1
) -> Pair:
    """`(H_out, W_out)` of `nn.Conv2d`; `padding` takes every form of `resolve_padding`."""
    func = "conv2d"
    h, w = positive_pair(input_hw, "input_size", func=func)
    kh, kw = positive_pair(kernel_size, "kernel_size", func=func)
    sh, sw = positive_pair(stride, "stride", func=func)
    dh, dw = positive_pair(dilation, "dilation", func=func)
    pad_h, pad_w = resolve_padding(padding, (kh, kw), (dh, dw), stride=(sh, sw), func=func)
    return (
        conv_output_size(h, kh, sh, pad_h, dh, axis="height", func=func),
        conv_output_size(w, kw, sw, pad_w, dw, axis="width", func=func),
    )


def pool2d_output_shape(
    input_hw: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
) -> Pair:
    """`(H_out, W_out)` of `nn.MaxPool2d` / `nn.AvgPool2d` (AvgPool has dilation 1).

    `stride=None` means stride = kernel size. Padding is an int or pair (symmetric, as in torch)
    and, as torch requires, at most half the kernel size.
    """
    func = "pool2d"
    h, w = positive_pair(input_hw, "input_size", func=func)
    kh, kw = positive_pair(kernel_size, "kernel_size", func=func)
    sh, sw = (kh, kw) if stride is None else positive_pair(stride, "stride", func=func)
    dh, dw = positive_pair(dilation, "dilation", func=func)
    ph, pw = non_negative_pair(padding, "padding", func=func)
    if ph > kh // 2 or pw > kw // 2:
        raise CnnkitError.from_template(
            (
                "The 'padding' parameter of {func} must be at most half the kernel size "
                "(kernel {kh_kw} allows {kh_2_kw_2}). Got {padding!r} instead."
            ),
            func=func,
            kh_kw=(kh, kw),
            kh_2_kw_2=(kh // 2, kw // 2),
            padding=padding,
        )
    return (
        conv_output_size(h, kh, sh, ph, dh, ceil_mode=ceil_mode, axis="height", func=func),
        conv_output_size(w, kw, sw, pw, dw, ceil_mode=ceil_mode, axis="width", func=func),
    )


def conv_pool_blocks_output_shape(input_hw: Any, num_blocks: int) -> Pair:
    """(H, W) after `num_blocks` of the chapter's block: 3×3 conv with padding 1, then a 2×2
    max-pool with stride 2 (SimpleCNN and exercise 4's CNN flatten what this leaves)."""
    hw = pair(input_hw, "input_hw")
    for _ in range(num_blocks):
        hw = pool2d_output_shape(conv2d_output_shape(hw, 3, padding=1), 2, 2)
    return hw


def conv_transpose_output_size(
    size: Any,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    *,
    axis: str | None = None,
    func: str | None = "conv_transpose_output_size",
) -> int:
    """Output length along one axis of `nn.ConvTranspose2d` (symmetric int padding)."""
    size = positive_int(size, "size", func=func)
    k = positive_int(kernel_size, "kernel_size", func=func)
    s = positive_int(stride, "stride", func=func)
    d = positive_int(dilation, "dilation", func=func)
    p = non_negative_int(padding, "padding", func=func)
    op = non_negative_int(output_padding, "output_padding", func=func)
    if op >= s and op >= d:
        allowed = Message("smaller than the stride ({s}) or the dilation ({d})", s=s, d=d)
        raise bad_parameter(func, "output_padding", allowed, output_padding)
    out = (size - 1) * s - 2 * p + effective_kernel(k, d) + op
    if out < 1:
        where = Message(" along {axis}", axis=Message(axis)) if axis else ""
        raise ShapeError.from_template(
            (
                "Output size {out}{where} of {func} is not positive: input "
                "{size}, kernel {k}, stride {s}, padding {p}, dilation {d}, "
                "output_padding {op}; reduce the padding."
            ),
            out=out,
            where=where,
            func=func or Message("the layer"),
            size=size,
            k=k,
            s=s,
            p=p,
            d=d,
            op=op,
        )
    return out


def conv_transpose2d_output_shape(
    input_hw: Any,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
) -> Pair:
    """`(H_out, W_out)` of `nn.ConvTranspose2d`."""
    func = "conv_transpose2d"
    h, w = positive_pair(input_hw, "input_size", func=func)
    kh, kw = positive_pair(kernel_size, "kernel_size", func=func)
    sh, sw = positive_pair(stride, "stride", func=func)
    ph, pw = non_negative_pair(padding, "padding", func=func)
    oph, opw = non_negative_pair(output_padding, "output_padding", func=func)
    dh, dw = positive_pair(dilation, "dilation", func=func)
    return (
        conv_transpose_output_size(h, kh, sh, ph, oph, dh, axis="height", func=func),
        conv_transpose_output_size(w, kw, sw, pw, opw, dw, axis="width", func=func),
    )


# --------------------------------------------------------------------------- one layer, any kind

LAYER_KINDS = ("conv", "pool", "transposed")


@dataclass(frozen=True)
class LayerShape:
    """Everything `cnnkit size` shows about one layer: the resolved arguments and the output."""

    kind: str  # "conv", "pool" (max or average) or "transposed"
    input_size: Pair  # (H, W)
    kernel_size: Pair
    effective_kernel: Pair  # D·(K − 1) + 1
    stride: Pair
    padding: Sides  # ((top, bottom), (left, right))
    dilation: Pair
    output_padding: Pair  # transposed convolution only; (0, 0) otherwise
    ceil_mode: bool  # pooling only
    output_size: Pair  # (H_out, W_out)

    def table(self, tr: Callable[[str], str] = str) -> Any:
        """The resolved arguments and the output as a two-column `cnnkit.core.tables.Table`;
        `tr` words the labels (`core.i18n.translate`; the default keeps them in English)."""
        from cnnkit.core.tables import Table, fmt_pair

        (top, bottom), (left, right) = self.padding
        kind = {
            "conv": Message("convolution"),
            "pool": Message("pooling"),
            "transposed": Message("transposed convolution"),
        }
        sides = Message(
            "top {top}, bottom {bottom}, left {left}, right {right}",
            top=top,
            bottom=bottom,
            left=left,
            right=right,
        )
        rows: list[list[str]] = [
            [Message("layer"), kind.get(self.kind, self.kind)],
            [Message("input (H × W)"), fmt_pair(self.input_size)],
        ]
        rows += [[Message("kernel"), fmt_pair(self.kernel_size)]]
        if self.effective_kernel != self.kernel_size:
            rows.append([Message("effective kernel"), fmt_pair(self.effective_kernel)])
        rows += [
            [Message("stride"), fmt_pair(self.stride)],
            [Message("padding"), sides],
            [Message("dilation"), fmt_pair(self.dilation)],
        ]
        if self.kind == "transposed":
            rows.append([Message("output padding"), fmt_pair(self.output_padding)])
        if self.kind == "pool":
            rows.append([Message("ceil mode"), Message("yes") if self.ceil_mode else Message("no")])
        rows.append([Message("output (H × W)"), fmt_pair(self.output_size)])
        return Table(
            ["", tr(Message("value"))],
            [[tr(c) if isinstance(c, Message) else c for c in r] for r in rows],
        )

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the same rows as `cnnkit size`, as an HTML table, in the
        current language (`core.i18n`)."""
        from cnnkit.core.i18n import translate
        from cnnkit.core.tables import html_table

        return html_table(self.table(tr=translate))


def layer_output_shape(
    *,
    input_size: Any,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    kind: str = "conv",
    ceil_mode: bool = False,
    output_padding: Any = 0,
) -> LayerShape:
    """Output shape of one conv / pool / transposed-conv layer, with its resolved arguments.

    `stride=None` means 1 for convolutions and the kernel size for pooling (torch's defaults).
    """
    if kind not in LAYER_KINDS:
        raise CnnkitError.from_template(
            (
                "The 'kind' parameter of layer_output_shape must be one of {items}. Got "
                "{kind!r} instead."
            ),
            items=", ".join(map(repr, LAYER_KINDS)),
            kind=kind,
        )
    if ceil_mode and kind != "pool":
        raise CnnkitError("ceil_mode applies to pooling only (kind='pool').")
    if kind != "transposed" and output_padding not in (0, (0, 0)):
        raise CnnkitError("output_padding applies to transposed convolutions only.")
    func = {"conv": "conv2d", "pool": "pool2d", "transposed": "conv_transpose2d"}[kind]
    hw = positive_pair(input_size, "input_size", func=func)
    k = positive_pair(kernel_size, "kernel_size", func=func)
    d = positive_pair(dilation, "dilation", func=func)
    if stride is None:
        s = k if kind == "pool" else (1, 1)
    else:
        s = positive_pair(stride, "stride", func=func)
    op = (0, 0)
    if kind == "conv":
        sides = resolve_padding(padding, k, d, stride=s, func=func)
        out = conv2d_output_shape(hw, k, s, (*sides[0], *sides[1]), d)
    elif kind == "pool":
        ph, pw = non_negative_pair(padding, "padding", func=func)
        sides = ((ph, ph), (pw, pw))
        out = pool2d_output_shape(hw, k, s, padding, d, ceil_mode)
    else:
        ph, pw = non_negative_pair(padding, "padding", func=func)
        sides = ((ph, ph), (pw, pw))
        op = non_negative_pair(output_padding, "output_padding", func=func)
        out = conv_transpose2d_output_shape(hw, k, s, padding, output_padding, d)
    return LayerShape(
        kind=kind,
        input_size=hw,
        kernel_size=k,
        effective_kernel=effective_kernel_hw(k, d),
        stride=s,
        padding=sides,
        dilation=d,
        output_padding=op,
        ceil_mode=bool(ceil_mode),
        output_size=out,
    )
