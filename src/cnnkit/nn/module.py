"""`Parameter`, `Module` and `Sequential`: the NumPy engine's containers, shaped like torch's.

A `Module` finds its parameters and sub-modules from its attributes (in assignment order, as
torch does), so `named_parameters()` and `state_dict()` give torch's names (`conv1.weight`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError, ShapeError

__all__ = ["DType", "Module", "Parameter", "Sequential"]

DType = np.dtype | type


class Parameter:
    """A trainable array and its gradient (None until a backward pass writes one)."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def accumulate(self, grad: np.ndarray) -> None:
        self.grad = grad if self.grad is None else self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameters and sub-modules are found among the attributes, in order.

    Like torch, a module's own parameters come before those of its children, so the names
    (`conv1.weight`, `fc2.bias`, `0.weight` inside `Sequential`) match torch's `state_dict`.
    """

    training: bool = True
    needs_input_grad: bool = True  # False on a first layer: its backward skips dL/dx

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def train(self, mode: bool = True) -> Module:
        self.training = mode
        for _, child in self.named_children():
            child.train(mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters under torch's names."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays (NumPy, or anything `np.asarray` takes, e.g. CPU torch tensors) in.

        Strict like torch: missing or unexpected keys and shape mismatches are refused, and
        nothing is changed unless every entry fits. Values are cast to each parameter's dtype.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise CnnkitError.from_template(
                (
                    "Error(s) in loading state_dict for {type_name}: missing keys {missing}, "
                    "unexpected keys {unexpected}."
                ),
                type_name=type(self).__name__,
                missing=missing,
                unexpected=unexpected,
            )
        arrays = {}
        for name, p in params.items():
            value = state[name]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            arr = np.asarray(value)
            if arr.shape != p.shape:
                raise ShapeError.from_template(
                    (
                        "size mismatch for {name}: copying a param with shape {shape} from the "
                        "state dict, the shape in current model is {shape2}."
                    ),
                    name=name,
                    shape=arr.shape,
                    shape2=p.shape,
                )
            arrays[name] = arr
        for name, p in params.items():
            p.data[...] = arrays[name]

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order; their parameters are named "0.weight", "1.bias", ..."""

    def __init__(self, *modules: Module) -> None:
        for i, module in enumerate(modules):
            setattr(self, str(i), module)

    def __iter__(self) -> Iterator[Module]:
        return (m for _, m in self.named_children())

    def __len__(self) -> int:
        return sum(1 for _ in self.named_children())

    def __getitem__(self, index: int) -> Module:
        return list(self)[index]

    def forward(self, x: np.ndarray) -> np.ndarray:
        for module in self:
            x = module(x)
        return x

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        return grad_output
