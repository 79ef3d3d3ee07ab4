"""What classifying an image returns, whatever ran the model: torch (`cnnkit.analysis.predict`)
or onnxruntime (`cnnkit.analysis.onnx_predict`). Standard library only, so the ONNX path stays
free of torch while printing and JSON are the same for both."""

from __future__ import annotations

import dataclasses

__all__ = ["ClassProbability", "Prediction"]


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
