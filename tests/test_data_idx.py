"""IDX reader/writer. Oracle: headers built by hand with `struct`, payloads with NumPy."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import SHARED_MNIST, needs_mnist
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.core.errors import DataError
from cnnkit.data.idx import parse_idx, read_idx, write_idx

# (IDX type code, big-endian dtype), from the format's definition
TYPES = [(0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"), (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")]


def by_hand(code: int, array: np.ndarray, big_endian: str) -> bytes:
    """An IDX file built independently of cnnkit: magic, sizes, big-endian payload."""
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(big_endian).tobytes()


@pytest.mark.parametrize("code,big_endian", TYPES)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_matches_hand_built_and_reads_back(tmp_path, code, big_endian, suffix):
    rng = np.random.default_rng(code)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(np.dtype(big_endian).newbyteorder("="))
    path = write_idx(tmp_path / f"a{suffix}", array)
    raw = path.read_bytes()
    assert (gzip.decompress(raw) if suffix else raw) == by_hand(code, array, big_endian)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


@settings(max_examples=50, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    type_index=st.integers(0, len(TYPES) - 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_parse_hand_built_files(shape, type_index, seed):
    code, big_endian = TYPES[type_index]
    rng = np.random.default_rng(seed)
    array = rng.integers(-100, 100, size=shape).astype(np.dtype(big_endian).newbyteorder("="))
    parsed = parse_idx(by_hand(code, array, big_endian))
    assert parsed.shape == tuple(shape)
    np.testing.assert_array_equal(parsed, array)


def test_big_endian_int32_values_by_hand():
    data = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", 1, -2, 70000)
    np.testing.assert_array_equal(parse_idx(data), [1, -2, 70000])


def test_uint8_array_is_a_writable_view_of_a_bytearray():
    data = bytearray(by_hand(0x08, np.arange(6, dtype=np.uint8).reshape(2, 3), ">u1"))
    array = parse_idx(data)
    assert array.flags.writeable
    data[-1] = 99  # a view: no copy of the payload was made
    assert array[1, 2] == 99


def good_file() -> bytes:
    return by_hand(0x08, np.zeros((2, 3, 3), np.uint8), ">u1")  # 4 + 12 + 18 = 34 bytes


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\x00\x00", "shorter than the 4-byte magic"),
        (b"\x01\x00\x08\x01" + good_file()[4:], "magic number starts with 0x01 0x00"),
        (b"\x00\x00\x07\x03" + good_file()[4:], "unknown IDX dtype code 0x07"),
        (b"\x00\x00\x08\x00", "declares 0 dimensions"),
        (good_file()[:10], "truncated IDX header: 3 dimensions need 16 header bytes"),
        (good_file()[:-1], "truncated: the header declares shape (2, 3, 3) of uint8"),
        (good_file() + b"\x00\x00", "2 extra bytes after the 34 bytes"),
    ],
)
def test_malformed_files_are_refused_with_the_file_named(tmp_path, data, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DataError, match=r"bad-idx3-ubyte: ") as err:
        read_idx(path)
    assert message in str(err.value)


def test_truncated_gzip_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(good_file())[:-9])
    with pytest.raises(DataError, match="x.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_corrupt_gzip_is_refused(tmp_path):
    path = tmp_path / "x.gz"
    raw = bytearray(gzip.compress(good_file() * 50))
    raw[20:30] = b"\xff" * 10
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="x.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope: cannot read"):
        read_idx(tmp_path / "nope")


def test_writer_refuses_what_idx_cannot_store(tmp_path):
    with pytest.raises(DataError, match="IDX cannot store dtype int64"):
        write_idx(tmp_path / "a", np.zeros(3, np.int64))
    with pytest.raises(DataError, match="1 to 255 dimensions. Got 0"):
        write_idx(tmp_path / "a", np.array(5, np.uint8))
    assert not list(tmp_path.iterdir())


@needs_mnist
def test_real_mnist_test_images_match_an_independent_parse():
    path = SHARED_MNIST / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    magic, n, h, w = struct.unpack(">4I", raw[:16])
    assert magic == 0x00000803
    expected = np.frombuffer(raw[16:], np.uint8).reshape(n, h, w)  # (N, H, W)
    images = read_idx(path)
    assert images.shape == (10000, 28, 28)
    np.testing.assert_array_equal(images, expected)
