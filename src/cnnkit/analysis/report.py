"""What the training report shows, computed once: `analyse_run` returns a `RunReport`.

The model runs here (test logits, metrics, misclassified images, first-layer filters, feature
maps); nothing is drawn or written. `cnnkit.render.report` turns a `RunReport` into PNGs and
`report.html`. The run's own files say what it was: `config.json` (its settings and data) and
`metrics.jsonl`, whose last row carries a `diverged` key when the run diverged
(`cnnkit.training.runs.diverged_row`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.analysis.evaluate import Metrics, classification_metrics, model_logits
from cnnkit.analysis.feature_maps import LayerMaps, conv_feature_maps
from cnnkit.core.errors import CnnkitError
from cnnkit.data.transforms import normalize_images
from cnnkit.nn.functional import cross_entropy, log_softmax

__all__ = [
    "FEATURE_MAP_IMAGES",
    "HISTORY_KEYS",
    "RunFiles",
    "RunReport",
    "analyse_run",
    "read_run_files",
]

HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
FEATURE_MAP_IMAGES = 3  # test images whose feature maps are shown


@dataclass(frozen=True)
class RunFiles:
    """What a run folder says about itself (empty when the files are absent or unreadable)."""

    settings: dict[str, Any] = field(default_factory=dict)  # config.json
    diverged: str | None = None  # the `diverged` text of metrics.jsonl's last row
    diverged_epoch: int | None = None


@dataclass(frozen=True)
class RunReport:
    """Everything the report shows, as numbers and arrays."""

    run_name: str
    history: list[dict[str, Any]]  # completed epochs, rows with HISTORY_KEYS
    files: RunFiles
    normalize: tuple[Any, Any]  # (mean, std) on the [0, 1] scale
    class_names: list[str]
    images: np.ndarray  # raw test images, uint8 (N, H, W) or (N, H, W, C)
    labels: np.ndarray  # (N,) int64
    predictions: np.ndarray  # (N,) int64
    confidence: np.ndarray  # (N,) the top class's probability
    metrics: Metrics
    test_loss: float  # mean cross-entropy of the report's model on the test images
    misclassified: np.ndarray  # indices of the wrong predictions, in test-set order
    conv_name: str  # the first nn.Conv2d's name, e.g. "conv1"
    initial_filters: np.ndarray  # (C_out, C_in, kh, kw) float32, at initialisation
    trained_filters: np.ndarray  # (C_out, C_in, kh, kw) float32, the model's
    feature_maps: list[tuple[int, list[LayerMaps]]]  # (test index, first two conv layers)

    @property
    def epochs(self) -> int:
        return len(self.history)

    @property
    def single_epoch(self) -> bool:
        return len(self.history) == 1


def read_run_files(run_dir: Path) -> RunFiles:
    """config.json and the divergence mark of metrics.jsonl, as the training loop wrote them."""
    from cnnkit.training.runs import CONFIG, METRICS

    settings: dict[str, Any] = {}
    try:
        loaded = json.loads((run_dir / CONFIG).read_text(encoding="utf-8"))
        settings = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    last: Any = None
    try:
        lines = (run_dir / METRICS[0]).read_text(encoding="utf-8").splitlines()
        last = json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        pass
    if isinstance(last, dict) and last.get("diverged"):
        return RunFiles(settings, str(last["diverged"]), last.get("epoch"))
    return RunFiles(settings)


def _check_inputs(images: np.ndarray, history: Sequence[dict[str, Any]]) -> None:
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise CnnkitError.from_template(
            (
                "build_report expects raw test images, uint8 (N, H, W) or (N, H, W, C); "
                "got {dtype} {shape}"
            ),
            dtype=images.dtype,
            shape=images.shape,
        )
    for row in history:
        missing = [k for k in HISTORY_KEYS if k not in row]
        if missing:
            raise CnnkitError.from_template(
                "history row {row} lacks {missing}", row=row, missing=missing
            )


def _first_conv(model: Any) -> tuple[str, Any]:
    from torch import nn

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise CnnkitError.from_template(
        "the model {type_name} has no nn.Conv2d layer", type_name=type(model).__name__
    )


def analyse_run(
    run_dir: Path,
    *,
    model: Any,
    initial_conv1_weight: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    normalize: tuple[Any, Any],
    history: list[dict[str, Any]],
    class_names: list[str],
) -> RunReport:
    """Run `model` (a torch module) on the test images and gather what the report shows.

    `test_images` are the raw dataset images as `cnnkit.data.load_dataset` returns them;
    `history` rows have the keys of HISTORY_KEYS. The model's train/eval mode is restored.
    """
    run_dir = Path(run_dir)
    images = np.asarray(test_images)
    _check_inputs(images, history)
    labels = np.asarray(test_labels, dtype=np.int64)

    x = normalize_images(images, normalize)  # (N, C, H, W)
    logits = model_logits(model, x)  # (N, K)
    predictions = logits.argmax(axis=1)
    conv_name, conv = _first_conv(model)
    trained = conv.weight.detach().float().numpy()
    initial = np.asarray(initial_conv1_weight, dtype=np.float32)
    if initial.shape != trained.shape:
        raise CnnkitError.from_template(
            "initial_conv1_weight has shape {shape}, {conv_name}.weight {shape2}",
            shape=initial.shape,
            conv_name=conv_name,
            shape2=trained.shape,
        )
    picks = list(range(min(FEATURE_MAP_IMAGES, len(images))))
    maps = conv_feature_maps(model, x[picks], limit=2)
    return RunReport(
        run_name=run_dir.name,
        history=[dict(row) for row in history],
        files=read_run_files(run_dir),
        normalize=normalize,
        class_names=list(class_names),
        images=images,
        labels=labels,
        predictions=predictions,
        confidence=np.exp(log_softmax(logits, axis=1)).max(axis=1),
        metrics=classification_metrics(labels, predictions, list(class_names)),
        test_loss=cross_entropy(logits.astype(np.float64), labels),
        misclassified=np.flatnonzero(predictions != labels),
        conv_name=conv_name,
        initial_filters=initial,
        trained_filters=trained,
        feature_maps=list(zip(picks, maps, strict=True)),
    )
