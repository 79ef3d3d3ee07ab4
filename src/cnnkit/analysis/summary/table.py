"""The summary as a table of cells, and its text, Markdown, HTML and CSV spellings.

`render.tables.render_summary` prints `summary_text`; `Summary._repr_html_` (Jupyter) shows
`summary_html`: the same cells. No torch here.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from cnnkit.core.tables import (
    Table,
    csv_table,
    fmt_axes,
    fmt_number,
    fmt_pair,
    html_table,
    markdown_table,
    render_table,
)

if TYPE_CHECKING:
    from cnnkit.analysis.summary.rf import ReceptiveField

# `Summary` and `LayerRow` (core.py) are typed Any here: core.py imports this module for
# `Summary._repr_html_`, and the layer test forbids the cycle even under TYPE_CHECKING.
Summary = Any
LayerRow = Any

__all__ = [
    "LEGEND",
    "fmt_bytes",
    "fmt_rf",
    "summary_csv",
    "summary_html",
    "summary_markdown",
    "summary_table",
    "summary_text",
    "summary_title",
]

LEGEND = (
    "RF: receptive-field size in input pixels (H×W); Jump: input pixels between adjacent units; "
    "Start: input coordinate of the first unit's centre (pixel i is centred at i). "
    "'whole input': every unit depends on the whole input (flatten, linear, global pooling). "
    "≈: approximate (transposed conv, upsampling: the largest field over the units). "
    "MACs: multiply-accumulates by the rules of docs/summary.md."
)
_LABELS = {
    "whole-input": "whole input",
    "not-aligned": "not aligned",
    "none": "-",
    "not-spatial": "n/a",
}


def _round(value: float) -> float:
    return round(float(value), 3)


def fmt_rf(rf: ReceptiveField) -> tuple[str, str, str]:
    """(size, jump, start) cells for a receptive field."""
    if rf.status != "local" or rf.size is None or rf.jump is None or rf.start is None:
        return (_LABELS.get(rf.status, "?"), "", "")
    return (
        ("≈" if rf.approximate else "") + fmt_pair([_round(v) for v in rf.size]),
        fmt_axes([_round(v) for v in rf.jump]),
        fmt_axes([_round(v) for v in rf.start]),
    )


def _rf_cells(row: LayerRow) -> list[str]:
    """One input: its (size, jump, start). Several: `name: value` for each input it uses."""
    if not row.rfs:
        return list(fmt_rf(row.rf))
    per = {name: fmt_rf(rf) for name, rf in row.rfs.items()}
    return [
        "; ".join(f"{name}: {cells[i]}" for name, cells in per.items() if cells[i] or i == 0)
        for i in range(3)
    ]


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.2f} KiB"


def _macs_total(s: Summary) -> str:
    return fmt_number(s.total_macs) if s.macs_complete else "≥" + fmt_number(s.total_macs)


def summary_title(s: Summary) -> str:
    if len(s.inputs) <= 1 and (not s.inputs or s.inputs[0].dtype == "float32"):
        return f"{s.model} on input {tuple(s.input_shape)}"
    described = [
        f"{i.name} {i.shape}" + ("" if i.dtype == "float32" else f" {i.dtype}") for i in s.inputs
    ]
    return f"{s.model} on inputs " + ", ".join(described)


def summary_table(s: Summary) -> Table:
    """One row per layer, then the totals. Column sums = totals."""
    headers = ["Layer", "Type", "Output shape", "Param #", "MACs", "RF", "Jump", "Start"]
    rows = []
    for r in s.rows:
        indent = "  " * max(r.depth - 1, 0)
        shape = "(" + ", ".join(str(d) for d in r.output_shape) + ")"
        cells = [indent + r.name, r.type, shape, fmt_number(r.params), fmt_number(r.macs)]
        rows.append([*cells, *_rf_cells(r)])
    total = ["Total", "", "", fmt_number(s.total_params), _macs_total(s), "", "", ""]
    return Table(headers, rows, "lllrrrrr", [total], summary_title(s), list(s.notes))


def _totals(s: Summary, flops: bool) -> list[str]:
    lines = [
        f"Total params:         {s.total_params:,}",
        f"Trainable params:     {s.trainable_params:,}",
        f"Non-trainable params: {s.frozen_params:,}",
        f"Total MACs:           {_macs_total(s)}",
    ]
    if flops:
        bound = "" if s.macs_complete else "≥"
        lines.append(f"Total FLOPs:          {bound}{s.total_flops:,} (2 × MACs)")
    return [
        *lines,
        f"Parameter memory:     {fmt_bytes(s.param_bytes)}",
        f"Activation memory:    {fmt_bytes(s.activation_bytes)} (outputs of one forward pass)",
        f"Input memory:         {fmt_bytes(s.input_bytes)}",
    ]


def summary_text(s: Summary, *, flops: bool = False) -> str:
    """The `cnnkit summary` table with totals, legend and notes."""
    t = summary_table(s)
    table = render_table(t.headers, t.rows, align=t.align, footer=t.footer)
    lines = [t.title, "", table, "", *_totals(s, flops), "", *textwrap.wrap(LEGEND, width=100)]
    lines += [f"note: {n}" for n in s.notes]
    return "\n".join(lines)


def summary_markdown(s: Summary, *, flops: bool = False) -> str:
    t = summary_table(s)
    notes = [*_totals(s, flops), *t.notes]
    return markdown_table(Table(t.headers, t.rows, t.align, t.footer, t.title, notes))


def summary_html(s: Summary, *, flops: bool = False) -> str:
    """The same table as HTML (Jupyter's rich display), totals and notes below it."""
    t = summary_table(s)
    notes = [*_totals(s, flops), *t.notes]
    return html_table(Table(t.headers, t.rows, t.align, t.footer, t.title, notes))


def summary_csv(s: Summary) -> str:
    """One line per row, raw numbers; receptive fields per input where there are several."""
    names = [i.name for i in s.inputs] if len(s.inputs) > 1 else [""]
    rf_cols = []
    for n in names:
        p = f"{n}:" if n else ""
        rf_cols += [f"{p}rf_status", f"{p}rf_h", f"{p}rf_w", f"{p}jump_h", f"{p}jump_w"]
        rf_cols += [f"{p}start_h", f"{p}start_w"]
    headers = ["name", "type", "depth", "output_shape", "trainable_params", "frozen_params"]
    rows = []
    for r in s.rows:
        cells: list[object] = [r.name, r.type, r.depth, "x".join(map(str, r.output_shape))]
        cells += [r.trainable_params, r.frozen_params, r.macs]
        for n in names:
            rf = r.rfs.get(n) if n else r.rf
            local = rf is not None and rf.status == "local" and rf.size and rf.jump and rf.start
            status = "none" if rf is None else rf.status
            values = [*rf.size, *rf.jump, *rf.start] if local and rf else [""] * 6
            cells += [status, *values]
        rows.append(cells)
    return csv_table([*headers, "macs", *rf_cols], rows)
