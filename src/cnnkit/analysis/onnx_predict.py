"""Classify digit images with an ONNX file from `cnnkit export`, through onnxruntime only.

The deployment path: NumPy, Pillow and onnxruntime, no torch (a test asserts that torch is
never imported). The file's metadata (`cnnkit.models.onnx_export`) gives the class names, the
normalisation and the input shape; images get the same MNIST-style preprocessing as
`cnnkit predict CKPT` (`cnnkit.imaging.digits.load_digit`), so both give the same answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.analysis.prediction import ClassProbability, Prediction
from cnnkit.core.checks import positive_int
from cnnkit.core.errors import CnnkitError
from cnnkit.data.transforms import normalize_images
from cnnkit.imaging.digits import FIELD, load_digit
from cnnkit.nn.functional import log_softmax

__all__ = ["OnnxClassifier", "load_onnx", "predict_onnx"]


@dataclasses.dataclass
class OnnxClassifier:
    """An onnxruntime session with what the file's metadata says about its inputs."""

    path: Path
    session: Any  # onnxruntime.InferenceSession
    classes: list[str]
    normalize: list[Any]  # (mean, std) of the [0, 1] pixels
    input_shape: tuple[int, ...]  # (C, H, W)
    model: str

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, num_classes) for normalised inputs (N, C, H, W) float32."""
        name = self.session.get_inputs()[0].name
        return np.asarray(self.session.run(None, {name: x.astype(np.float32)})[0])


def _meta(meta: dict[str, str], key: str, path: Path) -> Any:
    if key not in meta:
        raise CnnkitError.from_template(
            (
                "{path}: no {key!r} in its metadata; export it with `cnnkit export` "
                "(which stores the class names and normalisation)"
            ),
            path=path,
            key=key,
        )
    try:
        return json.loads(meta[key])
    except json.JSONDecodeError as e:
        raise CnnkitError.from_template(
            "{path}: metadata {key!r} is not JSON: {meta!r}", path=path, key=key, meta=meta[key]
        ) from e


def load_onnx(path: str | os.PathLike[str]) -> OnnxClassifier:
    """Open an exported model; CnnkitError naming the file if it is not one."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise CnnkitError(
            "onnxruntime is not installed: pip install 'cnnkit[onnx]' (or onnxruntime)"
        ) from e
    path = Path(path)
    if not path.is_file():
        raise CnnkitError.from_template("{path}: no such ONNX file", path=path)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for a bad file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CnnkitError.from_template(
            "{path}: not a readable ONNX model ({first})", path=path, first=first
        ) from e
    meta = dict(session.get_modelmeta().custom_metadata_map)
    return OnnxClassifier(
        path=path,
        session=session,
        classes=[str(c) for c in _meta(meta, "cnnkit.classes", path)],
        normalize=list(_meta(meta, "cnnkit.normalize", path)),
        input_shape=tuple(int(v) for v in _meta(meta, "cnnkit.input_shape", path)),
        model=meta.get("cnnkit.model", "?"),
    )


def predict_onnx(
    model: str | os.PathLike[str] | OnnxClassifier,
    paths: Sequence[str | os.PathLike[str]],
    *,
    top: int = 3,
) -> list[Prediction]:
    """Top-`top` classes of each digit image file, as `cnnkit.analysis.predict.predict`."""
    top = positive_int(top, "top", func="predict")
    clf = model if isinstance(model, OnnxClassifier) else load_onnx(model)
    if clf.input_shape != (1, FIELD, FIELD):
        raise CnnkitError.from_template(
            (
                "predict works on 28x28 grayscale (digit) models; {path} takes (C, H, W) "
                "= {input_shape} inputs"
            ),
            path=clf.path,
            input_shape=clf.input_shape,
        )
    if not paths:
        return []
    digits = np.stack([load_digit(p) for p in paths])  # (N, 28, 28) in [0, 255]
    logits = clf.logits(normalize_images(digits, clf.normalize))  # (N, num_classes)
    probs = np.exp(log_softmax(logits.astype(np.float64), axis=1))
    if probs.shape[1] != len(clf.classes):
        raise CnnkitError.from_template(
            "{path}: {shape} outputs but {n_classes} class names",
            path=clf.path,
            shape=probs.shape[1],
            n_classes=len(clf.classes),
        )
    k = min(top, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    results = []
    for path, p, row in zip(paths, probs, order, strict=True):
        ranked = [ClassProbability(int(c), clf.classes[c], float(p[c])) for c in row]
        best = ranked[0]
        results.append(Prediction(os.fspath(path), best.label, best.name, best.probability, ranked))
    return results
