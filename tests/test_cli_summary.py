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
