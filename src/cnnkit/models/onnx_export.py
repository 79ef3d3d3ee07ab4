"""Export a checkpoint to ONNX, checked by ONNX Runtime against torch before it is kept.

    report = export_onnx("runs/mnist", "model.onnx")     # a run folder or a checkpoint file
    report.max_abs_diff, report.top1_agreement           # on 256 test images

The file has a dynamic batch axis (input `input` (N, C, H, W) float32 -> `logits`
(N, num_classes)), opset `OPSET`, and metadata (`METADATA_KEYS`) that make it self-describing
for `cnnkit predict model.onnx` (which needs onnxruntime only, not torch): the class names, the
normalisation (mean, std), the input shape, the model name and the dataset.

At export, onnxruntime runs `n_images` real test images of the checkpoint's dataset (or seeded
random images when the dataset is not on disk) through the exported graph and torch runs them
through the model: the largest |logit difference| must be at most `tolerance` (1e-4) and the
top-1 classes must all agree, else the export is refused and nothing is written.
The legacy TorchScript exporter (`dynamo=False`) is used: it needs onnx only, not onnxscript.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnkit.core.checks import check_int, positive_int
from cnnkit.core.errors import CnnkitError
from cnnkit.core.files import atomic_path

if TYPE_CHECKING:
    import numpy as np

# numpy is imported inside the functions: `cnnkit export --help` (and the parser of every
# command, which reads OPSET) must not load it.
__all__ = ["METADATA_KEYS", "OPSET", "ExportReport", "export_onnx"]

OPSET = 17
TOLERANCE = 1e-4
METADATA_KEYS = (
    "cnnkit.model", "cnnkit.dataset", "cnnkit.classes", "cnnkit.normalize",
    "cnnkit.input_shape", "cnnkit.preprocess",
)  # fmt: skip


@dataclass(frozen=True)
class ExportReport:
    """What `export_onnx` wrote and how ONNX Runtime's logits compared with torch's."""

    path: str
    model: str
    opset: int
    input_shape: tuple[int, ...]  # (C, H, W); the batch axis is dynamic
    classes: list[str]
    normalize: list[Any]  # (mean, std)
    images: int  # how many images were compared
    image_source: str  # "mnist test set" or "generated (seeded uniform noise)"
    max_abs_diff: float  # max |logit_onnxruntime - logit_torch| over every image and class
    top1_agreement: float  # fraction of images whose top-1 class is the same in both
    tolerance: float


def _classes(config: dict[str, Any], num_classes: int) -> list[str]:
    """The run's class names, else its dataset's, else "0", "1", ..."""
    from cnnkit.data.registry import get_spec

    names = config.get("classes")
    if not names:
        try:
            names = get_spec(config.get("dataset", "mnist")).classes
        except CnnkitError:
            names = None
    if not names or len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    return [str(n) for n in names]


def _normalize(config: dict[str, Any], path: Any) -> list[Any]:
    """The run's (mean, std), else its dataset's standard one (MNIST's)."""
    from cnnkit.data.transforms import NORMALIZE

    normalize = config.get("normalize") or NORMALIZE.get(str(config.get("dataset", "")))
    if normalize is None:
        raise CnnkitError.from_template(
            "{path}: its config has no 'normalize' (mean, std) to store", path=path
        )
    return list(normalize)


def _check_images(
    config: dict[str, Any], normalize: list[Any], shape: tuple[int, ...], n: int, data_dir: Any
) -> tuple[np.ndarray, str]:
    """`n` normalised inputs (N, C, H, W): the dataset's test images, else seeded noise."""
    import numpy as np

    from cnnkit.data import load_dataset
    from cnnkit.data.transforms import normalize_images

    dataset = config.get("dataset")
    pixels = None
    if dataset:
        try:
            pixels = load_dataset(dataset, "test", data_dir=data_dir).images[:n]
            source = f"{dataset} test set"
        except CnnkitError:  # DataError: not on disk
            pixels = None
    if pixels is None:
        c, h, w = shape
        rng = np.random.default_rng(0)
        size = (n, h, w) if c == 1 else (n, h, w, c)
        pixels = rng.integers(0, 256, size=size).astype(np.uint8)
        source = "generated (seeded uniform noise)"
    return normalize_images(pixels, normalize), source


def _export_graph(model: Any, shape: tuple[int, ...], path: Path, opset: int) -> None:
    import torch

    dummy = torch.zeros((1, *shape), dtype=torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            model, (dummy,), str(path), dynamo=False, opset_version=opset,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )  # fmt: skip


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, metadata)
    graph.producer_name = "cnnkit"
    onnx.checker.check_model(graph)
    onnx.save(graph, str(path))


def _compare(model: Any, path: Path, x: np.ndarray) -> tuple[float, float, int]:
    """(max |logit difference|, top-1 agreement, number of classes) of onnxruntime vs torch
    on inputs `x`."""
    import numpy as np
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(["logits"], {"input": x})[0]  # one batch: the batch axis is dynamic
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).float().numpy()
    if theirs.shape != ours.shape:
        raise CnnkitError.from_template(
            "ONNX output shape {shape} differs from torch's {shape2}",
            shape=theirs.shape,
            shape2=ours.shape,
        )
    diff = float(np.max(np.abs(theirs.astype(np.float64) - ours.astype(np.float64))))
    agree = float(np.mean(theirs.argmax(axis=1) == ours.argmax(axis=1)))
    return diff, agree, int(ours.shape[1])


def export_onnx(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    opset: int = OPSET,
    n_images: int = 256,
    data_dir: str | os.PathLike[str] | None = None,
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Write `checkpoint` (a file or a run folder) as ONNX to `output`, checked (module doc)."""
    from cnnkit.models.checkpoint import load_checkpoint
    from cnnkit.models.registry import model_input_shape

    opset = check_int(opset, "opset", func="export_onnx", minimum=13, maximum=20)
    n_images = positive_int(n_images, "n_images", func="export_onnx")
    if Path(output).suffix.lower() != ".onnx":
        raise CnnkitError.from_template(
            "The output file must end in .onnx. Got {output!r} instead.", output=str(output)
        )
    in_the_way = next((p for p in Path(output).parents if p.exists() and not p.is_dir()), None)
    if in_the_way is not None:  # else atomic_path's mkdir says only "notes.txt: File exists"
        raise CnnkitError.from_template(
            (
                "The output file (-o) {output!r} cannot be written: its parent "
                "{in_the_way!r} is a file, not a folder."
            ),
            output=str(output),
            in_the_way=str(in_the_way),
        )
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.model.eval()
    shape = tuple(int(v) for v in model_input_shape(ckpt.model_name))
    normalize = _normalize(ckpt.config, checkpoint)
    x, source = _check_images(ckpt.config, normalize, shape, n_images, data_dir)
    with atomic_path(output) as tmp:
        _export_graph(model, shape, tmp, opset)
        diff, agree, num_classes = _compare(model, tmp, x)
        if not (diff <= tolerance and agree == 1.0):
            raise CnnkitError.from_template(
                (
                    "refused to export {model_name}: onnxruntime differs from torch on {n_x} "
                    "images ({source}): max |logit difference| {diff:.3g} (goal <= "
                    "{tolerance:g}), top-1 agreement {agree:.2%} (goal 100%); nothing written"
                ),
                model_name=ckpt.model_name,
                n_x=len(x),
                source=source,
                diff=diff,
                tolerance=tolerance,
                agree=agree,
            )
        classes = _classes(ckpt.config, num_classes)
        metadata = {
            "cnnkit.model": ckpt.model_name,
            "cnnkit.dataset": str(ckpt.config.get("dataset", "")),
            "cnnkit.classes": json.dumps(classes),
            "cnnkit.normalize": json.dumps(normalize),
            "cnnkit.input_shape": json.dumps(list(shape)),
            "cnnkit.preprocess": "mnist-digit" if shape == (1, 28, 28) else "none",
        }
        _add_metadata(tmp, metadata)
    return ExportReport(
        path=str(output), model=ckpt.model_name, opset=opset, input_shape=shape,
        classes=classes, normalize=normalize, images=len(x), image_source=source,
        max_abs_diff=diff, top1_agreement=agree, tolerance=tolerance,
    )  # fmt: skip
