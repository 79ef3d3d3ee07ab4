"""Habits of the package itself: one version, type information shipped, tooling configured."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import cnnkit

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_written_once():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "cnnkit.__version__"
    # the installed metadata (what pip and --version report) says the same
    assert importlib.metadata.version("cnnkit") == cnnkit.__version__


def test_py_typed_is_shipped():
    assert (ROOT / "src" / "cnnkit" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["cnnkit"]


def test_mypy_requires_annotations_and_precommit_runs_the_linters():
    assert PYPROJECT["tool"]["mypy"]["disallow_untyped_defs"] is True
    config = (ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    for hook in ("ruff check", "ruff format --check", "mypy src/cnnkit"):
        assert hook in config, hook


def test_changelog_has_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {cnnkit.__version__}" in changelog or "## Unreleased" in changelog
