"""Datasets: MNIST, Fashion-MNIST and CIFAR-10, fetched with verification and loaded fast.

    from cnnkit.data import load_dataset
    train = load_dataset("mnist", "train")   # Dataset(images (N, 28, 28) uint8, labels (N,))

`fetch` (and `cnnkit data fetch NAME`) puts the files into the data dir (`data_dir()`);
`load_dataset` reads them from there. See docs/data.md.

Names are resolved lazily, so importing `cnnkit.data.registry` (the CLI does, for dataset
names) does not import NumPy, and `fetch` (urllib, tarfile, tqdm) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from cnnkit.core.errors import DataError

_LAZY = {
    "DATASETS": "cnnkit.data.registry",
    "data_dir": "cnnkit.data.registry",
    "Dataset": "cnnkit.data.datasets",
    "load_dataset": "cnnkit.data.datasets",
    "fetch": "cnnkit.data.fetching",
    "FetchResult": "cnnkit.data.fetching",
    "dataset_info": "cnnkit.data.info",
    "DatasetInfo": "cnnkit.data.info",
}

__all__ = ["DataError", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
