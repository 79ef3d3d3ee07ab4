"""The decode cache of image folders: decoded, resized images as memory-mapped .npy files.

    <data dir>/folders/<root hash>-<key>/{meta.json, <split>_x.npy, <split>_y.npy}

`<data dir>` is `cnnkit.data.registry.data_dir` ($CNNKIT_DATA, else ~/.cache/cnnkit). The key
is a SHA-256 over the file list (path relative to the root, label, size in bytes, mtime in
ns), the settings (image size and channels as asked, the bad-image policy) and a format
version; a changed, added or removed file gives another key, so the old entry is never read
again (it is removed when the new one is written). An entry is written in a temporary folder
beside it and renamed into place, so a reader sees a whole entry or none.

The cache holds at most `MAX_CACHE_BYTES` (2 GiB): after a write, the entries of other
folders that were used least recently (each read marks its entry as used) are removed until
the cache fits; the entry just written is always kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_VERSION", "MAX_CACHE_BYTES", "cache_entry", "read_cache", "write_cache"]

CACHE_VERSION = 1
MAX_CACHE_BYTES = 2 * 1024**3


def cache_entry(
    root: Path,
    files: dict[str, list[tuple[Path, int]]],
    settings: dict[str, Any],
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """The folder of the cache entry for these files and settings (it may not exist)."""
    from cnnkit.data.registry import data_dir

    listing = []
    for split, pairs in files.items():
        for path, label in pairs:
            st = path.stat()
            rel = path.relative_to(root).as_posix()
            listing.append([split, rel, label, st.st_size, st.st_mtime_ns])
    blob = json.dumps({"v": CACHE_VERSION, "files": listing, "settings": settings})
    key = hashlib.sha256(blob.encode()).hexdigest()[:32]
    where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    base = Path(cache_dir) if cache_dir is not None else data_dir(None) / "folders"
    return base / f"{where}-{key}"


def read_cache(entry: Path) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(meta, {split: (images memory-mapped read-only, labels)}) of an entry; KeyError-free:
    raises FileNotFoundError when the entry is missing or incomplete."""
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(meta_path)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with contextlib.suppress(OSError):  # used now: the last entry the size limit removes
        os.utime(meta_path)
    arrays = {
        s: (np.load(entry / f"{s}_x.npy", mmap_mode="r"), np.load(entry / f"{s}_y.npy"))
        for s in meta["splits"]
    }
    return meta, arrays


def write_cache(
    entry: Path,
    meta: dict[str, Any],
    arrays: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    max_bytes: int = MAX_CACHE_BYTES,
) -> None:
    """Write an entry atomically (temporary folder, then rename), remove the older entries
    of the same root, then the least recently used others while the cache holds more than
    `max_bytes`. A failure to write (read-only disk, full disk) leaves no entry."""
    from numpy.lib.format import open_memmap

    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".tmp-", dir=entry.parent))
    try:
        for s, (x, y) in arrays.items():
            out = open_memmap(tmp / f"{s}_x.npy", mode="w+", dtype=x.dtype, shape=x.shape)
            out[...] = x
            out.flush()
            del out
            np.save(tmp / f"{s}_y.npy", y)
        (tmp / "meta.json").write_text(
            json.dumps({**meta, "splits": list(arrays)}), encoding="utf-8"
        )
        try:
            os.rename(tmp, entry)
        except OSError:  # another process wrote the same entry first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prefix = entry.name.split("-")[0] + "-"
    for old in entry.parent.iterdir():
        if old.name.startswith(prefix) and old.name != entry.name and ".tmp-" not in old.name:
            shutil.rmtree(old, ignore_errors=True)
    _fit(entry, max_bytes)


def _fit(keep: Path, max_bytes: int) -> None:
    """Remove the least recently used entries beside `keep` until the cache fits."""
    entries = []
    for folder in keep.parent.iterdir():
        if ".tmp-" in folder.name or not (folder / "meta.json").is_file():
            continue  # a write in progress, or not an entry
        try:
            size = sum(f.stat().st_size for f in folder.iterdir())
            used = (folder / "meta.json").stat().st_mtime_ns
        except OSError:  # removed meanwhile by another process
            continue
        entries.append((used, size, folder))
    total = sum(size for _, size, _ in entries)
    for _used, size, folder in sorted(entries):  # least recently used first
        if total <= max_bytes:
            break
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)
            total -= size
