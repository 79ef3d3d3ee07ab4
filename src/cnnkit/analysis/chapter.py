"""The chapter reproduced: every worked example of sections 1.1–1.4 (and the SimpleCNN count of
1.6) and exercises 1, 2, 3 and 5, with each number computed by cnnkit.

`reproduce(section)` returns `Entry` objects: what the chapter asks, cnnkit's computed answer,
and — where the chapter's printed output differs — a `Difference` with both values and a plain
note. The chapter's printed values live in `CHAPTER_PRINTED`, used only to detect and report
those differences; tests check cnnkit's answers against independent oracles (torch, scipy,
NumPy), never against this table.

Computations go through cnnkit itself: `cnnkit.calc.arithmetic` (shapes, parameter counts),
`cnnkit.ops.conv2d` (the 5×5 example) and `cnnkit.calc.receptive_field` (receptive fields).
No torch.
The classic-kernel figure of section 1.2 is `cnnkit kernels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnkit.calc.arithmetic import (
    compare_fc_conv,
    conv2d_output_shape,
    conv2d_params,
    linear_params,
    percent_text,
    pool2d_output_shape,
)
from cnnkit.core.errors import CnnkitError

__all__ = [
    "CHAPTER_PRINTED",
    "SECTIONS",
    "Difference",
    "Entry",
    "reproduce",
    "simple_cnn_parameters",
]

SECTIONS: dict[str, str] = {
    "1.1": "Image recognition and the arrival of CNNs",
    "1.2": "Convolution basics",
    "1.3": "Feature maps and receptive fields",
    "1.4": "Convolution layers in PyTorch",
    "1.6": "Practice: the SimpleCNN for MNIST",
    "ex1": "Exercise 1: output size",
    "ex2": "Exercise 2: parameter count",
    "ex3": "Exercise 3: receptive field",
    "ex5": "Exercise 5: fully connected vs CNN",
}

# The chapter's *printed* outputs (and the numbers its text states), keyed by entry and item.
# Data for detecting differences only; never expected values in tests.
CHAPTER_PRINTED: dict[str, dict[str, Any]] = {
    "1.1-fc-params": {"input_features": 150_528, "weights": 150_528_000},
    "1.1-shift": {
        "original_flat": [0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 12,
        "shifted_flat": [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1] + [0] * 11,
        "distance": "2.45",
    },
    "1.1-pipeline": {"diagram_sizes": [28, 26, 13, 11, 5], "diagram_flatten": 1600},
    "1.2-conv": {"output": [[-13, -15, -12], [-8, -9, -6], [-5, -6, 0]]},
    "1.2-worked-example": {
        "region": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "products": [[-1, -2, -3], [-4, 40, -6], [-7, -8, -9]],
        "sum": -13,
    },
    "1.2-output-sizes": {"outputs": [26, 28, 14, 32]},
    "1.3-multichannel": {
        "output_shape": [1, 16, 28, 28],
        "weight": 432,
        "bias": 16,
        "total": 448,
    },
    "1.3-receptive-field": {"sizes": [3, 5, 6, 8, 10, 11], "final": 11},
    "1.3-rf-diagram": {"sizes": [3, 5, 7]},
    "1.4-conv2d": {
        "output_shape": [8, 64, 224, 224],
        "weight_shape": [64, 3, 3, 3],
        "bias_shape": [64],
        "total": 1792,
    },
    "1.4-param-table": {"totals": [896, 18_496, 73_856, 295_168, 9_472, 2_359_808]},
    "1.4-fc-vs-conv": {"fc": 150_529_000, "conv": 1792, "reduction": "100.00%"},
    "1.6-simple-cnn": {
        "fc1_in_features": 3136,
        "per_tensor": [288, 32, 18_432, 64, 401_408, 128, 1_280, 10],
        "total": 421_066,
    },
    "ex1": {"output": [32, 32, 128]},
    "ex2": {"per_layer": [9_472, 73_856, 295_168], "total": 378_496},
    "ex3": {"sizes": [3, 5, 7, 9], "final": 9},
    "ex5": {
        "fc": 150_529_000,
        "per_layer": [1_792, 36_928, 36_928],
        "total": 75_648,
        "reduction": "99.95%",
    },  # fmt: skip
}

# Why a printed value differs, keyed by (entry, item).
NOTES: dict[tuple[str, str], str] = {
    ("1.2-conv", "output"): (
        "The printed 3×3 output is not the cross-correlation of the printed image and kernel "
        "(flipping the kernel changes nothing, it is symmetric, and no padding or boundary mode "
        "of scipy.signal.correlate2d gives it either). "
        "cnnkit.ops.conv2d, scipy.signal.correlate2d and torch's F.conv2d agree on cnnkit's "
        "values; the position [0, 0] worked example below also gives 0, not -13."
    ),
    ("1.2-worked-example", "sum"): (
        "The printed products are right, but they sum to 0 "
        "(8·5 − (1+2+3+4+6+7+8+9) = 40 − 40), not -13."
    ),
    ("1.3-receptive-field", "sizes"): (
        "The chapter's formula R_l = R_{l-1} + (K_l − 1) ignores the stride of earlier layers. "
        "After the first 2×2 pool (stride 2) one step in the feature map is 2 input pixels, so "
        "each 3×3 conv adds (3 − 1)·2 = 4, and the second pool adds (2 − 1)·2 = 2: "
        "R_l = R_{l-1} + (K_l − 1)·j_{l-1}, j_l = j_{l-1}·S_l (Araujo et al., Distill 2019)."
    ),
    ("1.3-receptive-field", "final"): "See the row above: 16×16, not 11×11.",
    ("1.4-fc-vs-conv", "reduction"): (
        "A rounding artefact: 1 − 1,792 / 150,529,000 = 99.9988…%, which the chapter's "
        "f-string `:.2f` rounds up to 100.00%. The convolution does have parameters."
    ),
    ("1.6-simple-cnn", "total"): (
        "The printed per-tensor counts are right, and they sum to 421,642; the printed total "
        "421,066 (also printed as the trainable count) is not what sum(p.numel()) gives."
    ),
}


@dataclass(frozen=True)
class Difference:
    """One value where the chapter's printed output and cnnkit disagree."""

    item: str
    chapter: Any
    cnnkit: Any
    note: str


@dataclass(frozen=True)
class Entry:
    """One example or exercise: the question, cnnkit's answer, and any difference."""

    key: str
    section: str
    question: str
    summary: str  # cnnkit's answer in one line
    answer: dict[str, Any]  # the computed values (plain ints, floats, lists)
    differences: tuple[Difference, ...] = ()
    remark: str = ""  # context that is not a difference
    via: str = ""  # which cnnkit function computed it


@dataclass
class _Draft:
    question: str
    summary: str
    answer: dict[str, Any]
    via: str
    remark: str = ""
    extra: list[Difference] = field(default_factory=list)


# --------------------------------------------------------------------------- comparison


def _plain(value: Any) -> Any:
    """NumPy -> plain Python; float arrays holding whole numbers become ints (as printed)."""
    if isinstance(value, np.ndarray | np.generic):
        if (
            value.dtype.kind == "f"
            and np.all(np.isfinite(value))
            and np.all(value == np.round(value))
        ):
            return value.astype(np.int64).tolist()
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _matches(printed: Any, computed: Any) -> bool:
    """Does the chapter's printed value agree with cnnkit's?

    A printed decimal string matches a float that rounds to it, except a percentage printed as
    exactly 0% or 100% for a value that is neither: that rounding hides the very point made.
    """
    computed = _plain(computed)
    if isinstance(printed, str):
        is_percent = printed.endswith("%")
        digits = printed.rstrip("%")
        if isinstance(computed, str):
            computed = float(computed.rstrip("%"))
        if f"{computed:.{_decimals(digits)}f}" != digits:
            return False
        return not (is_percent and float(digits) in (0.0, 100.0) and computed not in (0.0, 100.0))
    if isinstance(printed, list):
        return (
            isinstance(computed, list)
            and len(printed) == len(computed)
            and all(_matches(p, c) for p, c in zip(printed, computed, strict=True))
        )
    return bool(printed == computed)


def _finish(key: str, section: str, draft: _Draft) -> Entry:
    differences = list(draft.extra)
    for item, printed in CHAPTER_PRINTED.get(key, {}).items():
        computed = draft.answer[item]
        if not _matches(printed, computed):
            note = NOTES.get((key, item), "The chapter prints a different value.")
            shown = _plain(computed)
            if isinstance(printed, str) and printed.endswith("%"):
                shown = percent_text(float(computed), 4)  # 99.9988%, not a float's 17 digits
            differences.append(Difference(item, printed, shown, note))
    return Entry(
        key=key,
        section=section,
        question=draft.question,
        summary=draft.summary,
        answer={k: _plain(v) for k, v in draft.answer.items()},
        differences=tuple(differences),
        remark=draft.remark,
        via=draft.via,
    )


def _hw(shape: Any) -> str:
    return "×".join(str(v) for v in shape)


# --------------------------------------------------------------------------- section 1.1


def _fc_params() -> _Draft:
    h, w, c, hidden = 224, 224, 3, 1000
    weights = linear_params(h * w * c, hidden, bias=False)
    with_bias = linear_params(h * w * c, hidden)
    return _Draft(
        question="Parameters of a fully-connected first layer: 224×224×3 image → 1,000 neurons.",
        summary=f"{h * w * c:,} inputs × {hidden:,} = {weights.total:,} weights "
        f"({with_bias.total:,} with the biases)",
        answer={
            "input_features": h * w * c,
            "weights": weights.total,
            "weights_and_biases": with_bias.total,
        },
        via="cnnkit.calc.arithmetic.linear_params",
        remark="Section 1.1 counts weights only; 1.4 and exercise 5 add the 1,000 biases.",
    )


def _shift() -> _Draft:
    original = np.zeros((5, 5))
    original[0, 1] = original[0, 3] = original[2, 2] = 1  # left ear, right ear, nose
    shifted = np.zeros((5, 5))
    shifted[0, 2] = shifted[0, 4] = shifted[2, 3] = 1  # the same, one pixel to the right
    a, b = original.reshape(-1), shifted.reshape(-1)  # (25,) each
    distance = float(np.linalg.norm(a - b))
    return _Draft(
        question="Flatten a 5×5 'cat' (two ears, a nose) and the same cat shifted one pixel "
        "right; how far apart are they as fully-connected inputs?",
        summary=f"Euclidean distance √{int(np.sum((a - b) ** 2))} = {distance:.4f}: "
        "no position of the two vectors agrees",
        answer={
            "original_flat": a,
            "shifted_flat": b,
            "differing_positions": int(np.count_nonzero(a != b)),
            "distance": distance,
        },
        via="numpy (flatten, norm)",
    )


def _stages(padding: int) -> tuple[list[list[int]], int]:
    """(H, W, C) after input, conv1, pool, conv2, pool of the chapter's two-block network."""
    hw, stages = (28, 28), [[28, 28, 1]]
    for channels in (32, 64):
        hw = conv2d_output_shape(hw, 3, 1, padding)
        stages.append([*hw, channels])
        hw = pool2d_output_shape(hw, 2, 2)
        stages.append([*hw, channels])
    return stages, hw[0] * hw[1] * 64


def _pipeline() -> _Draft:
    diagram, flat = _stages(padding=0)
    simple, simple_flat = _stages(padding=1)
    return _Draft(
        question="The 'overall structure' diagram: 28×28×1 → conv → pool → conv → pool → "
        "flatten → 128 → 10. Which sizes does each stage have?",
        summary="3×3 convs without padding: "
        + " → ".join(_hw(s) for s in diagram)
        + f", flatten {flat:,}",
        answer={
            "diagram_stages": diagram,
            "diagram_sizes": [s[0] for s in diagram],
            "diagram_flatten": flat,
            "simple_cnn_stages": simple,
            "simple_cnn_flatten": simple_flat,
        },
        via="cnnkit.calc.arithmetic.conv2d_output_shape, pool2d_output_shape",
        extra=[
            Difference(
                item="diagram vs SimpleCNN (1.6)",
                chapter=f"diagram: {' → '.join(str(s[0]) for s in diagram)} (no padding), "
                f"flatten {flat}",
                cnnkit=f"SimpleCNN: {' → '.join(str(s[0]) for s in simple)} (padding 1), "
                f"flatten {simple_flat}",
                note="The diagram's sizes are right for 3×3 convolutions without padding, but "
                "that is a different model from the SimpleCNN the chapter builds and trains in "
                "1.6 (padding=1 keeps 28×28, so 7×7×64 = 3,136 features reach fc1, not 1,600).",
            )
        ],
    )


# --------------------------------------------------------------------------- section 1.2

IMAGE_5X5 = [[1, 2, 3, 0, 1], [4, 5, 6, 1, 2], [7, 8, 9, 2, 3], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]
EDGE_KERNEL = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]


def _conv_example() -> _Draft:
    from cnnkit.ops import conv2d

    output = conv2d(np.array(IMAGE_5X5), np.array(EDGE_KERNEL))  # (3, 3), valid
    return _Draft(
        question="The 5×5 image ⊛ the 3×3 8-neighbour edge kernel (no padding, stride 1).",
        summary=f"3×3 output, first row {output[0].astype(int).tolist()}",
        answer={"output": output},
        via="cnnkit.ops.conv2d",
    )


def _worked_example() -> _Draft:
    image, kernel = np.array(IMAGE_5X5), np.array(EDGE_KERNEL)
    region = image[0:3, 0:3]
    products = region * kernel
    return _Draft(
        question="Position [0, 0] step by step: the region, the element-wise products, the sum.",
        summary=f"sum of the products = {int(products.sum())}",
        answer={"region": region, "products": products, "sum": int(products.sum())},
        via="numpy (element-wise product)",
    )


OUTPUT_SIZE_CONFIGS = [  # (input, kernel, stride, padding, the chapter's label)
    (28, 3, 1, 0, "valid (no padding)"),
    (28, 3, 1, 1, "same (keeps the size)"),
    (28, 5, 2, 2, "stride 2, padding 2"),
    (32, 3, 1, 1, "32×32 image, 3×3 kernel"),
]


def _output_sizes() -> _Draft:
    rows = []
    for size, k, s, p, label in OUTPUT_SIZE_CONFIGS:
        out = conv2d_output_shape(size, k, s, p)[0]
        rows.append({"label": label, "input": size, "kernel": k, "stride": s, "padding": p,
                     "output": out})  # fmt: skip
    return _Draft(
        question="Output sizes ⌊(I + 2P − K) / S⌋ + 1 for four settings.",
        summary=", ".join(f"{r['label']}: {r['output']}×{r['output']}" for r in rows),
        answer={"configs": rows, "outputs": [r["output"] for r in rows]},
        via="cnnkit.calc.arithmetic.conv2d_output_shape",
        remark="The chapter's same-padding rule P = (K − 1)/2 holds for odd K only; for an even "
        "K torch's padding='same' pads (K − 1)//2 before and the extra pixel after "
        "(cnnkit size 28 -k 4 -p same shows it).",
    )


# --------------------------------------------------------------------------- section 1.3


def _multichannel() -> _Draft:
    h, w = conv2d_output_shape((28, 28), 3, 1, 1)
    p = conv2d_params(3, 16, 3)
    return _Draft(
        question="Conv2d(3 → 16, 3×3, padding 1) on a (1, 3, 28, 28) RGB batch: output shape "
        "and parameters.",
        summary=f"output (1, 16, {h}, {w}); {p.weight} weights + {p.bias} biases = {p.total}",
        answer={
            "input_shape": [1, 3, 28, 28],
            "output_shape": [1, 16, h, w],
            "weight": p.weight,
            "bias": p.bias,
            "total": p.total,
        },
        via="cnnkit.calc.arithmetic.conv2d_output_shape, conv2d_params",
    )


def _vgg_like_layers() -> list[Any]:
    from cnnkit.calc.receptive_field import LayerSpec

    # the chapter's (kernel, stride) list; padding 1 keeps the sizes and never changes r
    return [
        LayerSpec.conv(3, 1, 1, name="Conv1 (3×3)"),
        LayerSpec.conv(3, 1, 1, name="Conv2 (3×3)"),
        LayerSpec.pool(2, 2, name="MaxPool (2×2)"),
        LayerSpec.conv(3, 1, 1, name="Conv3 (3×3)"),
        LayerSpec.conv(3, 1, 1, name="Conv4 (3×3)"),
        LayerSpec.pool(2, 2, name="MaxPool (2×2)"),
    ]


def _receptive_field() -> _Draft:
    from cnnkit.calc.receptive_field import chapter_receptive_fields, receptive_fields

    layers = _vgg_like_layers()
    rows = receptive_fields(layers)
    sizes = [row.size[0] for row in rows]
    return _Draft(
        question="Receptive field after each layer of the VGG-like stack "
        "conv3, conv3, pool2, conv3, conv3, pool2.",
        summary="r = " + ", ".join(map(str, sizes)) + f"; final {sizes[-1]}×{sizes[-1]} pixels",
        answer={
            "layers": [row.name for row in rows],
            "sizes": sizes,
            "jumps": [row.jump[0] for row in rows],
            "final": sizes[-1],
            "chapter_formula": [r[0] for r in chapter_receptive_fields(layers)],
        },
        via="cnnkit.calc.receptive_field.receptive_fields",
    )


def _rf_chain(n: int) -> list[int]:
    from cnnkit.calc.receptive_field import LayerSpec, receptive_fields

    return [row.size[0] for row in receptive_fields([LayerSpec.conv(3, 1, 1)] * n)]


def _rf_diagram() -> _Draft:
    sizes = _rf_chain(3)
    return _Draft(
        question="The receptive-field diagram: three stacked 3×3 convolutions (stride 1).",
        summary=" → ".join(f"{r}×{r}" for r in sizes),
        answer={"sizes": sizes},
        via="cnnkit.calc.receptive_field.receptive_fields",
    )


# --------------------------------------------------------------------------- section 1.4


def _conv2d_basic() -> _Draft:
    h, w = conv2d_output_shape((224, 224), 3, 1, 1)
    p = conv2d_params(3, 64, 3)
    return _Draft(
        question="nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1) on (8, 3, 224, 224): "
        "output, weight and bias shapes, parameter count.",
        summary=f"output (8, 64, {h}, {w}); weight (64, 3, 3, 3), bias (64,); {p.total:,}",
        answer={
            "output_shape": [8, 64, h, w],
            "weight_shape": [64, 3, 3, 3],
            "bias_shape": [64],
            "total": p.total,
        },
        via="cnnkit.calc.arithmetic.conv2d_output_shape, conv2d_params",
    )


PARAM_TABLE_CONFIGS = [  # (C_in, C_out, K, the chapter's label)
    (3, 32, 3, "layer 1 (RGB → 32)"),
    (32, 64, 3, "layer 2 (32 → 64)"),
    (64, 128, 3, "layer 3 (64 → 128)"),
    (128, 256, 3, "layer 4 (128 → 256)"),
    (3, 64, 7, "large kernel (7×7)"),
    (512, 512, 3, "deep layer (512 → 512)"),
]


def _param_table() -> _Draft:
    rows = [
        {"label": label, "in_channels": c_in, "out_channels": c_out, "kernel": k,
         "total": conv2d_params(c_in, c_out, k).total}
        for c_in, c_out, k, label in PARAM_TABLE_CONFIGS
    ]  # fmt: skip
    return _Draft(
        question="(C_in·K_h·K_w·C_out) + C_out for six layer settings.",
        summary=", ".join(f"{r['label']}: {r['total']:,}" for r in rows),
        answer={"configs": rows, "totals": [r["total"] for r in rows]},
        via="cnnkit.calc.arithmetic.conv2d_params",
    )


def _fc_vs_conv(key_channels: tuple[int, ...], question: str) -> _Draft:
    c = compare_fc_conv((224, 224, 3), 1000, key_channels, kernel_size=3)
    per_layer = [layer.params.total for layer in c.conv_layers]
    return _Draft(
        question=question,
        summary=f"fully connected {c.fc.total:,} vs convolution {c.conv_total:,}: "
        f"reduction {percent_text(c.reduction_percent)}",
        answer={
            "fc": c.fc.total,
            "per_layer": per_layer,
            "conv": c.conv_total,
            "total": c.conv_total,
            "ratio": c.ratio,
            "reduction": c.reduction_percent,
            "reduction_text": percent_text(c.reduction_percent),
        },
        via="cnnkit.calc.arithmetic.compare_fc_conv",
    )


# --------------------------------------------------------------------------- section 1.6


def simple_cnn_parameters() -> dict[str, int]:
    """Per-tensor parameter counts of the chapter's SimpleCNN, by shape arithmetic alone.

    conv1 1→32 3×3 pad 1, pool 2, conv2 32→64 3×3 pad 1, pool 2, fc1 (64·H·W → 128), fc2 128→10.
    """
    hw = pool2d_output_shape(conv2d_output_shape(28, 3, 1, 1), 2, 2)  # (14, 14)
    hw = pool2d_output_shape(conv2d_output_shape(hw, 3, 1, 1), 2, 2)  # (7, 7)
    layers = {
        "conv1": conv2d_params(1, 32, 3),
        "conv2": conv2d_params(32, 64, 3),
        "fc1": linear_params(64 * hw[0] * hw[1], 128),
        "fc2": linear_params(128, 10),
    }
    counts = {}
    for name, p in layers.items():
        counts[f"{name}.weight"] = p.weight
        counts[f"{name}.bias"] = p.bias
    counts["fc1.in_features"] = 64 * hw[0] * hw[1]
    return counts


def _simple_cnn() -> _Draft:
    counts = simple_cnn_parameters()
    fc1_in = counts.pop("fc1.in_features")
    total = sum(counts.values())
    return _Draft(
        question="SimpleCNN (1.6): fc1's input size and the parameters of each tensor, in total.",
        summary=f"fc1 in_features 64·7·7 = {fc1_in:,}; total {total:,} parameters",
        answer={
            "fc1_in_features": fc1_in,
            "names": list(counts),
            "per_tensor": list(counts.values()),
            "total": total,
        },
        via="cnnkit.calc.arithmetic (shapes, conv2d_params, linear_params)",
    )


# --------------------------------------------------------------------------- exercises


def _ex1() -> _Draft:
    h, w = conv2d_output_shape((64, 64), 5, 2, 2)
    return _Draft(
        question="64×64×3 input, 5×5 kernel, stride 2, padding 2, 128 output channels: "
        "output size?",
        summary=f"{h}×{w}×128",
        answer={"output": [h, w, 128]},
        via="cnnkit.calc.arithmetic.conv2d_output_shape",
    )


def _ex2() -> _Draft:
    per_layer = [conv2d_params(3, 64, 7), conv2d_params(64, 128, 3), conv2d_params(128, 256, 3)]
    totals = [p.total for p in per_layer]
    return _Draft(
        question="Parameters of Conv1 3→64 7×7, Conv2 64→128 3×3, Conv3 128→256 3×3.",
        summary=" + ".join(f"{t:,}" for t in totals) + f" = {sum(totals):,}",
        answer={"per_layer": totals, "total": sum(totals)},
        via="cnnkit.calc.arithmetic.conv2d_params",
    )


def _ex3() -> _Draft:
    sizes = _rf_chain(4)
    return _Draft(
        question="Receptive field of four 3×3 convolutions, stride 1, padded.",
        summary=f"{sizes[-1]}×{sizes[-1]} pixels",
        answer={"sizes": sizes, "final": sizes[-1]},
        via="cnnkit.calc.receptive_field.receptive_fields",
        remark="Right because every stride is 1; with strides see section 1.3.",
    )


# --------------------------------------------------------------------------- registry

_ENTRIES: list[tuple[str, str, Callable[[], _Draft]]] = [
    ("1.1-fc-params", "1.1", _fc_params),
    ("1.1-shift", "1.1", _shift),
    ("1.1-pipeline", "1.1", _pipeline),
    ("1.2-conv", "1.2", _conv_example),
    ("1.2-worked-example", "1.2", _worked_example),
    ("1.2-output-sizes", "1.2", _output_sizes),
    ("1.3-multichannel", "1.3", _multichannel),
    ("1.3-receptive-field", "1.3", _receptive_field),
    ("1.3-rf-diagram", "1.3", _rf_diagram),
    ("1.4-conv2d", "1.4", _conv2d_basic),
    ("1.4-param-table", "1.4", _param_table),
    (
        "1.4-fc-vs-conv",
        "1.4",
        lambda: _fc_vs_conv((64,), "Fully connected 224×224×3 → 1,000 vs one Conv2d 3 → 64, 3×3."),
    ),
    ("1.6-simple-cnn", "1.6", _simple_cnn),
    ("ex1", "ex1", _ex1),
    ("ex2", "ex2", _ex2),
    ("ex3", "ex3", _ex3),
    (
        "ex5",
        "ex5",
        lambda: _fc_vs_conv(
            (64, 64, 64),
            "224×224×3 input: fully connected → 1,000 vs three Conv2d 3→64→64→64, 3×3.",
        ),
    ),
]


def reproduce(section: str | None = None) -> list[Entry]:
    """Every entry of `section` ("1.1" … "1.4", "1.6", "ex1", "ex2", "ex3", "ex5"), or all."""
    if section is not None and section not in SECTIONS:
        raise CnnkitError(
            f"The 'section' parameter must be one of {', '.join(SECTIONS)}. "
            f"Got {section!r} instead."
        )
    return [
        _finish(key, sec, build())
        for key, sec, build in _ENTRIES
        if section is None or sec == section
    ]
