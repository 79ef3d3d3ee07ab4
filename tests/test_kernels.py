"""Kernels and filter_image against scipy.signal / scipy.ndimage, plus their defining properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage, signal

from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.imaging.kernels import (
    BOUNDARIES,
    CHAPTER_KERNELS,
    chapter_test_pattern,
    filter_image,
    get_kernel,
    kernel_from_spec,
    kernel_title,
    list_kernels,
    parse_kernel_spec,
)
from cnnkit.ops import PADDING_MODES

NAMES = [info.name for info in list_kernels()]
# cnnkit boundary -> scipy.ndimage mode (scipy's "reflect" is our "symmetric")
NDIMAGE_MODE = {
    "symmetric": "reflect",
    "zeros": "constant",
    "reflect": "mirror",
    "replicate": "nearest",
    "circular": "wrap",
}
# cnnkit boundary -> scipy.signal.correlate2d boundary, where it has one
SIGNAL_BOUNDARY = {"symmetric": "symm", "zeros": "fill", "circular": "wrap"}
rng = np.random.default_rng(0)


def ndimage_same(image: np.ndarray, kernel: np.ndarray, boundary: str) -> np.ndarray:
    """Oracle: scipy.ndimage.correlate, shifted so an even kernel pads more at the bottom/right."""
    origin = [(k - 1) // 2 - k // 2 for k in kernel.shape]  # 0 for odd sizes, -1 for even
    return ndimage.correlate(image, kernel, mode=NDIMAGE_MODE[boundary], origin=origin)


def test_the_required_kernels_are_registered():
    required = {"identity", "sobel-x", "sobel-y", "prewitt-x", "prewitt-y", "box", "gaussian"}
    required |= {"sharpen", "laplacian", "edge", "emboss"}
    assert required <= set(NAMES)
    assert set(BOUNDARIES) == set(NDIMAGE_MODE) == set(PADDING_MODES)  # conv2d serves them all


@pytest.mark.parametrize("name", NAMES)
def test_every_kernel_is_a_2d_float_array_with_its_listed_defaults(name):
    info = next(i for i in list_kernels() if i.name == name)
    k = get_kernel(name)
    assert k.dtype == np.float64 and k.ndim == 2
    np.testing.assert_array_equal(get_kernel(name, **info.params), k)
    assert info.description


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_every_kernel_and_boundary_matches_ndimage(name, boundary):
    image = rng.uniform(0, 255, size=(11, 13))
    k = get_kernel(name)
    np.testing.assert_allclose(
        filter_image(image, k, boundary=boundary), ndimage_same(image, k, boundary), atol=1e-9
    )


@settings(max_examples=80, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    boundary=st.sampled_from(BOUNDARIES),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_kernels_match_ndimage_including_even_sizes(h, w, kh, kw, boundary, seed):
    assume(kh <= h and kw <= w)  # larger kernels are refused (tested below)
    r = np.random.default_rng(seed)
    image, k = r.normal(size=(h, w)), r.normal(size=(kh, kw))
    np.testing.assert_allclose(
        filter_image(image, k, boundary=boundary),
        ndimage_same(image, k, boundary),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("boundary", list(SIGNAL_BOUNDARY))
@pytest.mark.parametrize("size", [1, 3, 5])
def test_odd_kernels_match_signal_correlate2d_same(boundary, size):
    image = rng.normal(size=(9, 12))
    k = rng.normal(size=(size, size))
    expected = signal.correlate2d(image, k, mode="same", boundary=SIGNAL_BOUNDARY[boundary])
    np.testing.assert_allclose(filter_image(image, k, boundary=boundary), expected, atol=1e-12)


def test_chapter_figure_kernels_match_the_chapters_own_computation():
    """Section 1.2 filters its test pattern with signal.correlate2d(mode='same', 'symm')."""
    pattern = chapter_test_pattern()
    assert pattern.shape == (6, 7)
    assert set(CHAPTER_KERNELS) <= set(NAMES)
    for name in CHAPTER_KERNELS:
        k = get_kernel(name)
        expected = signal.correlate2d(pattern, k, mode="same", boundary="symm")
        np.testing.assert_allclose(filter_image(pattern, k), expected, atol=1e-12)


def test_rgb_filters_each_channel_alone():
    image = rng.uniform(0, 255, size=(8, 10, 3))
    k = get_kernel("sobel-x")
    out = filter_image(image, k, boundary="reflect")
    assert out.shape == image.shape
    for c in range(3):
        np.testing.assert_allclose(
            out[:, :, c], filter_image(image[:, :, c], k, boundary="reflect")
        )


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_identity_returns_the_image(boundary):
    image = rng.uniform(0, 255, size=(7, 9))
    for size in (1, 3, 5):
        np.testing.assert_array_equal(
            filter_image(image, get_kernel("identity", size=size), boundary=boundary), image
        )


@pytest.mark.parametrize(
    ("name", "total"),
    [("identity", 1), ("box", 1), ("gaussian", 1), ("sharpen", 1), ("emboss", 1)]
    + [(n, 0) for n in ("sobel-x", "sobel-y", "prewitt-x", "prewitt-y", "laplacian", "edge")],
)
def test_flat_images_give_kernel_sum_times_the_level(name, total):
    k = get_kernel(name)
    assert k.sum() == pytest.approx(total, abs=1e-12)
    flat = np.full((6, 6), 100.0)
    np.testing.assert_allclose(
        filter_image(flat, k, boundary="replicate"), 100.0 * total, atol=1e-9
    )


def step_image(axis: int) -> np.ndarray:
    """Dark (0) then bright (255) along `axis`: a vertical edge for axis 1, horizontal for 0."""
    image = np.zeros((8, 8))
    if axis == 1:
        image[:, 4:] = 255.0
    else:
        image[4:, :] = 255.0
    return image


@pytest.mark.parametrize(("name", "axis"), [("sobel-x", 1), ("prewitt-x", 1)])
def test_x_derivatives_respond_positively_to_dark_to_bright_vertical_edges(name, axis):
    out = filter_image(step_image(axis), get_kernel(name))
    weight = get_kernel(name)[:, 2].sum()  # 4 for Sobel, 3 for Prewitt
    np.testing.assert_allclose(out[:, 3:5], 255.0 * weight)  # the two columns at the edge
    np.testing.assert_allclose(out[:, :3], 0.0)
    np.testing.assert_allclose(out[:, 5:], 0.0)
    # no response to a horizontal edge
    np.testing.assert_allclose(filter_image(step_image(0), get_kernel(name)), 0.0)


@pytest.mark.parametrize("name", ["sobel-y", "prewitt-y"])
def test_y_derivatives_respond_positively_to_dark_above_bright(name):
    out = filter_image(step_image(0), get_kernel(name))
    assert (out[3:5] > 0).all() and np.allclose(out[:3], 0) and np.allclose(out[5:], 0)
    np.testing.assert_allclose(filter_image(step_image(1), get_kernel(name)), 0.0)
    np.testing.assert_array_equal(get_kernel(name), get_kernel(name.replace("-y", "-x")).T)


def test_flipped_edge_gives_the_opposite_sign():
    image = step_image(1)
    k = get_kernel("sobel-x")
    np.testing.assert_allclose(filter_image(255 - image, k), -filter_image(image, k))


def test_kernel_relationships():
    identity, box = get_kernel("identity"), get_kernel("box")
    lap = get_kernel("laplacian")
    np.testing.assert_array_equal(get_kernel("sharpen"), identity - lap)
    np.testing.assert_allclose(get_kernel("edge"), 9 * identity - 9 * box)
    emboss = get_kernel("emboss")
    np.testing.assert_array_equal(emboss - identity, -(emboss - identity)[::-1, ::-1])


@pytest.mark.parametrize(("size", "sigma"), [(3, 0.5), (5, 1.0), (7, 2.0), (4, 1.0), (9, 1.4)])
def test_gaussian_is_a_normalised_sampled_gaussian(size, sigma):
    k = get_kernel("gaussian", size=size, sigma=sigma)
    assert k.shape == (size, size)
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    g = np.exp(-((x - c) ** 2 + (y - c) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(k, g / g.sum(), rtol=1e-12)
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])


@pytest.mark.parametrize(("radius", "sigma"), [(1, 0.8), (2, 1.0), (3, 1.5)])
def test_gaussian_blur_matches_ndimage_gaussian_filter(radius, sigma):
    image = rng.uniform(0, 255, size=(15, 17))
    k = get_kernel("gaussian", size=2 * radius + 1, sigma=sigma)
    # ndimage uses the same normalised samples out to int(truncate * sigma + 0.5) = radius
    expected = ndimage.gaussian_filter(image, sigma, mode="reflect", truncate=radius / sigma)
    np.testing.assert_allclose(filter_image(image, k, boundary="symmetric"), expected, atol=1e-9)


def test_box_is_the_window_mean():
    image = rng.uniform(0, 255, size=(10, 10))
    out = filter_image(image, get_kernel("box", size=3), boundary="zeros")
    assert out[4, 6] == pytest.approx(image[3:6, 5:8].mean())


# --- specs and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("sobel-x", ("sobel-x", {})),
        ("box:5", ("box", {"size": 5})),
        ("gaussian:5,1.4", ("gaussian", {"size": 5, "sigma": 1.4})),
        ("gaussian:sigma=2", ("gaussian", {"sigma": 2.0})),
        ("gaussian: 7 , sigma = 3", ("gaussian", {"size": 7, "sigma": 3.0})),
        ("gaussian:", ("gaussian", {})),
    ],
)
def test_parse_kernel_spec(spec, expected):
    assert parse_kernel_spec(spec) == expected


def test_kernel_from_spec_equals_get_kernel():
    np.testing.assert_array_equal(
        kernel_from_spec("gaussian:5,1.4"), get_kernel("gaussian", size=5, sigma=1.4)
    )
    assert kernel_title("gaussian:5,1.4") == "gaussian (size=5, sigma=1.4)"
    assert kernel_title("sobel-x") == "sobel-x"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", r"Unknown kernel 'nope'\. Known kernels: identity, sobel-x, .*emboss"),
        ("box:0", r"'size' parameter of box must be an int from 1 to 999\. Got 0"),
        ("box:2.5", r"'size' parameter of box must be an integer\. Got '2.5'"),
        ("box:5000", r"from 1 to 999\. Got 5000"),
        ("gaussian:5,0", r"'sigma' parameter of gaussian must be > 0\. Got 0.0"),
        ("gaussian:5,nan", r"'sigma' parameter of gaussian must be finite"),
        ("gaussian:5,1,3", r"Kernel 'gaussian' takes 2 parameter\(s\) \(size, sigma\)"),
        ("gaussian:mu=3", r"Kernel 'gaussian' has no parameter 'mu' \(parameters: size, sigma\)"),
        ("sobel-x:3", r"Kernel 'sobel-x' takes 0 parameter\(s\) \(none\)"),
        ("identity:4", r"'size' parameter of identity must be odd\. Got 4"),
    ],
)
def test_bad_specs_are_refused(spec, message):
    with pytest.raises(CnnkitError, match=message):
        kernel_from_spec(spec)


def test_get_kernel_refuses_unknown_parameters_and_bools():
    with pytest.raises(CnnkitError, match="has no parameter 'radius'"):
        get_kernel("box", radius=2)
    with pytest.raises(CnnkitError, match="Got True"):
        get_kernel("box", size=True)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_larger_than_the_image_is_refused(boundary):
    with pytest.raises(ShapeError, match="Kernel 5x5 is larger than the image 4x9"):
        filter_image(np.zeros((4, 9)), get_kernel("box", size=5), boundary=boundary)


def test_unknown_boundary_is_refused():
    with pytest.raises(CnnkitError, match="'boundary'.*'symmetric', 'zeros'.*Got 'wrap'"):
        filter_image(np.zeros((4, 4)), get_kernel("box"), boundary="wrap")


@pytest.mark.parametrize(("image_shape", "kernel_shape"), [((4,), (3, 3)), ((4, 4), (3,))])
def test_bad_shapes_are_refused(image_shape, kernel_shape):
    with pytest.raises(ShapeError, match="Got"):
        filter_image(np.zeros(image_shape), np.ones(kernel_shape))


def test_docs_describe_every_kernel():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "kernels.md").read_text()
    for name in NAMES:
        assert f"| `{name}` |" in text, name
