"""Typed exceptions. The CLI prints any CnnkitError as one line and exits with code 2."""

from __future__ import annotations

__all__ = ["CnnkitError", "DataError", "ShapeError"]


class CnnkitError(ValueError):
    """A user-facing error: bad argument, bad file, impossible configuration."""


class ShapeError(CnnkitError):
    """Shapes that cannot work together (input vs weight, kernel larger than input...)."""


class DataError(CnnkitError):
    """A dataset that is missing, truncated, corrupt or fails its checksum."""
