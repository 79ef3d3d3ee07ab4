"""The decode cache of image folders (`cnnkit.data.folder_cache`): a second load decodes
nothing and gives the same arrays; a changed file rebuilds it. Oracle: a load with the cache
off (every file decoded by Pillow)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from shapes_data import make_shapes

import cnnkit.imaging.images as images
from cnnkit.data.folder import load_image_folder


def no_decoding(*args: object, **kwargs: object) -> None:
    raise AssertionError("decoded an image although the cache holds it")


def same(a, b) -> None:
    for split in ("train", "test"):
        x, y = getattr(a, split), getattr(b, split)
        np.testing.assert_array_equal(np.asarray(x.images), np.asarray(y.images))
        np.testing.assert_array_equal(x.labels, y.labels)
    assert (a.image_size, a.channels, a.median_size, a.bad) == (
        b.image_size, b.channels, b.median_size, b.bad,
    )  # fmt: skip


@pytest.mark.parametrize("layout", ["stratified", "folders"])
def test_second_load_reads_the_cache(tmp_path: Path, monkeypatch, layout: str) -> None:
    root = tmp_path / "shapes"
    if layout == "folders":
        make_shapes(root / "train", per_class=6)
        make_shapes(root / "test", per_class=3, seed=2, corrupt=False)
    else:
        make_shapes(root, per_class=8)
    cache = tmp_path / "cache"
    fresh = load_image_folder(root, cache=False)
    first = load_image_folder(root, cache_dir=cache)
    same(first, fresh)
    entries = [p for p in cache.iterdir()]
    assert len(entries) == 1 and not any(".tmp-" in p.name for p in entries)
    monkeypatch.setattr(images, "read_image", no_decoding)
    second = load_image_folder(root, cache_dir=cache)
    same(second, fresh)
    assert len(second.bad) == 1  # the corrupt file is still named from the cache
    if layout == "folders":
        assert isinstance(second.train.images, np.memmap)  # streamed from disk
    # other settings are another entry: decoding again (refused here)
    with pytest.raises(AssertionError, match="decoded an image"):
        load_image_folder(root, cache_dir=cache, image_size=20)


def test_a_changed_file_rebuilds(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "shapes"
    make_shapes(root, per_class=6, corrupt=False)
    cache = tmp_path / "cache"
    load_image_folder(root, cache_dir=cache)
    old = {p.name for p in cache.iterdir()}
    target = root / "circle" / "001.png"
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(target)  # white square
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    calls = []
    real = images.read_image
    monkeypatch.setattr(images, "read_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    rebuilt = load_image_folder(root, cache_dir=cache)
    assert len(calls) == 18  # every file decoded again
    same(rebuilt, load_image_folder(root, cache=False))
    new = {p.name for p in cache.iterdir()}
    assert len(new) == 1 and new != old  # the stale entry is gone
    # touching alone (same bytes, new mtime) rebuilds too
    calls.clear()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    load_image_folder(root, cache_dir=cache)
    assert len(calls) == 18


def test_unwritable_cache_still_loads(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    make_shapes(root, per_class=4, corrupt=False)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    data = load_image_folder(root, cache_dir=blocker / "sub")
    same(data, load_image_folder(root, cache=False))


def test_the_cache_keeps_to_its_size_by_removing_the_least_recently_used(tmp_path: Path) -> None:
    """Three folders' entries of 100 kB each under a 250 kB limit: writing the third removes
    the entry used least recently (B, since A was read after it), never the one just written."""
    import time

    from cnnkit.data.folder_cache import read_cache, write_cache

    x = np.zeros((100, 1000), dtype=np.uint8)  # 100,000 bytes
    arrays = {"train": (x, np.zeros(100, dtype=np.int64))}

    def entry(name: str) -> Path:
        return tmp_path / f"{name * 16}-{'0' * 32}"  # one root each: <root hash>-<key>

    def sizes() -> int:
        return sum(f.stat().st_size for d in tmp_path.iterdir() for f in d.iterdir())

    write_cache(entry("a"), {}, arrays, max_bytes=250_000)
    time.sleep(0.01)
    write_cache(entry("b"), {}, arrays, max_bytes=250_000)
    time.sleep(0.01)
    read_cache(entry("a"))  # A used after B was written
    time.sleep(0.01)
    write_cache(entry("c"), {}, arrays, max_bytes=250_000)
    assert sorted(p.name[0] for p in tmp_path.iterdir()) == ["a", "c"]
    assert sizes() <= 250_000
    np.testing.assert_array_equal(read_cache(entry("c"))[1]["train"][0], x)
    write_cache(entry("d"), {}, arrays, max_bytes=50_000)  # too big alone: still written
    assert [p.name[0] for p in tmp_path.iterdir()] == ["d"]
