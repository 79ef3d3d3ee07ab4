"""Argument checks, one module for the whole package, and the one error template they share.

The rule for integers, everywhere in cnnkit: Python ints and NumPy integers (`np.int64(3)`) are
ints; `bool` is not (`True` is not a stride) and neither is any float, even `3.0` (torch refuses
`nn.Conv2d(1, 1, 3.0)` too). A "pair" is an int (used for both axes) or a sequence of exactly two
ints; strings are never sequences here. A flag (`bias=`) must be a bool: `"no"` is not False.
Pure Python (NumPy is recognised, not imported), so the calculators stay light.

Every refusal reads as scikit-learn's template (see STYLE.md):

    The 'stride' parameter of conv2d must be a positive int or pair of ints. Got 0 instead.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from cnnkit.core.errors import CnnkitError

Pair = tuple[int, int]

__all__ = [
    "Pair",
    "bad_parameter",
    "check_bool",
    "check_int",
    "check_pair",
    "is_int",
    "non_negative_int",
    "non_negative_pair",
    "pair",
    "positive_int",
    "positive_pair",
]


def is_int(value: object) -> bool:
    """True for Python and NumPy integers; False for bools, floats and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def bad_parameter(func: str | None, name: str, allowed: str, got: object) -> CnnkitError:
    """The error (to raise) for parameter `name` of `func` that is not `allowed`.

    >>> str(bad_parameter("conv2d", "stride", "a positive int or pair of ints", 0))
    "The 'stride' parameter of conv2d must be a positive int or pair of ints. Got 0 instead."
    """
    if func:
        return CnnkitError.from_template(
            "The {name!r} parameter of {func} must be {allowed}. Got {got!r} instead.",
            name=name, func=func, allowed=allowed, got=got,
        )  # fmt: skip
    return CnnkitError.from_template(
        "The {name!r} parameter must be {allowed}. Got {got!r} instead.",
        name=name, allowed=allowed, got=got,
    )  # fmt: skip


_BOUND_WORD = {1: "positive ", 0: "non-negative "}


def _int_words(minimum: int | None, maximum: int | None) -> str:
    if maximum is not None:
        return (
            f"an int from {minimum} to {maximum}" if minimum is not None else f"an int <= {maximum}"
        )
    if minimum in _BOUND_WORD:
        return "a " + _BOUND_WORD[minimum] + "int"
    return "an int" if minimum is None else f"an int >= {minimum}"


def check_int(
    value: Any,
    name: str,
    *,
    func: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """`value` as a Python int, refused unless it is an int within [`minimum`, `maximum`]."""
    if (
        not is_int(value)
        or (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
    ):
        raise bad_parameter(func, name, _int_words(minimum, maximum), value)
    return int(value)


def positive_int(value: Any, name: str, *, func: str | None = None) -> int:
    """An int >= 1."""
    return check_int(value, name, func=func, minimum=1)


def non_negative_int(value: Any, name: str, *, func: str | None = None) -> int:
    """An int >= 0."""
    return check_int(value, name, func=func, minimum=0)


def check_bool(value: Any, name: str, *, func: str | None = None) -> bool:
    """`True` / `False` (or NumPy's); `"no"`, `0` and `None` are refused, not read as False."""
    numpy_bool = type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_")
    if not (isinstance(value, bool) or numpy_bool):
        raise bad_parameter(func, name, "a bool (True or False)", value)
    return bool(value)


def _as_pair(value: Any) -> Pair | None:
    if is_int(value):
        return (int(value), int(value))
    two = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    if two and all(is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    return None


def check_pair(
    value: Any, name: str, *, func: str | None = None, minimum: int | None = None
) -> Pair:
    """`3` -> `(3, 3)`, `(3, 5)` -> `(3, 5)`, both entries >= `minimum` when it is given."""
    p = _as_pair(value)
    if p is None or (minimum is not None and min(p) < minimum):
        words = _BOUND_WORD.get(minimum, "") if minimum is not None else ""
        if minimum is not None and minimum not in _BOUND_WORD:
            allowed = f"an int >= {minimum} or pair of such ints"
        elif words:
            allowed = f"a {words}int or pair of ints"
        else:
            allowed = "an int or a pair of ints"
        raise bad_parameter(func, name, allowed, value)
    return p


def pair(value: Any, name: str, *, func: str | None = None) -> Pair:
    """`3` -> `(3, 3)`, `(3, 5)` -> `(3, 5)`; anything else (bool, float, str...) is refused.

    Only the type is checked here; `positive_pair` / `non_negative_pair` also check the range.
    """
    return check_pair(value, name, func=func)


def positive_pair(value: Any, name: str, *, func: str | None = None) -> Pair:
    """A pair of ints >= 1."""
    return check_pair(value, name, func=func, minimum=1)


def non_negative_pair(value: Any, name: str, *, func: str | None = None) -> Pair:
    """A pair of ints >= 0."""
    return check_pair(value, name, func=func, minimum=0)
