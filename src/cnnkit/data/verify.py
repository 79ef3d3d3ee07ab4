"""Reading a dataset file only after its checksum matches."""

from __future__ import annotations

from pathlib import Path

from cnnkit.data.idx import read_decompressed
from cnnkit.data.registry import DatasetSpec, check_digest

__all__ = ["read_verified"]


def read_verified(spec: DatasetSpec, path: Path) -> bytearray:
    """The content of one of `spec`'s files, after checking its checksum."""
    data = read_decompressed(path)
    check_digest(spec.file(path.name), data, str(path))
    return data
