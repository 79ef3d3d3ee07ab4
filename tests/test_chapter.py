"""`cnnkit.analysis.chapter`: every answer checked against an independent oracle (torch,
scipy, NumPy).

The chapter's printed values (`CHAPTER_PRINTED`) are never used as expected values here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from chapter_code import ChapterText_SimpleCNN
from scipy import signal
from scipy.spatial import distance
from torch import nn

from cnnkit.analysis.chapter import (
    CHAPTER_PRINTED,
    EDGE_KERNEL,
    IMAGE_5X5,
    NOTES,
    OUTPUT_SIZE_CONFIGS,
    PARAM_TABLE_CONFIGS,
    SECTIONS,
    reproduce,
)
from cnnkit.analysis.chapter_compare import matches_printed
from cnnkit.cli.commands.chapter import SECTION_CHOICES
from cnnkit.core.errors import CnnkitError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "chapter.md"


@pytest.fixture(scope="module")
def entries():
    return {e.key: e for e in reproduce()}


def _numel(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _gradient_rf(layers: list[nn.Module], size: int = 64) -> int:
    """Receptive-field height of the centre unit: rows of the input with a non-zero gradient.

    Weights are all ones and pooling is average pooling, so nothing cancels inside the field.
    """
    net = nn.Sequential(*layers).double()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    x = torch.ones(1, 1, size, size, dtype=torch.float64, requires_grad=True)
    y = net(x)  # (1, 1, H_out, W_out)
    y[0, 0, y.shape[2] // 2, y.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
    return int(rows.max() - rows.min() + 1)


def _conv() -> nn.Module:
    return nn.Conv2d(1, 1, 3, padding=1)


# --------------------------------------------------------------------------- 1.1


def test_fc_params_match_a_linear_layer(entries):
    a = entries["1.1-fc-params"].answer
    assert a["weights"] == nn.Linear(224 * 224 * 3, 1000, bias=False, device="meta").weight.numel()
    assert a["weights_and_biases"] == _numel(nn.Linear(224 * 224 * 3, 1000, device="meta"))


def test_shifted_cat_distance_matches_scipy(entries):
    a = entries["1.1-shift"].answer
    original, shifted = np.zeros((5, 5)), np.zeros((5, 5))
    original[[0, 0, 2], [1, 3, 2]] = 1
    shifted[[0, 0, 2], [2, 4, 3]] = 1
    assert a["original_flat"] == torch.flatten(torch.from_numpy(original)).tolist()
    assert a["shifted_flat"] == torch.flatten(torch.from_numpy(shifted)).tolist()
    assert a["distance"] == pytest.approx(distance.euclidean(original.ravel(), shifted.ravel()))


def test_pipeline_stages_match_torch_models(entries):
    a = entries["1.1-pipeline"].answer

    def stages(padding: int) -> list[list[int]]:
        layers = [nn.Conv2d(1, 32, 3, padding=padding), nn.MaxPool2d(2, 2),
                  nn.Conv2d(32, 64, 3, padding=padding), nn.MaxPool2d(2, 2)]  # fmt: skip
        x, out = torch.zeros(1, 1, 28, 28), [[28, 28, 1]]
        for layer in layers:
            x = layer(x)
            out.append([x.shape[2], x.shape[3], x.shape[1]])
        return out

    assert a["diagram_stages"] == stages(0)
    assert a["diagram_flatten"] == torch.zeros(stages(0)[-1]).numel()
    assert a["simple_cnn_stages"] == stages(1)
    model = ChapterText_SimpleCNN()
    assert a["simple_cnn_flatten"] == model.features(torch.zeros(1, 1, 28, 28)).flatten(1).shape[1]
    assert a["simple_cnn_flatten"] == model.fc1.in_features
    # reported as a difference: the diagram is another model than SimpleCNN
    (diff,) = entries["1.1-pipeline"].differences
    assert str(a["diagram_flatten"]) in diff.chapter and str(a["simple_cnn_flatten"]) in diff.cnnkit


# --------------------------------------------------------------------------- 1.2


def test_conv_example_matches_scipy_and_torch(entries):
    out = np.array(entries["1.2-conv"].answer["output"])
    image, kernel = np.array(IMAGE_5X5, float), np.array(EDGE_KERNEL, float)
    np.testing.assert_array_equal(out, signal.correlate2d(image, kernel, mode="valid"))
    t = F.conv2d(torch.from_numpy(image)[None, None], torch.from_numpy(kernel)[None, None])
    np.testing.assert_array_equal(out, t[0, 0].numpy())


def test_worked_example_sum_is_the_first_output(entries):
    a = entries["1.2-worked-example"].answer
    image, kernel = torch.tensor(IMAGE_5X5), torch.tensor(EDGE_KERNEL)
    assert a["products"] == torch.mul(image[:3, :3], kernel).tolist()
    assert a["sum"] == int(
        F.conv2d(image[None, None].double(), kernel[None, None].double())[0, 0, 0, 0]
    )
    assert a["sum"] == sum(map(sum, a["products"]))


def test_output_sizes_match_nn_conv2d(entries):
    got = entries["1.2-output-sizes"].answer["outputs"]
    expected = [
        nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, size, size)).shape[-1]
        for size, k, s, p, _ in OUTPUT_SIZE_CONFIGS
    ]
    assert got == expected


# --------------------------------------------------------------------------- 1.3


def test_multichannel_conv_matches_nn_conv2d(entries):
    a = entries["1.3-multichannel"].answer
    conv = nn.Conv2d(in_channels=3, out_channels=16, kernel_size=3, padding=1)
    assert a["output_shape"] == list(conv(torch.randn(1, 3, 28, 28)).shape)
    assert (a["weight"], a["bias"], a["total"]) == (
        conv.weight.numel(),
        conv.bias.numel(),
        _numel(conv),
    )


def test_vgg_like_receptive_fields_match_the_gradient_oracle(entries):
    a = entries["1.3-receptive-field"].answer
    stack = [_conv(), _conv(), nn.AvgPool2d(2, 2), _conv(), _conv(), nn.AvgPool2d(2, 2)]
    expected = [_gradient_rf(stack[: i + 1]) for i in range(len(stack))]
    assert a["sizes"] == expected
    assert a["final"] == expected[-1]


def test_chapter_formula_is_reproduced_only_as_a_difference(entries):
    e = entries["1.3-receptive-field"]
    # The chapter's simplified recurrence (computed by cnnkit, not copied) differs from the
    # gradient-verified sizes, and the entry reports it.
    assert e.answer["chapter_formula"] != e.answer["sizes"]
    assert {d.item for d in e.differences} == {"sizes", "final"}


@pytest.mark.parametrize(("key", "n"), [("1.3-rf-diagram", 3), ("ex3", 4)])
def test_stride_one_receptive_fields_match_the_gradient_oracle(entries, key, n):
    sizes = entries[key].answer["sizes"]
    assert sizes == [_gradient_rf([_conv() for _ in range(i + 1)]) for i in range(n)]


# --------------------------------------------------------------------------- 1.4


def test_conv2d_basic_matches_torch(entries):
    a = entries["1.4-conv2d"].answer
    conv = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=True, device="meta")
    assert a["output_shape"] == list(conv(torch.empty(8, 3, 224, 224, device="meta")).shape)
    assert a["weight_shape"] == list(conv.weight.shape)
    assert a["bias_shape"] == list(conv.bias.shape)
    assert a["total"] == _numel(conv)


def test_param_table_matches_numel(entries):
    expected = [
        _numel(nn.Conv2d(c_in, c_out, k, device="meta"))
        for c_in, c_out, k, _ in PARAM_TABLE_CONFIGS
    ]
    assert entries["1.4-param-table"].answer["totals"] == expected


@pytest.mark.parametrize(("key", "channels"), [("1.4-fc-vs-conv", [64]), ("ex5", [64, 64, 64])])
def test_fc_vs_conv_matches_numel(entries, key, channels):
    a = entries[key].answer
    fc = _numel(nn.Linear(224 * 224 * 3, 1000, device="meta"))
    convs = [
        nn.Conv2d(c_in, c_out, 3, device="meta")
        for c_in, c_out in zip([3, *channels[:-1]], channels, strict=True)
    ]
    assert a["fc"] == fc
    assert a["per_layer"] == [_numel(m) for m in convs]
    assert a["conv"] == _numel(*convs)
    assert a["reduction"] == pytest.approx(100 * (1 - _numel(*convs) / fc))
    # never shown as 100% (or 0%) when it is not
    assert not a["reduction_text"].startswith("100")


# --------------------------------------------------------------------------- 1.6 and exercises


def test_simple_cnn_counts_match_the_torch_model(entries):
    a = entries["1.6-simple-cnn"].answer
    model = ChapterText_SimpleCNN()
    named = dict(model.named_parameters())
    assert a["names"] == list(named)
    assert a["per_tensor"] == [p.numel() for p in named.values()]
    assert a["total"] == sum(p.numel() for p in model.parameters())
    assert a["fc1_in_features"] == model.fc1.in_features


def test_exercise_1_matches_nn_conv2d(entries):
    out = nn.Conv2d(3, 128, 5, 2, 2)(torch.zeros(1, 3, 64, 64))
    assert entries["ex1"].answer["output"] == [out.shape[2], out.shape[3], out.shape[1]]


def test_exercise_2_matches_numel(entries):
    convs = [nn.Conv2d(3, 64, 7), nn.Conv2d(64, 128, 3), nn.Conv2d(128, 256, 3)]
    assert entries["ex2"].answer["per_layer"] == [_numel(m) for m in convs]
    assert entries["ex2"].answer["total"] == _numel(*convs)


# --------------------------------------------------------------------------- differences


@pytest.mark.parametrize(
    ("printed", "computed", "same"),
    [
        ("2.45", 2.449489742783178, True),
        ("2.45", 2.46, False),
        ("100.00%", 99.99880953171814, False),  # rounding hides a real difference
        ("100.00%", 100.0, True),
        ("99.95%", 99.9497452318158, True),
        ("0.00%", 0.001, False),
        ([1, 2], [1, 2], True),
        ([[1, 2]], [[1, 3]], False),
        (-13, 0, False),
        ([1, 2], [1, 2, 3], False),
    ],
)
def test_matches_rules(printed, computed, same):
    assert matches_printed(printed, computed) is same


def test_every_difference_has_its_own_note(entries):
    for e in entries.values():
        for d in e.differences:
            assert d.note and d.note != "The chapter prints a different value.", (e.key, d.item)
    assert set(NOTES) <= {(k, item) for k, v in CHAPTER_PRINTED.items() for item in v}


def test_printed_items_exist_in_the_answers(entries):
    for key, items in CHAPTER_PRINTED.items():
        assert set(items) <= set(entries[key].answer), key


def test_docs_list_every_difference_with_both_numbers(entries):
    text = DOCS.read_text(encoding="utf-8")
    for e in entries.values():
        for d in e.differences:
            for value in (d.chapter, d.cnnkit):
                if isinstance(value, int | str) and not isinstance(value, bool):
                    shown = f"{value:,}" if isinstance(value, int) else value
                    numbers = re.findall(r"-?[\d,.]+%?", str(shown))
                    for number in numbers:
                        assert number in text, (e.key, d.item, number)


# --------------------------------------------------------------------------- sections and CLI


def test_sections_filter_and_cover_everything():
    assert set(SECTION_CHOICES) == set(SECTIONS)
    every = reproduce()
    assert [e.key for s in SECTIONS for e in reproduce(s)] == [e.key for e in every]
    with pytest.raises(CnnkitError, match=r"'section'.*Got '1.9' instead"):
        reproduce("1.9")


def test_cli_json_is_the_library_result(cli):
    r = cli("chapter", "1.2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [e["key"] for e in data["entries"]] == [e.key for e in reproduce("1.2")]
    conv = next(e for e in data["entries"] if e["key"] == "1.2-conv")
    expected = signal.correlate2d(np.array(IMAGE_5X5), np.array(EDGE_KERNEL), mode="valid")
    assert conv["answer"]["output"] == expected.tolist()
    assert conv["differences"][0]["chapter"] == CHAPTER_PRINTED["1.2-conv"]["output"]


def test_cli_table_and_differences_only(cli):
    r = cli("chapter", "--differences")
    assert r.returncode == 0, r.stderr
    shown = set(re.findall(r"^\[([\w.-]+)\]", r.stdout, flags=re.M))
    assert shown == {e.key for e in reproduce() if e.differences}
    assert "Traceback" not in r.stderr


def test_cli_bad_section_is_one_line_exit_2(cli):
    r = cli("chapter", "2.1")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "cnnkit chapter: error: The 'section' parameter must be one of "
        "1.1, 1.2, 1.3, 1.4, 1.6, ex1, ex2, ex3, ex5. Got '2.1' instead."
    ]


def test_chapter_does_not_import_torch():
    code = (
        "import sys, contextlib, io\n"
        "from cnnkit.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['chapter'])\n"
        "print(rc, sorted(m for m in ('torch', 'scipy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0 []"
