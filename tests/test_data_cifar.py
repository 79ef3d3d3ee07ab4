"""CIFAR-10 python-format batches: layout, the restricted unpickler, loading and fetching."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import pickletools
import tarfile
from pathlib import Path

import numpy as np
import pytest

from cnnkit.data import DATASETS, DataError, cifar, fetch, load_dataset
from cnnkit.data.registry import FileSpec

BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def test_rows_hold_red_then_green_then_blue_planes():
    # oracle: the layout as the CIFAR-10 page defines it, pickled by Python 3's own pickler
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    data = pickle.dumps({b"data": rows, b"labels": [3, 1, 4, 1]}, protocol=4)
    images, labels = cifar.parse_batch(data)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [3, 1, 4, 1] and labels.dtype == np.int64
    for n, y, x, c in [(0, 0, 0, 0), (1, 0, 1, 1), (2, 1, 0, 2), (3, 31, 31, 2), (2, 17, 5, 1)]:
        assert images[n, y, x, c] == rows[n, c * 1024 + y * 32 + x]


def test_write_then_read_round_trips():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 6)
    back, back_labels = cifar.parse_batch(cifar.batch_bytes(images, labels))
    np.testing.assert_array_equal(back, images)
    np.testing.assert_array_equal(back_labels, labels)


def test_written_batches_look_like_the_python2_originals():
    data = cifar.batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), [0, 1])
    ops = list(pickletools.genops(data))
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_ = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    assert globals_ == ["numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"]
    names = {op.name for op, _, _ in ops}
    assert "BINUNICODE" not in names and "SHORT_BINBYTES" not in names  # py2 str only
    assert {"SHORT_BINSTRING", "BINSTRING"} <= names
    assert sorted(pickle.loads(data, encoding="bytes")) == [
        b"batch_label",
        b"data",
        b"filenames",
        b"labels",
    ]


class RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Evaluates:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("payload", ["system", "eval"])
def test_pickles_that_call_functions_are_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = RunsACommand(marker) if payload == "system" else Evaluates()
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": evil, b"labels": []}, protocol=4))
    with pytest.raises(DataError, match=r"data_batch_1: refusing to unpickle \w+\.(system|eval)"):
        cifar.read_batch(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "batch,message",
    [
        ([1, 2], "expected a dict with b'data' and b'labels'. Got list instead"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "Got [b'data'] instead"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 0]}, "uint8 array. Got"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 0]}, "3072 bytes. Got 3000"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 images but 1 labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "lie in 0..9. Got 0..10"),
    ],
)
def test_malformed_batches_are_refused(batch, message):
    with pytest.raises(DataError) as err:
        cifar.parse_batch(pickle.dumps(batch, protocol=4), "some_batch")
    assert str(err.value).startswith("some_batch: ") and message in str(err.value)


def test_truncated_pickle_is_refused():
    data = cifar.batch_bytes(np.zeros((2, 32, 32, 3), np.uint8), [0, 1])
    with pytest.raises(DataError, match="test_batch: not a readable CIFAR-10 pickle"):
        cifar.parse_batch(data[: len(data) // 2], "test_batch")


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """CIFAR-10-format files (7 images per batch) in a source folder, registered with their
    MD5s in place of the real ones."""
    rng = np.random.default_rng(3)
    source = tmp_path / "cifar-src"
    source.mkdir()
    content = {}
    for i, name in enumerate(BATCHES):
        images = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 7)
        cifar.write_batch(source / name, images, labels, f"batch {i}")
        content[name] = (images, labels)
    cifar.write_meta(source / "batches.meta")
    files = tuple(
        FileSpec(f.name, "md5", hashlib.md5((source / f.name).read_bytes()).hexdigest())
        for f in DATASETS["cifar10"].files
    )
    monkeypatch.setitem(
        DATASETS, "cifar10", dataclasses.replace(DATASETS["cifar10"], files=files, mirrors=())
    )
    return source, content


def test_load_cifar10_train_concatenates_batches_in_order(tiny_cifar, tmp_path):
    source, content = tiny_cifar
    fetch("cifar10", data_dir=tmp_path / "d", source_dir=source, progress=False)
    train = load_dataset("cifar10", "train", data_dir=tmp_path / "d")
    assert train.images.shape == (35, 32, 32, 3) and train.labels.dtype == np.int64
    np.testing.assert_array_equal(
        train.images, np.concatenate([content[b][0] for b in BATCHES[:5]])
    )
    np.testing.assert_array_equal(
        train.labels, np.concatenate([content[b][1] for b in BATCHES[:5]])
    )
    assert train.classes == cifar.CLASSES
    test = load_dataset("cifar10", "test", data_dir=tmp_path / "d")
    np.testing.assert_array_equal(test.images, content["test_batch"][0])


def test_cifar10_from_the_archive_or_its_folder(tiny_cifar, tmp_path):
    source, _ = tiny_cifar
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
    result = fetch("cifar10", data_dir=tmp_path / "a", source_dir=archive_dir, progress=False)
    assert len(result.fetched) == 7
    unpacked = tmp_path / "unpacked"
    with tarfile.open(archive_dir / "cifar-10-python.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    fetch("cifar10", data_dir=tmp_path / "b", source_dir=unpacked, progress=False)
    for root in ("a", "b"):
        assert len(load_dataset("cifar10", "test", data_dir=tmp_path / root)) == 7


def test_a_tampered_batch_fails_its_checksum(tiny_cifar, tmp_path):
    source, _ = tiny_cifar
    fetch("cifar10", data_dir=tmp_path, source_dir=source, progress=False)
    path = tmp_path / "cifar10" / "data_batch_3"
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="data_batch_3: checksum mismatch: md5"):
        load_dataset("cifar10", "train", data_dir=tmp_path)


def test_archive_source_checks_the_archive_md5(tiny_cifar, tmp_path):
    from cnnkit.data.fetching import ArchiveSource, SourceError

    source, _ = tiny_cifar
    archive = tmp_path / "cifar-10-python.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
    archive.write_bytes(buffer.getvalue())
    md5 = hashlib.md5(buffer.getvalue()).hexdigest()
    spec = DATASETS["cifar10"]
    staging = tmp_path / "staging"
    staging.mkdir()
    with pytest.raises(SourceError, match="archive md5"):
        ArchiveSource(archive.as_uri(), "0" * 32).provide(spec, ["test_batch"], staging, False)
    found = ArchiveSource(archive.as_uri(), md5).provide(spec, ["test_batch"], staging, False)
    assert found == {"test_batch": staging / "test_batch"}
