"""`cnnkit.summary`: a layer-by-layer summary of any PyTorch model.

    import cnnkit
    s = cnnkit.summary(model, (1, 28, 28))      # rows, totals, receptive fields (dataclasses)
    print(cnnkit.summary.format.render_summary(s))

`cnnkit.summary` is both this package and, when called, `summary(...)`: `cnnkit/__init__.py`
resolves `cnnkit.summary` lazily to the function on first access, but importing the package
makes Python bind the name to the package, so the package itself is made callable.
torch is imported by the functions that need it, not by `import cnnkit.summary`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = [
    "Box",
    "LayerRow",
    "ReceptiveField",
    "Summary",
    "effective_receptive_field",
    "gradient_receptive_field",
    "rf_box",
    "summary",
]

_LAZY = {
    "Box": "cnnkit.summary.core",
    "LayerRow": "cnnkit.summary.core",
    "Summary": "cnnkit.summary.core",
    "rf_box": "cnnkit.summary.core",
    "ReceptiveField": "cnnkit.summary.rf",
    "gradient_receptive_field": "cnnkit.summary.erf",
    "effective_receptive_field": "cnnkit.summary.erf",
}


def summary(model: Any, input_size: Any, *, depth: int | None = None, device: str = "cpu") -> Any:
    """See `cnnkit.summary.core.summary`."""
    from cnnkit.summary.core import summary as _summary

    return _summary(model, input_size, depth=depth, device=device)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.summary' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return summary(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
