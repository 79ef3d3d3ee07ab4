"""Figures for receptive fields: boxes over an image, and the effective receptive field.

matplotlib is imported inside the functions (through `cnnkit.render.figures`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.analysis.summary.core import Box
from cnnkit.core.i18n import Message, translate
from cnnkit.render.fonts import figure_text as _
from cnnkit.render.fonts import japanese_figures

__all__ = ["plot_boxes", "plot_erf"]

_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4")


def _words(text: str) -> str:
    """A caller's title or label in the figure's language: a `Message` is translated (with its
    fields) when a Japanese font can draw it; a plain string is drawn as given."""
    if isinstance(text, Message) and japanese_figures():
        return translate(text)
    return str(text)


def _rectangle(box: tuple[float, float, float, float], **kwargs: Any) -> Any:
    from matplotlib.patches import Rectangle

    top, bottom, left, right = box
    # pixel i spans [i - 0.5, i + 0.5] in imshow's coordinates
    return Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, **kwargs)


def plot_boxes(
    image: np.ndarray,
    boxes: Sequence[tuple[str, Box]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
) -> Path:
    """Draw each (label, box) over `image` (H, W) or (H, W, 3), values in [0, 255]:
    the clipped box solid, the unclipped one (reaching into the padding) dashed. A title or
    label given as a `cnnkit.core.i18n.Message` is drawn in the current language."""
    from cnnkit.render.figures import check_figure_path, new_figure, save_figure

    check_figure_path(path)
    h, w = image.shape[:2]
    fig = new_figure(figsize=(6, 6 * h / w + 0.6))
    ax = fig.add_subplot()
    ax.imshow(image.astype(np.uint8), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
    pad = max(box.size[0] for _, box in boxes) // 2 if boxes else 0
    for i, (label, box) in enumerate(boxes):
        colour = _COLOURS[i % len(_COLOURS)]
        ax.add_patch(_rectangle(box.clipped, fill=False, lw=2, ec=colour, label=_words(label)))
        unclipped = (box.top, box.bottom, box.left, box.right)
        if unclipped != box.clipped:
            ax.add_patch(_rectangle(unclipped, fill=False, lw=1, ec=colour, ls="--"))
    ax.set_xlim(-0.5 - pad, w - 0.5 + pad)
    ax.set_ylim(h - 0.5 + pad, -0.5 - pad)
    ax.add_patch(_rectangle((0, h - 1, 0, w - 1), fill=False, lw=0.8, ec="black"))
    if boxes:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    default_title = _("receptive fields (dashed: part in the padding)")
    ax.set_title(_words(title) if title else default_title, fontsize="medium")
    return save_figure(fig, path)


def plot_erf(erf: Any, path: str | os.PathLike[str], *, title: str = "") -> Path:
    """The effective receptive field (mean |gradient|), with the theoretical box drawn on it,
    next to its central row profile. A `Message` title is drawn in the current language."""
    from cnnkit.render.figures import check_figure_path, new_figure, save_figure

    check_figure_path(path)
    fig = new_figure(figsize=(10, 4.6))
    ax, prof = fig.subplots(1, 2, width_ratios=[1, 1.2])
    im = ax.imshow(erf.grad, cmap="magma", vmin=0, vmax=1)
    box = erf.theoretical
    ax.add_patch(_rectangle(box.clipped, fill=False, lw=1.5, ec="#42d4f4", label=_("theoretical")))
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(
        _("ERF of {layer} unit {unit}\n{n} images, {percent:.1f}% of |grad| inside the box").format(
            layer=erf.layer, unit=erf.unit, n=erf.n_images, percent=100 * erf.mass_inside
        ),
        fontsize="medium",
    )
    fig.colorbar(im, ax=ax, shrink=0.8)
    row = int(round((box.top + box.bottom) / 2))
    row = min(max(row, 0), erf.grad.shape[0] - 1)
    prof.plot(erf.grad[row], color="#4363d8", label=_("ERF, centre row"))
    prof.axvspan(box.clipped[2] - 0.5, box.clipped[3] + 0.5, color="#42d4f4", alpha=0.2,
                 label=_("theoretical RF"))  # fmt: skip
    prof.set_xlabel(_("input column"))
    prof.set_ylabel(_("mean |∂unit/∂input| (max = 1)"))
    prof.legend(fontsize="small")
    if title:
        fig.suptitle(_words(title))
    return save_figure(fig, path)
