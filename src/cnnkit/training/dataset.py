"""The training and test sets in memory, normalised, as the loop slices them into batches.

The dataset lives in memory as one normalised float32 array (N, C, H, W) per split; each epoch
draws a permutation and fancy-indexes batches from it (no DataLoader, no per-sample transforms).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.data.transforms import dataset_normalize, normalize_images

__all__ = ["TrainData", "check_model_fits", "load_train_data"]


@dataclass
class TrainData:
    train_x: np.ndarray  # (N, C, H, W) float32, normalised
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray  # (M, C, H, W) float32, normalised
    test_y: np.ndarray  # (M,) int64
    test_images: np.ndarray  # the raw uint8 test images, for the report
    classes: list[str]
    normalize: tuple[Any, Any]


def load_train_data(
    dataset: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    limit: int | None = None,
    test_limit: int | None = None,
) -> TrainData:
    """Both splits in memory, normalised; the first `limit` / `test_limit` images of each."""
    from cnnkit.data import load_dataset

    train_split = load_dataset(dataset, "train", data_dir=data_dir, download=True)
    test_split = load_dataset(dataset, "test", data_dir=data_dir, download=True)
    normalize = dataset_normalize(dataset, train_split.images)
    images, labels = train_split.images, train_split.labels
    test_images, test_labels = test_split.images[:test_limit], test_split.labels[:test_limit]
    return TrainData(
        train_x=normalize_images(images[:limit], normalize),
        train_y=np.ascontiguousarray(labels[:limit], dtype=np.int64),
        test_x=normalize_images(test_images, normalize),
        test_y=np.ascontiguousarray(test_labels, dtype=np.int64),
        test_images=test_images,
        classes=list(train_split.classes),
        normalize=normalize,
    )


def check_model_fits(model: str, dataset: str, data: TrainData) -> None:
    """The model's input shape (C, H, W) is the dataset's, or a CnnkitError with both."""
    from cnnkit.models.registry import model_input_shape

    want = tuple(model_input_shape(model))
    have = tuple(data.train_x.shape[1:])
    if want != have:
        raise CnnkitError(
            f"model {model!r} takes (C, H, W) = {want} inputs; dataset {dataset!r} has {have}"
        )
