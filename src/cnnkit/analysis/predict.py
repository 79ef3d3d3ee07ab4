"""Classify your own digit images with a trained checkpoint.

`preprocess_digit` turns any photo or drawing of a single digit into what the network saw in
training, following how LeCun et al. made MNIST: grayscale, light ink on a dark background,
the digit's bounding box scaled (keeping its aspect ratio, antialiased) so that its longer side
is 20 px, then placed in a 28x28 field so that its centre of mass is at the centre.
`predict` runs a checkpoint on image files and returns the top classes with probabilities.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.analysis.prediction import ClassProbability, Prediction
from cnnkit.core.checks import positive_int
from cnnkit.core.errors import CnnkitError
from cnnkit.data.transforms import normalize_images
from cnnkit.imaging.digits import FIELD, load_digit
from cnnkit.models.checkpoint import resolve_checkpoint

if TYPE_CHECKING:
    from cnnkit.models.checkpoint import LoadedCheckpoint

__all__ = [
    "ClassProbability",
    "Prediction",
    "check_grayscale_28",
    "class_names",
    "default_input",
    "folder_input_shape",
    "predict",
    "predict_arrays",
    "read_model_input",
]


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


def folder_input_shape(ckpt: LoadedCheckpoint) -> tuple[tuple[int, int], int] | None:
    """((H, W), channels) of a run trained on an image folder (its config's `image_folder`),
    None for a run on a registered dataset (MNIST-style digits)."""
    folder = ckpt.config.get("image_folder")
    if not folder:
        return None
    return (int(folder["image_size"][0]), int(folder["image_size"][1])), int(folder["channels"])


def read_model_input(ckpt: LoadedCheckpoint, path: str | os.PathLike[str]) -> np.ndarray:
    """One image file as the run's model takes it, in [0, 255]: for a folder-trained run
    resized to its size with its channels ((H, W) or (H, W, 3) uint8,
    `cnnkit.data.folder.read_for_model`), else the MNIST-style digit (28, 28)."""
    shape = folder_input_shape(ckpt)
    if shape is None:
        check_grayscale_28(ckpt)
        return load_digit(path)
    from cnnkit.data.folder import read_for_model

    return read_for_model(path, *shape)


def default_input(ckpt: LoadedCheckpoint) -> os.PathLike[str]:
    """An image to show when none is given: a bundled MNIST digit, or for a folder-trained
    run the first file of its folder (refused, naming the folder, when it is gone)."""
    from pathlib import Path

    if folder_input_shape(ckpt) is None:
        from cnnkit.imaging.digits import example_digits

        return Path(example_digits()[0])
    from cnnkit.data.folder import scan_image_folder

    root = str(ckpt.config.get("dataset"))
    try:
        scan = scan_image_folder(root)
    except CnnkitError as e:
        raise CnnkitError.from_template(
            (
                "The 'image' parameter (--image) is needed: the run was trained on the "
                "image folder {root!r}, which cannot be read now ({e})"
            ),
            root=root,
            e=e,
        ) from None
    return next(iter(scan.files.values()))[0][0]


def check_grayscale_28(ckpt: LoadedCheckpoint) -> None:
    from cnnkit.models.registry import model_input_shape

    shape = tuple(model_input_shape(ckpt.model_name))
    if shape != (1, FIELD, FIELD):
        raise CnnkitError.from_template(
            (
                "predict and visualize work on 28x28 grayscale (digit) models; "
                "{model_name!r} takes (C, H, W) = {shape} inputs"
            ),
            model_name=ckpt.model_name,
            shape=shape,
        )


def predict_arrays(
    ckpt: LoadedCheckpoint, digits: np.ndarray, *, top: int = 3, device: str = "cpu"
) -> list[list[ClassProbability]]:
    """Top-`top` classes for preprocessed digits (N, 28, 28) in [0, 255]."""
    from cnnkit.analysis.evaluate import model_logits
    from cnnkit.nn.functional import log_softmax

    x = normalize_images(digits, ckpt.config["normalize"])
    logits = model_logits(ckpt.model, x, device=device)
    probs = np.exp(log_softmax(logits.astype(np.float64), axis=1))  # (N, num_classes)
    names = class_names(ckpt, probs.shape[1])
    top = max(1, min(top, probs.shape[1]))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :top]
    return [
        [ClassProbability(int(k), names[k], float(p[k])) for k in row]
        for p, row in zip(probs, order, strict=True)
    ]


def predict(
    checkpoint: str | os.PathLike[str] | LoadedCheckpoint,
    paths: Sequence[str | os.PathLike[str]],
    *,
    top: int = 3,
    device: str = "cpu",
) -> list[Prediction]:
    """Classify image files of single digits (any size, either polarity) with a checkpoint;
    a checkpoint trained on an image folder reads each file as its training images were read
    (resized to their size, 1 or 3 channels; `cnnkit.data.folder.read_for_model`).

    Every file is read and preprocessed before the model runs, so a bad file fails the call
    (CnnkitError naming it) without partial output.
    """
    top = positive_int(top, "top", func="predict")  # "3" or 2.0 are refused, not compared
    ckpt = resolve_checkpoint(checkpoint)
    if folder_input_shape(ckpt) is None:
        check_grayscale_28(ckpt)
    if not paths:
        return []
    # (N, 28, 28) digits, or (N, H, W) / (N, H, W, 3) read as the folder's training images were
    digits = np.stack([read_model_input(ckpt, p) for p in paths])
    results = []
    ranking = predict_arrays(ckpt, digits, top=top, device=device)
    for path, ranked in zip(paths, ranking, strict=True):
        best = ranked[0]
        results.append(Prediction(os.fspath(path), best.label, best.name, best.probability, ranked))
    return results
