"""Classic image-processing kernels (section 1.2) and filtering real images with them.

A registry of named kernels, timm-style: `@register_kernel` on a small factory whose keyword
arguments (with defaults) are the kernel's parameters.

    get_kernel("gaussian", size=7, sigma=2.0)    -> (7, 7) float64 array
    kernel_from_spec("gaussian:7,2")              -> the same, from the CLI notation
    filter_image(image, get_kernel("sobel-x"))   -> same size as image

CLI notation: `NAME` or `NAME:V1,V2,...` with values in the order of the parameters, or
`NAME:param=value,...`, e.g. `box:5`, `gaussian:5,1.4`, `gaussian:sigma=2`.

Kernels are applied as cross-correlation (no flip), like `torch.nn.functional.conv2d` and the
chapter's `signal.correlate2d`: `sobel-x` is positive where the image gets brighter to the right.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnkit.core.checks import bad_parameter, check_int
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.core.i18n import Message
from cnnkit.imaging.images import real_array

__all__ = [
    "BOUNDARIES",
    "CHAPTER_KERNELS",
    "MAX_FILTER_MACS",
    "MAX_FILTER_STRIP_VALUES",
    "MAX_KERNEL_SIZE",
    "KernelInfo",
    "KernelResponse",
    "chapter_test_pattern",
    "filter_image",
    "get_kernel",
    "kernel_from_spec",
    "kernel_responses",
    "kernel_title",
    "list_kernels",
    "parse_kernel_spec",
    "register_kernel",
    "sums_to_zero",
]

KernelFactory = Callable[..., np.ndarray]

BOUNDARIES = ("symmetric", "zeros", "reflect", "replicate", "circular")
MAX_KERNEL_SIZE = 999
# filter_image: at most H * W * K_h * K_w multiply-adds per channel (a 21x21 kernel on a
# 12-megapixel photo is 5.3e9: 43 s for its 3 channels on one busy core), computed in strips
# of at most 2**25 im2col values (256 MiB of float64)
MAX_FILTER_MACS = 2**34
MAX_FILTER_STRIP_VALUES = 2**25


@dataclasses.dataclass(frozen=True)
class KernelInfo:
    name: str
    description: str
    params: dict[str, int | float]  # parameter -> default, in positional order


_REGISTRY: dict[str, tuple[KernelInfo, KernelFactory]] = {}


def register_kernel(name: str, description: str) -> Callable[[KernelFactory], KernelFactory]:
    """Register a factory; its keyword arguments and defaults become the kernel's parameters."""

    def decorator(factory: KernelFactory) -> KernelFactory:
        params = {p.name: p.default for p in inspect.signature(factory).parameters.values()}
        _REGISTRY[name] = (KernelInfo(name, description, params), factory)
        return factory

    return decorator


def _odd_size(size: int, name: str) -> int:
    if size % 2 == 0:
        raise CnnkitError.from_template(
            "The 'size' parameter of {name} must be odd. Got {size} instead.", name=name, size=size
        )
    return size


@register_kernel("identity", Message("passes the image through unchanged"))
def identity(size: int = 3) -> np.ndarray:
    k = np.zeros((_odd_size(size, "identity"), size))
    k[size // 2, size // 2] = 1.0
    return k


@register_kernel(
    "sobel-x", Message("Sobel x-derivative: vertical edges, + where brighter to the right")
)
def sobel_x() -> np.ndarray:
    return np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


@register_kernel("sobel-y", Message("Sobel y-derivative: horizontal edges, + where brighter below"))
def sobel_y() -> np.ndarray:
    return sobel_x().T.copy()


@register_kernel("prewitt-x", Message("Prewitt x-derivative: vertical edges, unweighted rows"))
def prewitt_x() -> np.ndarray:
    return np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=np.float64)


@register_kernel("prewitt-y", Message("Prewitt y-derivative: horizontal edges, unweighted columns"))
def prewitt_y() -> np.ndarray:
    return prewitt_x().T.copy()


@register_kernel("box", Message("mean of a size x size window (blur)"))
def box(size: int = 3) -> np.ndarray:
    return np.full((size, size), 1.0 / (size * size))


@register_kernel("gaussian", Message("sampled 2-D Gaussian, normalised to sum 1 (smooth blur)"))
def gaussian(size: int = 5, sigma: float = 1.0) -> np.ndarray:
    if sigma <= 0:
        raise CnnkitError.from_template(
            "The 'sigma' parameter of gaussian must be > 0. Got {sigma} instead.", sigma=sigma
        )
    offsets = np.arange(size) - (size - 1) / 2  # centred, also for even sizes
    with np.errstate(over="ignore", under="ignore"):  # a tiny sigma: exp(-inf) = 0, no warning
        g = np.exp(-0.5 * (offsets / sigma) ** 2)  # (size,); sigma -> 0 tends to the identity
    k = np.outer(g, g)  # (size, size): the 2-D Gaussian is separable
    return k / k.sum()


@register_kernel("sharpen", Message("identity plus the negative 4-neighbour Laplacian"))
def sharpen() -> np.ndarray:
    return np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64)


@register_kernel(
    "laplacian", Message("4-neighbour Laplacian: second derivative, zero on flat areas")
)
def laplacian() -> np.ndarray:
    return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)


@register_kernel("edge", Message("8-neighbour edge detector (the chapter's 1.2 example)"))
def edge() -> np.ndarray:
    k = -np.ones((3, 3))
    k[1, 1] = 8.0
    return k


@register_kernel("emboss", Message("directional relief: light from the top left"))
def emboss() -> np.ndarray:
    return np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)


# The chapter's comparison figure (section 1.2): its five kernels and its 6x7 test pattern.
CHAPTER_KERNELS = ("identity", "sobel-x", "sobel-y", "box", "sharpen")


def chapter_test_pattern() -> np.ndarray:
    """The 6x7 test image of section 1.2: a 4x4 bright square outline on black."""
    pattern = np.zeros((6, 7))
    pattern[1:5, 1:5] = 255.0
    pattern[2:4, 2:4] = 0.0
    return pattern


# --- lookup ------------------------------------------------------------------------------


def list_kernels() -> list[KernelInfo]:
    return [info for info, _ in _REGISTRY.values()]


def _lookup(name: str) -> tuple[KernelInfo, KernelFactory]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise CnnkitError.from_template(
            "Unknown kernel {name!r}. Known kernels: {registry}.",
            name=name,
            registry=", ".join(_REGISTRY),
        )
    return _REGISTRY[name]


def _check_param(name: str, param: str, value: Any, default: int | float) -> int | float:
    """Validate one parameter value against the type of its default."""
    if isinstance(default, int):
        return check_int(value, param, func=name, minimum=1, maximum=MAX_KERNEL_SIZE)
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise bad_parameter(name, param, Message("a number"), value)
    if not math.isfinite(value):
        raise bad_parameter(name, param, Message("finite"), value)
    return float(value)


def get_kernel(name: str, **params: Any) -> np.ndarray:
    """The kernel `name` as a 2-D float64 array; `params` override the defaults."""
    info, factory = _lookup(name)
    unknown = sorted(set(params) - set(info.params))
    if unknown:
        allowed = ", ".join(info.params) or "none"
        raise CnnkitError.from_template(
            "Kernel {name!r} has no parameter {unknown!r} (parameters: {allowed}).",
            name=name,
            unknown=unknown[0],
            allowed=allowed,
        )
    checked = {p: _check_param(name, p, v, info.params[p]) for p, v in params.items()}
    return factory(**checked)


def parse_kernel_spec(spec: str) -> tuple[str, dict[str, int | float]]:
    """`"gaussian:5,1.4"` -> `("gaussian", {"size": 5, "sigma": 1.4})`; also `name:param=v`.

    Each parameter is given at most once (`box:size=3,size=4` and `box:3,size=5` are refused).
    """
    if not isinstance(spec, str):
        raise bad_parameter(
            "parse_kernel_spec", "spec", Message("a string such as 'gaussian:5,1.4'"), spec
        )
    name, _, rest = spec.strip().partition(":")
    info, _ = _lookup(name)
    values: dict[str, int | float] = {}
    names = list(info.params)
    for i, item in enumerate(filter(None, (s.strip() for s in rest.split(",")))):
        if "=" in item:
            param, _, text = (s.strip() for s in item.partition("="))
        elif i < len(names):
            param, text = names[i], item
        else:
            raise CnnkitError.from_template(
                ("Kernel {name!r} takes {n_names} parameter(s) ({names}). Got {spec!r} instead."),
                name=name,
                n_names=len(names),
                names=", ".join(names) or Message("none"),
                spec=spec,
            )
        if param not in info.params:
            raise CnnkitError.from_template(
                ("Kernel {name!r} has no parameter {param!r} (parameters: {names})."),
                name=name,
                param=param,
                names=", ".join(names) or Message("none"),
            )
        if param in values:
            raise CnnkitError.from_template(
                ("Kernel {name!r} was given its {param!r} parameter twice. Got {spec!r} instead."),
                name=name,
                param=param,
                spec=spec,
            )
        values[param] = _parse_number(text, param, name, info.params[param])
    return name, values


def _parse_number(text: str, param: str, name: str, default: int | float) -> int | float:
    if isinstance(default, int) and len(text) > 9:  # far above MAX_KERNEL_SIZE: not parsed
        shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
        raise bad_parameter(
            name,
            param,
            Message("an int from 1 to {max_kernel_size}", max_kernel_size=MAX_KERNEL_SIZE),
            shown,
        )
    try:
        return int(text) if isinstance(default, int) else float(text)
    except ValueError:
        kind = Message("an integer") if isinstance(default, int) else Message("a number")
        raise bad_parameter(name, param, kind, text) from None


def kernel_from_spec(spec: str) -> np.ndarray:
    """The kernel named by CLI notation (`box:5`, `gaussian:5,1.4`, `gaussian:sigma=2`)."""
    name, params = parse_kernel_spec(spec)
    return get_kernel(name, **params)


def kernel_title(spec: str) -> str:
    """A readable title: `"gaussian:5,1.4"` -> `"gaussian (size=5, sigma=1.4)"`."""
    name, params = parse_kernel_spec(spec)
    if not params:
        return name
    return f"{name} ({', '.join(f'{k}={v:g}' for k, v in params.items())})"


# --- filtering ---------------------------------------------------------------------------


def filter_image(image: Any, kernel: Any, *, boundary: str = "symmetric") -> np.ndarray:
    """Cross-correlate an (H, W) or (H, W, C) image with a 2-D kernel, each channel alone.

    The output has the input's height and width ("same" padding; for an even kernel size the
    extra row/column of padding goes at the bottom/right, as torch's `padding="same"`).
    `boundary` fills the border: "symmetric" (repeat the edge pixel, SciPy's "symm"),
    "zeros", "reflect" (mirror without the edge pixel), "replicate" or "circular".
    The kernel must fit inside the image.
    """
    img = real_array(image, "image", "filter_image")
    k = real_array(kernel, "kernel", "filter_image")
    if not isinstance(boundary, str) or boundary not in BOUNDARIES:
        raise CnnkitError.from_template(
            (
                "The 'boundary' parameter of filter_image must be one of {items}. Got "
                "{boundary!r} instead."
            ),
            items=", ".join(map(repr, BOUNDARIES)),
            boundary=boundary,
        )
    if img.ndim not in (2, 3) or 0 in img.shape:
        raise ShapeError.from_template(
            ("filter_image needs an image of shape (H, W) or (H, W, C). Got {shape} instead."),
            shape=img.shape,
        )
    if k.ndim != 2 or 0 in k.shape:
        raise ShapeError.from_template(
            "filter_image needs a 2-D kernel. Got shape {shape} instead.", shape=k.shape
        )
    h, w = img.shape[:2]
    if k.shape[0] > h or k.shape[1] > w:
        raise ShapeError.from_template(
            (
                "Kernel {shape}x{shape2} is larger than the image {h}x{w}: a same-size "
                "response would be made mostly of padding."
            ),
            shape=k.shape[0],
            shape2=k.shape[1],
            h=h,
            w=w,
        )
    kh, kw = k.shape
    macs = h * w * kh * kw  # multiply-adds per channel
    if macs > MAX_FILTER_MACS:
        raise ShapeError.from_template(
            (
                "Kernel {kh}x{kw} on an image of {h}x{w} needs {macs:,} multiply-adds "
                "per channel, more than the {max_filter_macs:,} (2**34) filter_image "
                "does; use a smaller kernel or image."
            ),
            kh=kh,
            kw=kw,
            h=h,
            w=w,
            macs=macs,
            max_filter_macs=MAX_FILTER_MACS,
        )
    for name, a in (("image", img), ("kernel", k)):
        if not np.isfinite(a).all():
            raise CnnkitError.from_template(
                (
                    "The {name!r} parameter of filter_image must hold finite numbers. Got "
                    "{count_nonzero} NaN or infinite value(s) instead."
                ),
                name=name,
                count_nonzero=int(np.count_nonzero(~np.isfinite(a))),
            )
    planes = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)  # (C, H, W)
    out = np.stack([_filter_plane(plane, k, boundary) for plane in planes])  # (C, H, W)
    return out[0] if img.ndim == 2 else out.transpose(1, 2, 0)  # (H, W) or (H, W, C)


def _filter_plane(plane: np.ndarray, k: np.ndarray, boundary: str) -> np.ndarray:
    """One (H, W) plane, "same" size: padded once as torch's padding="same" does (the extra
    row/column of an even kernel at the bottom/right), then correlated in strips of output
    rows so that the im2col matrix never holds more than MAX_FILTER_STRIP_VALUES values."""
    from cnnkit.ops import conv2d
    from cnnkit.ops.padding import check_padding_mode, pad2d

    (h, w), (kh, kw) = plane.shape, k.shape
    pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2), ((kw - 1) // 2, kw - 1 - (kw - 1) // 2)
    check_padding_mode(boundary, pads, (h, w), "filter_image")
    padded = pad2d(plane, pads, boundary)  # (H + kh - 1, W + kw - 1)
    rows = max(1, MAX_FILTER_STRIP_VALUES // (w * kh * kw))  # output rows per strip
    out = np.empty((h, w))
    for top in range(0, h, rows):
        strip = padded[top : top + rows + kh - 1]  # (rows + kh - 1, W + kw - 1)
        out[top : top + rows] = conv2d(strip[None, None], k[None, None])[0, 0]  # (rows, W)
    return out


@dataclasses.dataclass(frozen=True)
class KernelResponse:
    spec: str  # as given, e.g. "gaussian:5,1.4"
    title: str  # "gaussian (size=5, sigma=1.4)"
    kernel: np.ndarray  # (kh, kw)
    response: np.ndarray  # same shape as the image

    @property
    def signed(self) -> bool:
        """True for derivative-like kernels: the response is +/- around 0."""
        return sums_to_zero(self.kernel)


def sums_to_zero(kernel: np.ndarray) -> bool:
    """Derivative-like kernels (edges, Laplacian): flat areas give 0, responses are signed."""
    return bool(abs(kernel.sum()) <= 1e-9 * max(1.0, float(np.abs(kernel).sum())))


def kernel_responses(
    image: Any, specs: list[str], *, boundary: str = "symmetric"
) -> list[KernelResponse]:
    """Filter one image with each kernel spec (the data of the chapter's comparison figure)."""
    if isinstance(specs, str) or not isinstance(specs, list | tuple) or not specs:
        raise bad_parameter(
            "kernel_responses", "specs", Message("a non-empty list of kernel specs"), specs
        )
    kernels = [kernel_from_spec(spec) for spec in specs]  # all specs checked before any work
    return [
        KernelResponse(spec, kernel_title(spec), k, filter_image(image, k, boundary=boundary))
        for spec, k in zip(specs, kernels, strict=True)
    ]
