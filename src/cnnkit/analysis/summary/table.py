"""The summary as a table of cells, and its text, Markdown, HTML and CSV spellings.

`render.tables.render_summary` prints `summary_text`; `Summary._repr_html_` (Jupyter) shows
`summary_html`: the same cells. No torch here.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cnnkit.core.i18n import Message
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
from cnnkit.core.text import display_width, ljust, wrap

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

Translate = Callable[[str], str]  # `core.i18n.translate` in the front ends; `str`: English

LEGEND = Message(
    "RF: receptive-field size in input pixels (H×W); Jump: input pixels between adjacent units; "
    "Start: input coordinate of the first unit's centre (pixel i is centred at i). "
    "'whole input': every unit depends on the whole input (flatten, linear, global pooling). "
    "≈: approximate (transposed conv, upsampling: the largest field over the units). "
    "MACs: multiply-accumulates by the rules of docs/summary.md."
)
_LABELS = {
    "whole-input": Message("whole input"),
    "not-aligned": Message("not aligned"),
    "none": "-",
    "not-spatial": Message("n/a"),
}


def _round(value: float) -> float:
    return round(float(value), 3)


def fmt_rf(rf: ReceptiveField, tr: Translate = str) -> tuple[str, str, str]:
    """(size, jump, start) cells for a receptive field (`tr` words 'whole input' etc.)."""
    if rf.status != "local" or rf.size is None or rf.jump is None or rf.start is None:
        return (tr(_LABELS.get(rf.status, "?")), "", "")
    return (
        ("≈" if rf.approximate else "") + fmt_pair([_round(v) for v in rf.size]),
        fmt_axes([_round(v) for v in rf.jump]),
        fmt_axes([_round(v) for v in rf.start]),
    )


def _rf_cells(row: LayerRow, tr: Translate) -> list[str]:
    """One input: its (size, jump, start). Several: `name: value` for each input it uses."""
    if not row.rfs:
        return list(fmt_rf(row.rf, tr))
    per = {name: fmt_rf(rf, tr) for name, rf in row.rfs.items()}
    return [
        "; ".join(f"{name}: {cells[i]}" for name, cells in per.items() if cells[i] or i == 0)
        for i in range(3)
    ]


def fmt_bytes(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 2**10:,.2f} KiB"


def _macs_total(s: Summary) -> str:
    return fmt_number(s.total_macs) if s.macs_complete else "≥" + fmt_number(s.total_macs)


def summary_title(s: Summary) -> Message:
    if len(s.inputs) <= 1 and (not s.inputs or s.inputs[0].dtype == "float32"):
        return Message("{model} on input {shape}", model=s.model, shape=tuple(s.input_shape))
    described = [
        f"{i.name} {i.shape}" + ("" if i.dtype == "float32" else f" {i.dtype}") for i in s.inputs
    ]
    return Message("{model} on inputs {inputs}", model=s.model, inputs=", ".join(described))


# Message(...) around each word: the catalog tool finds them there (a `str` in English)
_HEADERS = (
    Message("Layer"),
    Message("Type"),
    Message("Output shape"),
    Message("Param #"),
    Message("MACs"),
    Message("RF"),
    Message("Jump"),
    Message("Start"),
)


def summary_table(s: Summary, tr: Translate = str) -> Table:
    """One row per layer, then the totals. Column sums = totals. `tr` words the headers,
    labels, title and notes (`core.i18n.translate`); the default keeps them in English."""
    rows = []
    for r in s.rows:
        indent = "  " * max(r.depth - 1, 0)
        shape = "(" + ", ".join(str(d) for d in r.output_shape) + ")"
        cells = [indent + r.name, r.type, shape, fmt_number(r.params), fmt_number(r.macs)]
        rows.append([*cells, *_rf_cells(r, tr)])
    total = [tr(Message("Total")), "", "", fmt_number(s.total_params), _macs_total(s), "", "", ""]
    headers = [tr(h) for h in _HEADERS]
    notes = [tr(n) for n in s.notes]
    return Table(headers, rows, "lllrrrrr", [total], tr(summary_title(s)), notes)


def _totals(s: Summary, flops: bool, tr: Translate = str) -> list[str]:
    """`label: value` lines, the values in one column (by display width, for Japanese)."""
    pairs = [
        (tr(Message("Total params")), f"{s.total_params:,}"),
        (tr(Message("Trainable params")), f"{s.trainable_params:,}"),
        (tr(Message("Non-trainable params")), f"{s.frozen_params:,}"),
        (tr(Message("Total MACs")), _macs_total(s)),
    ]
    if flops:
        bound = "" if s.macs_complete else "≥"
        flops_text = Message("{flops} (2 × MACs)", flops=f"{bound}{s.total_flops:,}")
        pairs.append((tr(Message("Total FLOPs")), tr(flops_text)))
    activation = Message(
        "{memory} (outputs of one forward pass)", memory=fmt_bytes(s.activation_bytes)
    )
    pairs += [
        (tr(Message("Parameter memory")), fmt_bytes(s.param_bytes)),
        (tr(Message("Activation memory")), tr(activation)),
        (tr(Message("Input memory")), fmt_bytes(s.input_bytes)),
    ]
    width = max(display_width(f"{label}:") for label, _ in pairs)
    return [f"{ljust(label + ':', width)} {value}" for label, value in pairs]


def summary_text(s: Summary, *, flops: bool = False, tr: Translate = str) -> str:
    """The `cnnkit summary` table with totals, legend and notes, worded by `tr`."""
    t = summary_table(s, tr)
    table = render_table(t.headers, t.rows, align=t.align, footer=t.footer)
    legend = tr(LEGEND)
    wrapped = textwrap.wrap(legend, width=100) if legend == LEGEND else wrap(legend, 100)
    lines = [t.title, "", table, "", *_totals(s, flops, tr), "", *wrapped]
    lines += [tr(Message("note: {note}")).format(note=n) for n in t.notes]
    return "\n".join(lines)


def summary_markdown(s: Summary, *, flops: bool = False, tr: Translate = str) -> str:
    """The same table as Markdown, totals and notes below it, worded by `tr`."""
    t = summary_table(s, tr)
    notes = [*_totals(s, flops, tr), *t.notes]
    return markdown_table(Table(t.headers, t.rows, t.align, t.footer, t.title, notes))


def summary_html(s: Summary, *, flops: bool = False, tr: Translate = str) -> str:
    """The same table as HTML (Jupyter's rich display), totals and notes below it, worded
    by `tr`."""
    t = summary_table(s, tr)
    notes = [*_totals(s, flops, tr), *t.notes]
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
