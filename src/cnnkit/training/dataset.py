"""The training and test sets in memory, normalised, as the loop slices them into batches;
and the model arguments that make a registry model take them.

The dataset lives in memory as one normalised float32 array (N, C, H, W) per split; each epoch
draws a permutation and fancy-indexes batches from it (no DataLoader, no per-sample transforms).
`dataset` is a registered name (MNIST, ...) or an image folder (`cnnkit.data.folder`), whose
images are resized to one size and normalised with the mean and std of its training split.

Models follow the data: `fit_model` gives the registry model the dataset's (C, H, W) and class
count as `in_channels`, `input_hw`, `num_classes` (the models derive their flattened sizes
from these with `cnnkit.calc.arithmetic`), builds it once and runs one zero batch through it
before training starts, so a model that cannot take the shape says why, naming both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message
from cnnkit.data.transforms import dataset_normalize, normalize_images

__all__ = ["TrainData", "check_model_fits", "fit_model", "load_train_data"]


@dataclass
class TrainData:
    train_x: np.ndarray  # (N, C, H, W) float32, normalised
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray  # (M, C, H, W) float32, normalised
    test_y: np.ndarray  # (M,) int64
    test_images: np.ndarray  # the raw uint8 test images, for the report
    classes: list[str]
    normalize: tuple[Any, Any]
    # an image folder's facts for config.json (size, channels, split, skipped files); None
    # for a registered dataset
    image_folder: dict[str, Any] | None = None
    model_args: dict[str, Any] = field(default_factory=dict)  # set by the loop (fit_model)


def load_train_data(
    dataset: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    limit: int | None = None,
    test_limit: int | None = None,
    image_size: str | None = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    on_bad_image: str = "skip",
) -> TrainData:
    """Both splits in memory, normalised; the first `limit` / `test_limit` images of each.

    A registered name is loaded from the data dir (fetched if missing); anything else is an
    image folder, read with `cnnkit.data.folder.load_image_folder` (its split seeded by `seed`).
    """
    from cnnkit.data.folder import is_image_folder

    folder_facts = None
    if is_image_folder(dataset):
        from cnnkit.data.folder import load_image_folder

        folder = load_image_folder(
            dataset,
            image_size=image_size,
            channels=channels,
            test_fraction=test_fraction,
            seed=seed,
            on_bad_image=on_bad_image,
        )
        train_split, test_split = folder.train, folder.test
        folder_facts = {
            "image_size": list(folder.image_size),
            "channels": folder.channels,
            "median_size": list(folder.median_size),
            "split": folder.split,
            "skipped": [{"file": f, "reason": r} for f, r in folder.bad],
        }
    else:
        from cnnkit.data import load_dataset

        train_split = load_dataset(dataset, "train", data_dir=data_dir, download=True)
        test_split = load_dataset(dataset, "test", data_dir=data_dir, download=True)
    normalize = dataset_normalize(dataset, train_split.images)
    images, labels = train_split.images, train_split.labels
    test_images, test_labels = test_split.images[:test_limit], test_split.labels[:test_limit]
    return TrainData(
        train_x=normalize_images(images[:limit], normalize),
        train_y=np.ascontiguousarray(labels[:limit], dtype=np.int64),
        test_x=normalize_images(test_images, normalize),
        test_y=np.ascontiguousarray(test_labels, dtype=np.int64),
        test_images=test_images,
        classes=list(train_split.classes),
        normalize=normalize,
        image_folder=folder_facts,
    )


def fit_model(
    model: str, dataset: str, data: TrainData, *, engine: str = "torch"
) -> dict[str, Any]:
    """The model arguments that make `model` take the dataset: {} when its defaults do (the
    chapter's models on MNIST), else in_channels, input_hw and num_classes; checked by
    building the model and running a zero batch (1, C, H, W) -> (1, K) through it."""
    from cnnkit.models.registry import model_input_shape

    c, h, w = (int(n) for n in data.train_x.shape[1:])
    k = len(data.classes)
    if tuple(model_input_shape(model, engine=engine)) == (c, h, w) and k == 10:
        return {}
    args: dict[str, Any] = {"in_channels": c, "num_classes": k, "input_hw": [h, w]}
    what = Message(
        "model {model!r} cannot take dataset {dataset!r}: (C, H, W) = {chw}, {k} classes",
        model=model,
        dataset=dataset,
        chw=(c, h, w),
        k=k,
    )
    try:
        out_shape = _zero_batch_output(model, engine, args, (c, h, w))
    except CnnkitError as e:
        raise CnnkitError.from_template("{what}: {e}", what=what, e=e) from e
    except (RuntimeError, ValueError, TypeError) as e:
        raise CnnkitError.from_template(
            "{what}: its forward pass fails ({e})", what=what, e=e
        ) from e
    if out_shape != (1, k):
        raise CnnkitError.from_template(
            (
                "{what}: a batch (1, {c}, {h}, {w}) gives outputs {out_shape}, not (1, "
                "{k}) class scores"
            ),
            what=what,
            c=c,
            h=h,
            w=w,
            out_shape=out_shape,
            k=k,
        )
    return args


def _zero_batch_output(
    model: str, engine: str, args: dict[str, Any], shape: tuple[int, int, int]
) -> tuple[int, ...]:
    from cnnkit.models.registry import create_model

    if engine == "numpy":
        net = create_model(model, engine="numpy", **args)
        net.eval()
        return tuple(net.forward(np.zeros((1, *shape), dtype=np.float32)).shape)
    import torch

    rng = torch.get_rng_state()  # building the model draws weights: the run's RNG is kept
    try:
        net = create_model(model, **args).eval()
        with torch.inference_mode():
            return tuple(net(torch.zeros(1, *shape)).shape)
    finally:
        torch.set_rng_state(rng)


def check_model_fits(model: str, dataset: str, data: TrainData) -> None:
    """The model can take the dataset (see `fit_model`), or a CnnkitError saying why."""
    fit_model(model, dataset, data)
