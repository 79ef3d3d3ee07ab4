"""Activations and their derivatives against torch.nn.functional and torch autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnnkit.core.errors import CnnkitError
from cnnkit.ops.activations import ACTIVATIONS, get_activation, normal_cdf

# name -> torch function taking (tensor, **params) with the registry's parameter names
TORCH = {
    "relu": lambda t: F.relu(t),
    "leaky-relu": lambda t, negative_slope: F.leaky_relu(t, negative_slope),
    "sigmoid": lambda t: torch.sigmoid(t),
    "tanh": lambda t: torch.tanh(t),
    "elu": lambda t, alpha: F.elu(t, alpha),
    "gelu": lambda t, approximate: F.gelu(t, approximate=approximate),
    "gelu-tanh": lambda t, approximate: F.gelu(t, approximate=approximate),
}
NAMES = list(ACTIVATIONS)
# parameters other than the defaults, to exercise with_params against torch too
OTHER_PARAMS = {"leaky-relu": {"negative_slope": 0.2}, "elu": {"alpha": 0.5}}


def torch_value_and_grad(name: str, x: np.ndarray, **params) -> tuple[np.ndarray, np.ndarray]:
    t = torch.tensor(x, requires_grad=True)
    y = TORCH[name](t, **{**ACTIVATIONS[name].params, **params})
    y.sum().backward()
    assert t.grad is not None
    return y.detach().numpy(), t.grad.numpy()


def test_every_registered_activation_has_a_torch_oracle():
    assert set(TORCH) == set(ACTIVATIONS)


# Up to 1e30: beyond ~1e102 torch's own tanh-GELU derivative is NaN (x^3 overflows).
moderate = st.floats(-1e30, 1e30, allow_nan=False, allow_subnormal=False)
near_zero = st.floats(-40, 40, allow_nan=False)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(
        np.float64, hnp.array_shapes(max_dims=3, max_side=5), elements=near_zero | moderate
    )
)
def test_float64_matches_torch(name, x):
    act = ACTIVATIONS[name]
    y_ref, g_ref = torch_value_and_grad(name, x)
    y, g = act.forward(x), act.grad(x)
    assert y.dtype == g.dtype == np.float64 and y.shape == g.shape == x.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None)
@given(x=hnp.arrays(np.float32, st.integers(1, 30), elements=st.floats(-1e4, 1e4, width=32)))
def test_float32_stays_float32_and_matches_torch_float64(name, x):
    act = ACTIVATIONS[name]
    y_ref, g_ref = torch_value_and_grad(name, x.astype(np.float64))
    y, g = act.forward(x), act.grad(x)
    assert y.dtype == g.dtype == np.float32
    np.testing.assert_allclose(y, y_ref, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(g, g_ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(OTHER_PARAMS))
def test_non_default_parameters_match_torch(name):
    params = OTHER_PARAMS[name]
    act = get_activation(name, **params)
    x = np.linspace(-5, 5, 101)  # includes 0
    y_ref, g_ref = torch_value_and_grad(name, x, **params)
    np.testing.assert_allclose(act.forward(x), y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(act.grad(x), g_ref, rtol=1e-12, atol=1e-12)
    assert act.params == params
    assert ACTIVATIONS[name].params != params  # the registry entry is unchanged


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("x0", [0.0, -0.0])
def test_derivative_at_zero_follows_torch_autograd(name, x0):
    x = np.array([x0])
    _, g_ref = torch_value_and_grad(name, x)
    assert ACTIVATIONS[name].grad(x)[0] == g_ref[0]


def test_kink_conventions():
    zero = np.zeros(1)
    assert ACTIVATIONS["relu"].grad(zero)[0] == 0.0
    assert get_activation("leaky-relu", negative_slope=0.3).grad(zero)[0] == pytest.approx(0.3)
    assert get_activation("elu", alpha=0.5).grad(zero)[0] == 0.5


# (value, derivative) at -M and at +M for M = the largest finite number of the dtype
LIMITS = {
    "relu": lambda m: ((0, 0), (m, 1)),
    "leaky-relu": lambda m: ((-0.01 * m, 0.01), (m, 1)),
    "sigmoid": lambda m: ((0, 0), (1, 0)),
    "tanh": lambda m: ((-1, 0), (1, 0)),
    "elu": lambda m: ((-1, 0), (m, 1)),
    "gelu": lambda m: ((0, 0), (m, 1)),
    "gelu-tanh": lambda m: ((0, 0), (m, 1)),
}


def test_every_registered_activation_has_its_limits_listed():
    assert set(LIMITS) == set(ACTIVATIONS)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_extreme_inputs_give_the_limits_without_warnings(name, dtype):
    m = float(np.finfo(dtype).max)
    x = np.array([-m, m], dtype=dtype)
    y, g = ACTIVATIONS[name].forward(x), ACTIVATIONS[name].grad(x)
    assert y.dtype == g.dtype == dtype
    (y_lo, g_lo), (y_hi, g_hi) = LIMITS[name](m)
    np.testing.assert_allclose(y.astype(np.float64), [y_lo, y_hi], rtol=1e-3, atol=0)
    np.testing.assert_allclose(g.astype(np.float64), [g_lo, g_hi], rtol=1e-3, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_grad_is_the_derivative_of_forward(name):
    """Central finite differences, away from the kinks at 0: independent of torch."""
    act = ACTIVATIONS[name]
    x = np.concatenate([np.linspace(-6, -0.01, 200), np.linspace(0.01, 6, 200)])
    h = 1e-6
    fd = (act.forward(x + h) - act.forward(x - h)) / (2 * h)
    np.testing.assert_allclose(act.grad(x), fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_integers_are_computed_in_float64(name):
    y = ACTIVATIONS[name].forward(np.array([-2, 0, 3]))
    assert y.dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_forward_does_not_modify_its_input(name):
    x = np.linspace(-3, 3, 13)
    before = x.copy()
    ACTIVATIONS[name].forward(x)
    ACTIVATIONS[name].grad(x)
    np.testing.assert_array_equal(x, before)


def test_normal_cdf_matches_math_erfc_in_both_tails():
    x = np.linspace(-37, 9, 4601)
    ref = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(normal_cdf(x), ref, rtol=2e-12, atol=0)


def test_sigmoid_has_no_overflow_warning_at_float64_limits():
    x = np.array([-1000.0, -745.0, 0.0, 745.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        y = ACTIVATIONS["sigmoid"].forward(x)
    np.testing.assert_allclose(y, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-300)


def test_unknown_activation_lists_the_known_ones():
    with pytest.raises(CnnkitError, match="Unknown activation 'swish'.*relu.*gelu-tanh"):
        get_activation("swish")


def test_underscore_names_are_accepted():
    assert get_activation("leaky_relu") is ACTIVATIONS["leaky-relu"]


def test_unknown_parameter_is_refused():
    with pytest.raises(CnnkitError, match="no parameter 'slope'.*negative_slope"):
        get_activation("leaky-relu", slope=0.1)


def test_bad_gelu_approximation_is_refused():
    with pytest.raises(CnnkitError, match="'approximate'.*Got 'fast'"):
        get_activation("gelu", approximate="fast").forward(np.zeros(2))


def test_docs_describe_every_activation():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "activations.md").read_text()
    for name in NAMES:
        assert f"| `{name}` |" in text, name
