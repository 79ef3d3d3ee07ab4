"""Padding of the last two axes (H, W) and its gradient.

Modes, with their PyTorch / NumPy / SciPy names:

| cnnkit      | `nn.Conv2d(padding_mode=)` | `np.pad(mode=)` | `scipy.signal` boundary |
|-------------|----------------------------|-----------------|-------------------------|
| `zeros`     | `zeros`                    | `constant`      | `fill`                  |
| `reflect`   | `reflect`                  | `reflect`       | —                       |
| `replicate` | `replicate`                | `edge`          | —                       |
| `circular`  | `circular`                 | `wrap`          | `wrap`                  |
| `symmetric` | —                          | `symmetric`     | `symm`                  |

`reflect` mirrors without repeating the edge pixel (`d c b | a b c d | c b a`), `symmetric`
repeats it (`c b a | a b c d | d c b`). Like torch, `reflect` needs padding < input size and
`circular` padding <= input size.

Padding is `((top, bottom), (left, right))`, the form
`cnnkit.calc.arithmetic.resolve_padding` returns.
"""

from __future__ import annotations

import numpy as np

from cnnkit.core.errors import CnnkitError

__all__ = [
    "MAX_PADDED_ELEMENTS",
    "PADDING_MODES",
    "Sides",
    "check_padded_size",
    "check_padding_mode",
    "pad2d",
    "pad2d_backward",
]

Sides = tuple[tuple[int, int], tuple[int, int]]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
_NUMPY_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


# The padded copy of an input is refused above this many elements (16 GiB in float64), before
# NumPy tries to allocate it (padding=10**5 on a 5×5 image asked for 298 GiB).
MAX_PADDED_ELEMENTS = 2**31


def check_padded_size(
    shape: tuple[int, ...], pads: Sides, func: str, name: str = "padding"
) -> None:
    """Refuse (naming `name`) a padding whose padded copy of `shape` would exceed the bound."""
    (top, bottom), (left, right) = pads
    leading = 1
    for size in shape[:-2]:
        leading *= int(size)
    h, w = (int(size) for size in shape[-2:])
    elements = leading * (h + top + bottom) * (w + left + right)
    if elements > MAX_PADDED_ELEMENTS:
        raise CnnkitError.from_template(
            (
                "The {name!r} parameter of {func} would pad input shape {shape} to "
                "{elements:,} elements, more than the bound of {max_padded_elements:,} "
                "(2**31). Got padding {pads} instead."
            ),
            name=name,
            func=func,
            shape=tuple(shape),
            elements=elements,
            max_padded_elements=MAX_PADDED_ELEMENTS,
            pads=pads,
        )


def check_padding_mode(mode: object, pads: Sides, input_hw: tuple[int, int], func: str) -> str:
    """Validate `mode` and the padding it can serve; returns the mode."""
    if mode not in PADDING_MODES:
        raise CnnkitError.from_template(
            (
                "The 'padding_mode' parameter of {func} must be one of {items}. Got "
                "{mode!r} instead."
            ),
            func=func,
            items=", ".join(map(repr, PADDING_MODES)),
            mode=mode,
        )
    for (before, after), size, axis in zip(pads, input_hw, ("height", "width"), strict=True):
        largest = max(before, after)
        if mode == "reflect" and largest >= size:
            raise CnnkitError.from_template(
                (
                    "padding_mode='reflect' of {func} needs padding smaller than the input "
                    "{axis} ({size}), like torch. Got padding {before_after} instead."
                ),
                func=func,
                axis=axis,
                size=size,
                before_after=(before, after),
            )
        if mode == "circular" and largest > size:
            raise CnnkitError.from_template(
                (
                    "padding_mode='circular' of {func} needs padding at most the input "
                    "{axis} ({size}), like torch. Got padding {before_after} instead."
                ),
                func=func,
                axis=axis,
                size=size,
                before_after=(before, after),
            )
    return str(mode)


def pad2d(x: np.ndarray, pads: Sides, mode: str = "zeros", value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of `x`; `value` fills the border in `zeros` mode (e.g. `-inf`)."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    check_padded_size(x.shape, pads, "pad2d", name="pads")
    if mode == "zeros":
        h, w = x.shape[-2:]
        # (..., H + top + bottom, W + left + right)
        out = np.full((*x.shape[:-2], h + top + bottom, w + left + right), value, dtype=x.dtype)
        out[..., top : top + h, left : left + w] = x
        return out
    width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return np.pad(x, width, mode=_NUMPY_MODE[mode])  # type: ignore[call-overload]  # mode is str


def _source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each padded position along one axis, the input position it copies (-1: constant)."""
    if mode == "zeros":
        return np.pad(np.arange(size), (before, after), constant_values=-1)
    return np.pad(np.arange(size), (before, after), mode=_NUMPY_MODE[mode])  # type: ignore[call-overload]


def pad2d_backward(
    grad: np.ndarray, pads: Sides, mode: str, input_hw: tuple[int, int]
) -> np.ndarray:
    """Gradient of `pad2d`: each padded cell's gradient is added to the pixel it copies.

    Loops over the padded border rows and columns only (a few), never over pixels. In `zeros`
    mode the result is a view of `grad`.
    """
    (top, bottom), (left, right) = pads
    h, w = input_hw
    if top == bottom == left == right == 0:
        return grad
    inner = grad[..., top : top + h, left : left + w]
    if mode == "zeros":
        return inner
    # Fold the columns, then the rows: (..., H_pad, W) then (..., H, W).
    cols = grad[..., left : left + w].copy()  # (..., H_pad, W)
    src_w = _source_index(w, left, right, mode)
    for j in (*range(left), *range(left + w, left + w + right)):
        cols[..., src_w[j]] += grad[..., j]
    out = cols[..., top : top + h, :].copy()  # (..., H, W)
    src_h = _source_index(h, top, bottom, mode)
    for i in (*range(top), *range(top + h, top + h + bottom)):
        out[..., src_h[i], :] += cols[..., i, :]
    return out
