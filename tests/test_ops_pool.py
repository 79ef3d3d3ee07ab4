"""cnnkit.ops max_pool2d / avg_pool2d against torch.nn.functional, including refusals and ties."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnnkit.core.errors import CnnkitError
from cnnkit.ops import avg_pool2d, max_pool2d, max_pool2d_backward


@st.composite
def pool_configs(draw: st.DrawFn, dilation: bool = True) -> dict[str, Any]:
    """A pooling configuration torch accepts."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([None, 1, 2, 3, (1, 2), (3, 1)]))
    cfg = dict(
        shape=(
            draw(st.integers(1, 3)),
            draw(st.integers(1, 3)),
            draw(st.integers(1, 10)),
            draw(st.integers(1, 10)),
        ),
        kernel_size=draw(st.sampled_from([kh, (kh, kw)])),
        stride=stride,
        padding=(draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))),
        ceil_mode=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )
    if dilation:
        cfg["dilation"] = draw(st.sampled_from([1, 2, (1, 3)]))
    try:  # keep the configurations torch accepts (refusals are tested separately)
        out = F.max_pool2d(torch.zeros(cfg["shape"]), **pool_kwargs(cfg))
    except RuntimeError:
        assume(False)
    # A dilated window can fall entirely into the padding: torch returns -inf there with an
    # index outside the input, a degenerate case left out of the comparison (see docs/conv.md).
    assume(bool(torch.isfinite(out).all()))
    return cfg


def pool_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k not in ("shape", "seed")}


def data(cfg: dict[str, Any], dtype: Any, ties: bool) -> np.ndarray:
    rng = np.random.default_rng(cfg["seed"])
    if ties:  # few distinct values: many windows hold their maximum more than once
        return rng.integers(0, 3, cfg["shape"]).astype(dtype)
    return rng.standard_normal(cfg["shape"]).astype(dtype)


@settings(max_examples=250, deadline=None)
@given(
    cfg=pool_configs(),
    dtype=st.sampled_from([np.float32, np.float64]),
    ties=st.booleans(),
)
def test_max_pool2d_matches_torch(cfg: dict[str, Any], dtype: Any, ties: bool) -> None:
    x = data(cfg, dtype, ties)
    kwargs = pool_kwargs(cfg)
    out, idx = max_pool2d(x, return_indices=True, **kwargs)
    t_out, t_idx = F.max_pool2d(torch.from_numpy(x), return_indices=True, **kwargs)
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(idx, t_idx.numpy())  # ties: the same (first) position
    assert out.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(max_pool2d(x, **kwargs), out)


@settings(max_examples=250, deadline=None)
@given(
    cfg=pool_configs(dilation=False),
    dtype=st.sampled_from([np.float32, np.float64]),
    count_include_pad=st.booleans(),
    divisor_override=st.sampled_from([None, 1, 3, -2]),
)
def test_avg_pool2d_matches_torch(
    cfg: dict[str, Any], dtype: Any, count_include_pad: bool, divisor_override: int | None
) -> None:
    x = data(cfg, dtype, ties=False)
    kwargs = dict(
        pool_kwargs(cfg), count_include_pad=count_include_pad, divisor_override=divisor_override
    )
    theirs = F.avg_pool2d(torch.from_numpy(x), **kwargs).numpy()
    ours = avg_pool2d(x, **kwargs)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol)
    assert ours.dtype == dtype


def test_unbatched_and_2d_inputs() -> None:
    x = np.random.default_rng(0).standard_normal((3, 7, 6))
    theirs = F.max_pool2d(torch.from_numpy(x), 3, 2, 1).numpy()  # torch: (C, H, W) is unbatched
    np.testing.assert_array_equal(max_pool2d(x, 3, 2, 1), theirs)
    np.testing.assert_array_equal(max_pool2d(x[0], 3, 2, 1), theirs[0])  # cnnkit: (H, W) too
    np.testing.assert_allclose(avg_pool2d(x[1], 2), F.avg_pool2d(torch.from_numpy(x), 2)[1].numpy())


def test_ties_go_to_the_first_position_in_scan_order() -> None:
    """All-equal windows (e.g. zeros after ReLU): torch picks each window's top-left cell."""
    x = np.zeros((1, 1, 4, 6))
    _, idx = max_pool2d(x, 2, return_indices=True)
    _, t_idx = F.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    np.testing.assert_array_equal(idx, t_idx.numpy())
    np.testing.assert_array_equal(idx[0, 0], [[0, 2, 4], [12, 14, 16]])
    # (0, 1) and (1, 0) tie: scan order is row by row, so (0, 1) wins
    y = np.array([[[[0.0, 5.0], [5.0, 1.0]]]])
    assert max_pool2d(y, 2, return_indices=True)[1].item() == 1
    assert F.max_pool2d(torch.from_numpy(y), 2, return_indices=True)[1].item() == 1


def test_integer_input_becomes_float64() -> None:
    x = np.arange(16).reshape(1, 1, 4, 4)
    assert max_pool2d(x, 2).dtype == np.float64 and avg_pool2d(x, 2).dtype == np.float64
    np.testing.assert_array_equal(avg_pool2d(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def refuses(fn: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        fn(*args, **kwargs)
    except (CnnkitError, RuntimeError, ValueError):
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(
    hw=st.integers(1, 5),
    kernel=st.integers(0, 6),
    stride=st.sampled_from([None, 0, 1, 2]),
    padding=st.integers(-1, 3),
    dilation=st.integers(0, 2),
    ceil_mode=st.booleans(),
    avg=st.booleans(),
)
def test_refuses_exactly_what_torch_refuses(
    hw: int, kernel: int, stride: Any, padding: int, dilation: int, ceil_mode: bool, avg: bool
) -> None:
    x = np.ones((1, 2, hw, hw))
    kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if avg:
        ours, theirs = avg_pool2d, F.avg_pool2d
    else:
        ours, theirs = max_pool2d, F.max_pool2d
        kwargs["dilation"] = dilation
    if refuses(ours, x, **kwargs):
        with pytest.raises(CnnkitError):
            ours(x, **kwargs)
    assert refuses(ours, x, **kwargs) == refuses(theirs, torch.from_numpy(x), **kwargs), kwargs


@pytest.mark.parametrize(
    ("fn", "kwargs", "fragment"),
    [
        (max_pool2d, dict(kernel_size=2, stride=0), "'stride' parameter of pool2d"),
        (max_pool2d, dict(kernel_size=2, padding=2), "at most half the kernel size"),
        (avg_pool2d, dict(kernel_size=2, divisor_override=0), "'divisor_override'"),
        (max_pool2d, dict(kernel_size=9), "larger than the padded input"),
    ],
)
def test_error_messages_name_parameter_and_value(
    fn: Any, kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(CnnkitError, match=fragment):
        fn(np.ones((1, 1, 4, 4)), **kwargs)


def test_window_entirely_in_the_padding_gets_minus_inf_and_index_minus_one() -> None:
    """Dilation can put every tap of a window into the padding; torch returns -inf there."""
    x = np.ones((1, 1, 1, 1))
    out, idx = max_pool2d(x, 2, padding=1, dilation=2, return_indices=True)
    theirs = F.max_pool2d(torch.from_numpy(x), 2, padding=1, dilation=2)
    np.testing.assert_array_equal(out, theirs.numpy())
    assert out.item() == -np.inf and idx.item() == -1
    for indices in (None, idx):  # and such a window passes no gradient
        grad = max_pool2d_backward(
            np.ones((1, 1, 1, 1)), x, 2, padding=1, dilation=2, indices=indices
        )
        np.testing.assert_array_equal(grad, np.zeros_like(x))
