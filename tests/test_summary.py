"""cnnkit.summary: shapes and parameters against torchinfo, MACs against fvcore and ptflops,
parameter sharing, folding by depth, and a model left as it was found (mode, hooks), even
when it raises."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchinfo
from fvcore.nn import FlopCountAnalysis
from ptflops import get_model_complexity_info
from test_summary_rf import MODELS
from torch import nn

from cnnkit.analysis.summary.core import summary
from cnnkit.core.errors import CnnkitError, ShapeError
from cnnkit.models.chapter import (
    ChapterSimpleCNN,  # the chapter's forward as printed (test_models.py)
)

ALL = {**MODELS, "chapter-simple-cnn": (ChapterSimpleCNN, (1, 28, 28))}


def build(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    cls, shape = ALL[name]
    torch.manual_seed(0)
    return cls(), shape


def module_names(model: nn.Module) -> dict[int, str]:
    return {id(m): n for n, m in model.named_modules()}


@pytest.mark.parametrize("name", sorted(ALL))
def test_shapes_and_parameters_equal_torchinfo(name):
    model, shape = build(name)
    ours = summary(model, shape)
    theirs = torchinfo.summary(model, input_size=(1, *shape), verbose=0, depth=20)
    assert ours.total_params == theirs.total_params
    assert ours.trainable_params == theirs.trainable_params
    names = module_names(model)
    calls: dict[int, int] = {}  # a module called twice is listed twice (pool, pool#2)
    compared = 0
    for info in theirs.summary_list:
        if not info.is_leaf_layer or not info.executed or not info.output_size:
            continue
        calls[id(info.module)] = calls.get(id(info.module), 0) + 1
        nth = calls[id(info.module)]
        row = ours.row(names[id(info.module)] + (f"#{nth}" if nth > 1 else ""))
        assert row.output_shape == tuple(info.output_size), row.name
        assert row.params == info.num_params, row.name
        compared += 1
    assert compared >= 3


def fvcore_by_module(model: nn.Module, shape: tuple[int, ...]) -> tuple[dict, dict]:
    flops = FlopCountAnalysis(model.eval(), torch.zeros(1, *shape))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(flops.by_module()), dict(flops.by_operator())


@pytest.mark.parametrize("name", sorted(ALL))
def test_conv_linear_and_adaptive_pool_macs_equal_fvcore(name):
    # fvcore counts one fused multiply-add as one flop: its conv/linear numbers are MACs.
    model, shape = build(name)
    ours = summary(model, shape)
    by_module, by_op = fvcore_by_module(model, shape)
    same_rule = {"Conv2d", "Linear", "ConvTranspose2d", "AdaptiveAvgPool2d"}
    # fvcore 0.1.5 counts 0 for a convolution with padding="same" (it sees no
    # aten::_convolution): a documented gap of fvcore, left out here.
    string_padding = {
        n for n, m in model.named_modules() if isinstance(getattr(m, "padding", 0), str)
    }
    rows = [r for r in ours.rows if r.type in same_rule and r.name not in string_padding]
    assert rows
    for row in rows:
        assert row.macs == by_module[row.name], row.name
    conv = sum(r.macs for r in ours.rows if r.type == "Conv2d" and r.name not in string_padding)
    assert conv == by_op.get("conv", 0)
    # Documented difference: fvcore counts 2 per element for an affine batch norm in eval
    # mode, we count 1 fused multiply-add (docs/summary.md).
    bn = [r for r in ours.rows if r.type == "BatchNorm2d"]
    for row in bn:
        assert by_module[row.name] == 2 * row.macs


def test_total_macs_equal_ptflops_where_the_rules_coincide():
    # No bias (ptflops adds one per output), no activation or pooling (ptflops counts them
    # by other rules): convolutions (grouped, dilated, strided) and a linear layer.
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4, bias=False),
        nn.Conv2d(8, 4, (1, 5), bias=False),
        nn.Flatten(),
        nn.Linear(4 * 16 * 12, 10, bias=False),
    )
    ours = summary(model, (3, 32, 32))
    macs, params = get_model_complexity_info(
        model, (3, 32, 32), as_strings=False, print_per_layer_stat=False, verbose=False
    )
    assert ours.total_macs == macs
    assert ours.total_params == params


def test_conv_rule_with_groups_and_dilation_is_out_elems_times_fan_in():
    conv = nn.Conv2d(6, 12, (3, 5), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3)
    row = summary(conv, (6, 20, 20)).rows[0]
    n, c, h, w = row.output_shape
    assert row.macs == n * c * h * w * (6 // 3) * 3 * 5


@pytest.mark.parametrize("name", sorted(ALL))
def test_column_sums_equal_totals_at_every_depth(name):
    model, shape = build(name)
    full = summary(model, shape)
    for depth in (None, 0, 1, 2):
        s = summary(model, shape, depth=depth)
        assert sum(r.params for r in s.rows) == s.total_params == full.total_params
        assert sum(r.macs for r in s.rows) == s.total_macs == full.total_macs
        assert s.activation_bytes == full.activation_bytes
    assert [r.name for r in summary(model, shape, depth=0).rows] == [type(model).__name__]


def test_depth_folds_nested_modules_like_torchinfo():
    model, shape = build("resnet")
    s = summary(model, shape, depth=1)
    assert [r.name for r in s.rows] == ["stem", "layer1", "layer2", "pool", "flatten", "fc"]
    layer1 = s.row("layer1")
    assert layer1.output_shape == summary(model, shape).row("layer1.1.relu#2").output_shape
    inner = summary(model, shape).row("layer1.1.relu#2").rf
    assert (layer1.rf.size, layer1.rf.jump, layer1.rf.start) == (
        inner.size,
        inner.jump,
        inner.start,
    )


def test_shared_and_tied_parameters_are_counted_once():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.enc = nn.Linear(8, 4, bias=False)
            self.dec = nn.Linear(4, 8, bias=False)
            self.dec.weight = nn.Parameter(self.enc.weight.t())  # replaced below
            self.dec.weight = self.enc.weight  # tied (shape (4, 8) used transposed)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv(self.conv(x))  # the same module twice
            z = self.enc(x.mean((1, 2)))  # (N, 8) -> (N, 4)
            return F.linear(z, self.dec.weight.t())  # (N, 4) -> (N, 8)

    model = Tied()
    s = summary(model, (2, 8, 8))
    unique = sum(p.numel() for p in model.parameters())
    assert s.total_params == unique == 2 * 2 * 9 + 2 + 32
    assert s.row("conv").params == 38
    assert s.row("conv#2").params == 0
    assert s.row("conv#2").macs == s.row("conv").macs


def test_frozen_parameters_are_reported_separately():
    model, shape = build("vgg")
    for p in model.features.parameters():
        p.requires_grad_(False)
    s = summary(model, shape)
    frozen = sum(p.numel() for p in model.features.parameters())
    assert s.frozen_params == frozen
    assert s.trainable_params == sum(p.numel() for p in model.classifier.parameters())
    assert s.param_bytes == 4 * (s.frozen_params + s.trainable_params)


def test_activation_memory_counts_each_output_once():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2))
    s = summary(model, (1, 8, 8))
    assert s.activation_bytes == 4 * (4 * 8 * 8 + 4 * 4 * 4)  # ReLU works in place
    assert s.input_bytes == 4 * 64


def hooks_left(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_modes_are_restored_and_hooks_removed():
    model, shape = build("resnet")
    model.train()
    model.layer1[0].eval()  # a mixed state must come back exactly
    before = {n: m.training for n, m in model.named_modules()}
    s = summary(model, shape)
    assert s.rows
    assert {n: m.training for n, m in model.named_modules()} == before
    assert hooks_left(model) == 0
    assert torch._C._len_torch_function_stack() == 0


def test_a_model_that_raises_is_restored_and_the_error_names_layer_and_shapes():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    model.train()
    with pytest.raises(ShapeError) as err:
        summary(model, (3, 64, 64))
    message = str(err.value)
    assert "layer '2' (Linear" in message
    assert "(1, 15376)" in message
    assert "(1, 3, 64, 64)" in message
    assert model.training and all(m.training for m in model.modules())
    assert hooks_left(model) == 0
    assert torch._C._len_torch_function_stack() == 0


def test_a_raise_in_python_code_of_the_model_is_reported_too():
    class Picky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] != 28:
                raise ValueError(f"expects 28×28 images, got {tuple(x.shape)}")
            return self.conv(x)

    with pytest.raises(ShapeError, match="expects 28×28 images"):
        summary(Picky(), (1, 32, 32))
    assert summary(Picky(), (1, 28, 28)).rows[0].output_shape == (1, 1, 26, 26)


def test_data_dependent_control_flow_that_fx_cannot_trace_is_followed():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Conv2d(1, 2, 3, padding=1)
            self.b = nn.Conv2d(1, 2, 5, padding=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.a(x)
            if y.shape[-1] % 2 == 0:  # control flow on a traced value: torch.fx fails here
                y = y + self.b(x)
            return y

    with pytest.raises(Exception):  # noqa: B017 - any fx error: it cannot trace this
        torch.fx.symbolic_trace(Branchy())
    s = summary(Branchy(), (1, 16, 16))
    assert s.row("add").rf.size == (5, 5)


def test_functional_weights_in_a_custom_module_are_counted():
    class FunctionalConv(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 1, 3, 3))
            self.inner = nn.Identity()  # has a child: its ops are rows of their own

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(F.conv2d(x, self.weight, stride=2))

    s = summary(FunctionalConv(), (1, 9, 9))
    conv = s.row("conv2d")
    assert conv.params == 36 and conv.macs == 4 * 4 * 4 * 9
    assert conv.rf.size == (3, 3) and conv.rf.jump == (2, 2)
    assert s.row("inner").rf == conv.rf


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"input_size": 28}, "'input_size'"),
        ({"input_size": (1, 0, 28)}, "positive ints"),
        ({"input_size": (1, 28, 28), "depth": -1}, "'depth'"),
    ],
)
def test_bad_arguments_are_cnnkit_errors(kwargs, needle):
    with pytest.raises(CnnkitError, match=needle):
        summary(nn.Conv2d(1, 1, 3), **kwargs)


def test_not_a_module_is_refused():
    with pytest.raises(CnnkitError, match="torch.nn.Module"):
        summary(lambda x: x, (1, 4, 4))


def test_cnnkit_summary_is_callable_before_and_after_the_package_is_imported():
    code = (
        "import torch, cnnkit\n"
        "m = torch.nn.Conv2d(1, 2, 3)\n"
        "a = cnnkit.summary(m, (1, 8, 8)).total_params\n"
        "import cnnkit.analysis.summary.core\n"
        "b = cnnkit.summary(m, (1, 8, 8)).total_params\n"
        "box = cnnkit.rf_box(m, 'Conv2d', (0, 0), (1, 8, 8))\n"
        "print(a, b, box.size)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["20", "20", "(3,", "3)"]
