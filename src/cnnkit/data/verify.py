"""Reading a dataset file only after its checksum matches."""

from __future__ import annotations

from pathlib import Path

from cnnkit.data.idx import read_decompressed
from cnnkit.data.registry import DatasetSpec, check_digest

__all__ = ["read_verified", "stored_path"]


def stored_path(path: Path) -> Path:
    """`path`, or its gzip copy `path.gz` when only that is there (files as distributed)."""
    gz = path.with_name(path.name + ".gz")
    return gz if not path.is_file() and gz.is_file() else path


def read_verified(spec: DatasetSpec, path: Path) -> bytearray:
    """The content of one of `spec`'s files (or of its `.gz` copy), after checking its checksum.

    `path` names the file as the spec does (`t10k-labels-idx1-ubyte`); the checksum is over
    the decompressed content either way.
    """
    source = stored_path(path)
    data = read_decompressed(source)
    check_digest(spec.file(path.name), data, str(source))
    return data
