"""cnnkit: convolutional neural network fundamentals you can run, measure and look inside.

`import cnnkit` is light: it imports neither torch nor matplotlib. Public functions are
resolved lazily from their modules on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from cnnkit.core.errors import CnnkitError

# public name -> module that defines it (imported on first access)
_LAZY = {
    "conv2d": "cnnkit.ops",
    "conv2d_reference": "cnnkit.ops",
    "max_pool2d": "cnnkit.ops",
    "avg_pool2d": "cnnkit.ops",
    "summary": "cnnkit.analysis.summary",
    "rf_box": "cnnkit.analysis.summary",
}

__all__ = ["CnnkitError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
