"""Notebook display: `_repr_html_` of the summary, the receptive-field rows and a layer's shape
shows the same cells as the printed tables, escaped; docs/summary_notebook.ipynb runs.

The notebook is executed here without Jupyter: its code cells run in one namespace, and the
last expression of each cell is displayed as Jupyter would (`_repr_html_`, else `repr`) and
compared with the output stored in the file. Regenerate the stored outputs with
`CNNKIT_REGEN_NOTEBOOK=1 pytest tests/test_summary_html.py` and read the diff.
"""

from __future__ import annotations

import ast
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from conftest import REPO
from torch import nn

from cnnkit.analysis.summary.core import summary
from cnnkit.calc.arithmetic import layer_output_shape
from cnnkit.calc.receptive_field import parse_layers, receptive_fields
from cnnkit.cli.main import main
from cnnkit.models.registry import create_model
from cnnkit.render.tables import render_summary

NOTEBOOK = REPO / "docs" / "summary_notebook.ipynb"


class Cells(HTMLParser):
    """Rows of <td>/<th> text per section (thead, tbody, tfoot), the caption, the notes."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[list[str]]] = {"thead": [], "tbody": [], "tfoot": []}
        self.caption = ""
        self.notes: list[str] = []
        self.where = ""
        self.tag = ""
        self.text = ""

    def handle_starttag(self, tag, attrs):
        if tag in self.sections:
            self.where = tag
        elif tag == "tr":
            self.sections[self.where].append([])
        self.tag, self.text = tag, ""

    def handle_data(self, data):
        self.text += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.sections[self.where][-1].append(self.text)
        elif tag == "caption":
            self.caption = self.text
        elif tag == "li":
            self.notes.append(self.text)
        self.text = ""


def parse(html: str) -> Cells:
    cells = Cells()
    cells.feed(html)
    return cells


def text_rows(text: str) -> tuple[list[list[str]], list[str]]:
    """Body rows and the total row of a printed table (cells split on 2+ spaces)."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    body = [re.split(r"\s{2,}", line.strip()) for line in lines[rules[0] + 1 : rules[1]]]
    return body, re.split(r"\s{2,}", lines[rules[1] + 1].strip())


def nonempty(row: list[str]) -> list[str]:
    return [c.strip() for c in row if c.strip()]


@pytest.mark.parametrize("input_size", [(1, 28, 28), (1, 20, 20)])
def test_summary_html_has_the_cells_of_the_printed_table(input_size):
    torch.manual_seed(0)
    s = summary(create_model("simple-cnn"), input_size) if input_size[1] == 28 else None
    if s is None:
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 18 * 18, 3)
        )
        s = summary(model, input_size)
    text = render_summary(s)
    html = parse(s._repr_html_())
    body, total = text_rows(text)
    assert [nonempty(r) for r in html.sections["tbody"]] == body
    assert nonempty(html.sections["tfoot"][0]) == total
    assert html.sections["thead"][0] == re.split(r"\s{2,}", text.splitlines()[2].strip())
    assert html.caption == text.splitlines()[0]
    assert f"Total MACs:           {s.total_macs:,}" in html.notes


def test_html_is_escaped():
    odd = type("A<b>&c", (nn.Module,), {"forward": lambda self, x: x * 2})
    html = summary(odd(), (1, 2, 2))._repr_html_()
    assert "A&lt;b&gt;&amp;c" in html and "A<b>" not in html
    assert parse(html).caption.startswith("A<b>&c on input")


def test_multi_input_summary_html_shows_each_inputs_field():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 5, padding=1)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(y)

    html = parse(summary(Two(), [(1, 9, 9), (1, 9, 9)])._repr_html_())
    add = next(r for r in html.sections["tbody"] if r[0] == "add")
    assert add[5] == "x: 3×3; y: 5×5"


def test_receptive_field_rows_html_equals_the_rf_command(capsys):
    spec = "conv3/s2/p1,pool2,conv1x7"
    assert main(["rf", spec, "--input", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    body = [re.split(r"\s{2,}", line.strip()) for line in lines[2 : lines.index("")]]
    html = parse(receptive_fields(parse_layers(spec), 32)._repr_html_())
    assert [nonempty(r) for r in html.sections["tbody"]] == body
    rows = receptive_fields(parse_layers(spec), 32)
    assert isinstance(rows, list) and rows[2].size == (5, 29)  # still a list of RFRow


def test_layer_shape_html_gives_the_resolved_arguments_and_output(capsys):
    r = layer_output_shape(input_size=28, kernel_size=3, padding=1, dilation=2, stride=2)
    cells = {row[0]: row[1] for row in parse(r._repr_html_()).sections["tbody"]}
    assert cells["output (H × W)"] == "13×13" == "×".join(map(str, r.output_size))
    assert cells["effective kernel"] == "5×5"
    assert main(["size", "28", "-k", "3", "-p", "1", "-d", "2", "-s", "2"]) == 0
    assert "13 × 13" in capsys.readouterr().out  # `cnnkit size` agrees


# --------------------------------------------------------------------------- the notebook


def display(value: object) -> dict:
    """What Jupyter would store for the value of a cell's last expression."""
    html = getattr(value, "_repr_html_", None)
    if callable(html):
        return {"text/html": html()}
    return {"text/plain": repr(value)}


def run_cell(source: str, namespace: dict) -> dict | None:
    tree = ast.parse(source)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body = tree.body[:-1]
    exec(compile(tree, "<notebook>", "exec"), namespace)  # noqa: S102 - the repo's own notebook
    if last is None:
        return None
    return display(eval(compile(ast.Expression(last.value), "<notebook>", "eval"), namespace))


def test_notebook_runs_and_shows_the_stored_tables():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    assert nb["nbformat"] == 4
    namespace: dict = {"__name__": "__notebook__"}
    shown = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        data = run_cell("".join(cell["source"]), namespace)
        outputs = [] if data is None else [
            {"output_type": "execute_result", "metadata": {}, "data": data,
             "execution_count": None}
        ]  # fmt: skip
        if os.environ.get("CNNKIT_REGEN_NOTEBOOK") == "1":
            cell["outputs"] = outputs
        assert cell["outputs"] == outputs, "".join(cell["source"])[:60]
        shown += sum("text/html" in o["data"] for o in outputs)
    if os.environ.get("CNNKIT_REGEN_NOTEBOOK") == "1":
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        Path(NOTEBOOK).write_text(text, encoding="utf-8")
    assert shown >= 5
    s = namespace["s"]
    assert s.uncounted == {"cumsum": 1} and not s.macs_complete
    attn = s.row("block.self_attn")
    length, d = 12, 32
    assert attn.macs == 4 * length * d * d + 2 * length * length * d
