"""Typed exceptions. The CLI prints any CnnkitError as one line and exits with code 2."""

from __future__ import annotations

from typing import Self

__all__ = ["CnnkitError", "DataError", "ShapeError"]


class CnnkitError(ValueError):
    """A user-facing error: bad argument, bad file, impossible configuration.

    The message is one English line. An error made by `from_template` also keeps its template
    and fields, so that a front end can word it in the reader's language (the CLI does,
    `cnnkit.cli.translate.error_message`); `str(e)` is always the English line.
    """

    template: str | None = None
    fields: dict[str, object] | None = None

    @classmethod
    def from_template(cls, template: str, **fields: object) -> Self:
        """`cls(template.format(**fields))`, remembering the template and the fields."""
        err = cls(template.format(**fields))
        err.template, err.fields = template, dict(fields)
        return err


class ShapeError(CnnkitError):
    """Shapes that cannot work together (input vs weight, kernel larger than input...)."""


class DataError(CnnkitError):
    """A dataset that is missing, truncated, corrupt or fails its checksum."""
