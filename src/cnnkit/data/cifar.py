"""CIFAR-10 in its "python version" format: pickled batches, read without trusting pickle.

Each of `data_batch_1` ... `data_batch_5` and `test_batch` is a pickled dict (written by
Python 2, so its keys load as bytes) with `b"data"`, a (N, 3072) uint8 array whose rows hold
the red, then green, then blue 32x32 planes, and `b"labels"`, a list of N ints in 0..9.
`batches.meta` holds `b"label_names"`.

Why a restricted unpickler: `pickle.load` calls any importable function the file names, so
a doctored batch file could run `os.system` on load. `_BatchUnpickler.find_class` resolves
only the three globals a NumPy array needs (`_reconstruct`, `ndarray`, `dtype`, under
NumPy 1's and NumPy 2's module names) and refuses everything else with `DataError`. The
built-in containers (dict, list, bytes, int) are pickle opcodes, not globals, so they need no
entry. Integrity is checked separately (checksums in `cnnkit.data.datasets`).
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.core.errors import DataError
from cnnkit.core.files import atomic_write_bytes
from cnnkit.data.registry import CIFAR10_CLASSES

__all__ = [
    "CLASSES",
    "IMAGE_SHAPE",
    "ROW_SIZE",
    "batch_bytes",
    "loads",
    "parse_batch",
    "parse_label_names",
    "read_batch",
    "read_label_names",
    "write_batch",
    "write_meta",
]

CLASSES = CIFAR10_CLASSES
IMAGE_SHAPE = (32, 32, 3)  # (H, W, C)
ROW_SIZE = 3 * 32 * 32


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:  # NumPy 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]  # same function
    allowed: dict[tuple[str, str], Any] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


class _BatchUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source
        self._allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError.from_template(
                (
                    "{source}: refusing to unpickle {module}.{name}; a CIFAR-10 batch only "
                    "needs numpy arrays"
                ),
                source=self._source,
                module=module,
                name=name,
            ) from None


def loads(data: bytes | bytearray, source: str = "<bytes>") -> Any:
    """Unpickle a CIFAR-10 file's bytes with the restricted unpickler (module docstring)."""
    try:
        return _BatchUnpickler(io.BytesIO(data), source).load()
    except DataError:
        raise
    except Exception as e:  # any malformed pickle: UnpicklingError, EOFError, ValueError...
        raise DataError.from_template(
            "{source}: not a readable CIFAR-10 pickle ({type_name}: {e})",
            source=source,
            type_name=type(e).__name__,
            e=e,
        ) from e


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise DataError.from_template(
            "{path}: cannot read: {reason}", path=path, reason=e.strerror or e
        ) from e


def parse_batch(data: bytes | bytearray, source: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 from a batch file's bytes."""
    batch = loads(data, source)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError.from_template(
            ("{source}: expected a dict with b'data' and b'labels'. Got {keys} instead."),
            source=source,
            keys=keys,
        )
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError.from_template(
            "{source}: b'data' must be a (N, {row_size}) uint8 array. Got {got}.",
            source=source,
            row_size=ROW_SIZE,
            got=got,
        )
    if data.shape[1] != ROW_SIZE:
        raise DataError.from_template(
            "{source}: b'data' rows must hold {row_size} bytes. Got {shape}.",
            source=source,
            row_size=ROW_SIZE,
            shape=data.shape[1],
        )
    if labels.shape != (data.shape[0],):
        raise DataError.from_template(
            "{source}: {shape} images but {size} labels; the counts must match",
            source=source,
            shape=data.shape[0],
            size=labels.size,
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError.from_template(
            "{source}: labels must lie in 0..{len_classes_1}. Got {min}..{max}.",
            source=source,
            len_classes_1=len(CLASSES) - 1,
            min=labels.min(),
            max=labels.max(),
        )
    # (N, 3072) -> (N, C, H, W) -> (N, H, W, C)
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return images, labels.astype(np.int64)


def read_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one batch file."""
    return parse_batch(_read(path), str(path))


def parse_label_names(data: bytes | bytearray, source: str = "<bytes>") -> list[str]:
    """Class names from the bytes of `batches.meta`."""
    meta = loads(data, source)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise DataError.from_template(
            "{source}: expected a dict with b'label_names', a list of names", source=source
        )
    return [n.decode() if isinstance(n, bytes) else n for n in names]


def read_label_names(path: str | os.PathLike[str]) -> list[str]:
    """Class names from `batches.meta`."""
    return parse_label_names(_read(path), str(path))


# The pure-Python pickler, whose dispatch table can be extended (the C one's cannot).
_PurePickler: Any = pickle._Pickler


class _Py2Pickler(_PurePickler):
    """Writes what Python 2's cPickle wrote for CIFAR-10 (protocol 2): every str and bytes as
    a py2 `str` (BINSTRING; loads as bytes with encoding="bytes") and NumPy's array
    constructor under its NumPy 1 name, `numpy.core.multiarray._reconstruct`."""

    dispatch = _PurePickler.dispatch.copy()

    def save_py2_str(self, obj: bytes | str) -> None:
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is _numpy_globals()[("numpy.core.multiarray", "_reconstruct")]:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def _py2_dumps(obj: Any) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def batch_bytes(images: np.ndarray, labels: np.ndarray, batch_label: str = "") -> bytes:
    """A batch in the CIFAR-10 python format, from images (N, 32, 32, 3) uint8, pickled the
    way the original files were (see `_Py2Pickler`)."""
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError.from_template(
            "images must have shape (N, 32, 32, 3). Got {shape} instead.", shape=images.shape
        )
    # (N, H, W, C) -> (N, C, H, W) -> (N, 3072)
    data = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), ROW_SIZE)
    batch = {
        b"batch_label": batch_label.encode(),
        b"labels": [int(v) for v in labels],
        b"data": data,
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(images))],
    }
    return _py2_dumps(batch)


def write_batch(
    path: str | os.PathLike[str], images: np.ndarray, labels: np.ndarray, batch_label: str = ""
) -> Path:
    atomic_write_bytes(path, batch_bytes(images, labels, batch_label))
    return Path(path)


def write_meta(path: str | os.PathLike[str], label_names: list[str] = CLASSES) -> Path:
    meta = {
        b"num_cases_per_batch": 10000,
        b"label_names": [n.encode() for n in label_names],
        b"num_vis": ROW_SIZE,
    }
    atomic_write_bytes(path, _py2_dumps(meta))
    return Path(path)
