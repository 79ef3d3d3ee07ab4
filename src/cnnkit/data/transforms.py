"""Inputs as the network takes them: pixels in [0, 255] -> normalised (N, C, H, W) float32."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cnnkit.data.registry import NORMALIZE

__all__ = ["NORMALIZE", "dataset_normalize", "normalize_images"]


def normalize_images(images: np.ndarray, normalize: Sequence[Any]) -> np.ndarray:
    """Images in [0, 255], (N, H, W) or (N, H, W, C) -> the network's input (N, C, H, W) float32.

    x = (pixel / 255 - mean) / std, as in training; mean and std are scalars or per channel.
    """
    x = np.asarray(images, dtype=np.float32) / 255.0
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (N, C, H, W)
    mean = np.asarray(normalize[0], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(normalize[1], dtype=np.float32).reshape(-1, 1, 1)
    return np.ascontiguousarray((x - mean) / std)


def dataset_normalize(name: str, train_images: np.ndarray) -> tuple[Any, Any]:
    """(mean, std) of the [0, 1] pixels: the chapter's constants for MNIST, else computed
    from the training images (per channel for (N, H, W, C) colour images), to 4 decimals."""
    if name in NORMALIZE:
        return NORMALIZE[name]
    x = train_images.astype(np.float64) / 255.0
    axes = (0, 1, 2)
    mean, std = x.mean(axis=axes), x.std(axis=axes)
    if x.ndim == 3:
        return round(float(mean), 4), round(float(std), 4)
    return [round(float(m), 4) for m in mean], [round(float(s), 4) for s in std]
