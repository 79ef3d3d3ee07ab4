"""Receptive fields over a recorded graph (Araujo, Norris & Sim, Distill 2019).

Every tensor gets a `ReceptiveField`: per axis (H, W) its size r, jump j and the input
coordinate of the first unit's centre (`start`), propagated op by op with the same recurrence
as `cnnkit.calc.receptive_field.rf_step`. Where paths merge (`x + shortcut`, `torch.cat`), the
paper's alignment criterion applies: all inputs must have the same jump and the same centre
of the first unit, per axis; then the receptive field is the largest one. Otherwise the result
is "not aligned" (the receptive field is not one box centred on the unit) and both paths are
named instead of a wrong number.

Conventions:
- Flatten to (N, features), linear, global pooling, softmax over space, and instance/group/
  layer norm make every output depend on the whole input: status "whole-input".
- Transposed convolution with stride s > 1 and resizing (`F.interpolate`, nn.Upsample,
  adaptive pooling whose sizes do not divide) do not give every unit the same receptive
  field. We report j' = j/s (or j·in/out) and the largest r over the output units,
  r' = r + (⌈K_eff/s⌉ − 1)·j (transposed) or r + (taps − 1)·j (resizing), and flag the row
  `approximate` (shown with "≈").
- An op without a rule makes the receptive field "unknown" from there on, naming the op.
- Several inputs: every tensor gets one field per input (`propagate`); a tensor that does not
  depend on an input has status "none" for it. Only 4-D floating-point inputs (N, C, H, W)
  have a spatial field; others (token ids, vectors) are "not-spatial".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from cnnkit.analysis.summary.rules import Resample, Transposed, Window, effect
from cnnkit.analysis.summary.trace import Node, Trace
from cnnkit.calc.receptive_field import rf_step
from cnnkit.core.i18n import Message

__all__ = [
    "INPUT_RF",
    "LOCAL",
    "NONE",
    "NOT_ALIGNED",
    "NOT_SPATIAL",
    "UNKNOWN",
    "WHOLE",
    "ReceptiveField",
    "merge",
    "propagate",
]

LOCAL, WHOLE, NOT_ALIGNED, UNKNOWN, NONE = "local", "whole-input", "not-aligned", "unknown", "none"
NOT_SPATIAL = "not-spatial"  # the input is not an image (token ids, feature vectors)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one tensor, per axis (H, W).

    `status`: "local" (size/jump/start are set), "whole-input", "not-aligned", "unknown",
    "not-spatial" (the input is not an (N, C, H, W) image: token ids, feature vectors), or
    "none" (the tensor does not depend on the input). `note` explains the other statuses.
    """

    status: str
    size: tuple[float, float] | None = None
    jump: tuple[float, float] | None = None
    start: tuple[float, float] | None = None
    approximate: bool = False
    note: str = ""
    source: str = ""  # the row that produced this tensor (for alignment messages)


INPUT_RF = ReceptiveField(LOCAL, (1, 1), (1, 1), (0.0, 0.0), source="input")


def _window(rf: ReceptiveField, w: Window) -> ReceptiveField:
    assert rf.size and rf.jump and rf.start
    axes = [
        rf_step(rf.size[a], rf.jump[a], rf.start[a], w.kernel_eff[a], w.stride[a], w.pad_before[a])
        for a in range(2)
    ]
    return replace(
        rf,
        size=(axes[0][0], axes[1][0]),
        jump=(axes[0][1], axes[1][1]),
        start=(axes[0][2], axes[1][2]),
        approximate=rf.approximate or w.approximate,
    )


def _transposed(rf: ReceptiveField, t: Transposed) -> ReceptiveField:
    assert rf.size and rf.jump and rf.start
    size, jump, start = [], [], []
    for a in range(2):
        k, s, p, j = t.kernel_eff[a], t.stride[a], t.padding[a], rf.jump[a]
        size.append(rf.size[a] + (math.ceil(k / s) - 1) * j)
        jump.append(j / s)
        start.append(rf.start[a] + (p - (k - 1) / 2) / s * j)
    return replace(
        rf,
        size=(size[0], size[1]),
        jump=(jump[0], jump[1]),
        start=(start[0], start[1]),
        approximate=rf.approximate or any(s > 1 for s in t.stride),
    )


def _resample(rf: ReceptiveField, r: Resample) -> ReceptiveField:
    assert rf.size and rf.jump and rf.start
    size, jump, start = [], [], []
    for a in range(2):
        j = rf.jump[a]
        size.append(rf.size[a] + (r.taps[a] - 1) * j)
        jump.append(j / r.scale[a])
        # output unit 0 samples input coordinate (0.5 / scale − 0.5) (half-pixel convention)
        start.append(rf.start[a] + max(0.0, 0.5 / r.scale[a] - 0.5) * j)
    return replace(
        rf, size=(size[0], size[1]), jump=(jump[0], jump[1]), start=(start[0], start[1]),
        approximate=True,
    )  # fmt: skip


def _describe(rf: ReceptiveField) -> Message:
    assert rf.jump and rf.start
    return Message(
        "{source} (jump {jump}, first centre {start})",
        source=rf.source or "?",
        jump=_axes(rf.jump),
        start=_axes(rf.start),
    )


def _axes(values: tuple[float, float]) -> str:
    text = [f"{v:g}" for v in values]
    return text[0] if text[0] == text[1] else f"{text[0]},{text[1]}"


def merge(inputs: list[ReceptiveField]) -> ReceptiveField:
    """Receptive field of an op combining several tensors element-wise (add, cat, mul...)."""
    live = [rf for rf in inputs if rf.status != NONE]
    if not live:
        return ReceptiveField(NONE)
    for status in (UNKNOWN, NOT_ALIGNED, WHOLE, NOT_SPATIAL):
        found = next((rf for rf in live if rf.status == status), None)
        if found is not None:
            return found
    first = live[0]
    for other in live[1:]:
        assert first.jump and other.jump and first.start and other.start
        if first.jump != other.jump or first.start != other.start:
            return ReceptiveField(
                NOT_ALIGNED,
                note=Message(
                    "paths not aligned: {first} vs {other}",
                    first=_describe(first),
                    other=_describe(other),
                ),
            )
    # Aligned: same jump and centres, so the union of the fields is the largest one per axis.
    size = tuple(max((rf.size or (0, 0))[a] for rf in live) for a in range(2))
    return replace(
        first,
        size=(size[0], size[1]),
        approximate=any(rf.approximate for rf in live),
    )


def _input_field(trace: Trace, node: Node, k: int) -> ReceptiveField:
    """Field of input node `node` with respect to input `k` (the k-th input node)."""
    if node.index != trace.inputs[k]:
        return ReceptiveField(NONE)
    out = node.output
    if out is None or out.dim() != 4 or not out.is_floating_point():
        return ReceptiveField(NOT_SPATIAL, note=Message("the input is not an (N, C, H, W) image"))
    return INPUT_RF


def propagate(trace: Trace, names: dict[int, str]) -> list[list[ReceptiveField]]:
    """The receptive field of every node's output with respect to each input, in node order:
    `fields[node][k]` for the k-th input (`trace.inputs[k]`). An output that does not depend
    on input k has status "none" there.

    `names` maps a node index to the row it belongs to, for messages about paths.
    """
    inputs = set(trace.inputs)
    out: list[list[ReceptiveField]] = []
    for node in trace.nodes:
        if node.index in inputs:
            out.append([_input_field(trace, node, k) for k in range(len(trace.inputs))])
            continue
        source = names.get(node.index, node.op)
        fields = []
        for k in range(len(trace.inputs)):
            rf = _step(node, merge([out[i][k] for i in node.inputs]))
            fields.append(replace(rf, source=source))
        out.append(fields)
    return out


def _step(node: Node, rf: ReceptiveField) -> ReceptiveField:
    """Apply one op's effect to the (merged) field of its inputs."""
    if rf.status != LOCAL:
        return rf
    eff = effect(node)
    if eff.kind == "pointwise":
        return rf
    if eff.kind == "global":
        return ReceptiveField(WHOLE, note=eff.reason)
    if eff.kind == "unknown":
        return ReceptiveField(UNKNOWN, note=eff.reason)
    if len(node.inputs) != 1 or len(node.input_shapes[0]) != 4:
        return ReceptiveField(
            UNKNOWN, note=Message("{op} on {shapes}", op=node.op, shapes=node.input_shapes)
        )
    if isinstance(eff.window, Window):
        return _window(rf, eff.window)
    if isinstance(eff.window, Transposed):
        return _transposed(rf, eff.window)
    if isinstance(eff.window, Resample):
        return _resample(rf, eff.window)
    return rf
