"""Pictures of feature maps: `feature_maps_figure` draws the input and every conv layer's maps
(from `cnnkit.analysis.feature_maps`) as tiled mosaics; `visualize` does it for a checkpoint
and an image file. matplotlib is imported inside the functions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.analysis.feature_maps import LayerMaps, conv_feature_maps
from cnnkit.render.fonts import figure_text as _

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cnnkit.models.checkpoint import LoadedCheckpoint

__all__ = ["feature_maps_figure", "grid_columns", "tile", "visualize"]


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
    image: np.ndarray, layers: list[LayerMaps], *, title: str = "", input_title: str = ""
) -> Figure:
    """The input image and each layer's maps (tiled, after ReLU), left to right."""
    from cnnkit.render.figures import new_figure

    mosaics = [tile(lm.maps) for lm in layers]
    widths = [1.0] + [m.shape[1] / m.shape[0] for m in mosaics]  # equal heights
    fig = new_figure(figsize=(2.8 * sum(widths) + 0.6, 3.6))
    axes = fig.subplots(1, 1 + len(layers), width_ratios=widths, squeeze=False)[0]
    axes[0].imshow(image, cmap="gray", interpolation="nearest")
    input_title = input_title or _("input")
    axes[0].set_title(f"{input_title}\n{image.shape[0]}x{image.shape[1]}", fontsize=10)
    for ax, lm, mosaic in zip(axes[1:], layers, mosaics, strict=True):
        c, h, w = lm.maps.shape
        ax.imshow(mosaic, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        maps = _("{c} maps of {h}x{w}").format(c=c, h=h, w=w)
        ax.set_title(f"{lm.name} + ReLU\n{maps}", fontsize=10)
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
    *,
    device: str = "cpu",
) -> Path:
    """Write the preprocessed `image` (default: a bundled MNIST digit, or the first file of a
    folder-trained run's folder, read as training read it) and the feature maps of
    every conv layer of the checkpoint's model to `output` (format from the suffix); the
    model runs on `device` (auto, cpu, cuda, mps)."""
    from cnnkit.analysis.predict import default_input, predict_arrays, read_model_input
    from cnnkit.data.transforms import normalize_images
    from cnnkit.models.checkpoint import resolve_checkpoint
    from cnnkit.render.figures import check_figure_path, save_figure

    check_figure_path(output)
    ckpt = resolve_checkpoint(checkpoint)
    # a 28x28 MNIST-style digit, or for a folder-trained run the image resized as training did
    source = Path(image) if image is not None else Path(default_input(ckpt))
    digit = read_model_input(ckpt, source)  # (H, W) or (H, W, 3) in [0, 255]
    x = normalize_images(digit[None], ckpt.config["normalize"])  # (1, C, H, W)
    layers = conv_feature_maps(ckpt.model, x, device=device)[0]
    best = predict_arrays(ckpt, digit[None], top=1, device=device)[0][0]
    title = _("{name}: predicted {label} ({probability:.1%})").format(
        name=source.name, label=best.name, probability=best.probability
    )
    figure = feature_maps_figure(digit, layers, title=title, input_title=_("preprocessed input"))
    return save_figure(figure, output)
