"""Evaluate a checkpoint on a dataset split: accuracy, loss, per-class metrics, confusion matrix.

`classification_metrics` is the pure-NumPy core (also used by the training report);
`evaluate` loads a checkpoint and its dataset and runs the model.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message
from cnnkit.nn.functional import cross_entropy

if TYPE_CHECKING:
    import torch

    from cnnkit.data import Dataset
    from cnnkit.models.checkpoint import LoadedCheckpoint

__all__ = [
    "EVAL_BATCH",
    "ClassMetrics",
    "Evaluation",
    "Metrics",
    "classification_metrics",
    "evaluate",
    "model_logits",
]

EVAL_BATCH = 1000  # the chapter's test batch size


@dataclasses.dataclass(frozen=True)
class ClassMetrics:
    name: str
    precision: float  # of the images predicted as this class, the fraction that are (0 if none)
    recall: float  # of the images of this class, the fraction found (0 if none)
    f1: float  # harmonic mean of precision and recall (0 when both are 0)
    support: int  # number of images of this class


@dataclasses.dataclass(frozen=True)
class Metrics:
    accuracy: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]  # confusion[true][predicted] = count
    macro_f1: float


@dataclasses.dataclass(frozen=True)
class Evaluation:
    checkpoint: str
    dataset: str
    split: str
    num_images: int
    accuracy: float
    loss: float  # mean cross-entropy
    macro_f1: float
    per_class: list[ClassMetrics]
    confusion: list[list[int]]


def classification_metrics(
    labels: np.ndarray, predictions: np.ndarray, class_names: list[str]
) -> Metrics:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix.

    Rows of the confusion matrix are true classes, columns predicted classes. A class never
    predicted has precision 0 and a class absent from `labels` has recall 0 (scikit-learn's
    `zero_division=0`).
    """
    k = len(class_names)
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise CnnkitError.from_template(
            ("labels and predictions must be 1-D of equal length, got shapes {shape} and {shape2}"),
            shape=labels.shape,
            shape2=predictions.shape,
        )
    for what, values in ((Message("labels"), labels), (Message("predictions"), predictions)):
        if values.size and (values.min() < 0 or values.max() >= k):
            raise CnnkitError.from_template(
                "{what} must lie in [0, {k}), got [{min}, {max}]",
                what=what,
                k=k,
                min=values.min(),
                max=values.max(),
            )
    confusion = np.bincount(labels * k + predictions, minlength=k * k).reshape(k, k)
    hits = np.diag(confusion).astype(np.float64)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    per_class = [
        ClassMetrics(name, float(p), float(r), float(f), int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    ]
    accuracy = float(hits.sum() / labels.size) if labels.size else 0.0
    return Metrics(accuracy, per_class, confusion.tolist(), float(f1.mean()))


def model_logits(
    model: torch.nn.Module, x: np.ndarray, *, batch_size: int = EVAL_BATCH, device: str = "cpu"
) -> np.ndarray:
    """Logits (N, num_classes) float32 of a torch model on normalised inputs (N, C, H, W).

    Runs in eval mode without gradients on `device` (`cnnkit.models.device.resolve_device`:
    auto, cpu, cuda, mps); the model's train/eval mode and its device are restored afterwards.
    """
    import torch

    from cnnkit.models.device import resolve_device

    target = torch.device(resolve_device(device, func="evaluate"))
    home = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    try:
        model.eval()
        model.to(target)
        with torch.no_grad():
            chunks = [
                model(torch.from_numpy(x[i : i + batch_size]).to(target)).float().cpu().numpy()
                for i in range(0, len(x), batch_size)
            ]
    finally:
        model.to(home)
        model.train(was_training)
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), np.float32)


def evaluate(
    checkpoint: str | os.PathLike[str] | LoadedCheckpoint,
    *,
    split: str = "test",
    data_dir: str | os.PathLike[str] | None = None,
    dataset: Dataset | None = None,
    device: str = "cpu",
) -> Evaluation:
    """Run a checkpoint on its dataset's `split` ("train" or "test") and measure it.

    The dataset and normalisation come from the checkpoint's config; `data_dir` overrides
    the run's data directory. Pass `dataset` (a `cnnkit.data.Dataset`, raw uint8 images) to
    evaluate on other data instead. `device`: where the model runs (auto, cpu, cuda, mps).
    """
    from cnnkit.data.transforms import normalize_images
    from cnnkit.models.checkpoint import resolve_checkpoint

    ckpt = resolve_checkpoint(checkpoint)
    config = ckpt.config
    if dataset is None and config.get("image_folder"):  # a run on an image folder
        from cnnkit.data.folder import load_image_folder

        facts = config["image_folder"]
        folder = load_image_folder(
            config["dataset"],
            image_size=tuple(facts["image_size"]),
            channels=facts["channels"],
            test_fraction=config.get("test_fraction", 0.2),
            seed=config.get("seed", 0),
        )  # the run's split: same files, settings and seed
        dataset = folder.train if split == "train" else folder.test
    if dataset is None:
        from cnnkit.data import load_dataset

        dataset = load_dataset(
            config.get("dataset", "mnist"), split, data_dir=data_dir or config.get("data_dir")
        )
    data = dataset
    x = normalize_images(data.images, config["normalize"])
    logits = model_logits(ckpt.model, x, device=device)
    labels = np.asarray(data.labels, dtype=np.int64)
    metrics = classification_metrics(labels, logits.argmax(axis=1), list(data.classes))
    source = os.fspath(checkpoint) if isinstance(checkpoint, str | os.PathLike) else "(loaded)"
    return Evaluation(
        checkpoint=source,
        dataset=data.name,
        split=data.split,
        num_images=len(labels),
        accuracy=metrics.accuracy,
        loss=cross_entropy(logits.astype(np.float64), labels),
        macro_f1=metrics.macro_f1,
        per_class=metrics.per_class,
        confusion=metrics.confusion,
    )
