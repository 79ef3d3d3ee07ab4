"""Record what a model really computes: every functional op, its inputs, and the module calls.

One forward pass runs under a `TorchFunctionMode` (every top-level torch function call —
`F.conv2d`, `torch.cat`, `x + y`, `x.view(...)` — passes through it) while forward pre-/post-
hooks on every module keep a stack of the module calls in progress. Tensors are linked to the
op that produced them by identity, so residual additions, concatenations and any Python control
flow are followed exactly as executed. (This records the run itself, so it also works where
`torch.fx.symbolic_trace` cannot trace: data-dependent branches, asserts on shapes, ...)

Ops executed inside a call of a *leaf* module (one without children: `nn.Conv2d`, ...) are kept
and later grouped into that module's row. Nested calls made by a function (e.g. what
`F.interpolate` calls) are not seen: the mode is disabled while a function runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

__all__ = ["ModelInputs", "ModuleCall", "Node", "Replace", "Trace", "op_name", "record"]

# A hook that may compute a function's result instead of the function (used by the gradient
# oracle to swap ReLU for identity and max- for sum-pooling); NotImplemented means "run it".
Replace = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]

# Method and operator spellings of the same op, normalised for the rules.
_ALIASES = {
    "__add__": "add", "__radd__": "add", "__iadd__": "add", "add_": "add",
    "__sub__": "sub", "__rsub__": "sub", "__isub__": "sub", "sub_": "sub",
    "__mul__": "mul", "__rmul__": "mul", "__imul__": "mul", "mul_": "mul",
    "__truediv__": "div", "__rtruediv__": "div", "__itruediv__": "div", "div_": "div",
    "__neg__": "neg", "relu_": "relu", "_max_pool2d": "max_pool2d",
    "max_pool2d_with_indices": "max_pool2d", "adaptive_max_pool2d_with_indices":
    "adaptive_max_pool2d", "upsample": "interpolate", "upsample_nearest": "interpolate",
    "upsample_bilinear": "interpolate", "concat": "cat", "concatenate": "cat",
    "hardtanh_": "hardtanh", "leaky_relu_": "leaky_relu", "elu_": "elu", "sigmoid_": "sigmoid",
    "tanh_": "tanh", "clamp_": "clamp", "__getitem__": "getitem", "__setitem__": "setitem",
    "__matmul__": "matmul", "__rmatmul__": "matmul", "__pow__": "pow", "__rpow__": "pow",
    "__ipow__": "pow", "pow_": "pow", "exp_": "exp", "gelu_": "gelu", "silu_": "silu",
    "masked_fill_": "masked_fill", "softmax_": "softmax", "upsample_trilinear": "interpolate",
}  # fmt: skip


def op_name(func: Callable[..., Any]) -> str:
    name = getattr(func, "__name__", None) or type(func).__name__
    return _ALIASES.get(name, name)


@dataclass
class Node:
    """One executed op. `inputs`: producer node index of each traced tensor argument."""

    index: int
    op: str
    func: Callable[..., Any] | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: list[int]
    input_shapes: list[tuple[int, ...]]
    output: torch.Tensor | None
    scope: tuple[int, ...]  # indices of the module calls in progress, outermost first
    params: list[nn.Parameter]
    seq: int
    label: str = ""  # an input node's name (the forward argument it was passed as)

    @property
    def shape(self) -> tuple[int, ...]:
        return () if self.output is None else tuple(self.output.shape)


@dataclass
class ModuleCall:
    index: int
    name: str  # as in `model.named_modules()`; "" is the model itself
    module: nn.Module
    parent: int | None
    seq: int
    output_node: int | None = None  # producer of the first output tensor
    end_seq: int = -1
    has_child_calls: bool = False

    @property
    def depth(self) -> int:
        return 0 if self.name == "" else self.name.count(".") + 1

    @property
    def leaf(self) -> bool:
        """No module call ran inside this one (nn.MultiheadAttention uses its `out_proj`'s
        weights functionally, so it is a leaf too); set by `record`."""
        return not self.has_child_calls


@dataclass
class ModelInputs:
    """What `model(*args, **kwargs)` is called with; `names` label the input tensors."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    names: list[str]  # one per input tensor, in `tensors()` order

    def tensors(self) -> list[torch.Tensor]:
        leaves, _ = tree_flatten((self.args, self.kwargs))
        return [t for t in leaves if isinstance(t, torch.Tensor)]


@dataclass
class Trace:
    nodes: list[Node]  # the first len(inputs) nodes are the model's input tensors
    calls: list[ModuleCall]
    output: Any = None
    failed: Node | None = None  # the op (or module) that raised, when the forward pass failed
    inputs: list[int] = dataclasses.field(default_factory=list)  # node index of each input


class _Recorder(TorchFunctionMode):
    def __init__(self, trace: Trace, replace: Replace | None) -> None:
        super().__init__()
        self.trace = trace
        self.replace = replace
        self.producer: dict[int, int] = {}
        self.keep: list[torch.Tensor] = []  # keeps ids unique while we hold them
        self.stack: list[int] = []
        self.counter = itertools.count()

    def bind(self, tensor: torch.Tensor, node: int) -> None:
        self.producer[id(tensor)] = node
        self.keep.append(tensor)

    def _inputs(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[list[int], list[tuple[int, ...]], list[nn.Parameter]]:
        """Producer and shape of each traced tensor argument, and the parameters used."""
        leaves, _ = tree_flatten((args, kwargs))
        inputs: list[int] = []
        shapes: list[tuple[int, ...]] = []
        params: list[nn.Parameter] = []
        for leaf in leaves:
            if isinstance(leaf, nn.Parameter):
                params.append(leaf)
            elif isinstance(leaf, torch.Tensor) and id(leaf) in self.producer:
                inputs.append(self.producer[id(leaf)])
                shapes.append(tuple(leaf.shape))
        return inputs, shapes, params

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        if name == "__get__":  # a property: x.T and x.mT are transposes, the rest metadata
            name = {"T": "t", "mT": "t", "H": "t", "mH": "t"}.get(_property(func), name)
        if name in ("__get__", "__set__", "__repr__", "__format__", "dim", "size", "numel"):
            return func(*args, **kwargs)
        inputs, shapes, params = self._inputs(args, kwargs)
        node = Node(
            index=len(self.trace.nodes), op=name, func=func, args=args, kwargs=kwargs,
            inputs=inputs, input_shapes=shapes, output=None, scope=tuple(self.stack),
            params=params, seq=next(self.counter),
        )  # fmt: skip
        try:
            out = NotImplemented
            if self.replace is not None and inputs:
                out = self.replace(func, args, kwargs)
            if out is NotImplemented:
                out = func(*args, **kwargs)
        except Exception:
            self.trace.failed = node
            raise
        if name == "setitem" and args and isinstance(args[0], torch.Tensor):
            out_tensors = [args[0]]  # x[...] = y changes x in place
        else:
            out_tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not out_tensors or not (inputs or params):
            return out  # metadata, or a constant that depends on neither input nor weights
        node.output = out_tensors[0]
        self.trace.nodes.append(node)
        for t in out_tensors:
            self.bind(t, node.index)
        return out


def _property(func: Any) -> str:
    return str(getattr(getattr(func, "__self__", None), "__name__", ""))


def _first_tensor(value: Any) -> torch.Tensor | None:
    return next((t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)), None)


@contextlib.contextmanager
def _hooks(model: nn.Module, rec: _Recorder) -> Iterator[None]:
    handles = []
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}

    def pre(module: nn.Module, args: Any) -> None:
        call = ModuleCall(
            index=len(rec.trace.calls), name=names.get(id(module), "?"), module=module,
            parent=rec.stack[-1] if rec.stack else None, seq=next(rec.counter),
        )  # fmt: skip
        if call.parent is not None:
            rec.trace.calls[call.parent].has_child_calls = True
        rec.trace.calls.append(call)
        rec.stack.append(call.index)

    def post(module: nn.Module, args: Any, output: Any) -> None:
        if not rec.stack:
            return
        call = rec.trace.calls[rec.stack.pop()]
        call.end_seq = next(rec.counter)
        t = _first_tensor(output)
        if t is not None:
            call.output_node = rec.producer.get(id(t))

    try:
        for module in dict.fromkeys(m for _, m in model.named_modules()):
            handles.append(module.register_forward_pre_hook(pre))
            handles.append(module.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


def _input_node(index: int, tensor: torch.Tensor, label: str, seq: int) -> Node:
    return Node(
        index=index, op="input", func=None, args=(), kwargs={}, inputs=[], input_shapes=[],
        output=tensor, scope=(), params=[], seq=seq, label=label,
    )  # fmt: skip


def record(
    model: nn.Module, x: torch.Tensor | ModelInputs, *, replace: Replace | None = None
) -> Trace:
    """Run `model(x)` (or `model(*x.args, **x.kwargs)`) once and return what ran. The caller
    sets eval mode and grad mode.

    On an exception from the model, every hook is removed and the exception propagates with
    `exc.cnnkit_trace` set to the partial trace (its `failed` node says which op raised).
    """
    inputs = x if isinstance(x, ModelInputs) else ModelInputs((x,), {}, ["input"])
    trace = Trace(nodes=[], calls=[])
    rec = _Recorder(trace, replace)
    for tensor, label in zip(inputs.tensors(), inputs.names, strict=True):
        trace.inputs.append(len(trace.nodes))
        trace.nodes.append(_input_node(len(trace.nodes), tensor, label, next(rec.counter)))
        rec.bind(tensor, trace.inputs[-1])
    try:
        with _hooks(model, rec), rec:
            trace.output = model(*inputs.args, **inputs.kwargs)
    except Exception as e:
        e.cnnkit_trace = trace  # type: ignore[attr-defined]
        if trace.failed is None:
            trace.failed = Node(
                index=-1, op="forward", func=None, args=(), kwargs={}, inputs=[],
                input_shapes=[], output=None, scope=tuple(rec.stack), params=[], seq=-1,
            )  # fmt: skip
        raise
    return trace
