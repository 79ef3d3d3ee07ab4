"""Activation functions and their derivatives, in NumPy (section 1.5 and the usual companions).

Each function has a `*_grad` twin: the derivative with respect to the input, evaluated at x
(multiply by the upstream gradient to back-propagate). At kinks the derivative follows
PyTorch's autograd, so a NumPy engine and a torch engine agree bit for bit in spirit:

    relu'(0) = 0            leaky_relu'(0) = negative_slope          elu'(0) = alpha

Everything is vectorised and dtype-preserving: float16/float32/float64 in, the same dtype out
(integers and booleans are computed in float64). No function warns on overflow for large |x|.

The registry `ACTIVATIONS` maps a name to an `Activation` with `forward(x)` and `grad(x)`;
`get_activation(name, **params)` makes one with other parameters (e.g. `negative_slope=0.2`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "ArrayFn",
    "elu",
    "elu_grad",
    "gelu",
    "gelu_grad",
    "get_activation",
    "leaky_relu",
    "leaky_relu_grad",
    "normal_cdf",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
]

ArrayFn = Callable[..., np.ndarray]

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_COEF = 0.044715


def _as_float(x: Any) -> np.ndarray:
    """x as a floating array (a view when it already is one); other dtypes become float64."""
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def _where(cond: np.ndarray, a: Any, b: Any, dtype: np.dtype) -> np.ndarray:
    """np.where whose scalar branches do not promote float32 to float64."""
    return np.where(cond, np.asarray(a, dtype=dtype), np.asarray(b, dtype=dtype))


# --- ReLU family -------------------------------------------------------------------------


def relu(x: Any) -> np.ndarray:
    """max(0, x)."""
    x = _as_float(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False)


def relu_grad(x: Any) -> np.ndarray:
    """1 where x > 0, else 0 (0 at x = 0, as torch)."""
    x = _as_float(x)
    return (x > 0).astype(x.dtype)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> np.ndarray:
    """x where x > 0, else negative_slope * x."""
    x = _as_float(x)
    return np.where(x > 0, x, x * x.dtype.type(negative_slope))


def leaky_relu_grad(x: Any, negative_slope: float = 0.01) -> np.ndarray:
    """1 where x > 0, else negative_slope (also at x = 0, as torch)."""
    x = _as_float(x)
    return _where(x > 0, 1, negative_slope, x.dtype)


def elu(x: Any, alpha: float = 1.0) -> np.ndarray:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    x = _as_float(x)
    # expm1 of the clipped value: no overflow for large positive x in the unused branch
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0)))


def elu_grad(x: Any, alpha: float = 1.0) -> np.ndarray:
    """1 where x > 0, else alpha * exp(x) (alpha at x = 0, as torch)."""
    x = _as_float(x)
    one = np.ones((), dtype=x.dtype)
    return np.where(x > 0, one, x.dtype.type(alpha) * np.exp(np.minimum(x, 0)))


# --- sigmoid and tanh --------------------------------------------------------------------


def sigmoid(x: Any) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow: exp only ever sees -|x|."""
    x = _as_float(x)
    e = np.exp(-np.abs(x))  # in (0, 1]
    one = x.dtype.type(1)
    return np.where(x >= 0, one / (one + e), e / (one + e))


def sigmoid_grad(x: Any) -> np.ndarray:
    """sigmoid(x) * (1 - sigmoid(x))."""
    s = sigmoid(x)
    return s * (s.dtype.type(1) - s)


def tanh(x: Any) -> np.ndarray:
    """tanh(x)."""
    return np.tanh(_as_float(x))


def tanh_grad(x: Any) -> np.ndarray:
    """1 - tanh(x)^2."""
    t = tanh(x)
    return t.dtype.type(1) - t * t


# --- GELU --------------------------------------------------------------------------------


def _erf_series(z: np.ndarray) -> np.ndarray:
    """erf(z) for 0 <= z < 2 from the series with positive terms only (no cancellation):

    erf(z) = 2/sqrt(pi) * exp(-z^2) * sum_n (2 z^2)^n * z / (1 * 3 * ... * (2n + 1)).
    40 terms reach full float64 precision for z < 2.
    """
    two_z2 = 2.0 * z * z
    term = z.copy()
    total = z.copy()
    for n in range(1, 41):
        term *= two_z2 / (2 * n + 1)
        total += term
    return (2.0 / math.sqrt(math.pi)) * np.exp(-z * z) * total


def _erfc_continued_fraction(z: np.ndarray) -> np.ndarray:
    """erfc(z) for z >= 2 from Laplace's continued fraction, evaluated bottom-up:

    erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + (2/2) / (z + (3/2) / (z + ...)))).
    40 levels give a relative error below 1e-13 for z >= 2.
    """
    z = np.minimum(z, 40.0)  # erfc(40) underflows to 0 anyway; keeps z*z finite
    f = z.copy()
    for k in range(40, 0, -1):
        f = z + (k / 2.0) / f
    return np.exp(-z * z) / (math.sqrt(math.pi) * f)


def normal_cdf(x: Any) -> np.ndarray:
    """Phi(x), the standard normal CDF, in float64 with small relative error in both tails.

    NumPy has no erf; this one is a vectorised series (|x| < 2 sqrt 2) plus a continued
    fraction (the tails): relative error below about 2e-12 against `math.erfc` down to
    Phi(-38) (the error grows like x^2 * eps, from rounding inside exp(-x^2 / 2)).
    """
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x) / _SQRT_2
    small = z < 2.0
    out = np.empty_like(x)
    erf_small = _erf_series(z[small])
    out[small] = 0.5 + 0.5 * np.copysign(erf_small, x[small])
    erfc_big = _erfc_continued_fraction(z[~small])
    out[~small] = np.where(x[~small] < 0, 0.5 * erfc_big, 1.0 - 0.5 * erfc_big)
    return out


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise CnnkitError.from_template(
            ("The 'approximate' parameter of gelu must be 'none' or 'tanh'. Got {approximate!r}."),
            approximate=approximate,
        )


def _gelu_tanh_parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, du/dx) for u = sqrt(2/pi) (x + 0.044715 x^3), t = tanh(u), in float64.

    |x| is capped at 100 inside u: there tanh(u) is already exactly +-1 and x^3 cannot
    overflow; dt/dx = (1 - t^2) du/dx is then exactly 0 instead of 0 * inf.
    """
    xc = np.clip(x, -100.0, 100.0)
    t = np.tanh(_SQRT_2_OVER_PI * (xc + _GELU_TANH_COEF * xc**3))
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_COEF * xc * xc)
    return t, du


def gelu(x: Any, approximate: str = "none") -> np.ndarray:
    """x * Phi(x); approximate="tanh" uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Same `approximate` argument as `torch.nn.functional.gelu`.
    """
    _check_approximate(approximate)
    x = _as_float(x)
    x64 = x.astype(np.float64, copy=False)
    if approximate == "tanh":
        t, _ = _gelu_tanh_parts(x64)
        out = 0.5 * x64 * (1.0 + t)
    else:
        out = x64 * normal_cdf(x64)
    return out.astype(x.dtype, copy=False)


def gelu_grad(x: Any, approximate: str = "none") -> np.ndarray:
    """Phi(x) + x phi(x) (phi the normal density); for "tanh" the derivative of that form."""
    _check_approximate(approximate)
    x = _as_float(x)
    x64 = x.astype(np.float64, copy=False)
    if approximate == "tanh":
        t, du = _gelu_tanh_parts(x64)
        out = 0.5 * (1.0 + t) + 0.5 * x64 * (1.0 - t * t) * du
    else:
        xc = np.clip(x64, -40.0, 40.0)  # phi(40) underflows to 0; keeps xc*xc finite
        out = normal_cdf(x64) + xc * (_INV_SQRT_2PI * np.exp(-0.5 * xc * xc))
    return out.astype(x.dtype, copy=False)


# --- registry ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Activation:
    """A named activation: `forward(x)` and `grad(x)` (d forward / d x at x), with parameters."""

    name: str
    formula: str  # shown under the name in figures; a Message where it has words to translate
    fn: ArrayFn
    grad_fn: ArrayFn
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def forward(self, x: Any) -> np.ndarray:
        return self.fn(x, **self.params)

    def grad(self, x: Any) -> np.ndarray:
        return self.grad_fn(x, **self.params)

    __call__ = forward

    def with_params(self, **params: Any) -> Activation:
        """A copy with some parameters changed; unknown names are refused."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            allowed = ", ".join(self.params) or "none"
            raise CnnkitError.from_template(
                ("Activation {name!r} has no parameter {unknown!r} (parameters: {allowed})."),
                name=self.name,
                unknown=unknown[0],
                allowed=allowed,
            )
        return dataclasses.replace(self, params={**self.params, **params})


def _entries() -> list[Activation]:
    return [
        Activation("relu", "max(0, x)", relu, relu_grad),
        Activation(
            "leaky-relu",
            Message("x if x > 0 else negative_slope x"),
            leaky_relu,
            leaky_relu_grad,
            {"negative_slope": 0.01},
        ),
        Activation("sigmoid", "1 / (1 + exp(-x))", sigmoid, sigmoid_grad),
        Activation("tanh", "tanh(x)", tanh, tanh_grad),
        Activation(
            "elu", Message("x if x > 0 else alpha (exp(x) - 1)"), elu, elu_grad, {"alpha": 1.0}
        ),
        Activation(
            "gelu",
            Message("x Phi(x), Phi: the normal CDF"),
            gelu,
            gelu_grad,
            {"approximate": "none"},
        ),
        Activation(
            "gelu-tanh",
            "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))",
            gelu,
            gelu_grad,
            {"approximate": "tanh"},
        ),
    ]


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in _entries()}


def get_activation(name: str, **params: Any) -> Activation:
    """The registered activation `name` ("_" may stand for "-"), with parameters overridden."""
    key = name.lower().replace("_", "-")
    if key not in ACTIVATIONS:
        known = ", ".join(ACTIVATIONS)
        raise CnnkitError.from_template(
            "Unknown activation {name!r}. Known activations: {known}.", name=name, known=known
        )
    act = ACTIVATIONS[key]
    return act.with_params(**params) if params else act
