"""`cnnkit filter`, `cnnkit kernels` and `cnnkit plot activations`, run as real commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from cnnkit.imaging.kernels import get_kernel, list_kernels

rng = np.random.default_rng(0)


@pytest.fixture
def gray_png(tmp_path):
    data = rng.integers(0, 256, size=(20, 24)).astype(np.uint8)
    Image.fromarray(data).save(tmp_path / "gray.png")
    return data


@pytest.fixture
def colour_png(tmp_path):
    data = rng.integers(0, 256, size=(16, 18, 3)).astype(np.uint8)
    Image.fromarray(data).save(tmp_path / "colour.png")
    return data


def assert_one_line_error(r, *fragments):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert r.stdout == ""


def files(tmp_path):
    return sorted(p.name for p in tmp_path.rglob("*"))


# --- cnnkit filter -----------------------------------------------------------------------


def test_filter_sobel_x_writes_the_scaled_absolute_response(cli, tmp_path, gray_png):
    r = cli("filter", "gray.png", "--kernel", "sobel-x", "-o", "edges.png")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "edges.png"
    out = np.asarray(Image.open(tmp_path / "edges.png"), dtype=np.float64)
    # oracle: scipy.ndimage ("reflect" there = "symmetric" here), |.| scaled to max 255
    response = np.abs(
        ndimage.correlate(gray_png.astype(np.float64), get_kernel("sobel-x"), mode="reflect")
    )
    np.testing.assert_array_equal(out, np.rint(response / response.max() * 255))


def test_filter_blur_is_clipped_and_keeps_colour(cli, tmp_path, colour_png):
    r = cli("filter", "colour.png", "-k", "gaussian:5,1.2", "--boundary", "zeros", "-o", "b.png")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "b.png"), dtype=np.float64)
    k = get_kernel("gaussian", size=5, sigma=1.2)
    expected = np.stack(
        [ndimage.correlate(colour_png[..., c].astype(float), k, mode="constant") for c in range(3)],
        axis=2,
    )  # (H, W, 3)
    np.testing.assert_array_equal(out, np.clip(np.rint(expected), 0, 255))


def test_filter_jpeg_in_and_out(cli, tmp_path):
    smooth = np.add.outer(np.linspace(0, 200, 30), np.linspace(0, 50, 40)).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "in.jpg", quality=95)
    r = cli("filter", "in.jpg", "-k", "box", "-o", "out.jpeg")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "out.jpeg") as img:
        assert img.format == "JPEG" and img.size == (40, 30)
        out = np.asarray(img, dtype=np.float64)
    expected = ndimage.correlate(smooth.astype(float), get_kernel("box"), mode="reflect")
    assert np.abs(out - expected).mean() < 2.0  # JPEG is lossy


def test_filter_gray_flag_and_display_minmax(cli, tmp_path, colour_png):
    r = cli(
        "filter", "colour.png", "-k", "laplacian", "--gray", "--display", "minmax", "-o", "l.png"
    )
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "l.png"))
    assert out.shape == colour_png.shape[:2]
    assert out.min() == 0 and out.max() == 255


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["-k", "nope"], ["cnnkit filter: error:", "Unknown kernel 'nope'", "sobel-x"]),
        (["-k", "gaussian:5,-1"], ["'sigma' parameter of gaussian must be > 0"]),
        (["-k", "box:9", "--boundary", "zeros"], ["Kernel 9x9 is larger than the image 5x6"]),
    ],
)
def test_filter_errors_leave_no_output(cli, tmp_path, args, fragments):
    Image.fromarray(np.zeros((5, 6), dtype=np.uint8)).save(tmp_path / "small.png")
    r = cli("filter", "small.png", *args, "-o", "out.png")
    assert_one_line_error(r, *fragments)
    assert files(tmp_path) == ["small.png"]


def test_filter_unreadable_image(cli, tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    r = cli("filter", "notes.txt", "-k", "sobel-x", "-o", "out.png")
    assert_one_line_error(r, "cannot read image 'notes.txt'")
    r = cli("filter", "missing.png", "-k", "sobel-x", "-o", "out.png")
    assert_one_line_error(r, "cannot read image 'missing.png': no such file")
    assert files(tmp_path) == ["notes.txt"]


def test_filter_unknown_output_suffix(cli, tmp_path, gray_png):
    r = cli("filter", "gray.png", "-k", "sobel-x", "-o", "out.xyz")
    assert_one_line_error(r, "cannot write image 'out.xyz': unknown image suffix '.xyz'")
    assert files(tmp_path) == ["gray.png"]


def test_filter_unwritable_output_path(cli, tmp_path, gray_png):
    (tmp_path / "block").write_text("a file where a folder should be")
    r = cli("filter", "gray.png", "-k", "sobel-x", "-o", "block/out.png")
    assert_one_line_error(r, "cannot write image 'block/out.png': 'block' is a file")
    assert files(tmp_path) == ["block", "gray.png"]


def test_filter_unknown_boundary_lists_the_allowed_ones(cli, tmp_path, gray_png):
    r = cli("filter", "gray.png", "-k", "sobel-x", "--boundary", "wrap", "-o", "o.png")
    assert_one_line_error(r, "'boundary'", "'symmetric', 'zeros', 'reflect'", "Got 'wrap'")
    assert files(tmp_path) == ["gray.png"]


# --- cnnkit kernels ----------------------------------------------------------------------


def png_size(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


def test_kernels_figure_on_the_chapter_pattern(cli, tmp_path):
    r = cli("kernels", "-o", "all.png")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "all.png"
    r = cli("kernels", "--kernels", "identity,sobel-x,sobel-y,box,sharpen", "-o", "chapter.png")
    assert r.returncode == 0, r.stderr
    w_all, h_all = png_size(tmp_path / "all.png")
    w_ch, h_ch = png_size(tmp_path / "chapter.png")
    # 12 panels in a 3x4 grid vs the chapter's 6 in 2x3
    assert w_all > w_ch and h_all > h_ch
    assert w_all / w_ch == pytest.approx(4 / 3, rel=0.1)


def test_kernels_figure_on_an_image_with_parameterised_specs(cli, tmp_path, colour_png):
    r = cli("kernels", "colour.png", "--kernels", "box:3;gaussian:5,1.4", "-o", "fig.svg")
    assert r.returncode == 0, r.stderr
    svg = (tmp_path / "fig.svg").read_text()
    assert "<svg" in svg and "gaussian (size=5, sigma=1.4)" in svg


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--kernels", "sobel-x,nope", "-o", "k.png"], ["Unknown kernel 'nope'"]),
        (["-o", "k.xyz"], ["cannot write figure 'k.xyz': unknown suffix '.xyz'", ".png"]),
        ([], ["-o/--output is required"]),
        (["missing.png", "-o", "k.png"], ["cannot read image 'missing.png'"]),
        (["-o", "block/k.png"], ["cannot write figure 'block/k.png': 'block' is a file"]),
    ],
)
def test_kernels_errors_leave_no_output(cli, tmp_path, args, fragments):
    (tmp_path / "block").write_text("")
    r = cli("kernels", *args)
    assert_one_line_error(r, "cnnkit kernels: error:", *fragments)
    assert files(tmp_path) == ["block"]


def test_kernels_list_shows_every_kernel_with_its_matrix(cli):
    r = cli("kernels", "--list")
    assert r.returncode == 0, r.stderr
    for info in list_kernels():
        assert f"{info.name}" in r.stdout and info.description in r.stdout
    assert "[-1  0  1]\n    [-2  0  2]" in r.stdout  # sobel-x
    assert "gaussian (size=5, sigma=1.0)" in r.stdout


def test_kernels_list_json_matches_the_registry(cli):
    r = cli("kernels", "--list", "--json")
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)
    assert [e["name"] for e in entries] == [i.name for i in list_kernels()]
    for e in entries:
        np.testing.assert_array_equal(np.array(e["matrix"]), get_kernel(e["name"]))
        assert e["params"] == next(i.params for i in list_kernels() if i.name == e["name"])


# --- cnnkit plot activations -------------------------------------------------------------


def test_plot_activations(cli, tmp_path):
    r = cli("plot", "activations", "-o", "plots/act.png")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "plots/act.png"
    w_all, h_all = png_size(tmp_path / "plots" / "act.png")
    r = cli("plot", "activations", "--only", "relu,gelu", "--range", "-3", "3", "-o", "two.png")
    assert r.returncode == 0, r.stderr
    w_two, h_two = png_size(tmp_path / "two.png")
    assert h_all > h_two  # seven panels take two rows, two panels one


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--only", "relu,swish"], ["Unknown activation 'swish'", "gelu-tanh"]),
        (["--range", "2", "1"], ["XMIN < XMAX"]),
    ],
)
def test_plot_activations_errors(cli, tmp_path, args, fragments):
    r = cli("plot", "activations", *args, "-o", "a.png")
    assert_one_line_error(r, "cnnkit plot: error:", *fragments)
    assert files(tmp_path) == []


def test_plot_without_a_name_is_one_line_naming_the_plots_and_exits_2(cli):
    r = cli("plot")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        r.stderr.strip()
        == "cnnkit plot: error: choose a plot: activations (see `cnnkit plot --help`)"
    )


def test_plot_activations_help_lists_every_activation(cli):
    from cnnkit.ops.activations import ACTIVATIONS

    r = cli("plot", "activations", "--help")
    listed = next(line for line in r.stdout.splitlines() if line.startswith("activations:"))
    assert listed.split(":", 1)[1].strip().split(", ") == list(ACTIVATIONS)


@pytest.mark.parametrize("command", [["filter"], ["kernels"], ["plot", "activations"]])
def test_help_shows_defaults(cli, command):
    r = cli(*command, "--help")
    assert r.returncode == 0
    assert "usage: cnnkit" in r.stdout
    if command != ["plot", "activations"]:
        assert "(default: symmetric)" in r.stdout and "gaussian:5,1.4" in r.stdout
