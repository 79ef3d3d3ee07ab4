"""`load_dataset`: one split of a dataset from the data dir, verified, as NumPy arrays.

On disk each dataset is a folder `<data dir>/<name>/` holding its files *decompressed*, under
their canonical names (`train-images-idx3-ubyte`, `data_batch_1`, ...), so loading is one read
and a `np.frombuffer` per file. Every load re-checks each file's checksum (SHA-256 of MNIST
train+test, 55 MB, takes about 0.1 s), so a file that was truncated, edited or half-copied by
hand is refused, never trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.core.checks import check_bool
from cnnkit.core.errors import DataError
from cnnkit.data import cifar
from cnnkit.data.idx import parse_idx
from cnnkit.data.registry import (
    DatasetSpec,
    dataset_dir,
    from_dir_advice,
    get_spec,
)
from cnnkit.data.verify import read_verified, stored_path

__all__ = ["Dataset", "load_dataset"]


@dataclass
class Dataset:
    """One split of a dataset, as arrays."""

    images: np.ndarray  # uint8, (N, H, W) for MNIST-style, (N, H, W, C) for CIFAR-10
    labels: np.ndarray  # int64, (N,)
    name: str
    split: str
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def _load_idx_split(spec: DatasetSpec, folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = spec.splits[split]
    images = parse_idx(read_verified(spec, folder / image_file), str(folder / image_file))
    labels = parse_idx(read_verified(spec, folder / label_file), str(folder / label_file))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError.from_template(
            "{path}: expected (N, H, W) uint8 images. Got {dtype} {shape}.",
            path=folder / image_file,
            dtype=images.dtype,
            shape=images.shape,
        )
    if labels.ndim != 1:
        raise DataError.from_template(
            "{path}: expected (N,) labels. Got shape {shape}.",
            path=folder / label_file,
            shape=labels.shape,
        )
    if len(images) != len(labels):
        raise DataError.from_template(
            (
                "{folder}: {n_images} images in {image_file} but {n_labels} labels in "
                "{label_file}; the counts must match"
            ),
            folder=folder,
            n_images=len(images),
            image_file=image_file,
            n_labels=len(labels),
            label_file=label_file,
        )
    return images, labels.astype(np.int64)


def _load_cifar_split(spec: DatasetSpec, folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [
        cifar.parse_batch(read_verified(spec, folder / name), str(folder / name))
        for name in spec.splits[split]
    ]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> Dataset:
    """Load one split ("train" or "test") of "mnist", "fashion-mnist" or "cifar10".

    Files are checked against their checksums on every load. A dataset that is not there
    raises `DataError` saying how to get it; with `download=True` it is fetched first
    (`cnnkit.data.fetch`).
    """
    spec = get_spec(name)
    download = check_bool(download, "download", func="load_dataset")  # "no" is not False
    if not isinstance(split, str) or split not in spec.splits:
        raise DataError.from_template(
            (
                "The 'split' parameter of load_dataset must be one of {items}. Got "
                "{split!r} instead."
            ),
            items=", ".join(spec.splits),
            split=split,
        )
    folder = dataset_dir(name, data_dir)
    needed = spec.split_files(split)
    missing = [n for n in needed if not stored_path(folder / n).is_file()]
    if missing and download:
        from cnnkit.data.fetching import fetch

        fetch(name, data_dir=data_dir)
        missing = [n for n in needed if not stored_path(folder / n).is_file()]
    if missing:
        raise DataError.from_template(
            (
                "{title} is not in {folder} (missing {missing}). To get it: `cnnkit data "
                "fetch {spec_name}` (downloads and verifies it), or {spec}. Choose "
                "another data dir with --data-dir or $CNNKIT_DATA."
            ),
            title=spec.title,
            folder=folder,
            missing=", ".join(missing),
            spec_name=spec.name,
            spec=from_dir_advice(spec),
        )
    if spec.format == "idx":
        images, labels = _load_idx_split(spec, folder, split)
        classes = list(spec.classes)
    else:
        images, labels = _load_cifar_split(spec, folder, split)
        meta = folder / str(spec.meta_file)
        classes = cifar.parse_label_names(read_verified(spec, meta), str(meta))
    return Dataset(images=images, labels=labels, name=spec.name, split=split, classes=classes)
