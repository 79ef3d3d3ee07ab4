"""cnnkit.nn.optim against torch.optim: same gradients in, same parameters out (float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.core.errors import CnnkitError
from cnnkit.nn import SGD, Adam, Parameter

SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]
STEPS = 50


def _run_both(make_ours, make_theirs, steps=STEPS, seed=0):
    """Feed the same random gradients to both optimizers; return both parameter lists."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt_ours, opt_theirs = make_ours(ours), make_theirs(theirs)
    for _ in range(steps):
        for p, t in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad = g.copy()
            t.grad = torch.tensor(g)
        opt_ours.step()
        opt_theirs.step()
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
    return ours, theirs, opt_ours, opt_theirs


def _assert_same(ours, theirs, rtol=1e-12, atol=1e-12):
    for p, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=rtol, atol=atol)


@settings(max_examples=25, deadline=None)
@given(
    lr=st.sampled_from([1e-3, 0.01, 0.1]),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    dampening=st.sampled_from([0.0, 0.1]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    nesterov=st.booleans(),
    maximize=st.booleans(),
)
def test_sgd_matches_torch(lr, momentum, dampening, weight_decay, nesterov, maximize):
    if nesterov and (momentum == 0 or dampening != 0):
        nesterov = False
    kw = dict(
        lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
        nesterov=nesterov, maximize=maximize,
    )  # fmt: skip
    ours, theirs, *_ = _run_both(lambda p: SGD(p, **kw), lambda p: torch.optim.SGD(p, **kw))
    _assert_same(ours, theirs)


@settings(max_examples=25, deadline=None)
@given(
    lr=st.sampled_from([1e-3, 0.01]),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.3, 0.99), (0.0, 0.0)]),
    eps=st.sampled_from([1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 0.05]),
    amsgrad=st.booleans(),
    maximize=st.booleans(),
    decoupled=st.booleans(),
)
def test_adam_matches_torch(lr, betas, eps, weight_decay, amsgrad, maximize, decoupled):
    kw = dict(
        lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
        maximize=maximize, decoupled_weight_decay=decoupled,
    )  # fmt: skip
    ours, theirs, *_ = _run_both(lambda p: Adam(p, **kw), lambda p: torch.optim.Adam(p, **kw))
    _assert_same(ours, theirs)


def test_adam_default_recipe_is_bit_close_over_many_steps():
    """The chapter's optimizer (Adam, lr 1e-3) over 200 steps stays within 1e-12."""
    ours, theirs, *_ = _run_both(Adam, torch.optim.Adam, steps=200, seed=3)
    _assert_same(ours, theirs)


def test_adam_state_round_trip_resumes_exactly():
    """state_dict after 20 steps, loaded into a fresh optimizer, continues like the original."""
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(40)]

    def run(params, opt, steps):
        for gs in steps:
            for p, g in zip(params, gs, strict=True):
                p.grad = g.copy()
            opt.step()

    straight = [Parameter(a.copy()) for a in init]
    run(straight, Adam(straight, amsgrad=True), grads)

    first = [Parameter(a.copy()) for a in init]
    opt = Adam(first, amsgrad=True)
    run(first, opt, grads[:20])
    saved = opt.state_dict()
    second = [Parameter(p.data.copy()) for p in first]
    opt2 = Adam(second, amsgrad=True)
    opt2.load_state_dict(saved)
    run(first, opt, [])  # the saved dict is a copy: later steps must not change it
    run(second, opt2, grads[20:])
    for a, b in zip(straight, second, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


def test_adam_loads_torch_optimizer_state():
    """torch.optim.Adam's state_dict (tensors) continues in ours as it would in torch."""
    ours, theirs, _, opt_theirs = _run_both(Adam, torch.optim.Adam, steps=10)
    mine = [Parameter(t.detach().numpy().copy()) for t in theirs]
    opt = Adam(mine)
    opt.load_state_dict(opt_theirs.state_dict())
    rng = np.random.default_rng(7)
    for _ in range(10):
        for p, t in zip(mine, theirs, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        opt_theirs.step()
    _assert_same(mine, theirs)


def test_parameters_without_grad_are_skipped_like_torch():
    ours, theirs, *_ = _run_both(lambda p: Adam(p), lambda p: torch.optim.Adam(p), steps=3)
    before = ours[0].data.copy()
    opt = Adam(ours)
    opt.step()  # no gradients at all
    np.testing.assert_array_equal(ours[0].data, before)


def test_updates_are_in_place_and_keep_float32():
    p = Parameter(np.ones((2, 2), dtype=np.float32))
    data = p.data
    opt = Adam([p], lr=0.1)
    p.grad = np.full((2, 2), 0.5, dtype=np.float32)
    opt.step()
    assert p.data is data and p.data.dtype == np.float32
    assert opt.state[0]["exp_avg"].dtype == np.float32


BAD_SGD = [
    dict(lr=-0.1),
    dict(momentum=-0.5),
    dict(weight_decay=-1.0),
    dict(nesterov=True),
    dict(nesterov=True, momentum=0.9, dampening=0.1),
]
BAD_ADAM = [
    dict(lr=-1e-3),
    dict(eps=-1.0),
    dict(betas=(1.0, 0.999)),
    dict(betas=(0.9, -0.1)),
    dict(weight_decay=-0.1),
]


@pytest.mark.parametrize(
    ("ours", "theirs", "kw"),
    [(SGD, torch.optim.SGD, kw) for kw in BAD_SGD]
    + [(Adam, torch.optim.Adam, kw) for kw in BAD_ADAM],
)
def test_refuses_what_torch_refuses(ours, theirs, kw):
    with pytest.raises(ValueError) as torch_error:
        theirs([torch.zeros(2, requires_grad=True)], **kw)
    with pytest.raises(CnnkitError) as our_error:
        ours([Parameter(np.zeros(2))], **kw)
    # same complaint, e.g. "Invalid learning rate: -0.1"
    assert str(torch_error.value).split(":")[0] in str(our_error.value)


@pytest.mark.parametrize("ours", [SGD, Adam])
def test_accepts_edge_values_torch_accepts(ours):
    """lr=0 is accepted by both, and then a step leaves the parameters exactly where torch's
    does (unchanged), with the same step count in the state."""
    theirs = {SGD: torch.optim.SGD, Adam: torch.optim.Adam}[ours]
    start = np.array([0.5, -2.0])
    t = torch.tensor(start, requires_grad=True)
    p = Parameter(start.copy())
    opt_t, opt_p = theirs([t], lr=0.0), ours([p], lr=0.0)
    for _ in range(2):
        t.grad = torch.tensor([1.0, -3.0], dtype=torch.float64)
        p.grad = np.array([1.0, -3.0])
        opt_t.step()
        opt_p.step()
    np.testing.assert_array_equal(t.detach().numpy(), start)
    np.testing.assert_array_equal(p.data, start)
    torch_state = opt_t.state_dict()["state"].get(0, {})
    our_state = opt_p.state_dict()["state"].get(0, {})
    assert set(our_state) == set(torch_state)
    if "step" in torch_state:
        assert float(our_state["step"]) == float(torch_state["step"]) == 2


def test_empty_parameter_list_is_refused():
    with pytest.raises(ValueError):
        torch.optim.Adam([])
    with pytest.raises(CnnkitError, match="empty parameter list"):
        Adam([])
