"""`cnnkit summary` and `cnnkit erf` run as real commands.

Golden tables live in tests/golden/; regenerate them with `CNNKIT_REGEN_GOLDEN=1 pytest
tests/test_cli_summary.py` after a deliberate change, and read the diff. Every table is also
checked against the invariant that its columns add up to the printed totals.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MNIST
from PIL import Image

from cnnkit.analysis.summary.core import summary
from cnnkit.analysis.summary.load import load_model
from cnnkit.cli.main import main
from cnnkit.models.registry import create_model, model_input_shape

GOLDEN = Path(__file__).parent / "golden"
VGG_FILE = str(GOLDEN / "vgg_like.py") + ":build"

GOLDEN_CASES = {
    "summary_simple_cnn.txt": ("simple-cnn",),
    "summary_vgg_like.txt": (VGG_FILE, "--input", "3,224,224"),
    "summary_simple_cnn_depth0.txt": ("simple-cnn", "--depth", "0"),
}


def table_rows(text: str) -> tuple[list[list[str]], list[str]]:
    """Rows and the total row of a printed summary table (cells split on 2+ spaces)."""
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"-"}]
    assert len(rules) == 2, text
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[rules[0] + 1 : rules[1]]]
    total = re.split(r"\s{2,}", lines[rules[1] + 1].strip())
    return rows, total


def number(cell: str) -> int:
    return int(cell.replace(",", ""))


def check_column_sums(text: str) -> None:
    rows, total = table_rows(text)
    params = sum(number(r[3]) for r in rows)
    macs = sum(number(r[4]) for r in rows)
    assert [number(c) for c in total[1:3]] == [params, macs]
    assert f"Total params:         {params:,}" in text
    assert f"Total MACs:           {macs:,}" in text


@pytest.mark.parametrize("golden", sorted(GOLDEN_CASES))
def test_printed_table_matches_golden_file(cli, golden):
    r = cli("summary", *GOLDEN_CASES[golden])
    assert r.returncode == 0, r.stderr
    path = GOLDEN / golden
    if os.environ.get("CNNKIT_REGEN_GOLDEN") == "1":
        path.write_text(r.stdout, encoding="utf-8")
    assert r.stdout == path.read_text(encoding="utf-8")
    check_column_sums(r.stdout)


def test_golden_tables_show_the_true_receptive_fields():
    # Against the library (whose numbers tests/test_summary_rf.py checks with gradients),
    # not the chapter's R_l = R_{l-1} + (K_l - 1): the VGG-like stack ends at 16×16, not 11×11.
    text = (GOLDEN / "summary_vgg_like.txt").read_text(encoding="utf-8")
    rows, _ = table_rows(text)
    s = summary(load_model(VGG_FILE).model, (3, 224, 224))
    assert [r[5] for r in rows] == [f"{int(x.rf.size[0])}×{int(x.rf.size[1])}" for x in s.rows]
    assert rows[-1][5] == "16×16"


def test_json_totals_are_the_sums_of_the_rows(cli):
    r = cli("summary", "simple-cnn", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["total_params"] == sum(
        row["trainable_params"] + row["frozen_params"] for row in data["rows"]
    )
    assert data["total_macs"] == sum(row["macs"] for row in data["rows"])
    model = create_model("simple-cnn")
    assert data["total_params"] == sum(p.numel() for p in model.parameters())
    conv2 = next(row for row in data["rows"] if row["name"] == "conv2")
    assert conv2["output_shape"] == [1, 64, 14, 14]
    assert conv2["rf"]["status"] == "local" and conv2["rf"]["size"] == [8, 8]
    assert data["rows"][-1]["rf"]["status"] == "whole-input"


def test_depth_zero_json_is_one_row(capsys):
    assert main(["summary", "simple-cnn", "--depth", "0", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in data["rows"]] == ["SimpleCNN"]


def test_file_factory_with_input(capsys):
    assert main(["summary", VGG_FILE, "--input", "3x32x32"]) == 0
    out = capsys.readouterr().out
    assert "Sequential on input (1, 3, 32, 32)" in out
    check_column_sums(out)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ((VGG_FILE,), "--input C,H,W"),
        (("nowhere.py:build", "--input", "3,8,8"), "no such file"),
        ((str(GOLDEN / "vgg_like.py") + ":nope", "--input", "3,8,8"), "has no 'nope'"),
        ((str(GOLDEN / "vgg_like.py"), "--input", "3,8,8"), "FILE.py:FUNCTION"),
        (("no-such-model",), "Unknown model 'no-such-model'"),
        (("simple-cnn", "--input", "1,32,32"), "layer 'fc1' (Linear, op linear, input shape"),
        (("simple-cnn", "--input", "3,28,28"), "layer 'conv1' (Conv2d"),
        (("simple-cnn", "--input", "1,a,28"), "'--input'"),
        (("simple-cnn", "--depth", "-1"), "'depth'"),
    ],
)
def test_errors_are_one_line_exit_2(capsys, args, needle):
    # In-process (the same `main` as the command; saves a torch import per case).
    # test_errors_in_a_real_process checks the real process once.
    assert main(["summary", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert needle in err


def test_errors_in_a_real_process(cli):
    r = cli("summary", "simple-cnn", "--input", "1,32,32")
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith("cnnkit summary: error: SimpleCNN cannot run on input shape")
    assert "Traceback" not in r.stderr


def test_boxes_are_drawn_over_an_image(cli, tmp_path):
    image = (np.arange(40 * 40).reshape(40, 40) % 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "digit.png")
    r = cli(
        "summary", "simple-cnn", "--boxes", "digit.png", "-o", "boxes.png",
        "--layer", "conv2", "--unit", "0,0", "--unit", "7,7",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "wrote boxes.png" in r.stdout
    with Image.open(tmp_path / "boxes.png") as img:
        assert img.format == "PNG" and img.size[0] > 200
    bad = cli("summary", "simple-cnn", "--boxes", "digit.png", "--unit", "99,0")
    assert bad.returncode == 2 and "outside the 7×7 output" in bad.stderr


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"no shared MNIST copy at {SHARED_MNIST}")
    from cnnkit.data import fetch

    root = tmp_path_factory.mktemp("data")
    fetch("mnist", data_dir=root, source_dir=SHARED_MNIST, progress=False)
    return root


def test_erf_of_a_checkpoint(cli, tmp_path, mnist_dir):
    import torch

    from cnnkit.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_model("simple-cnn")
    save_checkpoint(
        tmp_path / "ckpt.pt", model_name="simple-cnn", model_args={},
        state_dict=model.state_dict(), config={"dataset": "mnist"}, optimizer_state={},
        epoch=1, rng_state={}, history=[],
    )  # fmt: skip
    r = cli(
        "erf", "ckpt.pt", "-o", "erf.png", "--images", "16", "--data-dir", str(mnist_dir),
        "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    s = summary(model, model_input_shape("simple-cnn"))
    row = s.row(data["layer"])
    theoretical = data["theoretical"]
    assert [theoretical["bottom"] - theoretical["top"] + 1] * 2 == list(row.rf.size)
    # The gradient of a unit cannot leave its theoretical receptive field.
    assert data["mass_inside"] == pytest.approx(1.0)
    assert (tmp_path / "erf.png").stat().st_size > 1000
    missing = cli("erf", "nope.pt")
    assert missing.returncode == 2 and "no such checkpoint" in missing.stderr


TWO_INPUT = """
import torch
from torch import nn


class TwoInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.emb = nn.Embedding(20, 4)
        self.head = nn.Linear(8, 2)

    def forward(self, image, ids):
        a = self.conv(image).mean((2, 3))  # (N, 4)
        b = torch.cumsum(self.emb(ids), 1)[:, -1]  # (N, 4); cumsum has no MAC rule
        return self.head(torch.cat([a, b], 1))


def build():
    return TwoInput()
"""


@pytest.fixture
def two_input_file(tmp_path):
    path = tmp_path / "twoinput.py"
    path.write_text(TWO_INPUT, encoding="utf-8")
    return f"{path}:build"


def test_repeated_input_with_a_dtype_summarises_a_two_input_model(cli, two_input_file):
    r = cli("summary", two_input_file, "--input", "3,8,8", "--input", "5:long", "--flops")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("TwoInput on inputs image (1, 3, 8, 8), ids (1, 5) int64\n")
    rows, total = table_rows(out)
    macs = sum(number(row[4]) for row in rows)
    # conv: out_elems · C_in · 3 · 3; mean: in_elems; head: out · in; embedding, cat: 0
    assert macs == 4 * 6 * 6 * 3 * 9 + 4 * 6 * 6 + 2 * 8
    assert total[2] == f"≥{macs:,}"  # cumsum is not counted: a lower bound
    assert f"Total MACs:           ≥{macs:,}" in out
    assert f"Total FLOPs:          ≥{2 * macs:,} (2 × MACs)" in out
    assert "note: MACs not counted (no rule) for: cumsum ×1" in out
    conv = next(row for row in rows if row[0] == "conv")
    assert conv[5:] == ["image: 3×3", "image: 1", "image: 1"]


def test_summary_csv_markdown_and_json_hold_the_same_numbers(cli, capsys):
    import csv
    import io

    assert main(["summary", "simple-cnn", "--format", "csv"]) == 0
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    s = summary(create_model("simple-cnn"), model_input_shape("simple-cnn"))
    assert [line["name"] for line in lines] == [r.name for r in s.rows]
    assert sum(int(line["macs"]) for line in lines) == s.total_macs
    assert sum(int(line["trainable_params"]) for line in lines) == s.total_params
    conv2 = next(line for line in lines if line["name"] == "conv2")
    assert (conv2["rf_status"], conv2["rf_h"], conv2["jump_w"]) == ("local", "8", "2")
    assert main(["summary", "simple-cnn", "--format", "markdown"]) == 0
    md = capsys.readouterr().out.splitlines()
    table = [line for line in md if line.startswith("|")]
    assert len(table) == 2 + len(s.rows) + 1  # header, rule, rows, total
    assert table[1] == "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    assert f"| **Total** |  |  | **{s.total_params:,}** | **{s.total_macs:,}** |" in table[-1]
    assert main(["summary", "simple-cnn", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_macs"] == s.total_macs and data["macs_complete"] is True
    assert data["total_flops"] == 2 * s.total_macs


def test_json_and_another_format_are_refused(capsys):
    assert main(["summary", "simple-cnn", "--json", "--format", "csv"]) == 2
    assert "--json contradicts --format csv" in capsys.readouterr().err


def test_bad_input_dtype_is_one_line(capsys, two_input_file):
    assert main(["summary", two_input_file, "--input", "3,8,8", "--input", "5:word"]) == 2
    err = capsys.readouterr().err
    assert "'--input' parameter's dtype must be one of" in err and "'word'" in err


def test_rf_formats_hold_the_same_numbers(capsys):
    import csv
    import io

    from cnnkit.calc.receptive_field import parse_layers, receptive_fields

    spec = "conv3/s2/p1,pool2,conv1x7"
    rows = receptive_fields(parse_layers(spec), (32, 32))
    assert main(["rf", spec, "--input", "32", "--format", "csv"]) == 0
    lines = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(int(x["r_h"]), int(x["r_w"])) for x in lines] == [r.size for r in rows]
    assert [(int(x["output_h"]), int(x["output_w"])) for x in lines] == [r.output for r in rows]
    assert main(["rf", spec, "--input", "32", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| conv2 | conv1x7 | 5,29 | 4 | 1,13 | 8×2 |" in md
    assert main(["rf", spec, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"][2]["size"] == [5, 29]


def test_summary_of_a_run_folder_uses_the_runs_input_shape(tmp_path: Path, capsys) -> None:
    """A run trained on 3-channel 20×20 images: `cnnkit summary RUN` (a folder, as evaluate
    and export take) traces (1, 3, 20, 20), and its parameter count is the checkpoint's."""
    import torch
    from shapes_data import make_shapes

    make_shapes(tmp_path / "shapes", per_class=6)
    argv = ["train", "--dataset", str(tmp_path / "shapes"), "--image-size", "20", "--channels",
            "3", "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "runs"),
            "--name", "s", "--no-progress", "--no-report", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    run = tmp_path / "runs" / "s"
    assert main(["summary", str(run), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["inputs"][0]["shape"] == [1, 3, 20, 20]
    state = torch.load(run / "checkpoint.pt", weights_only=True)["state_dict"]
    assert got["total_params"] == sum(t.numel() for t in state.values())
