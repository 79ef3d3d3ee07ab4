"""One table, four spellings: plain text, Markdown, HTML and CSV, from the same cells.

Every result with a table (`summary`, `cnnkit rf`, `cnnkit size`) builds a `Table` of string
cells once; `render_table`, `markdown_table`, `html_table` and `csv_table` only lay it out.
It lives in `core` so that dataclasses of any layer can give themselves a `_repr_html_`
(Jupyter shows it) without depending on the render layer. Standard library only.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from cnnkit.core.text import display_width, ljust, rjust

__all__ = [
    "Table",
    "csv_table",
    "fmt_axes",
    "fmt_number",
    "fmt_pair",
    "html_table",
    "markdown_table",
    "render_table",
]


@dataclass(frozen=True)
class Table:
    """Header cells, body rows, optional footer rows (totals); `align`: one 'l'/'r' a column.

    `title` is printed above the table, `notes` below it (HTML and Markdown too)."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    align: str | None = None
    footer: Sequence[Sequence[str]] = ()
    title: str = ""
    notes: Sequence[str] = field(default_factory=tuple)

    def check(self) -> str:
        n = len(self.headers)
        align = self.align or "l" * n
        if len(align) != n or any(len(r) != n for r in [*self.rows, *self.footer]):
            raise ValueError("Table: every row needs one cell per header")
        return align


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    align: str | None = None,
    footer: Sequence[Sequence[str]] = (),
) -> str:
    """Columns padded to their widest cell; `align` has one 'l' or 'r' per column.

    Widths are display widths (`cnnkit.core.text`): a Japanese header takes two cells a
    character, so columns stay aligned in every language.

    A rule separates the header from the rows, and the rows from the `footer` rows (totals).
    """
    align = Table(headers, rows, align, footer).check()
    n = len(headers)
    widths = [max(display_width(str(r[i])) for r in [headers, *rows, *footer]) for i in range(n)]

    def line(cells: Sequence[str]) -> str:
        out = [
            rjust(str(c), w) if a == "r" else ljust(str(c), w)
            for c, w, a in zip(cells, widths, align, strict=True)
        ]
        return "  ".join(out).rstrip()

    rule = "-" * (sum(widths) + 2 * (n - 1))
    lines = [line(headers), rule, *(line(r) for r in rows)]
    if footer:
        lines += [rule, *(line(r) for r in footer)]
    return "\n".join(lines)


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    """A GitHub-flavoured Markdown table; footer rows in bold, title and notes as text."""
    align = table.check()
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [f"**{_md_cell(table.title)}**", ""] if table.title else []
    lines.append("| " + " | ".join(_md_cell(h) for h in table.headers) + " |")
    lines.append("| " + " | ".join(rule) + " |")
    for r in table.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
    for r in table.footer:
        lines.append("| " + " | ".join(f"**{_md_cell(c)}**" if c else "" for c in r) + " |")
    if table.notes:
        lines += ["", *(f"- {_md_cell(n)}" for n in table.notes)]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    """An HTML `<table>` (escaped), footer rows in `<tfoot>`, title as `<caption>`."""
    align = table.check()

    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} style="text-align:{"right" if a == "r" else "left"}">'
            f"{html.escape(str(c))}</{tag}>"
            for c, a in zip(row, align, strict=True)
        )

    parts = ['<table class="cnnkit">']
    if table.title:
        parts.append(f"<caption>{html.escape(table.title)}</caption>")
    parts.append(f"<thead><tr>{cells(table.headers, 'th')}</tr></thead>")
    parts.append("<tbody>" + "".join(f"<tr>{cells(r, 'td')}</tr>" for r in table.rows))
    parts.append("</tbody>")
    if table.footer:
        parts.append("<tfoot>" + "".join(f"<tr>{cells(r, 'th')}</tr>" for r in table.footer))
        parts.append("</tfoot>")
    parts.append("</table>")
    if table.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in table.notes))
        parts.append("</ul>")
    return "".join(parts)


def csv_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """RFC 4180 CSV (raw values, no thousands separators), one header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


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
