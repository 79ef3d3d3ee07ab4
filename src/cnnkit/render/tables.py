"""Plain-text rendering of tables (`cnnkit summary`, `cnnkit rf`). No torch here.

The layout functions live in `cnnkit.core.tables` (so that results of any layer can show
themselves as HTML in a notebook) and the summary's cells in
`cnnkit.analysis.summary.table`; they are re-exported here for the commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cnnkit.analysis.summary.table import (
    LEGEND,
    fmt_bytes,
    fmt_rf,
    summary_csv,
    summary_html,
    summary_markdown,
    summary_text,
)
from cnnkit.core.i18n import translate
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
    from cnnkit.analysis.summary.core import Summary

__all__ = [
    "LEGEND",
    "Table",
    "csv_table",
    "fmt_axes",
    "fmt_bytes",
    "fmt_number",
    "fmt_pair",
    "fmt_rf",
    "html_table",
    "markdown_table",
    "render_summary",
    "render_table",
    "summary_csv",
    "summary_html",
    "summary_markdown",
]


def render_summary(s: Summary, *, flops: bool = False) -> str:
    """The `cnnkit summary` table: one row per layer, then totals. Column sums = totals.

    Worded in the current language (`core.i18n`); in English it is `summary_text`'s."""
    return summary_text(s, flops=flops, tr=translate)
