"""cnnkit.calc.receptive_field and `cnnkit rf`: the oracle is the gradient of an equivalent
torch net.

`gradient_receptive_field` back-propagates a one-hot at a unit through a copy of the net with
positive weights and sum-pools instead of max-pools; the box of non-zero input gradient is the
region the unit really sees. Numbers are never copied from the chapter.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from cnnkit.analysis.summary import gradient_receptive_field
from cnnkit.calc.receptive_field import (
    PRESETS,
    LayerSpec,
    chapter_receptive_fields,
    parse_layers,
    receptive_fields,
)
from cnnkit.core.errors import CnnkitError


def torch_chain(layers: list[LayerSpec]) -> nn.Sequential:
    """The same chain as real torch layers (one channel; explicit per-side padding)."""
    mods: list[nn.Module] = []
    for layer in layers:
        (top, bottom), (left, right) = layer.padding
        if layer.kind == "conv":
            mods.append(nn.ZeroPad2d((left, right, top, bottom)))
            mods.append(nn.Conv2d(1, 1, layer.kernel, layer.stride, dilation=layer.dilation))
        else:
            mods.append(
                nn.MaxPool2d(
                    layer.kernel,
                    layer.stride,
                    (top, left),
                    layer.dilation,
                    ceil_mode=layer.ceil_mode,
                )  # fmt: skip
            )
    return nn.Sequential(*mods)


def expected_box(size, jump, start, unit):
    """Inclusive (lo, hi) per axis of the unit's receptive field, from the formula's output."""
    out = []
    for a in range(2):
        centre = start[a] + unit[a] * jump[a]
        out.append((centre - (size[a] - 1) / 2, centre + (size[a] - 1) / 2))
    return out


def first_inside_unit(size: int, jump: int, start: float) -> int:
    """Smallest unit index whose receptive field starts at input coordinate >= 0."""
    return max(0, math.ceil(((size - 1) / 2 - start) / jump))


@st.composite
def layer_specs(draw) -> LayerSpec:
    def dims(lo: int, hi: int) -> tuple[int, int]:
        first = draw(st.integers(lo, hi))
        return (first, draw(st.integers(lo, hi))) if draw(st.booleans()) else (first, first)

    if draw(st.booleans()):
        kernel = dims(1, 4)
        dilation = dims(1, 2)
        stride = dims(1, 2)
        if stride == (1, 1) and draw(st.integers(0, 3)) == 0:
            padding = "same"
        else:
            padding = draw(
                st.sampled_from([0, 1, (kernel[0] // 2, kernel[1] // 2), (0, kernel[1] - 1)])
            )
        return LayerSpec.conv(kernel, stride, padding, dilation)
    kernel = dims(1, 3)
    dilation = dims(1, 2)
    stride = dims(1, 2)
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    return LayerSpec.pool(kernel, stride, padding, dilation, ceil_mode=draw(st.booleans()))


@settings(max_examples=60, deadline=None)
@given(layers=st.lists(layer_specs(), min_size=1, max_size=5))
def test_recurrence_matches_gradient_receptive_field_of_torch_chain(layers):
    last = receptive_fields(layers)[-1]
    units = [first_inside_unit(last.size[a], last.jump[a], last.start[a]) for a in range(2)]
    # The image reaches well past the two tested units, so no path ends in padding.
    hw = tuple(
        int(last.start[a] + (units[a] + 1) * last.jump[a] + 3 * last.size[a] + 3 * last.jump[a]) + 8
        for a in range(2)
    )
    assume(max(hw) <= 700)
    rows = receptive_fields(layers, hw)
    net = torch_chain(layers)
    with torch.no_grad():
        out = net(torch.zeros(1, 1, *hw))
    # Output sizes: the recurrence's (cnnkit.calc.arithmetic) against the real layers.
    assert rows[-1].output == tuple(out.shape[2:])
    assume(all(units[a] + 1 < out.shape[2 + a] for a in range(2)))
    for du in (0, 1):
        unit = (units[0] + du, units[1] + du)
        box = gradient_receptive_field(net, None, unit, (1, *hw))
        (top, bottom), (left, right) = expected_box(last.size, last.jump, last.start, unit)
        assert (box.top, box.bottom, box.left, box.right) == (top, bottom, left, right)


def test_intermediate_rows_match_the_gradient_of_each_prefix():
    layers = parse_layers("conv3/s2/p1,conv1x7/p0x3,pool3/s2/d2/p1,conv3/d3/p3,conv2/psame")
    rows = receptive_fields(layers, (96, 96))
    for i, row in enumerate(rows):
        net = torch_chain(layers[: i + 1])
        unit = tuple(first_inside_unit(row.size[a], row.jump[a], row.start[a]) for a in range(2))
        box = gradient_receptive_field(net, None, unit, (1, 96, 96))
        assert box.size == row.size, row.name


def test_vgg_like_preset_is_the_chapter_stack_and_the_chapter_formula_differs_after_pooling():
    layers = parse_layers("vgg-like")
    assert [layer.notation() for layer in layers] == [
        "conv3/p1", "conv3/p1", "pool2", "conv3/p1", "conv3/p1", "pool2",
    ]  # fmt: skip
    rows = receptive_fields(layers, 64)
    oracle = []
    for i in range(len(layers)):
        net = torch_chain(layers[: i + 1])
        unit = tuple(first_inside_unit(rows[i].size[a], rows[i].jump[a], 0) + 2 for a in range(2))
        oracle.append(gradient_receptive_field(net, None, unit, (1, 64, 64)).size)
    assert [r.size for r in rows] == oracle
    chapter = chapter_receptive_fields(layers)
    # Equal while every earlier stride is 1 (conv1, conv2, pool1), wrong afterwards.
    assert chapter[:3] == oracle[:3]
    assert all(c[0] < o[0] for c, o in zip(chapter[3:], oracle[3:], strict=True))


def test_chapter_formula_is_exact_for_stride_1_chains():
    layers = parse_layers("exercise-3")
    assert [r.size for r in receptive_fields(layers)] == chapter_receptive_fields(layers)


def test_jump_and_start_follow_the_first_unit_of_a_strided_chain():
    # Two units apart by one step of the last layer are `jump` pixels apart in the input.
    layers = parse_layers("conv5/s2,pool3/s2/p1,conv3/s3")
    rows = receptive_fields(layers, 120)
    net = torch_chain(layers)
    a = gradient_receptive_field(net, None, (3, 3), (1, 120, 120))
    b = gradient_receptive_field(net, None, (4, 5), (1, 120, 120))
    assert b.top - a.top == rows[-1].jump[0]
    assert b.left - a.left == 2 * rows[-1].jump[1]
    assert (a.top + a.bottom) / 2 == rows[-1].start[0] + 3 * rows[-1].jump[0]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_parse_and_run_on_224(name):
    rows = receptive_fields(parse_layers(name), 224)
    assert rows and all(r.output is not None for r in rows)
    net = torch_chain(parse_layers(name))
    with torch.no_grad():
        assert rows[-1].output == tuple(net(torch.zeros(1, 1, 224, 224)).shape[2:])


@pytest.mark.parametrize(
    "text",
    ["conv3", "conv1x7/p0x3", "conv3/s2/p1/d2", "pool2", "pool3/s2/p1/c", "conv4/psame",
     "conv3/p1:0:2:0", "avgpool2/s1", "conv3/s2x1"],
)  # fmt: skip
def test_notation_round_trips(text):
    layers = parse_layers(text)
    assert parse_layers(",".join(layer.notation() for layer in layers)) == layers


def test_repeat_and_whitespace():
    assert parse_layers(" conv3/p1*3 , pool2 ") == [LayerSpec.conv(3, 1, 1)] * 3 + [
        LayerSpec.pool(2)
    ]


def test_same_padding_puts_the_extra_pixel_at_the_end_like_torch():
    (spec,) = parse_layers("conv4/psame")
    assert spec.padding == ((1, 2), (1, 2))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("conv3/q1", "unknown option 'q1'"),
        ("dense3", "starts with conv, pool"),
        ("", "empty"),
        ("conv3,,pool2", "Empty layer"),
        ("conv3*0", "repeat count"),
        ("conv0", "'kernel_size'"),
        ("conv3/s0", "'stride'"),
        ("pool2/p2", "at most half"),
        ("conv3/s2/psame", "stride 1"),
        ("pool3/c/psame", "no padding strings"),
    ],
)
def test_bad_notation_is_a_cnnkit_error_naming_the_problem(text, needle):
    with pytest.raises(CnnkitError, match=needle.replace("*", r"\*")):
        parse_layers(text)


def test_kernel_larger_than_the_feature_map_names_the_layer():
    with pytest.raises(CnnkitError, match="layer 'conv2'"):
        receptive_fields(parse_layers("conv3,conv5"), 6)


def test_receptive_fields_rejects_non_layer_specs():
    with pytest.raises(CnnkitError, match="LayerSpec"):
        receptive_fields([(3, 1)])  # type: ignore[list-item]


# --------------------------------------------------------------------------- CLI


def test_cli_table_with_input_and_chapter_column(cli):
    r = cli("rf", "vgg-like", "--input", "224", "--chapter")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    rows = receptive_fields(parse_layers("vgg-like"), 224)
    chapter = chapter_receptive_fields(parse_layers("vgg-like"))
    for row, ch in zip(rows, chapter, strict=True):
        line = next(line for line in lines if line.startswith(row.name + " "))
        cells = line.split()
        assert cells[2] == str(row.size[0])
        assert f"{row.output[0]}×{row.output[1]}" in cells
        assert (ch != row.size) == ("(differs)" in line)
    assert f"{rows[-1].size[0]}×{rows[-1].size[1]} input pixels" in r.stdout


def test_cli_json_matches_the_library(cli):
    r = cli("rf", "conv3/s2/p1,conv1x7/p0x3,pool2", "--input", "32x40", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    rows = receptive_fields(parse_layers("conv3/s2/p1,conv1x7/p0x3,pool2"), (32, 40))
    assert [tuple(x["size"]) for x in data["layers"]] == [r.size for r in rows]
    assert [tuple(x["output"]) for x in data["layers"]] == [r.output for r in rows]
    assert data["layers"][1]["notation"] == "conv1x7/p0x3"


@pytest.mark.parametrize(
    "args",
    [
        ("conv3/q1",),
        ("conv3", "--input", "2.5"),
        ("conv3", "--input", "0"),
        ("conv5", "--input", "3"),
    ],
)
def test_cli_errors_are_one_line_exit_2(cli, args):
    r = cli("rf", *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("cnnkit rf: error:")
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_rf_does_not_import_torch():
    code = (
        "import sys, contextlib, io; from cnnkit.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['rf', 'vgg-like', '--input', '64'])\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
