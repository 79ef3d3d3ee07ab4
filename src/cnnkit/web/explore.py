"""The playground's two explorers, as pure functions (JSON-ready dicts in and out).

- `conv`: one 2-D convolution (cross-correlation) computed by `cnnkit.conv2d`, the padded
  input (`cnnkit.ops.padding.pad2d`), the output-size formula with the numbers filled in
  (sizes from `cnnkit.calc.arithmetic`), and the sliding window step by step: at each output
  position the region of the padded input, the element-wise products and their sum.
  Inputs: the chapter's 5×5 example (section 1.2, from `cnnkit.analysis.chapter`; its correct
  output at [0, 0] is 0, not the printed −13), the chapter's test pattern, a bundled MNIST
  digit, or numbers; kernels: `cnnkit.imaging.kernels` by name or CLI spec, or numbers.
- `rf`: receptive field, jump and start per layer of a stack in `cnnkit rf`'s notation
  (`cnnkit.calc.receptive_field`), with the chapter's simplified formula beside it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError

__all__ = [
    "MAX_CONV_INPUT",
    "MAX_KERNEL",
    "MAX_STEPS",
    "RF_PRESETS",
    "conv",
    "kernels",
    "rf",
]

MAX_CONV_INPUT = 128  # per side
MAX_KERNEL = 31  # per side
MAX_PADDED = 192  # per side, the input with its padding
MAX_STEPS = 4096  # sliding-window steps sent; more -> "steps_truncated"
MAX_RF_LAYERS = 256
# The chapter's 8-neighbour edge kernel is the registry's "edge"; "chapter" names it here too.
CHAPTER = "chapter"
FORMULA = "O = floor((I + P_total - D(K-1) - 1) / S) + 1"
PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")

# VGG16's 13 convolutions and 5 pools, in cnnkit rf notation (the other presets are cnnkit's).
VGG16 = "conv3/p1*2,pool2,conv3/p1*2,pool2,conv3/p1*3,pool2,conv3/p1*3,pool2,conv3/p1*3,pool2"


def _rf_presets() -> dict[str, tuple[str, str]]:
    from cnnkit.calc.receptive_field import PRESETS

    presets = dict(PRESETS)
    presets["vgg16"] = (VGG16, "VGG16's 13 convolutions (3×3, padding 1) and 5 2×2 max-pools")
    return presets


RF_PRESETS = _rf_presets()
RF_ALIASES = {"chapter": "vgg-like"}  # the chapter's VGG-like stack of section 1.3


def kernels() -> dict[str, Any]:
    """GET /api/kernels: every named kernel of `cnnkit.imaging.kernels` with its values."""
    from cnnkit.imaging.kernels import get_kernel, list_kernels

    return {
        "kernels": [
            {
                "name": info.name,
                "description": info.description,
                "params": dict(info.params),
                "values": get_kernel(info.name).tolist(),
            }
            for info in list_kernels()
        ]
    }


# --------------------------------------------------------------------------- conv explorer


def _matrix(value: Any, name: str, limit: int) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CnnkitError.from_template(
            "'{name}' must be a 2-D array of numbers (a list of rows)", name=name
        ) from None
    if a.ndim != 2 or a.size == 0:
        raise CnnkitError.from_template(
            ("'{name}' must be a non-empty 2-D array (a list of rows). Got shape {shape}."),
            name=name,
            shape=list(a.shape),
        )
    if max(a.shape) > limit:
        raise CnnkitError.from_template(
            "'{name}' may be at most {limit}×{limit}. Got {shape}×{shape2}.",
            name=name,
            limit=limit,
            shape=a.shape[0],
            shape2=a.shape[1],
        )
    if not np.isfinite(a).all():
        raise CnnkitError.from_template("'{name}' must hold finite numbers", name=name)
    return a


def _input(value: Any) -> tuple[np.ndarray, str]:
    """The explorer's input image and its name."""
    from cnnkit.analysis.chapter import IMAGE_5X5

    if value == CHAPTER:
        return np.array(IMAGE_5X5, dtype=np.float64), CHAPTER
    if value == "pattern":
        from cnnkit.imaging.kernels import chapter_test_pattern

        return chapter_test_pattern(), "pattern"
    if isinstance(value, str) and (value == "digit" or value.startswith("digit:")):
        from cnnkit.imaging.digits import example_digits, example_label
        from cnnkit.imaging.images import read_image

        digits = {example_label(p): p for p in example_digits()}
        label_text = value.partition(":")[2] or "7"
        if not label_text.isdigit() or int(label_text) not in digits:
            raise CnnkitError.from_template(
                ("'input' {value!r}: the bundled digits are digit:0 to digit:9 (or 'digit')"),
                value=value,
            )
        return read_image(digits[int(label_text)], mode="L"), f"digit:{label_text}"
    if isinstance(value, str):
        raise CnnkitError.from_template(
            (
                "'input' must be 'chapter', 'pattern', 'digit' (or 'digit:0'..'digit:9') "
                "or a 2-D array of numbers. Got {value!r} instead."
            ),
            value=value,
        )
    return _matrix(value, "input", MAX_CONV_INPUT), "custom"


def _kernel(value: Any, input_name: str) -> tuple[np.ndarray, str]:
    from cnnkit.analysis.chapter import EDGE_KERNEL
    from cnnkit.imaging.kernels import kernel_from_spec

    if value is None:
        value = CHAPTER if input_name == CHAPTER else "edge"
    if value == CHAPTER:
        return np.array(EDGE_KERNEL, dtype=np.float64), CHAPTER
    if isinstance(value, str):
        k = kernel_from_spec(value)
        if max(k.shape) > MAX_KERNEL:
            raise CnnkitError.from_template(
                "'kernel' may be at most {max_kernel}×{max_kernel}. Got {value!r}.",
                max_kernel=MAX_KERNEL,
                value=value,
            )
        return k, value
    return _matrix(value, "kernel", MAX_KERNEL), "custom"


def _pair_param(value: Any, name: str) -> tuple[int, int]:
    from cnnkit.calc.arithmetic import pair

    p = pair(value, name, func="the conv explorer")
    if min(p) < 1 or max(p) > MAX_CONV_INPUT:
        raise CnnkitError.from_template(
            (
                "'{name}' must be a positive int or pair of ints up to {max_conv_input}. "
                "Got {value!r} instead."
            ),
            name=name,
            max_conv_input=MAX_CONV_INPUT,
            value=value,
        )
    return p


def _axis_formula(size: int, k: int, s: int, pads: tuple[int, int], d: int, out: int) -> str:
    return f"floor(({size} + {pads[0] + pads[1]} - {d}*({k}-1) - 1)/{s}) + 1 = {out}"


def _chapter_note() -> dict[str, Any]:
    from cnnkit.analysis.chapter import CHAPTER_PRINTED, NOTES

    printed = CHAPTER_PRINTED["1.2-worked-example"]
    return {
        "printed_output": CHAPTER_PRINTED["1.2-conv"]["output"],
        "printed_sum_at_0_0": printed["sum"],
        "note": NOTES[("1.2-conv", "output")],
        "worked_example_note": NOTES[("1.2-worked-example", "sum")],
    }


def _numbers(a: np.ndarray) -> list[Any]:
    """`a.tolist()`, as ints when every value is a whole number (shorter, faster JSON)."""
    if a.size and np.all(np.abs(a) < 2**53) and np.array_equal(a, np.round(a)):
        return a.astype(np.int64).tolist()
    return a.tolist()


def _steps(
    padded: np.ndarray, kernel: np.ndarray, stride: tuple[int, int], dil: tuple[int, int],
    out_hw: tuple[int, int],
) -> tuple[list[dict[str, Any]], bool]:  # fmt: skip
    """The sliding window, row-major: region of `padded`, products with `kernel`, their sum.

    The regions are views of `padded` (`sliding_window_view`, then stride and dilation);
    each step's sum adds its own products.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    kh, kw = kernel.shape
    span = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
    windows = sliding_window_view(padded, span)  # (H_pad - span_h + 1, W_pad - span_w + 1, ...)
    regions = windows[:: stride[0], :: stride[1], :: dil[0], :: dil[1]]
    regions = regions[: out_hw[0], : out_hw[1]]  # (H_out, W_out, K_h, K_w)
    positions = [(r, c) for r in range(out_hw[0]) for c in range(out_hw[1])][:MAX_STEPS]
    n_rows = -(-len(positions) // out_hw[1])  # output rows that hold the steps sent
    regions = regions[:n_rows]
    products = regions * kernel  # (rows, W_out, K_h, K_w)
    sums = products.sum(axis=(2, 3))  # (rows, W_out)
    region_lists, product_lists = _numbers(regions), _numbers(products)
    steps = [
        {
            "row": r,
            "col": c,
            "top": r * stride[0],
            "left": c * stride[1],
            "region": region_lists[r][c],
            "products": product_lists[r][c],
            "sum": float(sums[r, c]),
        }
        for r, c in positions
    ]
    return steps, len(positions) < out_hw[0] * out_hw[1]


def conv(request: Any) -> dict[str, Any]:
    """POST /api/conv (see the module docstring and docs/playground.md)."""
    from cnnkit.calc.arithmetic import conv_output_size, resolve_padding
    from cnnkit.ops import conv2d
    from cnnkit.ops.padding import check_padding_mode, pad2d

    if not isinstance(request, dict):
        raise CnnkitError("the body must be a JSON object (input, kernel, stride, padding, ...)")
    unknown = sorted(set(request) - {"input", "kernel", "stride", "padding", "dilation",
                                      "padding_mode"})  # fmt: skip
    if unknown:
        raise CnnkitError.from_template(
            "unknown field {unknown!r} in the conv request", unknown=unknown[0]
        )
    image, input_name = _input(request.get("input", CHAPTER))
    kernel, kernel_name = _kernel(request.get("kernel"), input_name)
    stride = _pair_param(request.get("stride", 1), "stride")
    dilation = _pair_param(request.get("dilation", 1), "dilation")
    padding = request.get("padding", 0)
    if isinstance(padding, list):
        padding = tuple(padding)
    mode = request.get("padding_mode", "zeros")
    pads = resolve_padding(padding, kernel.shape, dilation, stride=stride, func="the conv explorer")
    check_padding_mode(mode, pads, image.shape, "the conv explorer")
    padded_hw = [image.shape[a] + pads[a][0] + pads[a][1] for a in range(2)]
    if max(padded_hw) > MAX_PADDED:
        raise CnnkitError.from_template(
            (
                "the padded input would be {padded_hw}×{padded_hw2}; the explorer takes "
                "at most {max_padded}×{max_padded}"
            ),
            padded_hw=padded_hw[0],
            padded_hw2=padded_hw[1],
            max_padded=MAX_PADDED,
        )
    padded = pad2d(image, pads, mode)
    output = conv2d(image, kernel, stride=stride, padding=padding, dilation=dilation,
                    padding_mode=mode)  # fmt: skip
    sizes = [
        conv_output_size(image.shape[a], kernel.shape[a], stride[a], pads[a], dilation[a],
                         axis=("height", "width")[a], func="the conv explorer")
        for a in range(2)
    ]  # fmt: skip
    assert tuple(sizes) == output.shape, (sizes, output.shape)
    steps, truncated = _steps(padded, kernel, stride, dilation, (sizes[0], sizes[1]))
    result: dict[str, Any] = {
        "input_name": input_name,
        "kernel_name": kernel_name,
        "input": _numbers(image),
        "kernel": _numbers(kernel),
        "pads": [list(pads[0]), list(pads[1])],
        "padded": _numbers(padded),
        "output": _numbers(output),
        "formula": {
            "text": FORMULA,
            "height": _axis_formula(
                image.shape[0], kernel.shape[0], stride[0], pads[0], dilation[0], sizes[0]
            ),
            "width": _axis_formula(
                image.shape[1], kernel.shape[1], stride[1], pads[1], dilation[1], sizes[1]
            ),
        },  # fmt: skip
        "output_size": sizes,
        "steps": steps,
        "steps_truncated": truncated,
    }
    if input_name == CHAPTER and kernel_name == CHAPTER:
        result["chapter"] = _chapter_note()
    return result


# --------------------------------------------------------------------------- rf explorer


def _input_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    from cnnkit.calc.arithmetic import pair

    p = pair(tuple(value) if isinstance(value, list) else value, "input_size",
             func="the rf explorer")  # fmt: skip
    if min(p) < 1 or max(p) > 100_000:
        raise CnnkitError.from_template(
            "'input_size' must be positive (at most 100000). Got {value!r}.", value=value
        )
    return p


def rf(request: Any = None) -> dict[str, Any]:
    """POST /api/rf: `{"layers": SPEC}` or `{"preset": NAME}` (optional `input_size`)."""
    from cnnkit.calc.receptive_field import (
        chapter_receptive_fields,
        parse_layers,
        receptive_fields,
    )

    details = [{"name": n, "spec": spec, "description": about}
               for n, (spec, about) in RF_PRESETS.items()]  # fmt: skip
    out: dict[str, Any] = {"presets": list(RF_PRESETS), "preset_details": details}
    if request is None:
        return out
    if not isinstance(request, dict):
        raise CnnkitError('the body must be a JSON object: {"layers": "conv3,pool2"} or {"preset"}')
    preset = request.get("preset")
    spec = request.get("layers")
    if (preset is None) == (spec is None):
        raise CnnkitError("give exactly one of 'layers' (cnnkit rf notation) and 'preset'")
    if preset is not None:
        name = RF_ALIASES.get(preset, preset) if isinstance(preset, str) else preset
        if name not in RF_PRESETS:
            raise CnnkitError.from_template(
                "unknown preset {preset!r}; known: {items}",
                preset=preset,
                items=", ".join([*RF_PRESETS, *RF_ALIASES]),
            )
        spec = RF_PRESETS[name][0]
        out["preset"] = name
    if not isinstance(spec, str) or len(spec) > 2000:
        raise CnnkitError("'layers' must be a string in cnnkit rf notation, e.g. 'conv3*2,pool2'")
    layers = parse_layers(spec)
    if len(layers) > MAX_RF_LAYERS:
        raise CnnkitError.from_template(
            "at most {max_rf_layers} layers. Got {n_layers}.",
            max_rf_layers=MAX_RF_LAYERS,
            n_layers=len(layers),
        )
    input_size = _input_size(request.get("input_size"))
    rows = receptive_fields(layers, input_size)
    simplified = chapter_receptive_fields(layers)
    out["spec"] = ",".join(layer.notation() for layer in layers)
    out["input_size"] = list(input_size) if input_size else None
    out["layers"] = [
        {
            "name": r.name,
            "notation": r.layer.notation(),
            "kind": r.layer.kind,
            "kernel": list(r.layer.kernel),
            "stride": list(r.layer.stride),
            "size": list(r.size),
            "jump": list(r.jump),
            "start": list(r.start),
            "output": None if r.output is None else list(r.output),
            "simplified": simple[0] if simple[0] == simple[1] else list(simple),
            "simplified_hw": list(simple),
            "differs": list(simple) != list(r.size),
        }
        for r, simple in zip(rows, simplified, strict=True)
    ]
    out["formula"] = {
        "correct": "r_l = r_{l-1} + (K_eff - 1) * j_{l-1},  j_l = j_{l-1} * S_l",
        "simplified": "R_l = R_{l-1} + (K_l - 1)   (the chapter's; forgets j_{l-1})",
    }
    return out
