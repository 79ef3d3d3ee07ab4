"""Classify your own digit images with a trained checkpoint.

`preprocess_digit` turns any photo or drawing of a single digit into what the network saw in
training, following how LeCun et al. made MNIST: grayscale, light ink on a dark background,
the digit's bounding box scaled (keeping its aspect ratio, antialiased) so that its longer side
is 20 px, then placed in a 28x28 field so that its centre of mass is at the centre.
`predict` runs a checkpoint on image files and returns the top classes with probabilities.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.errors import CnnkitError

if TYPE_CHECKING:
    from cnnkit.checkpoint import LoadedCheckpoint

FIELD = 28  # MNIST images are 28x28 ...
BOX = 20  # ... with the digit's bounding box scaled to 20 px on its longer side
# Luminance weights of ITU-R 601-2, as Pillow's convert("L") uses them.
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclasses.dataclass(frozen=True)
class ClassProbability:
    label: int
    name: str
    probability: float


@dataclasses.dataclass(frozen=True)
class Prediction:
    path: str
    label: int  # the most probable class
    name: str
    probability: float
    top: list[ClassProbability]  # most probable first


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

    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[..., :3] @ _LUMA
    if a.ndim != 2 or min(a.shape) < 2:
        raise CnnkitError(
            f"expected a grayscale (H, W) or colour (H, W, 3) image, got shape {a.shape}"
        )
    lo, hi = float(a.min()), float(a.max())
    if np.median(_border(a)) > (lo + hi) / 2:
        a = hi - a + lo  # dark on light -> light on dark (same range)
    border = _border(a)
    noise = 1.4826 * np.median(np.abs(border - np.median(border)))  # robust std of the border
    ink = np.clip(a - (np.median(border) + 5 * noise), 0.0, None)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        raise CnnkitError("no digit found: the image is uniform (no ink above the background)")
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


def normalize_images(images: np.ndarray, normalize: Sequence[Any]) -> np.ndarray:
    """Images in [0, 255], (N, H, W) or (N, H, W, C) -> the network's input (N, C, H, W) float32.

    x = (pixel / 255 - mean) / std, as in training; mean and std are scalars or per channel.
    """
    x = np.asarray(images, dtype=np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (N, C, H, W)
    mean = np.asarray(normalize[0], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(normalize[1], dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((x - mean) / std)


def resolve_checkpoint(checkpoint: str | os.PathLike[str] | LoadedCheckpoint) -> LoadedCheckpoint:
    """A checkpoint path or an already loaded checkpoint -> LoadedCheckpoint."""
    if isinstance(checkpoint, str | os.PathLike):
        from cnnkit.checkpoint import load_checkpoint

        return load_checkpoint(checkpoint)
    return checkpoint


def class_names(ckpt: LoadedCheckpoint, num_classes: int) -> list[str]:
    """Class names stored with the run, else those of its dataset, else "0", "1", ..."""
    from cnnkit.data.registry import get_spec

    names = ckpt.config.get("classes")
    if not names:
        try:
            names = get_spec(ckpt.config.get("dataset", "mnist")).classes
        except CnnkitError:
            names = None
    if not names or len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return list(names)


def check_grayscale_28(ckpt: LoadedCheckpoint) -> None:
    from cnnkit.models import model_input_shape

    shape = tuple(model_input_shape(ckpt.model_name))
    if shape != (1, FIELD, FIELD):
        raise CnnkitError(
            f"predict and visualize work on 28x28 grayscale (digit) models; "
            f"{ckpt.model_name!r} takes (C, H, W) = {shape} inputs"
        )


def predict_arrays(
    ckpt: LoadedCheckpoint, digits: np.ndarray, *, top: int = 3
) -> list[list[ClassProbability]]:
    """Top-`top` classes for preprocessed digits (N, 28, 28) in [0, 255]."""
    from cnnkit.evaluate import model_logits
    from cnnkit.nn.functional import log_softmax

    logits = model_logits(ckpt.model, normalize_images(digits, ckpt.config["normalize"]))
    probs = np.exp(log_softmax(logits.astype(np.float64), axis=1))  # (N, num_classes)
    names = class_names(ckpt, probs.shape[1])
    top = max(1, min(top, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [
        [ClassProbability(int(k), names[k], float(p[k])) for k in row]
        for p, row in zip(probs, order, strict=True)
    ]


def load_digit(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file and preprocess it; any problem -> CnnkitError naming the file."""
    from cnnkit.images import read_image

    image = read_image(path, mode="L")
    try:
        return preprocess_digit(image)
    except CnnkitError as e:
        raise CnnkitError(f"{os.fspath(path)!r}: {e}") from e


def predict(
    checkpoint: str | os.PathLike[str] | LoadedCheckpoint,
    paths: Sequence[str | os.PathLike[str]],
    *,
    top: int = 3,
) -> list[Prediction]:
    """Classify image files of single digits (any size, either polarity) with a checkpoint.

    Every file is read and preprocessed before the model runs, so a bad file fails the call
    (CnnkitError naming it) without partial output.
    """
    if top < 1:
        raise CnnkitError(f"The 'top' parameter of predict must be a positive int. Got {top}.")
    ckpt = resolve_checkpoint(checkpoint)
    check_grayscale_28(ckpt)
    if not paths:
        return []
    digits = np.stack([load_digit(p) for p in paths])  # (N, 28, 28)
    results = []
    for path, ranked in zip(paths, predict_arrays(ckpt, digits, top=top), strict=True):
        best = ranked[0]
        results.append(Prediction(os.fspath(path), best.label, best.name, best.probability, ranked))
    return results
