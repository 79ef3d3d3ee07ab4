"""The model registry: every model runs forward and backward; the chapter's SimpleCNN is
reproduced exactly (names, shapes, initialisation, function, gradients)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from chapter_code import ChapterText_SimpleCNN
from torch import nn

from cnnkit.core.errors import CnnkitError
from cnnkit.models.chapter import ChapterSimpleCNN
from cnnkit.models.fastconv import Conv2d
from cnnkit.models.registry import create_model, list_models, model_info, model_input_shape


class ChapterText_CustomCNN(nn.Module):
    """Exercise 4's solution, copied from the chapter as the oracle."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(64 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 64 * 8 * 8)
        return self.fc(x)


class ChapterText_ConvBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


class Tuomaso_Net(nn.Module):
    """The net of tuomaso/train_mnist_fast as published (its log-softmax left out: the
    registry's models return logits), the oracle of `fast-cnn`."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 24, 5, 1)
        self.conv2 = nn.Conv2d(24, 32, 3, 1)
        self.fc1 = nn.Linear(800, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


ORACLES = {
    "simple-cnn": ChapterText_SimpleCNN,
    "fast-cnn": Tuomaso_Net,
    "custom-cnn": ChapterText_CustomCNN,
    "conv-block": lambda: ChapterText_ConvBlock(3, 64),
}


def test_registry_lists_the_chapters_models():
    assert list_models() == sorted(ORACLES)
    assert list_models("*cnn") == ["custom-cnn", "fast-cnn", "simple-cnn"]
    assert list_models("nothing*") == []


def test_unknown_model_names_the_known_ones():
    with pytest.raises(CnnkitError, match="Unknown model 'vgg16'.*conv-block, custom-cnn"):
        create_model("vgg16")
    with pytest.raises(CnnkitError, match="Unknown model"):
        model_input_shape("vgg16")


def test_bad_factory_arguments_are_a_cnnkit_error():
    with pytest.raises(CnnkitError, match="Bad arguments.*conv-block"):
        create_model("conv-block", colour=True)


def test_one_registry_for_both_engines():
    """The NumPy models live in the same registry, with the parameter names of their twin."""
    import numpy as np

    assert list_models(engine="numpy") == ["simple-cnn"]
    assert model_input_shape("simple-cnn", engine="numpy") == model_input_shape("simple-cnn")
    twin = create_model("simple-cnn", engine="numpy", rng=np.random.default_rng(0))
    torch_names = {k: tuple(v.shape) for k, v in create_model("simple-cnn").state_dict().items()}
    assert {k: v.shape for k, v in twin.state_dict().items()} == torch_names
    with pytest.raises(CnnkitError, match="Unknown model 'conv-block' for the numpy engine.*"
                       "Known models: simple-cnn"):  # fmt: skip
        create_model("conv-block", engine="numpy")
    with pytest.raises(CnnkitError, match="'engine' parameter must be one of torch, numpy"):
        list_models(engine="jax")


def test_registry_imports_no_torch():
    """Listing models (cnnkit models, the NumPy engine) must not pay for importing torch."""
    import subprocess
    import sys

    code = (
        "import sys; from cnnkit.models.registry import list_models; list_models(); "
        "list_models(engine='numpy'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(3, *model_input_shape(name))
    out = model(x)
    oracle = ORACLES[name]()
    oracle.load_state_dict(model.state_dict())
    oracle.eval(), model.eval()
    assert out.shape == oracle(x).shape
    model.train()
    model.zero_grad()
    model(x).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} received a zero gradient"


@pytest.mark.parametrize("name", list_models())
def test_same_names_shapes_and_initialisation_as_the_chapter(name):
    torch.manual_seed(123)
    ours = create_model(name)
    torch.manual_seed(123)
    theirs = ORACLES[name]()
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts_per_layer_sum_to_torch_numel(name):
    info = model_info(name)
    model = create_model(name)
    assert info.total_params == sum(layer.total for layer in info.layers)
    assert info.total_params == sum(p.numel() for p in model.parameters())
    for layer in info.layers:
        module = model.get_submodule(layer.name)
        assert layer.weight == module.weight.numel()
        assert layer.bias == module.bias.numel()


@pytest.mark.parametrize("seed", range(3))
def test_pool_before_relu_is_exactly_the_chapters_function_and_gradients(seed):
    """Eval mode (conv1 as plain nn.Conv2d): outputs and gradients equal bit for bit."""
    torch.manual_seed(seed)
    fast = create_model("simple-cnn").eval()
    reference = ChapterText_SimpleCNN().eval()
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(16, 1, 28, 28)
    x[:4] = -1.0  # flat regions: ties inside the pooling windows, all-negative windows
    y = torch.randint(0, 10, (16,))
    out_fast, out_ref = fast(x), reference(x)
    assert torch.equal(out_fast, out_ref)
    F.cross_entropy(out_fast, y).backward()
    F.cross_entropy(out_ref, y).backward()
    for (name, p), q in zip(fast.named_parameters(), reference.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name


@pytest.mark.parametrize("seed", range(3))
def test_training_forward_computes_the_chapters_function_and_gradients(seed):
    """Train mode (conv1 as im2col + GEMM): the same values up to float32 rounding."""
    torch.manual_seed(seed)
    fast = create_model("simple-cnn").train()
    reference = ChapterText_SimpleCNN().train()
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(32, 1, 28, 28)
    x[:4] = -0.4242  # MNIST's background value: large flat regions
    y = torch.randint(0, 10, (32,))
    torch.manual_seed(seed)  # the same dropout mask for both
    out_fast = fast(x)
    torch.manual_seed(seed)
    out_ref = reference(x)
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-5, atol=1e-5)
    F.cross_entropy(out_fast, y).backward()
    F.cross_entropy(out_ref, y).backward()
    for (name, p), q in zip(fast.named_parameters(), reference.parameters(), strict=True):
        scale = q.grad.abs().max().item()
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize(
    "in_channels, kernel_size, padding, bias",
    [
        (1, 3, 1, True),
        (3, 3, 1, True),
        (2, 3, 0, False),
        (3, (3, 5), (2, 1), True),
        (1, 1, 0, True),
    ],
)
def test_cnnkit_conv2d_matches_nn_conv2d_in_float64(in_channels, kernel_size, padding, bias):
    torch.manual_seed(0)
    ours = Conv2d(in_channels, 5, kernel_size, padding=padding, bias=bias).double()
    ref = nn.Conv2d(in_channels, 5, kernel_size, padding=padding, bias=bias).double()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(4, in_channels, 9, 11, dtype=torch.float64)
    out, expected = ours(x), ref(x)
    assert out.is_contiguous(memory_format=torch.channels_last)  # the fast path ran
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(expected)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-12, atol=1e-12)
    if bias:
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, rtol=1e-12, atol=1e-12)


def test_cnnkit_conv2d_is_plain_conv2d_where_the_fast_path_does_not_apply():
    torch.manual_seed(0)
    conv = Conv2d(1, 4, 3, padding=1)
    x = torch.randn(2, 1, 8, 8, requires_grad=True)  # the input needs a gradient
    out = conv(x)
    assert out.grad_fn.name() == "ConvolutionBackward0"
    out.sum().backward()
    assert x.grad is not None
    strided = Conv2d(1, 4, 3, stride=2)
    assert strided(torch.randn(2, 1, 8, 8)).grad_fn.name() == "ConvolutionBackward0"
    unbatched = conv(torch.randn(1, 8, 8))  # (C, H, W), as nn.Conv2d accepts
    assert unbatched.shape == (4, 8, 8)
    conv.eval()  # tools that trace or hook the model in eval mode see F.conv2d
    assert conv(torch.randn(2, 1, 8, 8)).grad_fn.name() == "ConvolutionBackward0"


def test_chapter_simple_cnn_is_the_reference_forward():
    torch.manual_seed(0)
    ours = ChapterSimpleCNN().eval()
    theirs = ChapterText_SimpleCNN().eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(ours(x), theirs(x))


def test_flattened_size_follows_the_input_size():
    model = create_model("simple-cnn", in_channels=3, input_hw=(32, 32))
    assert model.fc1.in_features == 64 * 8 * 8
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cli_models_json_matches_torch(cli):
    r = cli("models", "--json")
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert sorted(rows) == list_models()
    for name, row in rows.items():
        model = create_model(name)
        assert row["total_params"] == sum(p.numel() for p in model.parameters())
        assert tuple(row["input_shape"]) == model_input_shape(name)


def test_cli_models_table(cli):
    r = cli("models", "simple*", "--layers")
    assert r.returncode == 0, r.stderr
    total = sum(p.numel() for p in create_model("simple-cnn").parameters())
    assert f"{total:,}" in r.stdout
    assert "1×28×28" in r.stdout
    for layer in ("conv1", "conv2", "fc1", "fc2"):
        assert layer in r.stdout
    assert "custom-cnn" not in r.stdout
