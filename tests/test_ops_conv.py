"""cnnkit.ops.conv2d (fast) and conv2d_reference (loops) against torch and scipy.

Oracles: `torch.nn.Conv2d` / `F.conv2d` (with `F.pad` for per-side padding), `scipy.signal`'s
`correlate2d`, and for the `symmetric` mode, which torch lacks, a gather with an index map
written here from the definition. `torch_conv2d` is shared with tests/test_ops_grad.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.ops import conv2d, conv2d_reference

TORCH_MODES = ("zeros", "reflect", "replicate", "circular")
MODES = (*TORCH_MODES, "symmetric")


# --------------------------------------------------------------------------- torch oracle


def symmetric_index(size: int, before: int, after: int) -> torch.Tensor:
    """Source pixel of each position of a symmetric (edge-repeating) padding: period 2·size."""
    positions = np.arange(-before, size + after) % (2 * size)
    return torch.as_tensor(np.where(positions < size, positions, 2 * size - 1 - positions))


def sides(padding: Any, kernel: tuple[int, int], dilation: Any) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) as torch applies them (for F.pad and the symmetric oracle)."""
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":  # torch: the odd pixel goes to the end (checked by test_same_*)
        th, tw = dh * (kernel[0] - 1), dw * (kernel[1] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    if isinstance(padding, int):
        return (padding,) * 4
    if len(padding) == 2:
        return (padding[0], padding[0], padding[1], padding[1])
    return tuple(padding)


def torch_conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """What torch computes for the same arguments (differentiable in x, w, b)."""
    per_side = isinstance(padding, tuple) and len(padding) == 4
    if padding_mode in TORCH_MODES and not per_side:
        conv = torch.nn.Conv2d(
            x.shape[-3],
            w.shape[0],
            tuple(w.shape[2:]),
            stride,
            padding,
            dilation,
            groups,
            bias=b is not None,
            padding_mode=padding_mode,
            dtype=x.dtype,
        )
        params = {"weight": w} if b is None else {"weight": w, "bias": b}
        return torch.func.functional_call(conv, params, (x,))
    top, bottom, left, right = sides(padding, tuple(w.shape[2:]), dilation)
    if padding_mode == "symmetric":
        h, width = x.shape[-2:]
        x = x.index_select(-2, symmetric_index(h, top, bottom))
        x = x.index_select(-1, symmetric_index(width, left, right))
    else:
        mode = "constant" if padding_mode == "zeros" else padding_mode
        x = F.pad(x, (left, right, top, bottom), mode=mode)
    return F.conv2d(x, w, b, stride, 0, dilation, groups)


def close(ours: np.ndarray, theirs: np.ndarray, dtype: Any) -> None:
    """float64: 1e-10, float32: 1e-5, relative to the result's scale."""
    tol = 1e-10 if dtype == np.float64 else 1e-5
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale)
    assert ours.dtype == dtype and ours.shape == theirs.shape


# --------------------------------------------------------------------------- sweeps


@st.composite
def conv_configs(draw: st.DrawFn, max_size: int = 9) -> dict[str, Any]:
    """A valid conv2d configuration (torch accepts it), every padding form and mode."""
    groups = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dilation = draw(st.sampled_from([1, 2, (1, 2), (2, 1)]))
    form = draw(st.sampled_from(["int", "pair", "sides", "valid", "same"]))
    stride = 1 if form == "same" else draw(st.sampled_from([1, 2, 3, (1, 2), (2, 1)]))
    padding: Any = {
        "int": draw(st.integers(0, 3)),
        "pair": (draw(st.integers(0, 3)), draw(st.integers(0, 3))),
        "sides": tuple(draw(st.integers(0, 3)) for _ in range(4)),
        "valid": "valid",
        "same": "same",
    }[form]
    config = dict(
        n=draw(st.integers(1, 3)),
        c_in=groups * draw(st.integers(1, 3)),
        c_out=groups * draw(st.integers(1, 3)),
        h=draw(st.integers(1, max_size)),
        w=draw(st.integers(1, max_size)),
        kernel=(kh, kw),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        padding_mode=draw(st.sampled_from(MODES)),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )
    top, bottom, left, right = sides(padding, (kh, kw), dilation)
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    assume(config["h"] + top + bottom >= dh * (kh - 1) + 1)
    assume(config["w"] + left + right >= dw * (kw - 1) + 1)
    largest_h, largest_w = max(top, bottom), max(left, right)
    if config["padding_mode"] == "reflect":
        assume(largest_h < config["h"] and largest_w < config["w"])
    if config["padding_mode"] == "circular":
        assume(largest_h <= config["h"] and largest_w <= config["w"])
    return config


def make_arrays(cfg: dict[str, Any], dtype: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    rng = np.random.default_rng(cfg["seed"])
    x = rng.standard_normal((cfg["n"], cfg["c_in"], cfg["h"], cfg["w"])).astype(dtype)
    shape = (cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"])
    w = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(cfg["c_out"]).astype(dtype) if cfg["bias"] else None
    return x, w, b


def conv_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    keys = ("stride", "padding", "dilation", "groups", "padding_mode")
    return {k: cfg[k] for k in keys}


def torch_result(x: np.ndarray, w: np.ndarray, b: Any, **kwargs: Any) -> np.ndarray:
    t = torch_conv2d(
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        **kwargs,
    )
    return t.detach().numpy()


@settings(max_examples=250, deadline=None)
@given(cfg=conv_configs(), dtype=st.sampled_from([np.float32, np.float64]))
def test_conv2d_matches_torch(cfg: dict[str, Any], dtype: Any) -> None:
    x, w, b = make_arrays(cfg, dtype)
    close(conv2d(x, w, b, **conv_kwargs(cfg)), torch_result(x, w, b, **conv_kwargs(cfg)), dtype)


@settings(max_examples=40, deadline=None)
@given(cfg=conv_configs(max_size=6))
def test_conv2d_matches_reference(cfg: dict[str, Any]) -> None:
    x, w, b = make_arrays(cfg, np.float64)
    close(
        conv2d(x, w, b, **conv_kwargs(cfg)),
        conv2d_reference(x, w, b, **conv_kwargs(cfg)),
        np.float64,
    )


@settings(max_examples=20, deadline=None)
@given(cfg=conv_configs(max_size=6))
def test_reference_matches_torch(cfg: dict[str, Any]) -> None:
    x, w, b = make_arrays(cfg, np.float64)
    kwargs = conv_kwargs(cfg)
    close(conv2d_reference(x, w, b, **kwargs), torch_result(x, w, b, **kwargs), np.float64)


def test_same_padding_of_even_kernels_matches_torch_functional() -> None:
    """torch's own F.conv2d(padding="same"), not nn.Conv2d: the extra row/column at the end."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 8))
    for kernel, dilation in [((2, 4), 1), ((4, 2), (1, 3)), ((3, 2), 2)]:
        w = rng.standard_normal((5, 3, *kernel))
        theirs = F.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), padding="same", dilation=dilation
        )
        close(conv2d(x, w, padding="same", dilation=dilation), theirs.numpy(), np.float64)


# --------------------------------------------------------------------------- scipy, 2-D images

SCIPY_BOUNDARY = {"fill": "zeros", "symm": "symmetric", "wrap": "circular"}


@settings(max_examples=80, deadline=None)
@given(
    h=st.integers(4, 12),
    w=st.integers(4, 12),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    mode=st.sampled_from(["valid", "same", "full"]),
    boundary=st.sampled_from(sorted(SCIPY_BOUNDARY)),
    seed=st.integers(0, 2**16),
)
def test_2d_image_matches_scipy_correlate2d(
    h: int, w: int, kh: int, kw: int, mode: str, boundary: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    image, kernel = rng.standard_normal((h, w)), rng.standard_normal((kh, kw))
    theirs = scipy.signal.correlate2d(image, kernel, mode=mode, boundary=boundary)
    ours = conv2d(image, kernel, padding=mode, padding_mode=SCIPY_BOUNDARY[boundary])
    close(ours, theirs, np.float64)


def test_chapter_example_5x5_edge_kernel() -> None:
    """The chapter's manual_convolution example, checked against scipy (not the printed text)."""
    image = np.array(
        [[1, 2, 3, 0, 1], [4, 5, 6, 1, 2], [7, 8, 9, 2, 3], [1, 2, 3, 4, 5], [2, 3, 4, 5, 6]]
    )
    kernel = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
    expected = scipy.signal.correlate2d(image, kernel, mode="valid").astype(np.float64)
    for fn in (conv2d, conv2d_reference):
        out = fn(image, kernel)
        assert out.shape == (3, 3) and out.dtype == np.float64
        np.testing.assert_array_equal(out, expected)
    assert conv2d(image, kernel)[0, 0] == np.sum(image[:3, :3] * kernel)


# --------------------------------------------------------------------------- shapes and dtypes


def test_unbatched_input_matches_torch() -> None:
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((3, 9, 7)), rng.standard_normal((4, 3, 3, 2)), np.ones(4)
    out = conv2d(x, w, b, stride=2, padding=1)
    theirs = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), 2, 1)
    assert out.shape == tuple(theirs.shape) == (4, 5, 4)
    close(out, theirs.numpy(), np.float64)


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype", "expected"),
    [
        (np.float32, np.float32, np.float32),
        (np.float64, np.float64, np.float64),
        (np.int64, np.int64, np.float64),
        (np.uint8, np.float32, np.float32),
        (np.int32, np.float64, np.float64),
    ],
)
def test_dtype_is_kept_and_integers_become_float(x_dtype: Any, w_dtype: Any, expected: Any) -> None:
    x = np.arange(2 * 2 * 6 * 6).reshape(2, 2, 6, 6).astype(x_dtype) % 7
    w = np.ones((3, 2, 3, 3), dtype=w_dtype)
    out = conv2d(x, w, padding=1)
    assert out.dtype == expected
    for fn in (conv2d, conv2d_reference):
        np.testing.assert_array_equal(
            fn(x, w, padding=1),
            torch_result(x.astype(np.float64), w.astype(np.float64), None, padding=1),
        )


def test_empty_batch_gives_empty_output_like_torch() -> None:
    x, w = np.zeros((0, 3, 8, 8), np.float32), np.ones((4, 3, 3, 3), np.float32)
    theirs = F.conv2d(torch.from_numpy(x), torch.from_numpy(w))
    assert conv2d(x, w).shape == tuple(theirs.shape) == (0, 4, 6, 6)


# --------------------------------------------------------------------------- refusals


def torch_refuses(x: np.ndarray, w: np.ndarray, b: Any, **kwargs: Any) -> bool:
    try:
        torch_result(x, w, b, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return True
    return False


def cnnkit_refuses(x: np.ndarray, w: np.ndarray, b: Any, **kwargs: Any) -> bool:
    try:
        conv2d(x, w, b, **kwargs)
    except CnnkitError:
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    c_in=st.integers(1, 4),
    c_in_w=st.integers(1, 4),
    c_out=st.integers(1, 4),
    groups=st.integers(1, 3),
    hw=st.integers(1, 5),
    k=st.integers(1, 6),
    stride=st.integers(0, 2),
    padding=st.sampled_from([-1, 0, 1, 2, 3, 5, "same", "valid"]),
    dilation=st.integers(0, 2),
    padding_mode=st.sampled_from(TORCH_MODES),
    bias_len=st.sampled_from([None, 0, 1, 2, 3, 4]),
)
def test_refuses_exactly_what_torch_refuses(
    c_in: int,
    c_in_w: int,
    c_out: int,
    groups: int,
    hw: int,
    k: int,
    stride: int,
    padding: Any,
    dilation: int,
    padding_mode: str,
    bias_len: int | None,
) -> None:
    if padding_mode != "zeros":
        # nn.Conv2d applies a non-zeros padding_mode with F.pad, which *crops* on negative
        # padding; cnnkit refuses negative padding in every mode, as F.conv2d does.
        assume(padding != -1)
    x = np.ones((1, c_in, hw, hw))
    w = np.ones((c_out, c_in_w, k, k))
    b = None if bias_len is None else np.ones(bias_len)
    kwargs = dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode
    )
    assert cnnkit_refuses(x, w, b, **kwargs) == torch_refuses(x, w, b, **kwargs), kwargs


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        (
            dict(stride=0),
            "'stride' parameter of conv2d must be a positive int or pair of ints. Got 0",
        ),
        (dict(padding=-1), "'padding' parameter of conv2d must be a non-negative int"),
        (dict(dilation=(1, 0)), "'dilation' parameter of conv2d"),
        (dict(padding="same", stride=2), "padding='same' needs stride 1"),
        (dict(padding=3, padding_mode="reflect"), "padding_mode='reflect'"),
        (dict(padding_mode="mirror"), "'padding_mode' parameter of conv2d must be one of"),
        (dict(groups=0), "'groups' parameter of conv2d must be a positive int. Got 0"),
    ],
)
def test_error_messages_name_parameter_and_value(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CnnkitError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        conv2d(np.ones((1, 2, 3, 3)), np.ones((4, 2, 3, 3)), **kwargs)


def test_channel_mismatch_shows_both_shapes() -> None:
    with pytest.raises(ShapeError) as info:
        conv2d(np.ones((1, 3, 8, 8)), np.ones((4, 2, 3, 3)))
    message = str(info.value)
    assert "(1, 3, 8, 8)" in message and "(4, 2, 3, 3)" in message and "groups=1" in message


def test_kernel_larger_than_padded_input_is_a_shape_error() -> None:
    with pytest.raises(ShapeError, match="larger than the padded input"):
        conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 7, 7)), padding=1)


def test_non_contiguous_views_give_the_same_result() -> None:
    """The stride-1 im2col reads each padded image as one run of memory: views must work too."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 3, 10, 12))
    w = rng.standard_normal((4, 3, 3, 3))
    for view in (base[:, :, :, ::2], base.transpose(0, 1, 3, 2), base[:, ::-1, 1:-1, 2:]):
        for kwargs in (dict(), dict(padding=1), dict(stride=2)):
            theirs = F.conv2d(torch.from_numpy(view.copy()), torch.from_numpy(w), **kwargs)
            close(conv2d(view, w, **kwargs), theirs.numpy(), np.float64)
