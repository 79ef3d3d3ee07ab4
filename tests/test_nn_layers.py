"""cnnkit.nn layers and functions against torch (float64 forward and autograd gradients).

Each test builds the same layer in both libraries (weights copied from ours into torch's),
feeds both the same input and upstream gradient, and compares outputs, input gradients and
parameter gradients. Finite differences check the small cases independently of torch.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from cnnkit.core.errors import CnnkitError
from cnnkit.nn import (
    ELU,
    GELU,
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    Module,
    ReLU,
    Sigmoid,
    Tanh,
)
from cnnkit.nn import functional as F

RTOL, ATOL = 1e-7, 1e-10
f64 = np.float64


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _copy_into_torch(ours: Module, theirs: torch.nn.Module) -> None:
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def _check_against_torch(ours: Module, theirs: torch.nn.Module, x: np.ndarray, seed: int = 1):
    """Forward, input gradient and every parameter gradient of ours vs torch autograd."""
    theirs = theirs.double()
    _copy_into_torch(ours, theirs)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours.forward(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    g = _rng(seed).standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    gx = ours.backward(g)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    theirs_params = dict(theirs.named_parameters())
    assert set(theirs_params) == {name for name, _ in ours.named_parameters()}
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad, theirs_params[name].grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name
        )


def _finite_difference_check(module: Module, x: np.ndarray, eps: float = 1e-6) -> None:
    """Central differences of L = Σ g·f(x) w.r.t. x and every parameter, vs backward."""
    g = _rng(9).standard_normal(module.forward(x).shape)
    module.zero_grad()
    module.forward(x)
    gx = module.backward(g)

    def loss() -> float:
        return float((module.forward(x) * g).sum())

    targets = [("input", x, gx)] + [(n, p.data, p.grad) for n, p in module.named_parameters()]
    for name, array, analytic in targets:
        numeric = np.zeros_like(array)
        for i in np.ndindex(array.shape):
            old = array[i]
            array[i] = old + eps
            up = loss()
            array[i] = old - eps
            down = loss()
            array[i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7, err_msg=name)


# --------------------------------------------------------------------------- Linear


@settings(max_examples=30, deadline=None)
@given(
    lead=st.sampled_from([(), (1,), (5,), (2, 3)]),
    in_features=st.integers(1, 9),
    out_features=st.integers(1, 9),
    bias=st.booleans(),
)
def test_linear_matches_torch(lead, in_features, out_features, bias):
    ours = Linear(in_features, out_features, bias, dtype=f64, rng=_rng())
    x = _rng(2).standard_normal((*lead, in_features))
    _check_against_torch(ours, torch.nn.Linear(in_features, out_features, bias), x)


def test_linear_finite_differences():
    _finite_difference_check(Linear(4, 3, dtype=f64, rng=_rng()), _rng(1).standard_normal((2, 4)))


@pytest.mark.parametrize("shape", [(2, 5), (5,), (2, 3, 7)])
def test_linear_refuses_wrong_in_features_like_torch(shape):
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        torch.nn.Linear(4, 3)(torch.zeros(shape))
    with pytest.raises(CnnkitError, match="in_features=4"):
        Linear(4, 3, rng=_rng()).forward(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("features", [(-1, 3), (3, -2)])
def test_linear_refuses_negative_sizes_like_torch(features):
    with pytest.raises(RuntimeError):
        torch.nn.Linear(*features)
    with pytest.raises(CnnkitError):
        Linear(*features)


# --------------------------------------------------------------------------- Conv2d


@st.composite
def conv_configs(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    padding = draw(
        st.one_of(
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.just("valid"),
            st.just("same") if stride == (1, 1) else st.just(0),
        )
    )
    h, w = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    n = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return dict(
        groups=groups, c_in=c_in, c_out=c_out, kernel=(kh, kw), stride=stride,
        dilation=dilation, padding_mode=mode, padding=padding, shape=(n, c_in, h, w), bias=bias,
    )  # fmt: skip


def _conv_pair(c):
    kw = dict(
        stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"],
        bias=c["bias"], padding_mode=c["padding_mode"],
    )  # fmt: skip
    ours = Conv2d(c["c_in"], c["c_out"], c["kernel"], **kw, dtype=f64, rng=_rng())
    return ours, torch.nn.Conv2d(c["c_in"], c["c_out"], c["kernel"], **kw)


@settings(max_examples=40, deadline=None)
@given(c=conv_configs())
def test_conv2d_layer_matches_torch(c):
    ours, theirs = _conv_pair(c)
    x = _rng(3).standard_normal(c["shape"])
    try:  # configurations torch refuses (kernel larger than the padded input, reflect > size)
        theirs.double()(torch.tensor(x))
    except RuntimeError:
        with pytest.raises(CnnkitError):
            ours.forward(x)
        return
    _check_against_torch(ours, theirs, x)


def test_conv2d_finite_differences():
    conv = Conv2d(2, 2, 3, stride=2, padding=1, dtype=f64, rng=_rng())
    _finite_difference_check(conv, _rng(1).standard_normal((2, 2, 5, 5)))


def test_conv2d_first_layer_skips_the_input_gradient():
    conv = Conv2d(1, 2, 3, dtype=f64, rng=_rng())
    conv.needs_input_grad = False
    conv.forward(_rng(1).standard_normal((1, 1, 5, 5)))
    assert conv.backward(np.ones((1, 2, 3, 3))) is None
    assert conv.weight.grad is not None and conv.bias is not None and conv.bias.grad is not None


@pytest.mark.parametrize(
    "kw",
    [
        dict(in_channels=3, out_channels=4, kernel_size=3, groups=2),
        dict(in_channels=4, out_channels=3, kernel_size=3, groups=2),
        dict(in_channels=2, out_channels=2, kernel_size=3, groups=0),
        dict(in_channels=2, out_channels=2, kernel_size=3, padding_mode="wrap"),
        dict(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding="same"),
        dict(in_channels=2, out_channels=2, kernel_size=3, padding="full"),
    ],
)
def test_conv2d_refuses_what_torch_refuses(kw):
    with pytest.raises(ValueError):
        torch.nn.Conv2d(**kw)
    with pytest.raises(CnnkitError):
        Conv2d(**kw).forward(np.zeros((1, kw["in_channels"], 5, 5)))


def test_conv2d_refuses_a_channel_mismatch_like_torch():
    with pytest.raises(RuntimeError):
        torch.nn.Conv2d(3, 4, 3)(torch.zeros(1, 2, 5, 5))
    with pytest.raises(CnnkitError, match="input channels"):
        Conv2d(3, 4, 3).forward(np.zeros((1, 2, 5, 5), dtype=np.float32))


# --------------------------------------------------------------------------- pooling


@st.composite
def pool_configs(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    ceil_mode = draw(st.booleans())
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(3, 8)),
             draw(st.integers(3, 8)))  # fmt: skip
    return kernel, stride, padding, ceil_mode, shape


@settings(max_examples=40, deadline=None)
@given(c=pool_configs(), dilation=st.sampled_from([1, 2]), ties=st.booleans())
def test_max_pool_layer_matches_torch(c, dilation, ties):
    kernel, stride, padding, ceil_mode, shape = c
    kw = dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    x = _rng(4).standard_normal(shape)
    if ties:  # a few distinct values: the gradient goes to the first maximum, as in torch
        x = np.round(x)
    theirs = torch.nn.MaxPool2d(kernel, **kw)
    try:
        theirs(torch.tensor(x))
    except RuntimeError:
        with pytest.raises(CnnkitError):
            MaxPool2d(kernel, **kw).forward(x)
        return
    _check_against_torch(MaxPool2d(kernel, **kw), theirs, x)


@pytest.mark.parametrize("hw", [(28, 28), (7, 7), (6, 9), (2, 3)])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("values", ["random", "ties", "constant"])
def test_max_pool_2x2_fast_path_matches_torch(hw, ceil_mode, values):
    """SimpleCNN's pool (2×2, stride 2) with ties everywhere, as on MNIST's flat background."""
    x = _rng(16).standard_normal((2, 3, *hw))
    if values == "ties":
        x = np.round(x)
    elif values == "constant":
        x = np.full_like(x, -0.42)
    layer = MaxPool2d(2, 2, ceil_mode=ceil_mode)
    _check_against_torch(layer, torch.nn.MaxPool2d(2, 2, ceil_mode=ceil_mode), x)
    fast = ceil_mode is False or (hw[0] % 2 == 0 and hw[1] % 2 == 0)
    assert (layer._route is not None) == fast  # the fast path ran where it applies


def test_max_pool_2x2_fast_path_keeps_float32():
    layer = MaxPool2d(2)
    y = layer.forward(np.ones((1, 1, 4, 4), dtype=np.float32))
    assert y.dtype == layer.backward(np.ones_like(y)).dtype == np.float32


@settings(max_examples=40, deadline=None)
@given(c=pool_configs(), count_include_pad=st.booleans())
def test_avg_pool_layer_matches_torch(c, count_include_pad):
    kernel, stride, padding, ceil_mode, shape = c
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil_mode)
    kw["count_include_pad"] = count_include_pad
    x = _rng(5).standard_normal(shape)
    theirs = torch.nn.AvgPool2d(kernel, **kw)
    try:
        theirs(torch.tensor(x))
    except RuntimeError:
        with pytest.raises(CnnkitError):
            AvgPool2d(kernel, **kw).forward(x)
        return
    _check_against_torch(AvgPool2d(kernel, **kw), theirs, x)


# --------------------------------------------------------------------------- activations

ACTIVATION_PAIRS = [
    (ReLU, torch.nn.ReLU, {}),
    (LeakyReLU, torch.nn.LeakyReLU, {"negative_slope": 0.2}),
    (ELU, torch.nn.ELU, {"alpha": 0.7}),
    (GELU, torch.nn.GELU, {}),
    (GELU, torch.nn.GELU, {"approximate": "tanh"}),
    (Sigmoid, torch.nn.Sigmoid, {}),
    (Tanh, torch.nn.Tanh, {}),
]


@pytest.mark.parametrize(("ours", "theirs", "kw"), ACTIVATION_PAIRS)
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5)])
def test_activation_layers_match_torch(ours, theirs, kw, shape):
    x = _rng(6).standard_normal(shape) * 4
    x.flat[:3] = [0.0, -0.0, 30.0]  # the kink of ReLU-like functions and a saturated value
    _check_against_torch(ours(**kw), theirs(**kw), x)


def test_inplace_relu_overwrites_its_input_and_gives_the_same_gradient():
    x = _rng(17).standard_normal((3, 4))
    plain, inplace = ReLU(), ReLU(inplace=True)
    expected = plain.forward(x)
    out = inplace.forward(x)
    assert out is x
    np.testing.assert_array_equal(out, expected)
    g = _rng(18).standard_normal((3, 4))
    np.testing.assert_array_equal(inplace.backward(g), plain.backward(g))


def test_relu_backward_uses_the_output_mask_and_keeps_float32():
    relu = ReLU()
    y = relu.forward(np.array([-1.0, 0.0, 2.0], dtype=np.float32))
    g = relu.backward(np.ones(3, dtype=np.float32))
    assert y.dtype == g.dtype == np.float32
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])  # ReLU'(0) = 0, as torch


# --------------------------------------------------------------------------- dropout


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5, 0.9])
def test_dropout_scales_like_torch_and_is_off_in_eval(p):
    x = np.ones((200, 500), dtype=np.float32)
    drop = Dropout(p, rng=_rng(7))
    y = drop.forward(x)
    kept = y != 0
    # torch's inverted dropout: survivors are scaled by 1/(1-p) (checked against torch)
    torch_y = torch.nn.functional.dropout(torch.ones(10_000), p, training=True)
    scale = torch_y[torch_y != 0][0].item()
    np.testing.assert_allclose(y[kept], scale, rtol=1e-6)
    # the fraction dropped is p (binomial: 6 standard deviations)
    assert abs((~kept).mean() - p) < 6 * np.sqrt(p * (1 - p) / x.size)
    np.testing.assert_array_equal(drop.backward(np.ones_like(x)), y)  # backward = mask
    drop.eval()
    np.testing.assert_array_equal(drop.forward(x), x)
    np.testing.assert_array_equal(drop.backward(x), x)


def test_dropout_with_p_one_and_zero_like_torch():
    x = np.arange(1.0, 7.0)
    np.testing.assert_array_equal(Dropout(1.0, rng=_rng()).forward(x), np.zeros(6))
    np.testing.assert_array_equal(Dropout(0.0, rng=_rng()).forward(x), x)
    assert not torch.nn.functional.dropout(torch.tensor(x), 1.0).any()


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5"])
def test_dropout_refuses_what_torch_refuses(p):
    with pytest.raises((ValueError, TypeError, RuntimeError)):
        torch.nn.Dropout(p)(torch.ones(2))
    with pytest.raises(CnnkitError, match="between 0 and 1"):
        Dropout(p)


def test_dropout_rng_makes_masks_reproducible():
    a, b = Dropout(0.5, rng=_rng(3)), Dropout(0.5, rng=_rng(3))
    x = np.ones(1000)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), b.forward(x) * 0 + a.forward(x) * 0 + x)


# --------------------------------------------------------------------------- flatten, sequential


@pytest.mark.parametrize(
    ("shape", "start", "end"),
    [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 0, 2), ((2, 3, 4, 5), 2, 2), ((6,), 0, -1)],
)
def test_flatten_matches_torch(shape, start, end):
    x = _rng(8).standard_normal(shape)
    _check_against_torch(Flatten(start, end), torch.nn.Flatten(start, end), x)


@pytest.mark.parametrize(("shape", "start", "end"), [((3,), 1, -1), ((2, 3), 1, 0), ((2, 3), 0, 5)])
def test_flatten_refuses_what_torch_refuses(shape, start, end):
    with pytest.raises((IndexError, RuntimeError)):
        torch.nn.Flatten(start, end)(torch.zeros(shape))
    with pytest.raises(CnnkitError):
        Flatten(start, end).forward(np.zeros(shape))


def _small_net(ours: bool):
    lib = __import__("cnnkit.nn", fromlist=["x"]) if ours else torch.nn
    kw = dict(dtype=f64, rng=_rng()) if ours else {}
    return lib.Sequential(
        lib.Conv2d(2, 3, 3, padding=1, **kw),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(3, 4, 2, stride=2, **kw),
        lib.Tanh(),
        lib.Flatten(),
        lib.Linear(4 * 2 * 2, 5, **kw),
    )


def test_sequential_names_and_gradients_match_torch():
    ours, theirs = _small_net(True), _small_net(False)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _check_against_torch(ours, theirs, _rng(10).standard_normal((3, 2, 8, 8)))


def test_sequential_finite_differences():
    _finite_difference_check(_small_net(True), _rng(11).standard_normal((1, 2, 8, 8)))


# --------------------------------------------------------------------------- state dicts


def test_load_state_dict_refuses_missing_unexpected_and_misshapen_like_torch():
    ours, theirs = _small_net(True), _small_net(False)
    good = theirs.state_dict()
    bad_dicts = [
        {k: v for k, v in good.items() if k != "0.bias"},
        {**good, "9.weight": torch.zeros(1)},
        {**good, "6.weight": torch.zeros(5, 15)},
    ]
    before = ours.state_dict()
    for bad in bad_dicts:
        with pytest.raises(RuntimeError):
            _small_net(False).load_state_dict(bad)
        with pytest.raises(CnnkitError):
            ours.load_state_dict(bad)
        for k, v in ours.state_dict().items():  # nothing half-loaded
            np.testing.assert_array_equal(v, before[k])
    ours.load_state_dict(good)  # torch tensors are accepted
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v, good[k].numpy())


def test_state_dict_returns_copies():
    net = Linear(2, 2, rng=_rng())
    state = net.state_dict()
    state["weight"][...] = 42
    assert not (net.weight.data == 42).any()


# --------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda: Conv2d(8, 16, 3, rng=_rng(12)), lambda: torch.nn.Conv2d(8, 16, 3)),
        (
            lambda: Conv2d(6, 12, (3, 5), groups=3, rng=_rng(13)),
            lambda: torch.nn.Conv2d(6, 12, (3, 5), groups=3),
        ),
        (lambda: Linear(300, 40, rng=_rng(14)), lambda: torch.nn.Linear(300, 40)),
    ],
)  # fmt: skip
def test_default_init_follows_torch_distributions(ours, theirs):
    torch.manual_seed(0)
    a, b = ours(), theirs()
    for name, t in b.named_parameters():
        mine = a.state_dict()[name].ravel()
        ref = t.detach().numpy().ravel()
        assert mine.dtype == np.float32
        # same support (bound 1/sqrt(fan_in)) and same distribution (two-sample KS test)
        bound = np.abs(ref).max()
        assert np.abs(mine).max() <= bound * 1.05 and np.abs(mine).max() >= bound * 0.8
        assert stats.ks_2samp(mine, ref).pvalue > 1e-3, name


def test_seeded_init_is_reproducible():
    a = Conv2d(3, 4, 3, rng=_rng(5)).state_dict()
    b = Conv2d(3, 4, 3, rng=_rng(5)).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


# --------------------------------------------------------------------------- cross-entropy


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 17), k=st.integers(2, 12), scale=st.sampled_from([1.0, 30.0, 1e4]))
def test_softmax_cross_entropy_matches_torch(n, k, scale):
    rng = _rng(n * 100 + k)
    logits = rng.standard_normal((n, k)) * scale
    target = rng.integers(0, k, n)
    lt = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(lt, torch.tensor(target))
    ref.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / log(0) warnings, even at 1e4
        loss, grad = F.softmax_cross_entropy(logits, target)
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, ref.item(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, lt.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(F.cross_entropy(logits, target), ref.item(), rtol=RTOL)


def test_softmax_cross_entropy_finite_differences():
    logits, target = _rng(15).standard_normal((3, 4)), np.array([0, 3, 1])
    _, grad = F.softmax_cross_entropy(logits, target)
    numeric = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        up, down = logits.copy(), logits.copy()
        up[i] += 1e-6
        down[i] -= 1e-6
        numeric[i] = (F.cross_entropy(up, target) - F.cross_entropy(down, target)) / 2e-6
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_softmax_cross_entropy_keeps_float32():
    loss, grad = F.softmax_cross_entropy(np.zeros((2, 3), np.float32), np.array([0, 1]))
    assert grad is not None and grad.dtype == np.float32
    np.testing.assert_allclose(loss, np.log(3), rtol=1e-6)


@pytest.mark.parametrize(
    ("logits_shape", "target"),
    [((2, 3), [0, 3]), ((2, 3), [0, -1]), ((2, 3), [0, 1, 1]), ((2, 3), [0.0, 1.0])],
)
def test_cross_entropy_refuses_what_torch_refuses(logits_shape, target):
    target = np.array(target)
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        torch.nn.functional.cross_entropy(torch.zeros(logits_shape), torch.tensor(target))
    with pytest.raises(CnnkitError):
        F.cross_entropy(np.zeros(logits_shape), target)


def test_log_softmax_is_stable_for_huge_logits():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = F.log_softmax(np.array([[1e300, -1e300, 0.0]]))
    np.testing.assert_array_equal(out, [[0.0, -2e300, -1e300]])


@given(st.data())
@settings(max_examples=5, deadline=None)
def test_dropout_functional_eval_returns_the_input_unchanged(data):
    p = data.draw(st.floats(0, 0.99))
    assume(0 <= p < 1)
    x = _rng().standard_normal(5)
    out, mask = F.dropout(x, p, training=False)
    assert out is x and mask is None
