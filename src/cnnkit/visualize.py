"""Look inside a CNN: feature maps of its conv layers for one input, and their pictures.

`conv_feature_maps` runs a torch model with forward hooks on its `nn.Conv2d` modules and
returns each layer's output after the activation. The registry's models all follow every
convolution with ReLU (the chapter's Conv -> ReLU pattern), so the activation applied here is
ReLU; hooks are removed and the model's mode restored in `finally`.
`feature_maps_figure` draws the input and every layer's maps as tiled mosaics (matplotlib,
imported inside the functions).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnkit.checkpoint import LoadedCheckpoint


@dataclasses.dataclass(frozen=True)
class LayerMaps:
    name: str  # the module's qualified name, e.g. "conv1"
    maps: np.ndarray  # (C, H, W) float32, after ReLU


def conv_feature_maps(model, x: np.ndarray, *, limit: int | None = None) -> list[list[LayerMaps]]:
    """Feature maps, after ReLU, of the conv layers of `model` for inputs x (N, C, H, W).

    Layers come in the order they run; `limit` keeps the first `limit` of them.
    Returns one list per input image. The model runs once, in one batch, through
    `model_logits` (eval mode, no gradients, mode restored); the hooks are removed in `finally`.
    """
    import torch
    from torch import nn

    from cnnkit.evaluate import model_logits

    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise CnnkitError(f"the model {type(model).__name__} has no nn.Conv2d layer")
    captured: list[tuple[str, np.ndarray]] = []

    def hook_for(name: str):
        def hook(module, inputs, output) -> None:
            captured.append((name, torch.relu(output).detach().float().numpy()))

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in convs]
    try:
        model_logits(model, np.ascontiguousarray(x, dtype=np.float32), batch_size=max(1, len(x)))
    finally:
        for h in handles:
            h.remove()
    captured = captured[:limit]
    return [[LayerMaps(name, maps[i]) for name, maps in captured] for i in range(len(x))]


def grid_columns(count: int) -> int:
    """Columns of a tiling of `count` maps: 8 for multiples of 8 (32 -> 4x8), else ~square."""
    return 8 if count % 8 == 0 and count >= 16 else int(np.ceil(np.sqrt(count)))


def tile(maps: np.ndarray, *, gap: int = 1) -> np.ndarray:
    """(C, H, W) maps -> one 2-D mosaic, each map scaled to [0, 1] by its own maximum.

    Gaps between tiles are NaN (drawn in the figure's background colour). A map that is zero
    everywhere (a channel that never fired) stays black.
    """
    c, h, w = maps.shape
    columns = grid_columns(c)
    rows = -(-c // columns)
    peak = maps.reshape(c, -1).max(axis=1)
    scaled = maps / np.where(peak > 0, peak, 1.0)[:, None, None]
    mosaic = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan)
    for k in range(c):
        r, q = divmod(k, columns)
        mosaic[r * (h + gap) : r * (h + gap) + h, q * (w + gap) : q * (w + gap) + w] = scaled[k]
    return mosaic


def feature_maps_figure(
    image: np.ndarray, layers: list[LayerMaps], *, title: str = "", input_title: str = "input"
) -> Figure:
    """The input image and each layer's maps (tiled, after ReLU), left to right."""
    from cnnkit.plotting import new_figure

    mosaics = [tile(lm.maps) for lm in layers]
    widths = [1.0] + [m.shape[1] / m.shape[0] for m in mosaics]  # equal heights
    fig = new_figure(figsize=(2.8 * sum(widths) + 0.6, 3.6))
    axes = fig.subplots(1, 1 + len(layers), width_ratios=widths, squeeze=False)[0]
    axes[0].imshow(image, cmap="gray", interpolation="nearest")
    axes[0].set_title(f"{input_title}\n{image.shape[0]}x{image.shape[1]}", fontsize=10)
    for ax, lm, mosaic in zip(axes[1:], layers, mosaics, strict=True):
        c, h, w = lm.maps.shape
        ax.imshow(mosaic, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{lm.name} + ReLU\n{c} maps of {h}x{w}", fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def visualize(
    checkpoint: str | os.PathLike[str] | LoadedCheckpoint,
    image: str | os.PathLike[str] | None,
    output: str | os.PathLike[str],
) -> Path:
    """Write the preprocessed `image` (default: a bundled MNIST digit) and the feature maps of
    every conv layer of the checkpoint's model to `output` (format from the suffix)."""
    from cnnkit.plotting import check_figure_path, save_figure
    from cnnkit.predict import (
        check_grayscale_28,
        example_digits,
        load_digit,
        normalize_images,
        predict_arrays,
        resolve_checkpoint,
    )

    check_figure_path(output)
    ckpt = resolve_checkpoint(checkpoint)
    check_grayscale_28(ckpt)
    source = Path(image) if image is not None else example_digits()[0]
    digit = load_digit(source)  # (28, 28) in [0, 255]
    x = normalize_images(digit[None], ckpt.config["normalize"])  # (1, 1, 28, 28)
    layers = conv_feature_maps(ckpt.model, x)[0]
    best = predict_arrays(ckpt, digit[None], top=1)[0][0]
    title = f"{source.name}: predicted {best.name} ({best.probability:.1%})"
    figure = feature_maps_figure(digit, layers, title=title, input_title="preprocessed input")
    return save_figure(figure, output)
