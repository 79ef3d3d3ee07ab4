"""Every summary row's output for one input, fast: a plan made once from the summary's trace.

The summary's tracer (`cnnkit.analysis.summary.trace`) follows every tensor through every op
and hooks every module: exact, but a few milliseconds per forward pass. The playground runs
the same model on many inputs, so at start it traces once and writes down *which* torch
function calls produce the rows (`Plan`): the k-th call of the forward pass, counted by a
`TorchFunctionMode` that does nothing but count (`Counter`). Each request then runs the model
under a counter that copies (`clone`, differentiable) the outputs of just those calls, the
moment they are made — before any later in-place op (`F.relu(x, inplace=True)`) changes them.

The plan holds only while the forward pass makes the same calls in the same order (no
data-dependent control flow): each request checks the call count and the name of every
copied call; `Playground.forward` falls back to the full tracer when they differ, and at load
the fast path's rows are compared with the tracer's (`torch.equal`) before it is used at all.
Attribute reads and metadata calls (`x.shape`, `x.dim()`) are not counted: the tracer makes
some of its own while it records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

__all__ = ["Counter", "Plan", "make_plan", "snapshot_hook", "align"]

_UNCOUNTED = frozenset(("__get__", "__set__", "__repr__", "__format__", "dim", "size", "numel"))


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__name__", None) or type(func).__name__


def _first_output(func: Callable[..., Any], args: tuple[Any, ...], out: Any) -> Any:
    """The tensor an op produces (for `x[...] = y`, x itself), or None."""
    if isinstance(out, torch.Tensor):
        return out
    if _name(func) == "__setitem__" and args and isinstance(args[0], torch.Tensor):
        return args[0]
    return next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)


class Counter(TorchFunctionMode):
    """Counts the torch function calls of a forward pass.

    `wanted` (call number -> row): copy those calls' outputs into `outputs[row]`.
    `record`: keep every call's output tensor (to map the tracer's nodes onto call numbers).
    """

    def __init__(self, wanted: dict[int, int] | None = None, *, record: bool = False) -> None:
        super().__init__()
        self.wanted = wanted or {}
        self.record = record
        self.count = 0
        self.outputs: dict[int, torch.Tensor] = {}
        self.names: dict[int, str] = {}  # row -> name of the call that produced it
        self.recorded: list[tuple[str, torch.Tensor | None]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        name = _name(func)
        if name in _UNCOUNTED:
            return out
        k = self.count
        self.count += 1
        if self.record:
            self.recorded.append((name, _first_output(func, args, out)))
        elif k in self.wanted:
            t = _first_output(func, args, out)
            if t is not None:
                row = self.wanted[k]
                self.outputs[row] = t.clone()
                self.names[row] = name
        return out


@dataclass(frozen=True)
class Plan:
    """Which call makes each row: `calls[call number] = row`; `names[row]` its function;
    `input_rows`: rows whose output is the model's input itself; `count`: calls in a pass."""

    calls: dict[int, int]
    names: dict[int, str]
    input_rows: frozenset[int]
    count: int

    def rows(self, counter: Counter, x: torch.Tensor, n_rows: int) -> list[Any] | None:
        """The rows from a counted pass, or None if the pass did not follow the plan."""
        if counter.count != self.count or counter.names != self.names:
            return None
        return [x if i in self.input_rows else counter.outputs.get(i) for i in range(n_rows)]


def make_plan(nodes: Sequence[Any], row_nodes: Sequence[Any], recorded: list[Any]) -> Plan | None:
    """Map the tracer's nodes onto the call numbers of a recording `Counter` run alongside.

    `row_nodes`: each row's output node (or None). Nodes and calls come in the same order;
    the counter sees more calls (ops on constants, the tracer's own), skipped by identity:
    a node's output is the tensor its call returned, kept alive by both during the run.
    None when some node cannot be matched.
    """
    call_of: dict[int, int] = {}
    j = 0
    for node in nodes:
        if node.op == "input" or node.output is None:
            continue
        while j < len(recorded) and recorded[j][1] is not node.output:
            j += 1
        if j == len(recorded):
            return None
        call_of[node.index] = j
        j += 1
    calls, names, inputs = {}, {}, set()
    for row, node in enumerate(row_nodes):
        if node is None:
            continue
        if node.op == "input":
            inputs.add(row)
            continue
        k = call_of.get(node.index)
        if k is None:
            return None
        calls[k] = row
        names[row] = recorded[k][0]
    if len(calls) != len(names):  # two rows from one call: a module returning its input op
        return None
    return Plan(calls, names, frozenset(inputs), len(recorded))


def snapshot_hook(snapshots: list[tuple[int, Any]]) -> Callable[..., Any]:
    """A tracer `replace` hook for the slow path: runs each op as it is and keeps (id, copy)
    of its output; the tracer records a node for each in the same order (`align`)."""

    def hook(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        first = _first_output(func, args, out)
        if first is not None:
            snapshots.append((id(first), first.clone()))
        return out

    return hook


def align(nodes: Sequence[Any], snapshots: list[tuple[int, Any]]) -> dict[int, Any] | None:
    """node index -> the copy `snapshot_hook` took when it ran (None if they do not line up).

    A node without a copy is an op the hook did not see (an op on weights only, whose output
    no later op changes in place). Outputs stay alive during the trace, so an id names one
    tensor, and an op done in place (same tensor as its input) takes the next copy in order.
    """
    copies: dict[int, Any] = {}
    k = 0
    for node in nodes:
        if node.op == "input" or node.output is None:
            continue
        if k < len(snapshots) and snapshots[k][0] == id(node.output):
            copies[node.index] = snapshots[k][1]
            k += 1
    return copies if k == len(snapshots) else None
