"""Digit images as MNIST made them: `preprocess_digit` turns any photo or drawing of a single
digit into what the network saw in training, following LeCun et al.: grayscale, light ink on a
dark background, the digit's bounding box scaled (keeping its aspect ratio, antialiased) so that
its longer side is 20 px, then placed in a 28x28 field with its centre of mass at the centre.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.imaging.images import real_array

__all__ = ["BOX", "FIELD", "example_digits", "example_label", "load_digit", "preprocess_digit"]

FIELD = 28  # MNIST images are 28x28 ...
BOX = 20  # ... with the digit's bounding box scaled to 20 px on its longer side
# Luminance weights of ITU-R 601-2, as Pillow's convert("L") uses them.
_LUMA = np.array([0.299, 0.587, 0.114])


def example_digits() -> list[Path]:
    """The bundled real MNIST test digits (`digit_<label>_<test index>.png`), by label."""
    folder = resources.files("cnnkit") / "assets" / "digits"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".png"))


def example_label(path: str | os.PathLike[str]) -> int:
    """The true label of a bundled example, from its name `digit_<label>_<index>.png`."""
    return int(Path(path).name.split("_")[1])


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[1:-1, 0], image[1:-1, -1]])


def preprocess_digit(image: np.ndarray) -> np.ndarray:
    """An image of one digit -> (28, 28) float64 in [0, 255], MNIST-style (white digit on black).

    `image` is (H, W) grayscale or (H, W, 3|4) colour with values in [0, 255] (as `read_image`
    returns). Steps:

    1. grayscale (ITU-R 601-2 luminance; an alpha channel is ignored);
    2. polarity from the border: if the border is lighter than the middle of the image's range,
       the digit is dark on light and the image is inverted;
    3. background removal: the background level is estimated from the border pixels,
       robustly (a digit touching the border does not move it): their median plus five robust
       standard deviations (1.4826 x the median absolute deviation) of their noise. For a
       clean image that is exactly the background value; ink = value above it, so the
       background becomes exactly 0;
    4. crop to the bounding box of the ink (no threshold on the ink itself: faint antialiased
       edges stay), scale so its longer side is 20 px keeping the aspect ratio (Pillow's
       bilinear filter, which antialiases when shrinking and never rings below 0);
       the brightest pixel is rescaled to 255 like MNIST's strokes;
    5. paste into a 28x28 black field, shifted by whole pixels so that the centre of mass is
       at pixel (14, 14) (row, column indices), the convention MNIST's own digits follow:
       re-processing a real MNIST test digit returns it unchanged (tested). The digit is never
       cut: for a very lopsided mass the shift stops at the field's edge.

    Raises CnnkitError for an image with no ink (uniform).
    """
    from PIL import Image

    a = real_array(image, "image", "preprocess_digit")
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3] @ _LUMA
    if a.ndim != 2:
        raise CnnkitError.from_template(
            "expected a grayscale (H, W) or colour (H, W, 3) image, got shape {shape}",
            shape=a.shape,
        )
    if min(a.shape) < 2:  # the border that gives the background would be the whole image
        raise CnnkitError.from_template(
            "a digit image needs at least 2x2 pixels, got {shape}x{shape2}",
            shape=a.shape[0],
            shape2=a.shape[1],
        )
    if not np.isfinite(a).all():
        raise CnnkitError("the image holds NaN or infinite values")
    lo, hi = float(a.min()), float(a.max())
    if np.median(_border(a)) > (lo + hi) / 2:
        a = hi - a + lo  # dark on light -> light on dark (same range)
    border = _border(a)
    noise = 1.4826 * np.median(np.abs(border - np.median(border)))  # robust std of the border
    ink = np.clip(a - (np.median(border) + 5 * noise), 0.0, None)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0 and hi == lo:
        raise CnnkitError("no digit found: the image is uniform (one value everywhere)")
    if rows.size == 0:  # noise, a photo: the border varies as much as the middle
        raise CnnkitError(
            "no digit found: nothing stands out from the background, estimated from the "
            "border (expected one digit, dark on light or light on dark, inside a plain border)"
        )
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # bounding box (h, w)
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow wants (width, height)
    small = np.asarray(
        Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.BILINEAR),
        dtype=np.float64,
    )
    small = np.clip(small, 0.0, None)
    small *= 255.0 / small.max()

    total = small.sum()
    cy = (np.arange(small.shape[0]) @ small.sum(axis=1)) / total
    cx = (np.arange(small.shape[1]) @ small.sum(axis=0)) / total
    centre = FIELD / 2  # MNIST's convention in pixel-index coordinates, see the docstring
    top = int(np.clip(round(centre - cy), 0, FIELD - small.shape[0]))
    left = int(np.clip(round(centre - cx), 0, FIELD - small.shape[1]))
    out = np.zeros((FIELD, FIELD))
    out[top : top + small.shape[0], left : left + small.shape[1]] = small
    return out


def load_digit(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file and preprocess it; any problem -> CnnkitError naming the file."""
    from cnnkit.imaging.images import read_image

    image = read_image(path, mode="L")
    try:
        return preprocess_digit(image)
    except CnnkitError as e:
        raise CnnkitError.from_template("{fspath!r}: {e}", fspath=os.fspath(path), e=e) from e
