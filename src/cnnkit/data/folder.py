"""Image-folder datasets: your own images, one subfolder per class (the ImageFolder convention).

    ROOT/cat/001.png  ROOT/dog/x.jpg ...                 one split: a seeded stratified split
    ROOT/train/cat/... ROOT/test/cat/...                 the two splits as given

    from cnnkit.data.folder import load_image_folder
    data = load_image_folder("shapes", test_fraction=0.2, seed=0)
    data.train.images   # uint8 (N, H, W) grayscale or (N, H, W, 3) colour, all resized
    data.classes        # the subfolder names, sorted: label k is classes[k]

Files are those whose suffix Pillow reads (hidden files skipped). Every image is resized to
`image_size` (H, W) (default: the median height and width of the readable images); the
dataset is grayscale when every image is (an RGB file whose three channels are equal counts as
grayscale), else RGB, unless `channels` (1 or 3) says. A file that cannot be decoded is named
in `ImageFolderData.bad` and skipped (`on_bad_image="skip"`), or refused with a `DataError`
naming it (`"fail"`); nothing is dropped silently. Decoded images are cached as memory-mapped
arrays (`cnnkit.data.folder_cache`), so a second load of the same files decodes nothing.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError, DataError
from cnnkit.core.i18n import Message, error_words
from cnnkit.data.datasets import Dataset

__all__ = [
    "BAD_IMAGE_POLICIES",
    "FolderInfo",
    "FolderSplitInfo",
    "ImageFolderData",
    "folder_info",
    "is_image_folder",
    "load_image_folder",
    "parse_image_size",
    "read_for_model",
    "scan_image_folder",
]

BAD_IMAGE_POLICIES = ("skip", "fail")
_SPLITS = ("train", "test")


def _image_suffixes() -> frozenset[str]:
    from PIL import Image

    return frozenset(s.lower() for s in Image.registered_extensions())


def is_image_folder(name: str | os.PathLike[str]) -> bool:
    """Whether a `dataset` value names a folder (anything that is not a registered name)."""
    from cnnkit.data.registry import DATASETS

    return str(name) not in DATASETS


def parse_image_size(value: Any) -> tuple[int, int] | None:
    """`image_size` as (H, W): an int n means (n, n); "HxW" and pairs are accepted."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            parts = value.lower().split("x")
            pair = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else None
        elif isinstance(value, int) and not isinstance(value, bool):
            pair = (value, value)
        else:
            h, w = value
            pair = (int(h), int(w)) if h == int(h) and w == int(w) else None
    except (TypeError, ValueError):
        pair = None
    if pair is None or min(pair) < 1 or max(pair) > 4096:
        raise CnnkitError.from_template(
            (
                "The 'image_size' parameter (--image-size) must be N or HxW with sides "
                "in 1..4096. Got {value!r} instead."
            ),
            value=value,
        )
    return pair


@dataclass(frozen=True)
class FolderScan:
    """The files of an image folder: per split, (path, label) pairs; class names sorted."""

    root: Path
    classes: list[str]
    files: dict[str, list[tuple[Path, int]]]  # "all", or "train" and "test"


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_files(folder: Path, suffixes: frozenset[str]) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )


def scan_image_folder(root: str | os.PathLike[str]) -> FolderScan:
    """The classes and files of `root`; refused unless it has at least two classes with images."""
    path = Path(root)
    if not path.is_dir():
        raise DataError.from_template(
            (
                "The 'dataset' parameter (--dataset) must be a registered dataset name "
                "or a folder of class subfolders. Got {root!r}, which is not a folder."
            ),
            root=str(root),
        )
    suffixes = _image_suffixes()
    split_dirs = {s: path / s for s in _SPLITS}
    if all(d.is_dir() for d in split_dirs.values()):
        classes = sorted({d.name for s in _SPLITS for d in _class_dirs(split_dirs[s])})
        files = {
            s: [
                (f, classes.index(d.name))
                for d in _class_dirs(split_dirs[s])
                for f in _class_files(d, suffixes)
            ]
            for s in _SPLITS
        }
    else:
        class_dirs = [d for d in _class_dirs(path) if _class_files(d, suffixes)]
        classes = [d.name for d in class_dirs]
        files = {
            "all": [(f, k) for k, d in enumerate(class_dirs) for f in _class_files(d, suffixes)]
        }
    if len(classes) < 2 or any(not v for v in files.values()):
        raise DataError.from_template(
            (
                "{path}: an image folder needs one subfolder per class, at least two, "
                "holding images (optionally under train/ and test/); found classes "
                "{classes}"
            ),
            path=path,
            classes=classes,
        )
    return FolderScan(path, classes, files)


@dataclass
class ImageFolderData:
    """Both splits, resized, as uint8 arrays; `bad` lists (file, reason) of skipped files."""

    train: Dataset
    test: Dataset
    classes: list[str]
    image_size: tuple[int, int]  # (H, W)
    channels: int  # 1 or 3
    median_size: tuple[int, int]  # (H, W) of the readable images
    split: str  # "folders" (train/ and test/ given) or "stratified"
    bad: list[tuple[str, str]] = field(default_factory=list)


def _reason_to_json(reason: str) -> list[Any]:
    """[English line, template, fields] of a skipped file's reason, for the decode cache
    (fields that JSON cannot hold are kept as their text)."""
    if not isinstance(reason, Message) or not reason.fields:
        return [str(reason), None, None]
    plain = (str, int, float, bool, type(None))
    fields = {k: v if isinstance(v, plain) else str(v) for k, v in reason.fields.items()}
    return [str(reason), reason.template, fields]


def _reason_from_json(rest: list[Any]) -> str:
    english, template, fields = (list(rest) + [None, None])[:3]
    if isinstance(template, str) and isinstance(fields, dict):
        try:
            words = Message(template, **fields)
        except (KeyError, IndexError, ValueError):
            return str(english)
        if words == english:  # the template still gives the line it was stored with
            return words
    return str(english)


def _read_all(
    files: list[tuple[Path, int]], on_bad_image: str
) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
    from cnnkit.imaging.images import read_image

    images, labels = [], []
    bad: list[tuple[str, str]] = []
    for path, label in files:
        try:
            array = read_image(path, "auto")  # float64 (H, W) or (H, W, 3) in [0, 255]
        except CnnkitError as e:
            if on_bad_image == "fail":
                raise DataError.from_template(
                    "{e} (--on-bad-image fail; use skip to leave it out)", e=e
                ) from e
            bad.append((str(path), error_words(e)))  # English, worded by the CLI when shown
            continue
        if (
            array.ndim == 3
            and np.array_equal(array[..., 0], array[..., 1])
            and np.array_equal(array[..., 0], array[..., 2])
        ):
            array = array[..., 0]  # an RGB file of grey pixels: grayscale by content
        images.append(np.round(array).astype(np.uint8))
        labels.append(label)
    return images, labels, bad


def _resize(image: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> (h, w) or (h, w, 3) uint8, `channels` as asked."""
    from PIL import Image

    img = Image.fromarray(image)
    img = img.convert("L" if channels == 1 else "RGB")
    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def read_for_model(
    path: str | os.PathLike[str], size: tuple[int, int], channels: int
) -> np.ndarray:
    """One image file as a folder-trained model takes it: resized, 1 or 3 channels, uint8."""
    from cnnkit.imaging.images import read_image

    return _resize(np.round(read_image(path, "auto")).astype(np.uint8), size, channels)


def _stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test): per class, a seeded permutation; round(n * fraction) of each
    class (at least 1 where it has 2 or more images) go to the test split."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    test: list[int] = []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        n_test = round(len(members) * test_fraction)
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.extend(members[:n_test])
        train.extend(members[n_test:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


_Decoded = tuple[
    dict[str, tuple[np.ndarray | None, np.ndarray]],
    tuple[int, int],
    int,
    tuple[int, int],
    list[tuple[str, str]],
]


def _decode(
    scan: FolderScan, asked: tuple[int, int] | None, channels: int | None, on_bad_image: str
) -> _Decoded:
    """Decode and resize every file: (arrays per split, size, channels, median, bad)."""
    read = {s: _read_all(f, on_bad_image) for s, f in scan.files.items()}
    every = [im for images, _, _ in read.values() for im in images]
    if not every:
        raise DataError.from_template(
            "{root}: no readable image (every file failed to decode)", root=scan.root
        )
    median = (
        int(np.median([im.shape[0] for im in every])),
        int(np.median([im.shape[1] for im in every])),
    )
    size = asked or median
    if channels is None:
        channels = 1 if all(im.ndim == 2 for im in every) else 3
    arrays = {
        s: (
            np.stack([_resize(im, size, channels) for im in images]) if images else None,
            np.array(labels, dtype=np.int64),
        )
        for s, (images, labels, _) in read.items()
    }
    bad = [b for _, _, bads in read.values() for b in bads]
    return arrays, size, channels, median, bad


def _cached_or_decoded(
    scan: FolderScan,
    asked: tuple[int, int] | None,
    channels: int | None,
    on_bad_image: str,
    cache_dir: str | os.PathLike[str] | None | bool,
) -> _Decoded:
    """`_decode`'s answer from the decode cache when it holds these files and settings, else
    decoded and written there (`cache_dir` False: no cache)."""
    if cache_dir is False:
        return _decode(scan, asked, channels, on_bad_image)
    from cnnkit.data.folder_cache import cache_entry, read_cache, write_cache

    settings = {"image_size": asked, "channels": channels, "on_bad_image": on_bad_image}
    where = None if cache_dir is None or cache_dir is True else cache_dir
    entry = cache_entry(scan.root, scan.files, settings, where)
    try:
        meta, cached = read_cache(entry)
        return (
            dict(cached),
            (int(meta["image_size"][0]), int(meta["image_size"][1])),
            int(meta["channels"]),
            (int(meta["median_size"][0]), int(meta["median_size"][1])),
            [(str(f), _reason_from_json(rest)) for f, *rest in meta["bad"]],
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing or unreadable: decode, and write it again
    decoded = _decode(scan, asked, channels, on_bad_image)
    arrays, size, channels_out, median, bad = decoded
    whole = {s: (x, y) for s, (x, y) in arrays.items() if x is not None}
    if len(whole) == len(arrays):
        facts = {"image_size": list(size), "channels": channels_out, "median_size": list(median),
                 "bad": [[f, *_reason_to_json(r)] for f, r in bad]}  # fmt: skip
        with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
            write_cache(entry, facts, whole)
    return decoded


def load_image_folder(
    root: str | os.PathLike[str],
    *,
    image_size: Any = None,
    channels: int | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
    on_bad_image: str = "skip",
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ImageFolderData:
    """Read every image of an image folder, resize it and split it (see the module doc).

    With `cache` the decoded images are kept as memory-mapped .npy files
    (`cnnkit.data.folder_cache`, under `cache_dir`, default <data dir>/folders), keyed by the
    file list, sizes, mtimes and the settings: a second load with the same files decodes
    nothing, and a changed file rebuilds the entry."""
    if on_bad_image not in BAD_IMAGE_POLICIES:
        raise DataError.from_template(
            (
                "The 'on_bad_image' parameter (--on-bad-image) must be one of skip, "
                "fail. Got {on_bad_image!r} instead."
            ),
            on_bad_image=on_bad_image,
        )
    if channels not in (None, 1, 3):
        raise DataError.from_template(
            ("The 'channels' parameter (--channels) must be 1 or 3. Got {channels!r} instead."),
            channels=channels,
        )
    if not (isinstance(test_fraction, float | int) and 0 < test_fraction < 1):
        raise DataError.from_template(
            (
                "The 'test_fraction' parameter (--test-fraction) must be a number "
                "between 0 and 1 (exclusive). Got {test_fraction!r} instead."
            ),
            test_fraction=test_fraction,
        )
    asked = parse_image_size(image_size)
    scan = scan_image_folder(root)
    arrays, size, channels, median, bad = _cached_or_decoded(
        scan, asked, channels, on_bad_image, cache_dir if cache else False
    )
    if "all" in arrays:
        x, y = arrays["all"]
        assert x is not None
        tr, te = _stratified_split(y, test_fraction, seed)
        splits = {"train": (x[tr], y[tr]), "test": (x[te], y[te])}
        how = "stratified"
    else:
        splits = dict(arrays)
        how = "folders"
    for s, (x, _) in splits.items():
        if x is None or len(x) == 0:
            raise DataError.from_template(
                "{root}: the {s} split has no readable image", root=scan.root, s=s
            )
    name = str(root)
    ds = {
        s: Dataset(images=x, labels=y, name=name, split=s, classes=list(scan.classes))
        for s, (x, y) in splits.items()
    }
    return ImageFolderData(ds["train"], ds["test"], scan.classes, size, channels, median, how, bad)


@dataclass(frozen=True)
class FolderSplitInfo:
    """One split of an image folder ("all" when there are no train/ and test/ subfolders)."""

    split: str
    files: int  # image files found, bad ones included
    counts: dict[str, int]  # readable images per class name
    modes: dict[str, int]  # readable images per content mode, "L" or "RGB"
    bad: list[tuple[str, str]]  # (file, reason) of the files that do not decode


@dataclass(frozen=True)
class FolderInfo:
    """What `cnnkit data info FOLDER` shows: classes, counts, sizes, modes and bad files."""

    root: str
    classes: list[str]
    layout: str  # "folders" (train/ and test/ given) or "one split"
    splits: list[FolderSplitInfo]
    heights: tuple[int, int, int]  # min, median, max of the readable images
    widths: tuple[int, int, int]

    @property
    def bad(self) -> list[tuple[str, str]]:
        return [b for s in self.splits for b in s.bad]


def _split_info(
    split: str, files: list[tuple[Path, int]], classes: list[str], sizes: list[tuple[int, int]]
) -> FolderSplitInfo:
    from cnnkit.imaging.images import read_image

    counts = dict.fromkeys(classes, 0)
    modes = {"L": 0, "RGB": 0}
    bad: list[tuple[str, str]] = []
    for path, label in files:
        try:
            array = read_image(path, "auto")
        except CnnkitError as e:
            bad.append((str(path), error_words(e)))
            continue
        grey = array.ndim == 2 or (
            np.array_equal(array[..., 0], array[..., 1])
            and np.array_equal(array[..., 0], array[..., 2])
        )  # as training reads it: an RGB file of grey pixels is grayscale
        modes["L" if grey else "RGB"] += 1
        counts[classes[label]] += 1
        sizes.append((array.shape[0], array.shape[1]))
    return FolderSplitInfo(split, len(files), counts, modes, bad)


def folder_info(root: str | os.PathLike[str]) -> FolderInfo:
    """Decode every file of an image folder once and say what is there (nothing is kept).

    Sizes are (H, W) before resizing; the median is `int(np.median(...))` per side, the size
    `cnnkit train` resizes to by default. Modes are by content, as training decides channels.
    """
    scan = scan_image_folder(root)
    sizes: list[tuple[int, int]] = []
    splits = [_split_info(s, f, scan.classes, sizes) for s, f in scan.files.items()]
    if not sizes:
        raise DataError.from_template(
            "{root}: no readable image (every file failed to decode)", root=scan.root
        )
    hw = np.array(sizes)
    stats = [(int(hw[:, i].min()), int(np.median(hw[:, i])), int(hw[:, i].max())) for i in (0, 1)]
    layout = "one split" if "all" in scan.files else "folders"
    return FolderInfo(str(scan.root), list(scan.classes), layout, splits, stats[0], stats[1])
