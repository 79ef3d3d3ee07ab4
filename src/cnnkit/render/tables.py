"""Plain-text rendering of tables (`cnnkit summary`, `cnnkit rf`). No torch here."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cnnkit.analysis.summary.core import Summary
    from cnnkit.analysis.summary.rf import ReceptiveField


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: str | None = None,
    footer: Sequence[Sequence[str]] = (),
) -> str:
    """Columns padded to their widest cell; `align` has one 'l' or 'r' per column.

    A rule separates the header from the rows, and the rows from the `footer` rows (totals).
    """
    n = len(headers)
    align = align or "l" * n
    if len(align) != n or any(len(r) != n for r in [*rows, *footer]):
        raise ValueError("render_table: every row needs one cell per header")
    widths = [max(len(str(r[i])) for r in [headers, *rows, *footer]) for i in range(n)]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).rjust(w) if a == "r" else str(c).ljust(w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(out).rstrip()

    rule = "-" * (sum(widths) + 2 * (n - 1))
    lines = [line(headers), rule, *(line(r) for r in rows)]
    if footer:
        lines += [rule, *(line(r) for r in footer)]
    return "\n".join(lines)


def fmt_pair(values: Sequence[object], sep: str = "×") -> str:
    """`(3, 5)` -> `3×5` (sizes and shapes)."""
    return sep.join(fmt_number(v) for v in values)


def fmt_axes(values: Sequence[object]) -> str:
    """One value when both axes agree (`2`), else `H,W` (`1,2`)."""
    if len(values) == 2 and values[0] == values[1]:
        return fmt_number(values[0])
    return ",".join(fmt_number(v) for v in values)


def fmt_number(value: object) -> str:
    """Ints as ints, floats without a useless `.0` (`0.5`, `-1`), thousands with commas."""
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


# --------------------------------------------------------------------------- cnnkit summary

LEGEND = (
    "RF: receptive-field size in input pixels (H×W); Jump: input pixels between adjacent units; "
    "Start: input coordinate of the first unit's centre (pixel i is centred at i). "
    "'whole input': every unit depends on the whole input (flatten, linear, global pooling). "
    "≈: approximate (transposed conv, upsampling: the largest field over the units). "
    "MACs: multiply-accumulates by the rules of docs/summary.md."
)


def fmt_rf(rf: ReceptiveField) -> tuple[str, str, str]:
    """(size, jump, start) cells for a receptive field."""
    if rf.status != "local" or rf.size is None or rf.jump is None or rf.start is None:
        label = {"whole-input": "whole input", "not-aligned": "not aligned", "none": "-"}
        return (label.get(rf.status, "?"), "", "")
    return (
        ("≈" if rf.approximate else "") + fmt_pair([_round(v) for v in rf.size]),
        fmt_axes([_round(v) for v in rf.jump]),
        fmt_axes([_round(v) for v in rf.start]),
    )


def _round(value: float) -> float:
    return round(float(value), 3)


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.2f} KiB"


def render_summary(s: Summary) -> str:
    """The `cnnkit summary` table: one row per layer, then totals. Column sums = totals."""
    headers = ["Layer", "Type", "Output shape", "Param #", "MACs", "RF", "Jump", "Start"]
    rows = []
    for r in s.rows:
        indent = "  " * max(r.depth - 1, 0)
        shape = "(" + ", ".join(str(d) for d in r.output_shape) + ")"
        rf = fmt_rf(r.rf)
        rows.append([indent + r.name, r.type, shape, fmt_number(r.params), fmt_number(r.macs), *rf])
    total = ["Total", "", "", fmt_number(s.total_params), fmt_number(s.total_macs), "", "", ""]
    table = render_table(headers, rows, align="lllrrrrr", footer=[total])
    lines = [
        f"{s.model} on input {tuple(s.input_shape)}",
        "",
        table,
        "",
        f"Total params:         {s.total_params:,}",
        f"Trainable params:     {s.trainable_params:,}",
        f"Non-trainable params: {s.frozen_params:,}",
        f"Total MACs:           {s.total_macs:,}",
        f"Parameter memory:     {fmt_bytes(s.param_bytes)}",
        f"Activation memory:    {fmt_bytes(s.activation_bytes)} (outputs of one forward pass)",
        f"Input memory:         {fmt_bytes(s.input_bytes)}",
        "",
        *textwrap.wrap(LEGEND, width=100),
    ]
    lines += [f"note: {n}" for n in s.notes]
    return "\n".join(lines)
