"""Plain-text rendering of tables (`cnnkit summary`, `cnnkit rf`). No torch here."""

from __future__ import annotations

from collections.abc import Sequence


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


def fmt_rf(rf: object) -> tuple[str, str, str]:
    """(size, jump, start) cells for a `ReceptiveField`."""
    status = getattr(rf, "status", "unknown")
    if status != "local":
        label = {
            "whole-input": "whole input",
            "not-aligned": "not aligned",
            "none": "-",
        }.get(status, "?")
        return (label, "", "")
    size, jump, start = rf.size, rf.jump, rf.start  # type: ignore[attr-defined]
    approx = "≈" if rf.approximate else ""  # type: ignore[attr-defined]
    cells = [
        approx + fmt_pair([_round(v) for v in size]),
        fmt_axes([_round(v) for v in jump]),
        fmt_axes([_round(v) for v in start]),
    ]
    return (cells[0], cells[1], cells[2])


def _round(value: float) -> float:
    return round(float(value), 3)


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.2f} KiB"


def render_summary(s: object) -> str:
    """The `cnnkit summary` table: one row per layer, then totals. Column sums = totals."""
    headers = ["Layer", "Type", "Output shape", "Param #", "MACs", "RF", "Jump", "Start"]
    rows = []
    for r in s.rows:  # type: ignore[attr-defined]
        indent = "  " * max(r.depth - 1, 0)
        shape = "(" + ", ".join(str(d) for d in r.output_shape) + ")"
        rows.append(
            [
                indent + r.name,
                r.type,
                shape,
                fmt_number(r.params),
                fmt_number(r.macs),
                *fmt_rf(r.rf),
            ]
        )
    footer = [
        ["Total", "", "", fmt_number(s.total_params), fmt_number(s.total_macs), "", "", ""],  # type: ignore[attr-defined]
    ]
    table = render_table(headers, rows, align="lllrrrrr", footer=footer)
    lines = [
        f"{s.model} on input {tuple(s.input_shape)}",  # type: ignore[attr-defined]
        "",
        table,
        "",
        f"Total params:         {s.total_params:,}",  # type: ignore[attr-defined]
        f"Trainable params:     {s.trainable_params:,}",  # type: ignore[attr-defined]
        f"Non-trainable params: {s.frozen_params:,}",  # type: ignore[attr-defined]
        f"Total MACs:           {s.total_macs:,}",  # type: ignore[attr-defined]
        f"Parameter memory:     {fmt_bytes(s.param_bytes)}",  # type: ignore[attr-defined]
        f"Activation memory:    {fmt_bytes(s.activation_bytes)} (outputs of one forward pass)",  # type: ignore[attr-defined]
        f"Input memory:         {fmt_bytes(s.input_bytes)}",  # type: ignore[attr-defined]
        "",
        "RF: receptive-field size in input pixels (H×W); Jump: input pixels between adjacent "
        "units; Start: input coordinate of the first unit's centre. 'whole input': every unit "
        "sees the whole input (after flatten, linear, global pooling). ≈: approximate "
        "(upsampling, transposed conv: largest over units).",
    ]
    lines += [f"note: {n}" for n in s.notes]  # type: ignore[attr-defined]
    return "\n".join(lines)
