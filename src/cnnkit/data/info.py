"""What is in the data dir: which datasets are present and verified, sizes, counts, labels."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnkit.core.errors import DataError
from cnnkit.data.datasets import load_dataset
from cnnkit.data.registry import DATASETS, DatasetSpec, dataset_dir, get_spec
from cnnkit.data.verify import read_verified, stored_path

__all__ = ["DatasetInfo", "FileInfo", "SplitInfo", "dataset_info"]


@dataclass(frozen=True)
class FileInfo:
    name: str
    present: bool
    size: int | None  # bytes, None when absent
    verified: bool


@dataclass(frozen=True)
class SplitInfo:
    split: str
    count: int
    image_shape: tuple[int, ...]  # one image: (H, W) or (H, W, C)
    label_counts: list[int]  # images per class, class 0 first


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    directory: str
    status: str  # "verified", "missing", "incomplete" or "corrupt"
    classes: list[str]
    files: list[FileInfo]
    splits: list[SplitInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per file that failed

    @property
    def size(self) -> int:
        return sum(f.size or 0 for f in self.files)


def _file_problem(spec: DatasetSpec, path: Path) -> str | None:
    try:
        read_verified(spec, path)
    except DataError as e:
        return str(e)
    return None


def dataset_info(
    name: str | None = None, *, data_dir: str | os.PathLike[str] | None = None
) -> list[DatasetInfo]:
    """Status of one dataset, or of every known dataset, in the data dir.

    Each split that is complete is loaded (which verifies its files); files that are not
    part of a loadable split are checked one by one to say which is wrong.
    """
    names = [get_spec(name).name] if name is not None else list(DATASETS)
    return [_one(n, data_dir) for n in names]


def _one(name: str, data_dir: str | os.PathLike[str] | None) -> DatasetInfo:
    spec = get_spec(name)
    folder = dataset_dir(name, data_dir)
    paths = {f.name: stored_path(folder / f.name) for f in spec.files}  # raw, or NAME.gz
    present = {n for n, p in paths.items() if p.is_file()}
    verified: set[str] = set()
    splits: list[SplitInfo] = []
    classes = list(spec.classes)
    for split in spec.splits:
        needed = set(spec.split_files(split))
        if not needed <= present:
            continue
        try:
            data = load_dataset(name, split, data_dir=data_dir)
        except DataError:
            continue  # the per-file check below says which file is wrong
        verified |= needed
        classes = data.classes
        counts = np.bincount(data.labels, minlength=len(data.classes))
        splits.append(SplitInfo(split, len(data), data.images.shape[1:], counts.tolist()))
    problems = []
    for n in sorted(present - verified):
        problem = _file_problem(spec, folder / n)
        if problem is None:
            verified.add(n)
        else:
            problems.append(problem)
    files = [
        FileInfo(n, n in present, p.stat().st_size if n in present else None, n in verified)
        for n, p in paths.items()
    ]
    if problems:
        status = "corrupt"
    elif not present:
        status = "missing"
    elif len(verified) < len(paths):
        status = "incomplete"
    else:
        status = "verified"
    return DatasetInfo(spec.name, spec.title, str(folder), status, classes, files, splits, problems)
