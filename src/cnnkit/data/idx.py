"""IDX files, the format of MNIST and Fashion-MNIST: a reader and a writer, raw or gzip.

Layout (big-endian throughout)::

    0x00 0x00 <dtype code> <ndim>   magic number
    ndim x uint32                   size of each dimension
    prod(sizes) x dtype             the payload, row-major

The reader checks every part of that and that the payload size matches exactly, and raises
`DataError` naming the file and what is wrong. No byte of the payload is copied: the array is a
view on the buffer read from disk (`np.frombuffer`).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnkit.core.errors import DataError
from cnnkit.core.files import atomic_path

MAX_DECOMPRESSED_BYTES = 1 << 30  # no dataset file is larger (as fetching.MAX_MEMBER_BYTES)

__all__ = [
    "GZIP_MAGIC",
    "IDX_DTYPES",
    "MAX_DECOMPRESSED_BYTES",
    "idx_bytes",
    "parse_idx",
    "read_decompressed",
    "read_idx",
    "write_idx",
]

# IDX type code -> NumPy dtype (big-endian where it matters)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_ALLOWED = ", ".join(f"0x{code:02X} ({dt.name})" for code, dt in IDX_DTYPES.items())
GZIP_MAGIC = b"\x1f\x8b"


def parse_idx(data: bytes | bytearray, source: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file; `source` names the file in error messages.

    Returns an array in native byte order. For uint8/int8 (all of MNIST) it is a view on
    `data`, writable when `data` is a bytearray.
    """
    size = len(data)
    if size < 4:
        raise DataError.from_template(
            "{source}: not an IDX file: {size} bytes, shorter than the 4-byte magic",
            source=source,
            size=size,
        )
    if data[0] != 0 or data[1] != 0:
        raise DataError.from_template(
            (
                "{source}: not an IDX file: magic number starts with 0x{data:02X} "
                "0x{data2:02X}, expected 0x00 0x00"
            ),
            source=source,
            data=data[0],
            data2=data[1],
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise DataError.from_template(
            "{source}: unknown IDX dtype code 0x{code:02X}; allowed: {allowed}",
            source=source,
            code=code,
            allowed=_ALLOWED,
        )
    if ndim == 0:
        raise DataError.from_template(
            "{source}: the IDX header declares 0 dimensions", source=source
        )
    offset = 4 + 4 * ndim
    if size < offset:
        raise DataError.from_template(
            (
                "{source}: truncated IDX header: {ndim} dimensions need {offset} header "
                "bytes, the file has {size}"
            ),
            source=source,
            ndim=ndim,
            offset=offset,
            size=size,
        )
    shape = struct.unpack(f">{ndim}I", bytes(data[4:offset]))
    dtype = IDX_DTYPES[code]
    count = math.prod(shape)
    expected = offset + count * dtype.itemsize
    if size < expected:
        raise DataError.from_template(
            (
                "{source}: truncated: the header declares shape {shape} of {dtype_name} "
                "({expected} bytes in all), the file has {size} bytes"
            ),
            source=source,
            shape=shape,
            dtype_name=dtype.name,
            expected=expected,
            size=size,
        )
    if size > expected:
        raise DataError.from_template(
            (
                "{source}: {size_expected} extra bytes after the {expected} bytes that "
                "the header's shape {shape} of {dtype_name} accounts for"
            ),
            source=source,
            size_expected=size - expected,
            expected=expected,
            shape=shape,
            dtype_name=dtype.name,
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)
    if not dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array


def read_decompressed(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_DECOMPRESSED_BYTES
) -> bytearray:
    """The IDX content of `path`, decompressed when it is gzip (detected by its magic bytes).

    Gzip data that decompresses to more than `max_bytes` is refused after reading that much
    (a "gzip bomb" of a few MB could otherwise ask for many GB).
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == GZIP_MAGIC:
                with gzip.GzipFile(fileobj=f) as gz:
                    data = bytearray(gz.read(max_bytes + 1))
                if len(data) > max_bytes:
                    raise DataError.from_template(
                        (
                            "{path}: decompresses to more than {max_bytes:,} bytes, larger "
                            "than any "
                            "dataset file"
                        ),
                        path=path,
                        max_bytes=max_bytes,
                    )
                return data
            buffer = bytearray(os.fstat(f.fileno()).st_size)
            f.readinto(buffer)
            return buffer
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError.from_template(
            "{path}: corrupt or truncated gzip data ({e})", path=path, e=e
        ) from e
    except OSError as e:
        raise DataError.from_template(
            "{path}: cannot read: {reason}", path=path, reason=e.strerror or e
        ) from e


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into a writable NumPy array."""
    return parse_idx(read_decompressed(path), source=str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of `array` (uint8, int8, int16, int32, float32 or float64)."""
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError.from_template(
            "IDX cannot store dtype {dtype}; allowed: {allowed}",
            dtype=array.dtype,
            allowed=_ALLOWED,
        )
    if array.ndim == 0 or array.ndim > 255:
        raise DataError.from_template(
            "IDX stores 1 to 255 dimensions. Got {ndim} instead.", ndim=array.ndim
        )
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write `array` as an IDX file, gzip-compressed when `path` ends in ".gz"; atomic."""
    path = Path(path)
    data = idx_bytes(array)
    with atomic_path(path) as tmp:
        if path.suffix == ".gz":
            # mtime=0: the same array always gives the same bytes
            with gzip.GzipFile(tmp, "wb", mtime=0) as gz:
                gz.write(data)
        else:
            tmp.write_bytes(data)
    return path
