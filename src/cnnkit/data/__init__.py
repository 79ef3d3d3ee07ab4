"""Datasets: MNIST, Fashion-MNIST and CIFAR-10, fetched with verification and loaded fast.

    from cnnkit.data import load_dataset
    train = load_dataset("mnist", "train")   # Dataset(images (N, 28, 28) uint8, labels (N,))

`fetch` (and `cnnkit data fetch NAME`) puts the files into the data dir (`data_dir()`);
`load_dataset` reads them from there. See docs/data.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnkit.data.datasets import DATASETS, Dataset, data_dir, load_dataset
from cnnkit.errors import DataError

# fetch (urllib, tarfile, subprocess, tqdm) and info are imported on first use only
_LAZY = {
    "fetch": "cnnkit.data.fetching",
    "FetchResult": "cnnkit.data.fetching",
    "dataset_info": "cnnkit.data.info",
    "DatasetInfo": "cnnkit.data.info",
}

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "FetchResult",
    "data_dir",
    "dataset_info",
    "fetch",
    "load_dataset",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
