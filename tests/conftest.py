"""Shared fixtures. Tests never need the network."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
# Tests assert on English output: a developer's LANG=ja_JP.UTF-8 must not change it (tests of
# the Japanese output pass --lang ja). Subprocesses inherit it too.
os.environ["CNNKIT_LANG"] = "en"
# The shared MNIST copy beside the checkout (development and CI convenience only).
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def _mnist_absent() -> str | None:
    """The one presence check of the shared MNIST copy: None, or why tests needing it skip."""
    missing = [name for name in MNIST_FILES if not (SHARED_MNIST / name).is_file()]
    if not missing:
        return None
    return f"the shared MNIST copy is not at {SHARED_MNIST} (missing {', '.join(missing)})"


MNIST_ABSENT = _mnist_absent()
# `@needs_mnist` on a test that reads the shared copy; fixtures below skip the same way.
needs_mnist = pytest.mark.skipif(MNIST_ABSENT is not None, reason=MNIST_ABSENT or "")
MNIST_NORMALIZE = (0.1307, 0.3081)  # the chapter's (mean, std)


@pytest.fixture(scope="session")
def shared_mnist() -> Path:
    """The shared MNIST folder (four .gz files), read-only: a `--from` source. Skips if absent."""
    if MNIST_ABSENT is not None:
        pytest.skip(MNIST_ABSENT)
    return SHARED_MNIST


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory: pytest.TempPathFactory, shared_mnist: Path) -> Path:
    """A cnnkit data dir holding MNIST, fetched (and verified) once from the shared copy.

    Shared by the whole session: read it, never change it (copy it for a test that damages
    files)."""
    from cnnkit.data import fetch

    root = tmp_path_factory.mktemp("mnist-data")
    fetch("mnist", data_dir=root, source_dir=shared_mnist, progress=False)
    return root


def make_checkpoint(
    path: Path,
    *,
    model_name: str = "simple-cnn",
    seed: int = 0,
    config: dict[str, Any] | None = None,
    epoch: int = 0,
    history: list[dict[str, Any]] | None = None,
) -> Path:
    """A real checkpoint of the registry model `model_name`, seeded, untrained; `config` is
    merged over {"dataset": "mnist", "normalize": MNIST_NORMALIZE}."""
    import torch

    from cnnkit.models.checkpoint import save_checkpoint
    from cnnkit.models.registry import create_model

    torch.manual_seed(seed)
    model = create_model(model_name)
    return save_checkpoint(
        path,
        model_name=model_name,
        model_args={},
        state_dict=model.state_dict(),
        config={"dataset": "mnist", "normalize": list(MNIST_NORMALIZE), **(config or {})},
        optimizer_state={},
        epoch=epoch,
        rng_state={},
        history=history or [],
    )


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`<run folder>/checkpoint.pt`: an untrained SimpleCNN (torch seed 0), shared, read-only."""
    return make_checkpoint(tmp_path_factory.mktemp("run") / "checkpoint.pt")


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real `cnnkit` command in a subprocess and capture its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cnnkit", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli(tmp_path: Path):
    """`cli("size", "28", ...)` runs cnnkit in a temporary working directory."""

    def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
        return run_cli(*args, cwd=tmp_path, env=env, timeout=timeout)

    return _run


@pytest.fixture(autouse=True, scope="session")
def _data_cache_in_a_temporary_folder(tmp_path_factory):
    """Tests (and the commands they start) never write into the user's data cache: the folder
    decode cache and any default data dir go to a temporary CNNKIT_DATA for the session."""
    old = os.environ.get("CNNKIT_DATA")
    os.environ["CNNKIT_DATA"] = str(tmp_path_factory.mktemp("cnnkit-data"))
    yield
    if old is None:
        os.environ.pop("CNNKIT_DATA", None)
    else:
        os.environ["CNNKIT_DATA"] = old


def free_port() -> int:
    """A port nothing listens on now, on the loopback host."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`cnnkit serve ARGS` as a real process (unbuffered output, one thread), pipes open."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cnnkit", "serve", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def lines_until_url(proc: subprocess.Popen[str], timeout: float = 60) -> list[str]:
    """The server's stdout lines up to the one with its URL (or its end), within `timeout`."""
    import time

    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "http://" in line or not line:
            break
    return lines


# Japanese in a text: kana and the common kanji
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
# the same with rarer kanji and full-width forms (（）、：…), for "is any of it Japanese"
JAPANESE_OR_FULL_WIDTH = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")
