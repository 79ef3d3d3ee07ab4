"""Receptive fields of a chain of convolution and pooling layers (pure Python, no torch).

For each layer l and each axis (height, width), with the input as layer 0
(r_0 = 1, j_0 = 1, start_0 = 0), the recurrence of Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks" (Distill, 2019):

    K_eff   = D·(K − 1) + 1
    r_l     = r_{l−1} + (K_eff − 1)·j_{l−1}           receptive-field size, in input pixels
    j_l     = j_{l−1}·S_l                              jump: input pixels between adjacent units
    start_l = start_{l−1} + ((K_eff − 1)/2 − P_l)·j_{l−1}

`start_l` is the input coordinate of the centre of the first unit's receptive field, where input
pixel i has its centre at coordinate i; unit u of layer l is centred at `start_l + u·j_l` and
sees the input pixels `[centre − (r_l − 1)/2, centre + (r_l − 1)/2]` (clipped by the image
border). P_l is the padding *before* the axis (top or left); the padding after only changes the
output size. Pooling is the same window arithmetic as convolution.

The chapter's table (section 1.3) uses `R_l = R_{l−1} + (K_l − 1)`, which forgets the factor
`j_{l−1}`: right only while every earlier stride is 1. `chapter_receptive_fields` reproduces that
simplified formula for comparison; `docs/receptive_field.md` shows both.

Layer notation for the CLI (`cnnkit rf SPEC`): a comma-separated list of layers,
`KIND KERNEL [/OPTION ...] [*REPEAT]`:

    conv3              3×3 convolution, stride 1, no padding
    conv1x7            anisotropic kernel (height 1, width 7)
    conv3/s2/p1/d2     stride 2, padding 1, dilation 2
    conv3/psame        padding "same" (also pvalid, pfull); p0x3: 0 top/bottom, 3 left/right;
                       p1:0:1:0: explicit (top:bottom:left:right)
    pool2              2×2 pooling; a pool's stride defaults to its kernel size (as in torch)
    pool3/s2/c         ceil_mode (only changes output sizes)
    conv3/p1*4         the same layer four times

At most `MAX_LAYERS` (1,000) layers in all, repeats included, and no number above
`MAX_LAYER_NUMBER` (100,000), so that no spec asks for unbounded work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cnnkit.calc.arithmetic import Sides, conv_output_size, effective_kernel, resolve_padding
from cnnkit.core.checks import Pair, bad_parameter, positive_pair
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

__all__ = [
    "MAX_LAYERS",
    "MAX_LAYER_NUMBER",
    "MAX_RF_PIXELS",
    "PRESETS",
    "LayerSpec",
    "RFRow",
    "ReceptiveFields",
    "chapter_receptive_fields",
    "parse_layers",
    "receptive_fields",
    "rf_step",
]

Kind = Literal["conv", "pool"]
AXES = ("H", "W")


@dataclass(frozen=True)
class LayerSpec:
    """One convolution or pooling layer, per axis `(height, width)`.

    `padding` is resolved per side: `((top, bottom), (left, right))`. Build one with
    `LayerSpec.conv(...)` / `LayerSpec.pool(...)`, which accept torch's argument forms.
    """

    kind: Kind
    kernel: Pair
    stride: Pair
    padding: Sides
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    name: str = ""

    @classmethod
    def conv(
        cls,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        *,
        name: str = "",
    ) -> LayerSpec:
        """Like `nn.Conv2d`: padding int, pair, 4-tuple (top, bottom, left, right) or string."""
        return cls._make("conv", kernel_size, stride, padding, dilation, False, name)

    @classmethod
    def pool(
        cls,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        *,
        ceil_mode: bool = False,
        name: str = "",
    ) -> LayerSpec:
        """Like `nn.MaxPool2d`: `stride=None` means stride = kernel size."""
        return cls._make(
            "pool", kernel_size, kernel_size if stride is None else stride, padding, dilation,
            ceil_mode, name,
        )  # fmt: skip

    @classmethod
    def _make(
        cls,
        kind: Kind,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        ceil_mode: bool,
        name: str,
    ) -> LayerSpec:
        func = f"LayerSpec.{kind}"
        kernel = positive_pair(kernel_size, "kernel_size", func=func)
        strides = positive_pair(stride, "stride", func=func)
        dil = positive_pair(dilation, "dilation", func=func)
        if kind == "pool" and isinstance(padding, str):
            allowed = Message(
                "an int or pair of ints (torch's pooling layers take no padding strings)"
            )
            raise bad_parameter(func, "padding", allowed, padding)
        sides = resolve_padding(padding, kernel, dil, stride=strides, func=func)
        if kind == "pool" and any(sides[a][0] > kernel[a] // 2 for a in range(2)):
            allowed = Message(
                "at most half the kernel size (kernel {kernel}, as torch requires)", kernel=kernel
            )
            raise bad_parameter(func, "padding", allowed, padding)
        return cls(kind, kernel, strides, sides, dil, ceil_mode, name)

    def kernel_eff(self, axis: int) -> int:
        """Effective kernel size `D·(K − 1) + 1` along axis 0 (height) or 1 (width)."""
        return effective_kernel(self.kernel[axis], self.dilation[axis])

    def notation(self) -> str:
        """The layer in the CLI notation, e.g. `conv3/s2/p1`."""
        text = f"{self.kind}{_dims(self.kernel)}"
        default_stride = self.kernel if self.kind == "pool" else (1, 1)
        if self.stride != default_stride:
            text += f"/s{_dims(self.stride)}"
        (top, bottom), (left, right) = self.padding
        if (top, left) != (bottom, right):
            text += f"/p{top}:{bottom}:{left}:{right}"
        elif (top, left) != (0, 0):
            text += f"/p{_dims((top, left))}"
        if self.dilation != (1, 1):
            text += f"/d{_dims(self.dilation)}"
        if self.ceil_mode:
            text += "/c"
        return text


@dataclass(frozen=True)
class RFRow:
    """Receptive field after one layer, per axis `(H, W)`.

    `size`: receptive-field size r in input pixels; `jump`: j, input pixels between adjacent
    units (effective stride); `start`: input coordinate of the centre of the first unit's
    receptive field (pixel i is centred at i; may be negative or a half-integer);
    `output`: the layer's output size `(H_out, W_out)` when an input size was given.
    """

    name: str
    layer: LayerSpec
    size: Pair
    jump: Pair
    start: tuple[float, float]
    output: Pair | None = None


def _dims(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}x{p[1]}"


def _layer_names(layers: Sequence[LayerSpec]) -> list[str]:
    counts = {"conv": 0, "pool": 0}
    names = []
    for layer in layers:
        counts[layer.kind] += 1
        names.append(layer.name or f"{layer.kind}{counts[layer.kind]}")
    return names


def rf_step(
    size: Any, jump: Any, start: float, kernel_eff: int, stride: int, pad_before: int
) -> tuple[Any, Any, float]:
    """One layer of the recurrence, one axis: `(r, j, start)` before -> after the layer.

    `kernel_eff` is `D·(K − 1) + 1`, `pad_before` the padding at the top (or left).
    """
    return (
        size + (kernel_eff - 1) * jump,
        jump * stride,
        start + ((kernel_eff - 1) / 2 - pad_before) * jump,
    )


class ReceptiveFields(list[RFRow]):
    """What `receptive_fields` returns: a list of `RFRow` that, in a notebook, shows itself as
    the `cnnkit rf` table (`_repr_html_`); `table()` gives the cells for any format."""

    def __init__(self, rows: Sequence[RFRow], input_size: Pair | None = None) -> None:
        super().__init__(rows)
        self.input_size = input_size

    def table(self, chapter: Sequence[Pair] | None = None, tr: Callable[[str], str] = str) -> Any:
        """A `cnnkit.core.tables.Table`: the input, then one row per layer. `tr` words the
        headers, the `input` label and the `(differs)` mark (`core.i18n.translate` in the
        front ends; the default keeps them in English, as the cells of every language are)."""
        from cnnkit.core.tables import Table, fmt_axes, fmt_pair

        headers = [tr(h) for h in _RF_HEADERS]
        rows = [[tr(Message("input")), "", "1", "1", "0"]]
        if self.input_size is not None:
            headers.append(tr(Message("output")))
            rows[0].append(fmt_pair(self.input_size))
        if chapter is not None:
            headers.append(tr(Message("chapter R")))
            rows[0].append("1")
        differs = "  " + tr(Message("(differs)"))
        for i, r in enumerate(self):
            cells = [r.name, r.layer.notation(), fmt_axes(r.size), fmt_axes(r.jump)]
            cells.append(fmt_axes(r.start))
            if r.output is not None:
                cells.append(fmt_pair(r.output))
            if chapter is not None:
                mark = "" if chapter[i] == r.size else differs
                cells.append(fmt_axes(chapter[i]) + mark)
            rows.append(cells)
        return Table(headers, rows, "llrrr" + "l" * (len(headers) - 5))

    def _repr_html_(self) -> str:
        """Jupyter's rich display, worded in the current language (`core.i18n`)."""
        from cnnkit.core.i18n import translate
        from cnnkit.core.tables import html_table

        return html_table(self.table(tr=translate))


# Message(...) around each word: the catalog tool finds them there (a `str` in English)
_RF_HEADERS = (Message("layer"), Message("spec"), Message("r"), Message("jump"), Message("start"))


def receptive_fields(layers: Sequence[LayerSpec], input_size: Any | None = None) -> ReceptiveFields:
    """One `RFRow` per layer (the input itself, r = 1, j = 1, start = 0, has no row).

    `input_size` (int or `(H, W)`), if given, also computes each layer's output size with
    PyTorch's rules, raising `ShapeError` where a kernel no longer fits.
    """
    sizes: list[int] = [1, 1]
    jumps: list[int] = [1, 1]
    starts: list[float] = [0.0, 0.0]
    current: list[int] | None = None
    if input_size is not None:
        current = list(positive_pair(input_size, "input_size", func="receptive_fields"))
    bad = next((layer for layer in layers if not isinstance(layer, LayerSpec)), None)
    if bad is not None:
        raise CnnkitError.from_template(
            "receptive_fields expects LayerSpec objects. Got {bad!r} instead.", bad=bad
        )
    rows = []
    for layer, name in zip(layers, _layer_names(layers), strict=True):
        for a in range(2):
            sizes[a], jumps[a], starts[a] = rf_step(
                sizes[a], jumps[a], starts[a],
                layer.kernel_eff(a), layer.stride[a], layer.padding[a][0],
            )  # fmt: skip
            if max(sizes[a], jumps[a]) > MAX_RF_PIXELS:
                raise CnnkitError.from_template(
                    (
                        "The receptive field after layer {name!r} ({notation}) would be "
                        "{sizes:.3g} input pixels with jump {jumps:.3g} along {axis}: more "
                        "than 2**53 ({max_rf_pixels:,}), the most a float counts exactly."
                    ),
                    name=name,
                    notation=layer.notation(),
                    sizes=sizes[a],
                    jumps=jumps[a],
                    axis=Message("height") if a == 0 else Message("width"),
                    max_rf_pixels=MAX_RF_PIXELS,
                )
            if current is not None:
                current[a] = conv_output_size(
                    current[a],
                    layer.kernel[a],
                    layer.stride[a],
                    layer.padding[a],
                    layer.dilation[a],
                    ceil_mode=layer.ceil_mode,
                    axis="height" if a == 0 else "width",
                    func=f"layer {name!r} ({layer.notation()})",
                )
        rows.append(
            RFRow(
                name=name,
                layer=layer,
                size=(sizes[0], sizes[1]),
                jump=(jumps[0], jumps[1]),
                start=(starts[0], starts[1]),
                output=None if current is None else (current[0], current[1]),
            )
        )
    given = None if input_size is None else positive_pair(input_size, "input_size")
    return ReceptiveFields(rows, given)


def chapter_receptive_fields(layers: Sequence[LayerSpec]) -> list[Pair]:
    """The chapter's simplified formula `R_l = R_{l−1} + (K_l − 1)` (section 1.3), per axis.

    Kept only to show where it differs from `receptive_fields`: it ignores the stride of the
    earlier layers (and dilation), so it is wrong after the first layer with stride > 1.
    """
    r = [1, 1]
    out = []
    for layer in layers:
        r = [r[a] + layer.kernel[a] - 1 for a in range(2)]
        out.append((r[0], r[1]))
    return out


# --------------------------------------------------------------------------- notation

PRESETS: dict[str, tuple[str, str]] = {
    "vgg-like": (
        "conv3/p1,conv3/p1,pool2,conv3/p1,conv3/p1,pool2",
        "the chapter's VGG-like stack (section 1.3): two 3×3 convs, 2×2 max-pool, twice",
    ),
    "simple-cnn": (
        "conv3/p1,pool2,conv3/p1,pool2",
        "the feature extractor of the chapter's SimpleCNN (section 1.6)",
    ),
    "exercise-3": (
        "conv3/p1*4",
        "the chapter's exercise 3: four 3×3 convolutions, stride 1, padded",
    ),
    "alexnet": (
        "conv11/s4/p2,pool3/s2,conv5/p2,pool3/s2,conv3/p1,conv3/p1,conv3/p1,pool3/s2",
        "torchvision's AlexNet features",
    ),
    "resnet-stem": (
        "conv7/s2/p3,pool3/s2/p1",
        "the ResNet stem: 7×7 stride-2 convolution, 3×3 stride-2 max-pool",
    ),
}

# Bounds on the notation, so that no spec asks for unbounded work or memory: the layers in all
# (repeats included; the deepest preset has 8, ResNet-152 about 150) and every number in a layer.
MAX_LAYERS = 1000
MAX_LAYER_NUMBER = 100_000
# Receptive-field sizes and jumps beyond this are refused: `start` is a float, exact up to 2**53.
MAX_RF_PIXELS = 2**53

_LAYER_RE = re.compile(r"^(conv|pool|maxpool|avgpool)(\d+)(?:x(\d+))?$")
_DIMS_RE = re.compile(r"^(\d+)(?:x(\d+))?$")


def _parse_dims(text: str) -> Pair | None:
    m = _DIMS_RE.match(text)
    if m is None:
        return None
    first = int(m.group(1))
    return (first, int(m.group(2)) if m.group(2) else first)


def _short(text: str, limit: int = 60) -> str:
    """`text` for an error message: long ones cut, saying how long they were."""
    head = max(10, limit - 25)
    if len(text) <= limit:
        return text
    return Message("{head}...({n:,} characters)", head=text[:head], n=len(text))


def _parse_repeat(repeat_text: str, layers_before: int, fail: Callable[[str], Exception]) -> int:
    """The `*N` of a token (1 when absent), within MAX_LAYERS counting the layers before."""
    repeat = 1
    if repeat_text:
        if not repeat_text.isdigit() or len(repeat_text) > 9 or int(repeat_text) < 1:
            shown = _short(repeat_text, 20)
            raise fail(
                Message(
                    "the repeat count after '*' must be an int from 1 to {max_layers:,}, got "
                    "{shown!r}",
                    max_layers=MAX_LAYERS,
                    shown=shown,
                )
            )
        repeat = int(repeat_text)
    if layers_before + repeat > MAX_LAYERS:
        raise fail(
            Message(
                "a layer list has at most {max_layers:,} layers (repeats included), this one "
                "would have {n:,} or more",
                max_layers=MAX_LAYERS,
                n=layers_before + repeat,
            )
        )
    return repeat


def _parse_options(
    options: list[str], kind: Kind, fail: Callable[[str], Exception]
) -> dict[str, Any]:
    """`s2`, `p1`, `psame`, `p0:1:0:1`, `d2`, `c` -> LayerSpec keyword arguments."""
    found: dict[str, Any] = {}
    for option in options:
        letter, value = option[:1], option[1:]
        dims = _parse_dims(value)
        if letter in ("s", "d") and dims is not None:
            found["stride" if letter == "s" else "dilation"] = dims
        elif letter == "p" and (value in ("same", "valid", "full") or dims is not None):
            found["padding"] = value if dims is None else dims
        elif letter == "p" and re.fullmatch(r"\d+:\d+:\d+:\d+", value):
            found["padding"] = tuple(int(v) for v in value.split(":"))
        elif option == "c" and kind == "pool":
            found["ceil_mode"] = True
        else:
            if kind == "pool":
                raise fail(
                    Message(
                        "unknown option {option!r} (expected s<stride>, p<padding>, d<dilation> "
                        "or c for ceil_mode, e.g. conv3/s2/p1)",
                        option=option,
                    )
                )
            raise fail(
                Message(
                    "unknown option {option!r} (expected s<stride>, p<padding>, d<dilation>, "
                    "e.g. conv3/s2/p1)",
                    option=option,
                )
            )
    return found


def _parse_token(token: str, where: str, layers_before: int) -> list[LayerSpec]:
    def fail(why: str) -> CnnkitError:
        return CnnkitError.from_template(
            "Cannot read layer {token!r} in {where!r}: {why}.",
            token=_short(token),
            where=_short(where),
            why=why,
        )

    body, _, repeat_text = token.partition("*")
    repeat = _parse_repeat(repeat_text, layers_before, fail)
    too_big = next(
        (n for n in re.findall(r"\d+", body) if len(n) > 9 or int(n) > MAX_LAYER_NUMBER), None
    )
    if too_big is not None:
        raise fail(
            Message(
                "kernel sizes, strides, paddings and dilations are at most {most:,}, got {got}",
                most=MAX_LAYER_NUMBER,
                got=_short(too_big, 20),
            )
        )
    head, *options = body.split("/")
    m = _LAYER_RE.match(head)
    if m is None:
        raise fail(
            Message(
                "a layer starts with conv, pool, maxpool or avgpool followed by the kernel size, "
                "e.g. conv3, conv1x7, pool2"
            )
        )
    kind: Kind = "conv" if m.group(1) == "conv" else "pool"
    kernel = (int(m.group(2)), int(m.group(3) or m.group(2)))
    found = _parse_options(options, kind, fail)
    stride = found.get("stride", None if kind == "pool" else 1)
    padding, dilation = found.get("padding", 0), found.get("dilation", 1)
    if kind == "conv":
        spec = LayerSpec.conv(kernel, stride, padding, dilation)
    else:
        spec = LayerSpec.pool(
            kernel, stride, padding, dilation, ceil_mode=found.get("ceil_mode", False)
        )
    return [spec] * repeat


def parse_layers(text: str) -> list[LayerSpec]:
    """Layers from the CLI notation (module docstring) or a preset name (`PRESETS`)."""
    if not isinstance(text, str):
        raise CnnkitError.from_template(
            "parse_layers expects a string. Got {text!r} instead.", text=text
        )
    spec = text.strip()
    if spec in PRESETS:
        spec = PRESETS[spec][0]
    tokens = [t.strip().lower() for t in spec.split(",")]
    if not any(tokens):
        raise CnnkitError.from_template(
            (
                "The layer list is empty. Got {text!r}; write e.g. 'conv3,conv3,pool2' "
                "or a preset: {presets}."
            ),
            text=_short(text),
            presets=", ".join(PRESETS),
        )
    layers: list[LayerSpec] = []
    for token in tokens:
        if not token:
            raise CnnkitError.from_template(
                "Empty layer in {text!r} (two commas in a row?).", text=_short(text)
            )
        layers.extend(_parse_token(token, text, len(layers)))
    return layers
