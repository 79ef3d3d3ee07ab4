"""`summary(model, input_size)`: rows, totals and receptive fields, as dataclasses.

Compute (`trace.record`, `rules`, `rf.propagate`) -> aggregate (this module: rows at the
requested depth, parameters counted once, totals) -> format (`format.py`). Nothing prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cnnkit.analysis.summary.inputs import InputInfo, input_shape_of, make_inputs
from cnnkit.analysis.summary.macs import has_rule, macs
from cnnkit.analysis.summary.rf import NONE, ReceptiveField, propagate
from cnnkit.analysis.summary.trace import ModelInputs, ModuleCall, Node, Trace, record
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.core.i18n import N_, Message

__all__ = ["Box", "LayerRow", "Summary", "input_shape_of", "rf_box", "run_traced", "summary"]


@dataclass(frozen=True)
class LayerRow:
    """One executed layer (a module call, folded to the requested depth) or functional op."""

    name: str
    type: str
    depth: int
    output_shape: tuple[int, ...]
    trainable_params: int
    frozen_params: int
    macs: int
    rf: ReceptiveField  # with respect to the (first) input the row depends on
    # With several inputs: the field with respect to each input the row depends on.
    rfs: dict[str, ReceptiveField] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return self.trainable_params + self.frozen_params

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class Summary:
    model: str
    input_shape: tuple[int, ...]  # (1, C, H, W): the dummy batch
    depth: int | None
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    frozen_params: int
    total_macs: int
    param_bytes: int
    activation_bytes: int  # every row's output, one forward pass, batch of 1
    input_bytes: int
    unused_params: int  # parameters of the model that no executed op used
    notes: list[str] = field(default_factory=list)
    inputs: list[InputInfo] = field(default_factory=list)  # every input tensor of the call
    uncounted: dict[str, int] = field(default_factory=dict)  # op without a MAC rule -> runs

    @property
    def macs_complete(self) -> bool:
        """False when some op had no MAC rule: `total_macs` is then a lower bound."""
        return not self.uncounted

    @property
    def total_flops(self) -> int:
        """FLOPs, defined as 2 × MACs (a multiply and an add each)."""
        return 2 * self.total_macs

    def _repr_html_(self) -> str:
        """Jupyter's rich display, worded in the current language (`core.i18n`)."""
        from cnnkit.analysis.summary.table import summary_html
        from cnnkit.core.i18n import translate

        return summary_html(self, tr=translate)

    def row(self, name: str) -> LayerRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise CnnkitError.from_template(
            "No layer named {name!r} in the summary of {model}. Known: {rows}.",
            name=name,
            model=self.model,
            rows=", ".join(repr(r.name) for r in self.rows),
        )


@dataclass(frozen=True)
class Box:
    """Input region of a unit, rows `top..bottom` and columns `left..right`, inclusive.

    The unclipped box may reach outside the image (into the padding); `clipped` is the part
    inside the `input_hw` image.
    """

    top: int
    bottom: int
    left: int
    right: int
    clipped: tuple[int, int, int, int]  # (top, bottom, left, right) inside the image
    input_hw: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return (self.bottom - self.top + 1, self.right - self.left + 1)


# --------------------------------------------------------------------------- running the model


def _scope_name(trace: Trace, scope: tuple[int, ...]) -> str:
    names = [trace.calls[i].name for i in scope if trace.calls[i].name]
    return names[-1] if names else ""


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes.items():
            m.train(mode)


def run_traced(
    model: Any, input_shape: tuple[int, ...], *, device: str = "cpu", replace: Any = None,
    x: Any = None, grad: bool = False,
) -> tuple[Trace, Any]:  # fmt: skip
    """Record one forward pass in eval mode; restores each module's mode, removes hooks.

    `x`: a tensor or `ModelInputs` (several inputs, keyword arguments); None: seeded noise of
    `input_shape`. Errors from the model become a `ShapeError` naming the layer and shapes.
    """
    import torch

    _check_module(model)
    if x is None:
        x, _ = make_inputs(model, input_shape[1:], None, None, device)
    inputs = x if isinstance(x, ModelInputs) else ModelInputs((x,), {}, ["input"])
    with _eval_mode(model), torch.set_grad_enabled(grad):
        try:
            return record(model, inputs, replace=replace), x
        except Exception as e:
            trace: Trace | None = getattr(e, "cnnkit_trace", None)
            shapes = [tuple(t.shape) for t in inputs.tensors()]
            raise _failure(model, trace, shapes, e) from e


def _check_module(model: Any) -> None:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise CnnkitError.from_template(
            "summary needs a torch.nn.Module. Got {type_name} instead.",
            type_name=type(model).__name__,
        )


def _failure(
    model: Any, trace: Trace | None, shapes: list[tuple[int, ...]], e: Exception
) -> ShapeError:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
    given = (
        Message("input shape {shape}", shape=shapes[0])
        if len(shapes) == 1
        else Message("input shapes {shapes}", shapes=shapes)
    )
    if trace is None or trace.failed is None:
        return ShapeError.from_template(
            "{model} cannot run on {given}: {reason}",
            model=type(model).__name__,
            given=given,
            reason=reason,
        )
    failed = trace.failed
    module = trace.calls[failed.scope[-1]].module if failed.scope else model
    return ShapeError.from_template(
        "{model} cannot run on {given} at layer {layer!r} ({module}, op {op}, input shape "
        "{got}): {reason}",
        model=type(model).__name__,
        given=given,
        layer=_scope_name(trace, failed.scope) or Message("(top level)"),
        module=type(module).__name__,
        op=failed.op,
        got=", ".join(str(tuple(s)) for s in failed.input_shapes) or "?",
        reason=reason,
    )


# --------------------------------------------------------------------------- aggregation


def _folds(call: ModuleCall, depth: int | None) -> bool:
    """A call whose row takes in everything that runs inside it."""
    return call.leaf or (depth is not None and call.depth >= depth)


def _owner(trace: Trace, scope: Sequence[int], depth: int | None) -> ModuleCall | None:
    """The outermost folding call of a scope (outermost first), or None."""
    return next((trace.calls[i] for i in scope if _folds(trace.calls[i], depth)), None)


def _call_scope(trace: Trace, index: int) -> list[int]:
    chain: list[int] = []
    cur: int | None = index
    while cur is not None:
        chain.append(cur)
        cur = trace.calls[cur].parent
    return chain[::-1]


def _row_groups(trace: Trace, depth: int | None) -> list[tuple[ModuleCall | None, list[Node]]]:
    """Rows in execution order: a folding call with the ops run inside it, or a lone op."""
    groups: dict[int, tuple[ModuleCall | None, list[Node]]] = {}
    order: list[tuple[int, int]] = []  # (seq, key)
    for call in trace.calls:  # a folding call owns a row even if it ran no op (nn.Identity)
        if _owner(trace, _call_scope(trace, call.index), depth) is call:
            groups[-1 - call.index] = (call, [])
            order.append((call.seq, -1 - call.index))
    for node in trace.nodes[len(trace.inputs) :]:
        owner = _owner(trace, node.scope, depth)
        if owner is None:
            groups[node.index] = (None, [node])
            order.append((node.seq, node.index))
        else:
            groups[-1 - owner.index][1].append(node)
    return [groups[key] for _, key in sorted(order)]


def row_names(
    trace: Trace, depth: int | None
) -> list[tuple[tuple[ModuleCall | None, list[Node]], str]]:
    """Row groups with their unique names: module path, or scope + op for a lone op."""
    out = []
    seen: dict[str, int] = {}
    for call, nodes in _row_groups(trace, depth):
        if call is not None:
            name = call.name or type(call.module).__name__
        else:
            scope = _scope_name(trace, nodes[0].scope)
            name = f"{scope}.{nodes[0].op}" if scope else nodes[0].op
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name}#{seen[name]}"
        out.append(((call, nodes), name))
    return out


def row_output(trace: Trace, call: ModuleCall | None, nodes: list[Node]) -> Node | None:
    """The node that produced the row's output tensor."""
    if call is None:
        return nodes[-1]
    return None if call.output_node is None else trace.nodes[call.output_node]


def _activation_bytes(trace: Trace) -> int:
    """Bytes of every distinct tensor the ops produced (an in-place op's output counts once)."""
    produced = trace.nodes[len(trace.inputs) :]
    seen = {id(n.output): n.output for n in produced if n.output is not None}
    return sum(t.numel() * t.element_size() for t in seen.values())


def _check_depth(depth: Any) -> None:
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool) or depth < 0):
        raise CnnkitError.from_template(
            (
                "The 'depth' parameter of summary must be a non-negative int or None. "
                "Got {depth!r} instead."
            ),
            depth=depth,
        )


def _row_fields(
    fields: list[ReceptiveField], names: list[str]
) -> tuple[ReceptiveField, dict[str, ReceptiveField]]:
    """(the row's field, per-input fields): one input -> its field; several -> each input
    the row depends on, the first of them as `rf`."""
    if len(fields) == 1:
        return fields[0], {}
    per_input = {n: f for n, f in zip(names, fields, strict=True) if f.status != NONE}
    return next(iter(per_input.values()), ReceptiveField(NONE)), per_input


class _ParamCounter:
    """Counts each parameter once, at its first use (shared modules, tied weights)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.bytes = 0

    def count(self, params: list[Any]) -> tuple[int, int]:
        trainable = frozen = 0
        for p in params:
            if id(p) in self.seen:
                continue
            self.seen.add(id(p))
            self.bytes += p.numel() * p.element_size()
            if p.requires_grad:
                trainable += p.numel()
            else:
                frozen += p.numel()
        return trainable, frozen


def _rows(
    trace: Trace, depth: int | None, input_names: list[str]
) -> tuple[list[LayerRow], _ParamCounter]:
    """The rows at `depth`, and the parameters they used."""
    named = row_names(trace, depth)
    row_of = {node.index: name for (_, nodes), name in named for node in nodes}
    fields = propagate(trace, row_of)
    counter = _ParamCounter()
    rows: list[LayerRow] = []
    for (call, nodes), name in named:
        params = [p for node in nodes for p in node.params]
        if call is not None:
            params = list(call.module.parameters()) + params
        trainable, frozen = counter.count(params)
        if call is not None:
            type_name, row_depth = type(call.module).__name__, call.depth
        else:
            type_name = nodes[0].op
            row_depth = len([i for i in nodes[0].scope if trace.calls[i].name]) + 1
        out_node = row_output(trace, call, nodes)
        if out_node is not None and out_node.output is not None:
            out_shape = out_node.shape
            rf, rfs = _row_fields(fields[out_node.index], input_names)
        else:
            out_shape, rf, rfs = (), ReceptiveField(NONE), {}
        rows.append(
            LayerRow(
                name=name,
                type=type_name,
                depth=row_depth,
                output_shape=out_shape,
                trainable_params=trainable,
                frozen_params=frozen,
                macs=sum(macs(n) for n in nodes),
                rf=rf,
                rfs=rfs,
            )  # fmt: skip
        )
    return rows, counter


def _notes(rows: list[LayerRow], unused: int, uncounted: dict[str, int]) -> list[str]:
    # Where paths first disagree (rows downstream inherit the same note).
    fields = [f for r in rows for f in [r.rf, *r.rfs.values()]]
    names = [r.name for r in rows for _ in [r.rf, *r.rfs.values()]]
    misaligned = {
        f.note: n for f, n in zip(reversed(fields), reversed(names), strict=True)
        if f.status == "not-aligned"
    }  # fmt: skip
    notes: list[str] = [
        Message("{layer}: {note}", layer=name, note=note)
        for note, name in reversed(misaligned.items())
    ]
    if unused:
        n = f"{unused:,}"
        notes.append(
            Message("{n} parameters belong to modules that did not run (not counted)", n=n)
        )
    if uncounted:
        ops = ", ".join(f"{op} ×{n}" for op, n in uncounted.items())
        text = Message(
            "MACs not counted (no rule) for: {ops}; the MAC total is a lower bound", ops=ops
        )
        notes.append(text)
    return notes


def summary(
    model: Any,
    input_size: Any = None,
    *,
    input_data: Any = None,
    dtypes: Any = None,
    depth: int | None = None,
    device: str = "cpu",
) -> Summary:
    """Layer-by-layer summary of `model` run once on a batch of one.

    `input_size`: one per-sample shape (C, H, W), or a list of shapes, one per positional
    input; `dtypes`: a torch dtype or one per shape (torch.long for token ids). Or
    `input_data`: a tensor, a tuple of positional arguments, or a dict of keyword arguments
    (used as they are; see inputs.py).
    `depth`: fold module calls nested deeper than `depth` into their ancestor at that depth
    (like torchinfo's `depth`); None lists every leaf module and functional op.
    `device`: where the dummy inputs are made; the model must already be there.
    """
    _check_depth(depth)
    _check_module(model)
    inputs, infos = make_inputs(model, input_size, input_data, dtypes, device)
    trace, _ = run_traced(model, infos[0].shape, device=device, x=inputs)
    rows, counter = _rows(trace, depth, [i.name for i in infos])
    all_params = {id(p): p for p in model.parameters()}
    unused = sum(p.numel() for i, p in all_params.items() if i not in counter.seen)
    uncounted: dict[str, int] = {}
    for node in trace.nodes[len(trace.inputs) :]:
        if not has_rule(node.op):
            uncounted[node.op] = uncounted.get(node.op, 0) + 1
    tensors = inputs.tensors()
    return Summary(
        model=type(model).__name__,
        input_shape=infos[0].shape,
        depth=depth,
        rows=rows,
        total_params=sum(r.params for r in rows),
        trainable_params=sum(r.trainable_params for r in rows),
        frozen_params=sum(r.frozen_params for r in rows),
        total_macs=sum(r.macs for r in rows),
        param_bytes=counter.bytes,
        activation_bytes=_activation_bytes(trace),
        input_bytes=sum(t.numel() * t.element_size() for t in tensors),
        unused_params=unused,
        notes=_notes(rows, unused, uncounted),
        inputs=infos,
        uncounted=uncounted,
    )


# --------------------------------------------------------------------------- boxes


# the receptive-field statuses that box_of's error names, for the catalog
_STATUS_WORDS = (N_("not-aligned"), N_("unknown"), N_("none"))


def box_of(rf: ReceptiveField, unit: tuple[int, int], input_hw: tuple[int, int], layer: str) -> Box:
    """Input box of unit (y, x) of a tensor with receptive field `rf`."""
    h, w = input_hw
    if rf.status == "whole-input":
        return Box(0, h - 1, 0, w - 1, (0, h - 1, 0, w - 1), (h, w))
    if rf.status != "local" or rf.size is None or rf.jump is None or rf.start is None:
        raise CnnkitError.from_template(
            (
                "The receptive field of {layer!r} is {status}{detail}; there is no "
                "single input box to give."
            ),
            layer=layer,
            status=Message(rf.status),  # one of _STATUS_WORDS, worded by the CLI
            detail=Message(" ({note})", note=rf.note) if rf.note else "",
        )
    edges = []
    for a in range(2):
        centre = rf.start[a] + unit[a] * rf.jump[a]
        half = (rf.size[a] - 1) / 2
        edges.append((int(round(centre - half)), int(round(centre + half))))
    (top, bottom), (left, right) = edges
    clipped = (max(top, 0), min(bottom, h - 1), max(left, 0), min(right, w - 1))
    return Box(top, bottom, left, right, clipped, (h, w))


def rf_box(model: Any, layer: str, unit: tuple[int, int], input_size: Sequence[int]) -> Box:
    """The input region that unit `(y, x)` of `layer` (a row name of `summary`) sees."""
    s = summary(model, input_size)
    try:
        row = s.row(layer)
    except CnnkitError:  # a module folding others (e.g. "layer1.1"): its row at its depth
        folded = summary(model, input_size, depth=layer.count(".") + 1)
        if not any(r.name == layer for r in folded.rows):
            raise
        row = folded.row(layer)
    if len(row.output_shape) == 4:
        _, _, oh, ow = row.output_shape
        y, x = unit
        if not (0 <= y < oh and 0 <= x < ow):
            raise CnnkitError.from_template(
                "The unit {unit!r} is outside the {oh}×{ow} output of layer {layer!r}.",
                unit=unit,
                oh=oh,
                ow=ow,
                layer=layer,
            )
    return box_of(row.rf, unit, (s.input_shape[-2], s.input_shape[-1]), layer)
