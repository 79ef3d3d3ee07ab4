"""SGD and Adam with `torch.optim`'s exact update rules (single-tensor CPU path).

The order of operations follows torch's `_single_tensor_sgd` / `_single_tensor_adam`, so the
same gradients give the same parameters to rounding (tests: 50 steps, float64, 1e-12).
Updates are in place, so a `Parameter.data` array keeps its identity across steps.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message
from cnnkit.nn.module import Parameter

__all__ = ["SGD", "Adam", "Optimizer"]


def _non_negative(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or value < 0:
        raise CnnkitError.from_template("Invalid {what}: {value!r}", what=what, value=value)
    return float(value)


class Optimizer:
    """Holds the parameters, one hyper-parameter group and a per-parameter state dict.

    `state_dict()` has torch's layout: {"state": {index: {...}}, "param_groups": [{...,
    "params": [indices]}]}, with NumPy arrays in place of tensors.
    """

    def __init__(self, params: Iterable[Parameter], defaults: dict[str, Any]) -> None:
        self.params = list(params)
        if not self.params:
            raise CnnkitError("optimizer got an empty parameter list")
        if not all(isinstance(p, Parameter) for p in self.params):
            raise CnnkitError("optimizer params must be cnnkit.nn.Parameter objects")
        self.param_groups = [dict(defaults)]
        self.state: dict[int, dict[str, Any]] = {}

    @property
    def group(self) -> dict[str, Any]:
        return self.param_groups[0]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    def step(self) -> None:
        g = self.group
        for i, p in enumerate(self.params):
            if p.grad is not None:
                grad = -p.grad if g["maximize"] else p.grad
                self._update(p.data, grad, self.state.setdefault(i, {}), g)

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], g: dict[str, Any]
    ) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        group = {**copy.deepcopy(self.group), "params": list(range(len(self.params)))}
        return {"state": copy.deepcopy(self.state), "param_groups": [group]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise CnnkitError.from_template(
                (
                    "loaded optimizer state does not match this optimizer's parameters: "
                    "{group_sizes} vs [{n_params}]"
                ),
                group_sizes=[len(g["params"]) for g in groups],
                n_params=len(self.params),
            )
        state = {int(i): copy.deepcopy(s) for i, s in state_dict["state"].items()}
        for i, s in state.items():
            for key, value in s.items():
                if hasattr(value, "detach"):  # a torch tensor from torch's optimizer
                    value = value.detach().cpu().numpy()
                if isinstance(value, np.ndarray) and value.ndim:
                    if value.shape != self.params[i].shape:
                        raise CnnkitError.from_template(
                            (
                                "optimizer state {key!r} of parameter {i} has shape {shape}, the "
                                "parameter has {shape2}"
                            ),
                            key=key,
                            i=i,
                            shape=value.shape,
                            shape2=self.params[i].shape,
                        )
                    value = value.astype(self.params[i].data.dtype)
                elif key == "step":
                    value = float(value)
                s[key] = value
        self.param_groups = [{k: v for k, v in groups[0].items() if k != "params"}]
        self.state = state


class SGD(Optimizer):
    """`torch.optim.SGD`: weight decay, momentum with dampening, Nesterov, maximize."""

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        lr = _non_negative(lr, Message("learning rate"))
        momentum = _non_negative(momentum, Message("momentum value"))
        weight_decay = _non_negative(weight_decay, Message("weight_decay value"))
        if nesterov and (momentum <= 0 or dampening != 0):
            raise CnnkitError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=float(dampening),
            weight_decay=weight_decay,
            nesterov=bool(nesterov),
            maximize=bool(maximize),
        )
        super().__init__(params, defaults)

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], g: dict[str, Any]
    ) -> None:
        if g["weight_decay"] != 0:
            grad = grad + g["weight_decay"] * param
        if g["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= g["momentum"]
                buf += (1 - g["dampening"]) * grad
            grad = grad + g["momentum"] * buf if g["nesterov"] else buf
        param -= g["lr"] * grad


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start ← start + weight·(end - start), in place, with torch's two-branch formula."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


class Adam(Optimizer):
    """`torch.optim.Adam` (and AdamW with `decoupled_weight_decay=True`), amsgrad optional.

    Per step t with gradient g (after weight decay):
        m ← m + (1-β₁)(g - m)                 (torch's lerp)
        v ← β₂ v + (1-β₂) g²
        θ ← θ - lr/(1-β₁ᵗ) · m / (√v / √(1-β₂ᵗ) + ε)      (ε added after the bias correction)
    """

    def __init__(
        self,
        params: Iterable[Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        lr = _non_negative(lr, Message("learning rate"))
        eps = _non_negative(eps, Message("epsilon value"))
        for i, beta in enumerate(betas):
            if not 0.0 <= _non_negative(beta, Message("beta parameter at index {i}", i=i)) < 1.0:
                raise CnnkitError.from_template(
                    "Invalid beta parameter at index {i}: {beta!r}", i=i, beta=beta
                )
        weight_decay = _non_negative(weight_decay, Message("weight_decay value"))
        defaults = dict(
            lr=lr,
            betas=(float(betas[0]), float(betas[1])),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=bool(amsgrad),
            maximize=bool(maximize),
            decoupled_weight_decay=bool(decoupled_weight_decay),
        )
        super().__init__(params, defaults)

    def _update(
        self, param: np.ndarray, grad: np.ndarray, state: dict[str, Any], g: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps, wd = g["lr"], g["betas"], g["eps"], g["weight_decay"]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if g["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if wd != 0:
            if g["decoupled_weight_decay"]:
                param *= 1 - lr * wd
            else:
                grad = grad + wd * param
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(exp_avg, grad, 1 - beta1)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)
        bias_correction1 = 1 - beta1**step
        bias_correction2_sqrt = (1 - beta2**step) ** 0.5
        step_size = lr / bias_correction1
        if g["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            second = state["max_exp_avg_sq"]
        else:
            second = exp_avg_sq
        denom = np.sqrt(second)
        denom /= bias_correction2_sqrt
        denom += eps
        param -= step_size * (exp_avg / denom)
