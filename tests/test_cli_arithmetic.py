"""`cnnkit size`, `cnnkit params`, `cnnkit compare` run as real commands; torch is the oracle."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from cnnkit.cli.main import main


@pytest.fixture
def run(capsys):
    """In-process `cnnkit ...` for the sweeps (a subprocess per case is slow); the `cli`
    fixture runs the real command where the process boundary matters (tracebacks, imports)."""

    def _run(*args: str) -> SimpleNamespace:
        code = main(list(args))
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)

    return _run


def _json(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _torch_hw(layer: nn.Module, h: int, w: int) -> list[int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(layer(torch.zeros(1, 1, h, w)).shape[-2:])


@pytest.mark.parametrize(
    ("args", "layer", "hw"),
    [
        (["28", "-k", "3", "-p", "same"], nn.Conv2d(1, 1, 3, padding="same"), (28, 28)),
        (
            ["28", "-k", "4", "-p", "same", "-d", "3"],
            nn.Conv2d(1, 1, 4, padding="same", dilation=3),
            (28, 28),
        ),  # noqa: E501
        (["--input", "64x48", "-k", "7", "-s", "2", "-p", "3"], nn.Conv2d(1, 1, 7, 2, 3), (64, 48)),
        (
            ["30x20", "-k", "1x7", "-p", "0x3", "-d", "2"],
            nn.Conv2d(1, 1, (1, 7), 1, (0, 3), 2),
            (30, 20),
        ),  # noqa: E501
        (["13", "--pool", "-k", "2"], nn.MaxPool2d(2), (13, 13)),
        (["13", "--pool", "-k", "2", "--ceil-mode"], nn.MaxPool2d(2, ceil_mode=True), (13, 13)),
        (
            ["5", "--pool", "-k", "2", "-p", "1", "--ceil-mode"],
            nn.AvgPool2d(2, 2, 1, ceil_mode=True),
            (5, 5),
        ),  # noqa: E501
        (
            ["9x7", "--pool", "-k", "3", "-s", "2", "-d", "2"],
            nn.MaxPool2d(3, 2, dilation=2),
            (9, 7),
        ),
        (
            ["14", "--transposed", "-k", "3", "-s", "2", "-p", "1", "--output-padding", "1"],
            nn.ConvTranspose2d(1, 1, 3, 2, 1, 1),
            (14, 14),
        ),  # noqa: E501
        (
            ["6x5", "--transposed", "-k", "4x3", "-s", "3x2", "-d", "2"],
            nn.ConvTranspose2d(1, 1, (4, 3), (3, 2), dilation=2),
            (6, 5),
        ),  # noqa: E501
    ],
)
def test_size_json_matches_the_torch_layer(run, args, layer, hw):
    out = _json(run("size", *args, "--json"))
    assert out["output_size"] == _torch_hw(layer, *hw)
    assert out["input_size"] == list(hw)


def test_size_per_side_padding_matches_f_pad(cli):
    out = _json(cli("size", "20", "-k", "3", "-p", "0,2,1,3", "--json"))  # top, bottom, left, right
    x = torch.nn.functional.pad(torch.zeros(1, 1, 20, 20), (1, 3, 0, 2))  # F.pad: (l, r, t, b)
    assert out["padding"] == [[0, 2], [1, 3]]
    assert out["output_size"] == list(nn.Conv2d(1, 1, 3)(x).shape[-2:])


def test_size_table_shows_the_formula_and_the_result(cli):
    r = cli("size", "28", "--kernel", "3", "--stride", "1", "--padding", "same")
    assert r.returncode == 0, r.stderr
    assert "floor((28 + 1 + 1 − 3) / 1) + 1 = 28" in r.stdout
    assert r.stdout.splitlines()[-1].split() == ["output", "(H", "×", "W)", "28", "×", "28"]


def test_size_table_explains_the_dropped_ceil_mode_window(cli):
    r = cli("size", "5", "--pool", "-k", "2", "-p", "1", "--ceil-mode")
    assert r.returncode == 0, r.stderr
    assert "last window would start in the padding" in r.stdout
    assert _torch_hw(nn.MaxPool2d(2, 2, 1, ceil_mode=True), 5, 5) == [3, 3]
    assert "output (H × W)  3 × 3" in r.stdout


@pytest.mark.parametrize(
    ("kernel", "groups", "bias"), [("3", "1", True), ("7", "1", True), ("3x5", "4", False)]
)
def test_params_json_matches_numel(run, kernel, groups, bias):
    args = ["params", "--in", "32", "--out", "64", "--kernel", kernel, "--groups", groups]
    out = _json(run(*args, *([] if bias else ["--no-bias"]), "--json"))
    k = tuple(int(v) for v in kernel.split("x")) * (2 if "x" not in kernel else 1)
    layer = nn.Conv2d(32, 64, k, groups=int(groups), bias=bias, device="meta")
    assert out["weight"] == layer.weight.numel()
    assert out["bias"] == (layer.bias.numel() if bias else 0)
    assert out["total"] == sum(p.numel() for p in layer.parameters())


def test_params_table(cli):
    r = cli("params", "--in", "3", "--out", "64", "--kernel", "7")
    assert r.returncode == 0, r.stderr
    total = sum(p.numel() for p in nn.Conv2d(3, 64, 7).parameters())
    assert f"total   {total:,}" in r.stdout


def test_compare_json_matches_real_layers(cli):
    out = _json(
        cli("compare", "--input", "224x224x3", "--hidden", "1000", "--conv", "64,64,64", "--json")
    )  # noqa: E501
    fc = nn.Linear(224 * 224 * 3, 1000, device="meta")
    convs = [
        nn.Conv2d(3, 64, 3, device="meta"),
        *(nn.Conv2d(64, 64, 3, device="meta") for _ in range(2)),
    ]  # noqa: E501
    fc_total = sum(p.numel() for p in fc.parameters())
    conv_total = sum(p.numel() for m in convs for p in m.parameters())
    assert out["fc"]["total"] == fc_total
    assert out["conv_total"] == conv_total
    assert out["reduction_percent"] == pytest.approx(100 * (1 - conv_total / fc_total))


def test_compare_never_prints_a_reduction_of_100_percent(cli):
    # 1 - 1792 / 150,529,000 = 99.9988%: printed with 2 decimals it would read "100.00%".
    r = cli("compare", "--input", "224x224x3", "--hidden", "1000", "--conv", "64")
    assert r.returncode == 0, r.stderr
    reduction = [line for line in r.stdout.splitlines() if line.startswith("reduction")][0]
    assert "100" not in reduction and "99.99" in reduction


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["size", "28", "--stride", "0"], ["'stride'", "Got 0 instead"]),
        (["size", "28", "--stride", "-2"], ["'stride'", "Got -2 instead"]),
        (["size", "28", "--stride", "2.5"], ["'stride'", "'2.5'"]),
        (["size", "2.5"], ["'input'", "'2.5'"]),
        (["size", "--input", "28x2.5"], ["'input'", "'28x2.5'"]),
        (["size", "28", "--kernel", "0"], ["'kernel_size'", "Got 0 instead"]),
        (["size", "28", "--dilation", "0"], ["'dilation'", "Got 0 instead"]),
        (["size", "28", "--padding", "-1"], ["'padding'", "Got -1 instead"]),
        (["size", "28", "--padding", "half"], ["'padding'", "'half'"]),
        (["size", "28", "--padding", "same", "--stride", "2"], ["same", "stride"]),
        (["size", "3", "--kernel", "5"], ["Kernel size 5", "padded input size 3"]),
        (["size", "4", "--kernel", "3", "--dilation", "2"], ["Kernel size 5", "size 4"]),
        (["size", "10", "--pool", "-k", "3", "-p", "2"], ["'padding'", "half", "Got 2 instead"]),
        (["size", "8", "--transposed", "--output-padding", "1"], ["'output_padding'", "Got 1"]),
        (["size", "8", "--ceil-mode"], ["ceil_mode", "pool"]),
        (["size"], ["input size"]),
        (["params", "--in", "3", "--out", "64", "--groups", "2"], ["'groups'", "Got 2 instead"]),
        (["params", "--in", "0", "--out", "64"], ["'in_channels'", "Got 0 instead"]),
        (["params", "--in", "3.5", "--out", "64"], ["'in_channels'", "'3.5'"]),
        (["compare", "--input", "224x224"], ["'input'", "'224x224'"]),
        (["compare", "--conv", "64,0"], ["'out_channels'", "Got 0 instead"]),
        (["compare", "--hidden", "-5"], ["'hidden'", "Got -5 instead"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, args, needles):
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"cnnkit {args[0]}: error: ")
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["size", "28", "--stride", "0"],
        ["size", "2.5"],
        ["size", "3", "--kernel", "5"],
        ["params", "--in", "3", "--out", "64", "--groups", "2"],
    ],
)
def test_bad_input_from_the_real_command_has_no_traceback(cli, args):
    r = cli(*args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_torch_refuses_what_size_refuses():
    """The refusals above are torch's too (where torch has the layer)."""
    with pytest.raises(RuntimeError):
        nn.Conv2d(1, 1, 5)(torch.zeros(1, 1, 3, 3))
    with pytest.raises(RuntimeError):
        nn.Conv2d(1, 1, 3, dilation=2)(torch.zeros(1, 1, 4, 4))
    with pytest.raises(RuntimeError):
        nn.MaxPool2d(3, padding=2)(torch.zeros(1, 1, 10, 10))
    with pytest.raises(ValueError):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(RuntimeError):
        nn.ConvTranspose2d(1, 1, 3, output_padding=1)(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize(
    "command",
    [
        ["size", "28", "-k", "3"],
        ["params", "--in", "3", "--out", "8"],
        ["compare"],
        ["rf", "conv3*2,pool2"],
        ["size", "28", "-k", "3", "--lang", "ja"],
    ],
)
def test_arithmetic_commands_import_neither_numpy_nor_torch(command):
    # docs/architecture.md: the calculators answer without loading NumPy or torch (every
    # command's parser is built, so no command module may import them at the top).
    code = (
        "import sys, contextlib, io\n"
        "from cnnkit.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    rc = main({command!r})\n"
        "heavy = ('numpy', 'torch', 'scipy', 'matplotlib')\n"
        "print(rc, sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []"
