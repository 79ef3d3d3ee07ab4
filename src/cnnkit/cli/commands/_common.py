"""Small helpers shared by the command modules: argument types and output."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import gettext as _

__all__ = [
    "add_device_flag",
    "state_device",
    "add_json_flag",
    "non_negative_int",
    "positive_int",
    "print_json",
    "refuse_overwriting_input",
    "to_jsonable",
]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON instead of a table"
    )


def add_device_flag(parser: argparse.ArgumentParser, *, default: str | None = "auto") -> None:
    """--device auto|cpu|cuda|mps (`cnnkit.models.device.resolve_device`: auto is CUDA, then
    MPS, then the CPU; a device asked for that is not there is one line, exit 2)."""
    from cnnkit.models.device import DEVICES

    shown = "auto: CUDA, then MPS, then CPU"
    if default is None:  # train: None lets a resumed run keep its own
        shown += "; on --resume: the run's"
    elif default != "auto":
        shown = default
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default=default,
        help=f"where the model runs (default: {shown})",
    )


def state_device(name: str, device: str, *, stderr: bool = False) -> None:
    """Print 'device: cuda (auto)': `device` resolved from --device `name`, to stderr where
    stdout is machine-readable. Commands resolve --device first (a device asked for that is
    not there is one line, exit 2) and state it once their inputs have been read, so that a
    refused input stays one line on stderr."""
    line = _("device: {device} (auto)") if name == "auto" else _("device: {device}")
    print(line.format(device=device), file=sys.stderr if stderr else sys.stdout, flush=True)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples and NumPy scalars/arrays -> plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # NumPy scalar or array
        return obj.tolist()
    return obj


def print_json(obj: Any) -> None:
    json.dump(to_jsonable(obj), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _int_at_least(text: str, minimum: int, words: str) -> int:
    shown = text if len(text) <= 40 else f"{text[:20]}...({len(text):,} characters)"
    try:
        value = int(text)
    except ValueError:  # also more than 4,300 digits, which Python will not read
        raise argparse.ArgumentTypeError(f"expected {words}, got {shown!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse turns the error into a usage line naming the
    flag: "argument --epochs: expected a positive integer, got 0")."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def refuse_overwriting_input(image: str | None, output: str) -> None:
    """The output must not be the input image itself (or a link to it): that would replace it."""
    if (
        image is not None
        and Path(output).exists()
        and Path(image).exists()
        and Path(output).samefile(image)
    ):
        raise CnnkitError.from_template(
            (
                "The '-o/--output' option must not be the input image. Got {output!r}, "
                "which is {image!r}; write the result to another file."
            ),
            output=output,
            image=image,
        )
