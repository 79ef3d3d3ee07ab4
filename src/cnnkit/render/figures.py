"""Figures: the classic-kernel comparison (section 1.2) and activation functions (1.5).

Rendering only: the numbers come from `cnnkit.imaging.kernels` and `cnnkit.ops.activations`.
matplotlib is imported inside the functions, and figures are `matplotlib.figure.Figure`
objects drawn by the Agg canvas: no pyplot, no global state, no display needed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import N_, Message
from cnnkit.render.fonts import apply_fonts, japanese_figures
from cnnkit.render.fonts import figure_text as _

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from cnnkit.imaging.kernels import KernelResponse
    from cnnkit.ops.activations import Activation

__all__ = [
    "ANNOTATE_MAX_SIDE",
    "CLIP_PERCENT",
    "KERNEL_LABELS",
    "SIGNED_CMAP",
    "activations_figure",
    "check_figure_path",
    "kernel_comparison_figure",
    "new_figure",
    "save_figure",
]

# images up to this many pixels a side are drawn as big squares with their values written in
ANNOTATE_MAX_SIDE = 12
SIGNED_CMAP = "RdBu_r"  # blue negative, white 0, red positive
CLIP_PERCENT = 0.5  # larger images: colour scale from the 0.5th to the 99.5th percentile

# What each registered kernel does, in words: in a Japanese figure this line (translated) goes
# above the kernel's name, which stays as the reader types it (`--kernels sharpen`). English
# figures show the name alone, as they always did.
KERNEL_LABELS = {
    "identity": N_("identity (no change)"),
    "sobel-x": N_("Sobel, x direction"),
    "sobel-y": N_("Sobel, y direction"),
    "prewitt-x": N_("Prewitt, x direction"),
    "prewitt-y": N_("Prewitt, y direction"),
    "box": N_("box blur (mean)"),
    "gaussian": N_("Gaussian blur"),
    "sharpen": N_("sharpening"),
    "laplacian": N_("Laplacian (second derivative)"),
    "edge": N_("edge detection"),
    "emboss": N_("emboss (relief)"),
}


def new_figure(**kwargs: Any) -> Figure:
    """A Figure on the Agg canvas, with constrained layout (no clipped labels)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def check_figure_path(path: str | os.PathLike[str]) -> str:
    """The matplotlib format for this file suffix; CnnkitError before anything is written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    suffix = Path(path).suffix.lower()
    supported = FigureCanvasAgg.get_supported_filetypes()
    if suffix[1:] not in supported:
        raise CnnkitError.from_template(
            ("cannot write figure {path!r}: unknown suffix {suffix!r}; use one of {items}"),
            path=str(path),
            suffix=suffix or Message("(none)"),
            items=", ".join("." + s for s in sorted(supported)),
        )
    return suffix[1:]


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Write the figure atomically, in the format named by the suffix; returns the path."""
    from cnnkit.imaging.images import output_file

    fmt = check_figure_path(path)
    apply_fonts(fig)  # in Japanese: the Japanese font on every text (cnnkit.render.fonts)
    with output_file(path, Message("figure")) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, facecolor="white")
    return Path(path)


def _grid(n: int, max_cols: int | None = None) -> tuple[int, int]:
    """(rows, cols) for n panels, about square, wider than tall: 6 -> 2x3, 12 -> 3x4."""
    cols = math.ceil(math.sqrt(n))
    if max_cols is not None:
        cols = max(cols, min(n, max_cols))
    return math.ceil(n / cols), cols


def _annotate(ax: Axes, values: np.ndarray, norm: Any, cmap: Any) -> None:
    """Write each pixel's value on it, in black or white, whichever reads on its colour."""
    for (i, j), v in np.ndenumerate(values):
        r, g, b, _ = cmap(norm(v))
        light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
        text = f"{v:.0f}" if abs(v - round(v)) < 0.05 else f"{v:.1f}"
        size = 7 if len(text) > 4 else 8
        ax.text(
            j, i, text, ha="center", va="center", fontsize=size, color="black" if light else "white"
        )


def _show(ax: Axes, fig: Figure, values: np.ndarray, title: str, *, signed: bool) -> None:
    """One panel: gray for image-like values, a diverging map centred on 0 for signed ones."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    small = max(values.shape[:2]) <= ANNOTATE_MAX_SIDE
    # Values on the pixel scale are drawn on it, 0 black to 255 white. Others: in photos a few
    # extreme pixels would wash out the rest, so the colour scale spans the central 99% of the
    # values (the colour bar's pointed ends mark the clipped tails); small images show all.
    tail = 0.0 if small else CLIP_PERCENT
    if signed:
        peak = float(np.percentile(np.abs(values), 100 - 2 * tail)) or 1.0
        cmap, norm = colormaps[SIGNED_CMAP], Normalize(-peak, peak)
    elif values.min() >= -1e-6 and values.max() <= 255 + 1e-6:  # rounding of blurs
        cmap, norm = colormaps["gray"], Normalize(0, 255)
    else:
        low, high = (float(v) for v in np.percentile(values, [tail, 100 - tail]))
        cmap, norm = colormaps["gray"], Normalize(low, high if high > low else low + 1.0)
    image = ax.imshow(
        values, cmap=cmap, norm=norm, interpolation="nearest" if small else "antialiased"
    )
    if small:
        _annotate(ax, values, norm, cmap)
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    clipped = values.min() < norm.vmin or values.max() > norm.vmax
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02, extend="both" if clipped else "neither")


def _kernel_panel_title(response: KernelResponse) -> str:
    """`gaussian (size=5, sigma=1.4)`; in Japanese, what the kernel does on a line above it."""
    label = KERNEL_LABELS.get(response.spec.partition(":")[0].strip())
    if label is None or not japanese_figures():
        return response.title
    return f"{_(label)}\n{response.title}"


def kernel_comparison_figure(
    image: np.ndarray,
    responses: Sequence[KernelResponse],
    *,
    title: str | None = None,
) -> Figure:
    """The chapter's figure: the original image, then each kernel's response, titled.

    Derivative-like kernels (entries summing to 0) are drawn with a diverging colour map
    centred on 0 (red positive, blue negative); the others in gray from their min to max.
    Small images are drawn as squares (nearest neighbour) with each value written in.
    """
    rows, cols = _grid(len(responses) + 1)
    h, w = image.shape[:2]
    panel_w = 3.4  # inches, of which about 0.7 go to the colour bar
    title_h = 0.75 if japanese_figures() else 0.5  # Japanese panel titles have two lines
    panel_h = min(max((panel_w - 0.7) * h / w, 1.6), 5.0) + title_h
    fig = new_figure(figsize=(panel_w * cols, panel_h * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    _show(axes[0], fig, image, _("original"), signed=False)
    for ax, r in zip(axes[1:], responses, strict=False):
        _show(ax, fig, r.response, _kernel_panel_title(r), signed=r.signed)
    for ax in axes[len(responses) + 1 :]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=13)
    return fig


def _break_jumps(y: np.ndarray, jump: float = 0.5) -> np.ndarray:
    """y with NaN after each jump larger than `jump`, so a step is not drawn as a wall."""
    out = y.astype(np.float64)
    out[1:][np.abs(np.diff(y)) > jump] = np.nan
    return out


def activations_figure(
    activations: Sequence[Activation], *, x_range: tuple[float, float] = (-4.0, 4.0)
) -> Figure:
    """One panel per activation: f(x) solid, f'(x) dashed, and f'(0) (torch's kink rule) marked."""
    lo, hi = x_range
    x = np.linspace(lo, hi, 2001)
    rows, cols = _grid(len(activations), max_cols=4)
    fig = new_figure(figsize=(3.6 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, act in zip(axes, activations, strict=False):
        ax.axhline(0, color="black", linewidth=0.6)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.plot(x, act.forward(x), color="tab:blue", linewidth=2, label="f(x)")
        ax.plot(
            x,
            _break_jumps(act.grad(x)),
            color="tab:orange",
            linewidth=1.6,
            linestyle="--",
            label="f'(x)",
        )
        if lo <= 0 <= hi:
            ax.plot(0, act.grad(np.zeros(1))[0], "o", color="tab:orange", markersize=4)
        params = ", ".join(f"{k}={v}" for k, v in act.params.items() if k != "approximate")
        name = f"{act.name} ({params})" if params else act.name
        ax.set_title(f"{name}\n{_(act.formula)}", fontsize=10)
        ax.set_xlim(lo, hi)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    for ax in axes[len(activations) :]:
        ax.set_axis_off()
    fig.suptitle(_("Activation functions f and their derivatives f' (dot: f'(0), as torch)"))
    return fig
