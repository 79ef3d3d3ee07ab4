"""The chapter reproduced: every worked example of sections 1.1–1.4 (and the SimpleCNN count of
1.6) and exercises 1, 2, 3 and 5, with each number computed by cnnkit.

`reproduce(section)` returns `Entry` objects: what the chapter asks, cnnkit's computed answer,
and — where the chapter's printed output differs — a `Difference` with both values and a plain
note. The chapter's printed values live in `CHAPTER_PRINTED` (`chapter_text.py`, with the
chapter's inputs and the notes on each difference), used only to detect and report
those differences; tests check cnnkit's answers against independent oracles (torch, scipy,
NumPy), never against this table.

Computations go through cnnkit itself: `cnnkit.calc.arithmetic` (shapes), `cnnkit.calc.params`
(parameter counts), `cnnkit.ops.conv2d` (the 5×5 example) and `cnnkit.calc.receptive_field`
(receptive fields). No torch.
The classic-kernel figure of section 1.2 is `cnnkit kernels`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnkit.analysis.chapter_compare import Difference, Draft, Entry, finish
from cnnkit.analysis.chapter_text import (
    CHAPTER_PRINTED,
    EDGE_KERNEL,
    IMAGE_5X5,
    NOTES,
    SECTIONS,
)
from cnnkit.calc.arithmetic import conv2d_output_shape, pool2d_output_shape
from cnnkit.calc.params import compare_fc_conv, conv2d_params, linear_params, percent_text
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

__all__ = [
    "CHAPTER_PRINTED",
    "EDGE_KERNEL",
    "IMAGE_5X5",
    "NOTES",
    "SECTIONS",
    "Difference",
    "Entry",
    "reproduce",
    "simple_cnn_parameters",
]


def _hw(shape: Any) -> str:
    return "×".join(str(v) for v in shape)


# --------------------------------------------------------------------------- section 1.1


def _fc_params() -> Draft:
    h, w, c, hidden = 224, 224, 3, 1000
    weights = linear_params(h * w * c, hidden, bias=False)
    with_bias = linear_params(h * w * c, hidden)
    return Draft(
        question="Parameters of a fully-connected first layer: 224×224×3 image → 1,000 neurons.",
        summary=Message(
            "{inputs} inputs × {hidden} = {weights} weights ({total} with the biases)",
            inputs=f"{h * w * c:,}",
            hidden=f"{hidden:,}",
            weights=f"{weights.total:,}",
            total=f"{with_bias.total:,}",
        ),
        answer={
            "input_features": h * w * c,
            "weights": weights.total,
            "weights_and_biases": with_bias.total,
        },
        via="cnnkit.calc.params.linear_params",
        remark="Section 1.1 counts weights only; 1.4 and exercise 5 add the 1,000 biases.",
    )


def _shift() -> Draft:
    original = np.zeros((5, 5))
    original[0, 1] = original[0, 3] = original[2, 2] = 1  # left ear, right ear, nose
    shifted = np.zeros((5, 5))
    shifted[0, 2] = shifted[0, 4] = shifted[2, 3] = 1  # the same, one pixel to the right
    a, b = original.reshape(-1), shifted.reshape(-1)  # (25,) each
    distance = float(np.linalg.norm(a - b))
    return Draft(
        question="Flatten a 5×5 'cat' (two ears, a nose) and the same cat shifted one pixel "
        "right; how far apart are they as fully-connected inputs?",
        summary=Message(
            "Euclidean distance √{squared} = {distance}: no position of the two vectors agrees",
            squared=int(np.sum((a - b) ** 2)),
            distance=f"{distance:.4f}",
        ),
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


def _pipeline() -> Draft:
    diagram, flat = _stages(padding=0)
    simple, simple_flat = _stages(padding=1)
    return Draft(
        question="The 'overall structure' diagram: 28×28×1 → conv → pool → conv → pool → "
        "flatten → 128 → 10. Which sizes does each stage have?",
        summary=Message(
            "3×3 convs without padding: {stages}, flatten {flat}",
            stages=" → ".join(_hw(s) for s in diagram),
            flat=f"{flat:,}",
        ),
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
                chapter=Message(
                    "diagram: {sizes} (no padding), flatten {flat}",
                    sizes=" → ".join(str(s[0]) for s in diagram),
                    flat=flat,
                ),
                cnnkit=Message(
                    "SimpleCNN: {sizes} (padding 1), flatten {flat}",
                    sizes=" → ".join(str(s[0]) for s in simple),
                    flat=simple_flat,
                ),
                note="The diagram's sizes are right for 3×3 convolutions without padding, but "
                "that is a different model from the SimpleCNN the chapter builds and trains in "
                "1.6 (padding=1 keeps 28×28, so 7×7×64 = 3,136 features reach fc1, not 1,600).",
            )
        ],
    )


# --------------------------------------------------------------------------- section 1.2


def _conv_example() -> Draft:
    from cnnkit.ops import conv2d

    output = conv2d(np.array(IMAGE_5X5), np.array(EDGE_KERNEL))  # (3, 3), valid
    return Draft(
        question="The 5×5 image ⊛ the 3×3 8-neighbour edge kernel (no padding, stride 1).",
        summary=Message("3×3 output, first row {row}", row=output[0].astype(int).tolist()),
        answer={"output": output},
        via="cnnkit.ops.conv2d",
    )


def _worked_example() -> Draft:
    image, kernel = np.array(IMAGE_5X5), np.array(EDGE_KERNEL)
    region = image[0:3, 0:3]
    products = region * kernel
    return Draft(
        question="Position [0, 0] step by step: the region, the element-wise products, the sum.",
        summary=Message("sum of the products = {total}", total=int(products.sum())),
        answer={"region": region, "products": products, "sum": int(products.sum())},
        via="numpy (element-wise product)",
    )


OUTPUT_SIZE_CONFIGS = [  # (input, kernel, stride, padding, the chapter's label)
    (28, 3, 1, 0, Message("valid (no padding)")),
    (28, 3, 1, 1, Message("same (keeps the size)")),
    (28, 5, 2, 2, Message("stride 2, padding 2")),
    (32, 3, 1, 1, Message("32×32 image, 3×3 kernel")),
]


def _output_sizes() -> Draft:
    rows = []
    for size, k, s, p, label in OUTPUT_SIZE_CONFIGS:
        out = conv2d_output_shape(size, k, s, p)[0]
        rows.append({"label": label, "input": size, "kernel": k, "stride": s, "padding": p,
                     "output": out})  # fmt: skip
    return Draft(
        question="Output sizes ⌊(I + 2P − K) / S⌋ + 1 for four settings.",
        summary=Message.joined(
            ", ", [Message("{label}: {n}×{n}", label=r["label"], n=r["output"]) for r in rows]
        ),
        answer={"configs": rows, "outputs": [r["output"] for r in rows]},
        via="cnnkit.calc.arithmetic.conv2d_output_shape",
        remark="The chapter's same-padding rule P = (K − 1)/2 holds for odd K only; for an even "
        "K torch's padding='same' pads (K − 1)//2 before and the extra pixel after "
        "(cnnkit size 28 -k 4 -p same shows it).",
    )


# --------------------------------------------------------------------------- section 1.3


def _multichannel() -> Draft:
    h, w = conv2d_output_shape((28, 28), 3, 1, 1)
    p = conv2d_params(3, 16, 3)
    return Draft(
        question="Conv2d(3 → 16, 3×3, padding 1) on a (1, 3, 28, 28) RGB batch: output shape "
        "and parameters.",
        summary=Message(
            "output (1, 16, {h}, {w}); {weight} weights + {bias} biases = {total}",
            h=h,
            w=w,
            weight=p.weight,
            bias=p.bias,
            total=p.total,
        ),
        answer={
            "input_shape": [1, 3, 28, 28],
            "output_shape": [1, 16, h, w],
            "weight": p.weight,
            "bias": p.bias,
            "total": p.total,
        },
        via="cnnkit.calc.arithmetic.conv2d_output_shape, cnnkit.calc.params.conv2d_params",
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


def _receptive_field() -> Draft:
    from cnnkit.calc.receptive_field import chapter_receptive_fields, receptive_fields

    layers = _vgg_like_layers()
    rows = receptive_fields(layers)
    sizes = [row.size[0] for row in rows]
    return Draft(
        question="Receptive field after each layer of the VGG-like stack "
        "conv3, conv3, pool2, conv3, conv3, pool2.",
        summary=Message(
            "r = {sizes}; final {r}×{r} pixels", sizes=", ".join(map(str, sizes)), r=sizes[-1]
        ),
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


def _rf_diagram() -> Draft:
    sizes = _rf_chain(3)
    return Draft(
        question="The receptive-field diagram: three stacked 3×3 convolutions (stride 1).",
        summary=" → ".join(f"{r}×{r}" for r in sizes),
        answer={"sizes": sizes},
        via="cnnkit.calc.receptive_field.receptive_fields",
    )


# --------------------------------------------------------------------------- section 1.4


def _conv2d_basic() -> Draft:
    h, w = conv2d_output_shape((224, 224), 3, 1, 1)
    p = conv2d_params(3, 64, 3)
    return Draft(
        question="nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1) on (8, 3, 224, 224): "
        "output, weight and bias shapes, parameter count.",
        summary=Message(
            "output (8, 64, {h}, {w}); weight (64, 3, 3, 3), bias (64,); {total}",
            h=h,
            w=w,
            total=f"{p.total:,}",
        ),
        answer={
            "output_shape": [8, 64, h, w],
            "weight_shape": [64, 3, 3, 3],
            "bias_shape": [64],
            "total": p.total,
        },
        via="cnnkit.calc.arithmetic.conv2d_output_shape, cnnkit.calc.params.conv2d_params",
    )


PARAM_TABLE_CONFIGS = [  # (C_in, C_out, K, the chapter's label)
    (3, 32, 3, Message("layer 1 (RGB → 32)")),
    (32, 64, 3, Message("layer 2 (32 → 64)")),
    (64, 128, 3, Message("layer 3 (64 → 128)")),
    (128, 256, 3, Message("layer 4 (128 → 256)")),
    (3, 64, 7, Message("large kernel (7×7)")),
    (512, 512, 3, Message("deep layer (512 → 512)")),
]


def _param_table() -> Draft:
    rows = [
        {"label": label, "in_channels": c_in, "out_channels": c_out, "kernel": k,
         "total": conv2d_params(c_in, c_out, k).total}
        for c_in, c_out, k, label in PARAM_TABLE_CONFIGS
    ]  # fmt: skip
    return Draft(
        question="(C_in·K_h·K_w·C_out) + C_out for six layer settings.",
        summary=Message.joined(
            ", ", [Message("{label}: {n}", label=r["label"], n=f"{r['total']:,}") for r in rows]
        ),
        answer={"configs": rows, "totals": [r["total"] for r in rows]},
        via="cnnkit.calc.params.conv2d_params",
    )


def _fc_vs_conv(key_channels: tuple[int, ...], question: str) -> Draft:
    c = compare_fc_conv((224, 224, 3), 1000, key_channels, kernel_size=3)
    per_layer = [layer.params.total for layer in c.conv_layers]
    return Draft(
        question=question,
        summary=Message(
            "fully connected {fc} vs convolution {conv}: reduction {reduction}",
            fc=f"{c.fc.total:,}",
            conv=f"{c.conv_total:,}",
            reduction=percent_text(c.reduction_percent),
        ),
        answer={
            "fc": c.fc.total,
            "per_layer": per_layer,
            "conv": c.conv_total,
            "total": c.conv_total,
            "ratio": c.ratio,
            "reduction": c.reduction_percent,
            "reduction_text": percent_text(c.reduction_percent),
        },
        via="cnnkit.calc.params.compare_fc_conv",
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


def _simple_cnn() -> Draft:
    counts = simple_cnn_parameters()
    fc1_in = counts.pop("fc1.in_features")
    total = sum(counts.values())
    return Draft(
        question="SimpleCNN (1.6): fc1's input size and the parameters of each tensor, in total.",
        summary=Message(
            "fc1 in_features 64·7·7 = {n}; total {total} parameters",
            n=f"{fc1_in:,}",
            total=f"{total:,}",
        ),
        answer={
            "fc1_in_features": fc1_in,
            "names": list(counts),
            "per_tensor": list(counts.values()),
            "total": total,
        },
        via="cnnkit.calc.arithmetic (shapes), cnnkit.calc.params (counts)",
    )


# --------------------------------------------------------------------------- exercises


def _ex1() -> Draft:
    h, w = conv2d_output_shape((64, 64), 5, 2, 2)
    return Draft(
        question="64×64×3 input, 5×5 kernel, stride 2, padding 2, 128 output channels: "
        "output size?",
        summary=f"{h}×{w}×128",
        answer={"output": [h, w, 128]},
        via="cnnkit.calc.arithmetic.conv2d_output_shape",
    )


def _ex2() -> Draft:
    per_layer = [conv2d_params(3, 64, 7), conv2d_params(64, 128, 3), conv2d_params(128, 256, 3)]
    totals = [p.total for p in per_layer]
    return Draft(
        question="Parameters of Conv1 3→64 7×7, Conv2 64→128 3×3, Conv3 128→256 3×3.",
        summary=" + ".join(f"{t:,}" for t in totals) + f" = {sum(totals):,}",
        answer={"per_layer": totals, "total": sum(totals)},
        via="cnnkit.calc.params.conv2d_params",
    )


def _ex3() -> Draft:
    sizes = _rf_chain(4)
    return Draft(
        question="Receptive field of four 3×3 convolutions, stride 1, padded.",
        summary=Message("{r}×{r} pixels", r=sizes[-1]),
        answer={"sizes": sizes, "final": sizes[-1]},
        via="cnnkit.calc.receptive_field.receptive_fields",
        remark="Right because every stride is 1; with strides see section 1.3.",
    )


# --------------------------------------------------------------------------- registry

_ENTRIES: list[tuple[str, str, Callable[[], Draft]]] = [
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
        raise CnnkitError.from_template(
            ("The 'section' parameter must be one of {sections}. Got {section!r} instead."),
            sections=", ".join(SECTIONS),
            section=section,
        )
    return [
        finish(key, sec, build())
        for key, sec, build in _ENTRIES
        if section is None or sec == section
    ]
