"""Look inside a CNN: feature maps of its conv layers for one input, and their pictures.

`conv_feature_maps` runs a torch model with forward hooks on its `nn.Conv2d` modules and
returns each layer's output after the activation. The registry's models all follow every
convolution with ReLU (the chapter's Conv -> ReLU pattern), so the activation applied here is
ReLU; hooks are removed and the model's mode restored in `finally`.
Pictures of them: `cnnkit.render.feature_maps`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.core.errors import CnnkitError

if TYPE_CHECKING:
    import torch

__all__ = ["LayerMaps", "conv_feature_maps"]


@dataclasses.dataclass(frozen=True)
class LayerMaps:
    name: str  # the module's qualified name, e.g. "conv1"
    maps: np.ndarray  # (C, H, W) float32, after ReLU


def conv_feature_maps(
    model: torch.nn.Module, x: np.ndarray, *, limit: int | None = None, device: str = "cpu"
) -> list[list[LayerMaps]]:
    """Feature maps, after ReLU, of the conv layers of `model` for inputs x (N, C, H, W).

    Layers come in the order they run; `limit` keeps the first `limit` of them.
    Returns one list per input image. The model runs once, in one batch, through
    `model_logits` (eval mode, no gradients, mode and device restored) on `device` (auto,
    cpu, cuda, mps); the maps come back to the CPU. The hooks are removed in `finally`.
    """
    import torch
    from torch import nn

    from cnnkit.analysis.evaluate import model_logits

    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise CnnkitError.from_template(
            "the model {type_name} has no nn.Conv2d layer", type_name=type(model).__name__
        )
    captured: list[tuple[str, np.ndarray]] = []

    def hook_for(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            captured.append((name, torch.relu(output).detach().float().cpu().numpy()))

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in convs]
    try:
        model_logits(
            model,
            np.ascontiguousarray(x, dtype=np.float32),
            batch_size=max(1, len(x)),
            device=device,
        )
    finally:
        for h in handles:
            h.remove()
    captured = captured[:limit]
    return [[LayerMaps(name, maps[i]) for name, maps in captured] for i in range(len(x))]
