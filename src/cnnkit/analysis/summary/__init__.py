"""A layer-by-layer summary of any PyTorch model (`cnnkit.summary` is `summary` here).

    import cnnkit
    s = cnnkit.summary(model, (1, 28, 28))      # rows, totals, receptive fields (dataclasses)
    s = cnnkit.summary(model, [(3, 32, 32), (10,)])          # two positional inputs
    s = cnnkit.summary(model, (16,), dtypes=torch.long)      # token ids
    s = cnnkit.summary(model, input_data={"x": x})           # real tensors, keyword arguments
    from cnnkit.render.tables import render_summary
    print(render_summary(s))                    # in a notebook, `s` alone shows an HTML table

torch is imported by the functions that need it, not by `import cnnkit.analysis.summary`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Box",
    "InputInfo",
    "LayerRow",
    "ReceptiveField",
    "Summary",
    "effective_receptive_field",
    "gradient_receptive_field",
    "rf_box",
    "summary",
]

_LAZY = {
    "Box": "cnnkit.analysis.summary.core",
    "InputInfo": "cnnkit.analysis.summary.inputs",
    "LayerRow": "cnnkit.analysis.summary.core",
    "Summary": "cnnkit.analysis.summary.core",
    "rf_box": "cnnkit.analysis.summary.core",
    "ReceptiveField": "cnnkit.analysis.summary.rf",
    "gradient_receptive_field": "cnnkit.analysis.summary.erf",
    "effective_receptive_field": "cnnkit.analysis.summary.erf",
}


def summary(
    model: Any,
    input_size: Any = None,
    *,
    input_data: Any = None,
    dtypes: Any = None,
    depth: int | None = None,
    device: str = "cpu",
) -> Any:
    """See `cnnkit.analysis.summary.core.summary`."""
    from cnnkit.analysis.summary.core import summary as _summary

    return _summary(
        model, input_size, input_data=input_data, dtypes=dtypes, depth=depth, device=device
    )


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.summary' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
