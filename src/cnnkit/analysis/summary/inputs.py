"""What `summary` feeds the model: one shape or a list of shapes, or real data, like torchinfo.

    summary(model, (3, 32, 32))                          # one positional input, batch of 1
    summary(model, [(3, 32, 32), (10,)])                 # two positional inputs
    summary(model, (16,), dtypes=torch.long)             # token ids (for an nn.Embedding)
    summary(model, input_data=(x, y))                    # tensors: positional arguments
    summary(model, input_data={"x": x, "mask": m})       # a dict: keyword arguments

Shapes are per sample (no batch axis): `summary` adds a batch of 1. Dummy float inputs are
seeded uniform noise; integer inputs are seeded ids below the smallest `num_embeddings` of
the model's embeddings (2 when it has none), so an embedding lookup never goes out of range.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cnnkit.analysis.summary.trace import ModelInputs
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

__all__ = ["MAX_INPUT_ELEMENTS", "InputInfo", "make_inputs", "input_shape_of"]

# One sample of a dummy input holds at most this many values (256 MiB in float32; 3×224×224 is
# 150,528): 1×100000×100000 is refused here, not by the memory it would exhaust.
MAX_INPUT_ELEMENTS = 2**26


@dataclass(frozen=True)
class InputInfo:
    """One input tensor of the summarised call: its argument name, shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # "float32", "int64", ...


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def input_shape_of(input_size: Any) -> tuple[int, ...]:
    """One per-sample shape -> the shape of a batch of one."""
    if isinstance(input_size, int) or not isinstance(input_size, Sequence) or not input_size:
        raise CnnkitError.from_template(
            (
                "The 'input_size' parameter of summary must be (C, H, W) (or any "
                "per-sample shape), or a list of such shapes. Got {input_size!r} instead."
            ),
            input_size=input_size,
        )
    if not all(_is_int(v) and v > 0 for v in input_size):
        raise CnnkitError.from_template(
            (
                "The 'input_size' parameter of summary must hold positive ints. Got "
                "{input_size!r} instead."
            ),
            input_size=input_size,
        )
    elements = 1
    for v in input_size:
        elements *= int(v)
    if elements > MAX_INPUT_ELEMENTS:
        raise CnnkitError.from_template(
            (
                "The 'input_size' parameter of summary (--input) holds {elements:,} "
                "values per sample, more than the bound of {max_input_elements:,} "
                "(2**26). Got {input_size!r} instead."
            ),
            elements=elements,
            max_input_elements=MAX_INPUT_ELEMENTS,
            input_size=tuple(input_size),
        )
    return (1, *(int(v) for v in input_size))


def _shapes(input_size: Any) -> list[tuple[int, ...]]:
    """`(C, H, W)` -> one shape; `[(C, H, W), (L,)]` -> one per input."""
    several = isinstance(input_size, Sequence) and bool(input_size)
    if several and all(isinstance(s, Sequence) and not isinstance(s, str) for s in input_size):
        return [input_shape_of(s) for s in input_size]
    return [input_shape_of(input_size)]


def _dtypes(dtypes: Any, n: int, default: Any) -> list[Any]:
    import torch

    if dtypes is None:
        return [default] * n
    values = list(dtypes) if isinstance(dtypes, list | tuple) else [dtypes] * n
    if len(values) != n or not all(isinstance(d, torch.dtype) for d in values):
        raise CnnkitError.from_template(
            (
                "The 'dtypes' parameter of summary must be a torch.dtype or one per "
                "input ({n}). Got {dtypes!r} instead."
            ),
            n=n,
            dtypes=dtypes,
        )
    return values


def _positional_names(model: Any, n: int) -> list[str]:
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [
        p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]  # fmt: skip
    if n == 1 and not names:
        return ["input"]
    return [names[i] if i < len(names) else f"input{i}" for i in range(n)]


def _dummy(model: Any, shape: tuple[int, ...], dtype: Any, seed: int, device: str) -> Any:
    import torch

    gen = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point or dtype.is_complex:
        # Random, not zeros: data-dependent branches see something like an image.
        return torch.rand(shape, generator=gen, dtype=dtype).to(device)
    if dtype == torch.bool:
        return (torch.rand(shape, generator=gen) > 0.5).to(device)
    sizes = [m.num_embeddings for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    high = min(sizes, default=2)
    return torch.randint(0, high, shape, generator=gen, dtype=dtype).to(device)


def _from_data(model: Any, data: Any) -> ModelInputs:
    import torch
    from torch.utils._pytree import tree_flatten

    if isinstance(data, torch.Tensor):
        return ModelInputs((data,), {}, _positional_names(model, 1))
    if isinstance(data, Mapping):
        kwargs = dict(data)
        args: tuple[Any, ...] = ()
        labels = [str(k) for k in kwargs]
    elif isinstance(data, list | tuple):
        args, kwargs = tuple(data), {}
        labels = _positional_names(model, len(args))
    else:
        raise CnnkitError.from_template(
            (
                "The 'input_data' parameter of summary must be a tensor, a tuple or list "
                "of positional arguments, or a dict of keyword arguments. Got "
                "{type_name}."
            ),
            type_name=type(data).__name__,
        )
    names = []
    for label, value in zip(labels, [*args, *kwargs.values()], strict=True):
        leaves = [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]
        names += [label] if len(leaves) == 1 else [f"{label}[{i}]" for i in range(len(leaves))]
    if not names:
        raise CnnkitError("The 'input_data' parameter of summary holds no tensor.")
    return ModelInputs(args, kwargs, names)


def make_inputs(
    model: Any, input_size: Any, input_data: Any, dtypes: Any, device: str
) -> tuple[ModelInputs, list[InputInfo]]:
    """The call to trace and a description of each input tensor."""
    if (input_size is None) == (input_data is None):
        raise CnnkitError.from_template(
            (
                "summary needs exactly one of 'input_size' (shapes) and 'input_data' "
                "(tensors). Got {detail}."
            ),
            detail=Message("both") if input_data is not None else Message("neither"),
        )
    if input_data is not None:
        inputs = _from_data(model, input_data)
    else:
        shapes = _shapes(input_size)
        default = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        import torch

        kinds = _dtypes(dtypes, len(shapes), default or torch.float32)
        tensors = tuple(
            _dummy(model, s, d, i, device)
            for i, (s, d) in enumerate(zip(shapes, kinds, strict=True))
        )
        inputs = ModelInputs(tensors, {}, _positional_names(model, len(tensors)))
    infos = [
        InputInfo(name, tuple(t.shape), str(t.dtype).removeprefix("torch."))
        for name, t in zip(inputs.names, inputs.tensors(), strict=True)
    ]
    return inputs, infos
