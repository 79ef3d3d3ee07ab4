"""Shared fixtures. Tests never need the network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The shared MNIST copy beside the checkout (development and CI convenience only).
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


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
