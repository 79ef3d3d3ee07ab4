"""A small timm-style model registry: the chapter's networks, built by name.

    from cnnkit.models import create_model, list_models, model_input_shape
    model = create_model("simple-cnn")          # the chapter's SimpleCNN (section 1.6)
    list_models("conv*")                         # ['conv-block']
    model_input_shape("simple-cnn")              # (1, 28, 28)  (C, H, W)

Each model is a 3-5-line factory function decorated with `@register_model(input_shape=...)`.
Flattened sizes (the chapter's `64 * 7 * 7`) are derived with `cnnkit.arithmetic`, never
hand-written. Layers are created in the chapter's order with torch's default initialisation,
so after `torch.manual_seed(s)` a registry model and the chapter's class hold the same weights.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.arithmetic import conv2d_output_shape, conv2d_params, linear_params, pool2d_output_shape
from cnnkit.errors import CnnkitError

Shape = tuple[int, int, int]  # (C, H, W)


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., nn.Module]
    input_shape: Shape
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    *, input_shape: Shape
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a factory under its function name, `_` written as `-` (`simple_cnn`)."""

    def decorate(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = factory.__name__.replace("_", "-")
        doc = (factory.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = _Entry(factory, input_shape, doc[0] if doc else "")
        return factory

    return decorate


def _entry(name: str) -> _Entry:
    entry = _REGISTRY.get(name)
    if entry is None:
        raise CnnkitError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}.")
    return entry


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; `kwargs` go to its factory (e.g. conv-block's channels)."""
    entry = _entry(name)
    try:
        return entry.factory(**kwargs)
    except TypeError as e:
        raise CnnkitError(f"Bad arguments {kwargs!r} for model {name!r}: {e}") from e


def model_input_shape(name: str) -> Shape:
    """The (C, H, W) input the model was designed for (with its default arguments)."""
    return _entry(name).input_shape


def model_description(name: str) -> str:
    return _entry(name).description


# --------------------------------------------------------------------------- the models


def _flat_features(channels: int, input_hw: tuple[int, int], num_blocks: int) -> int:
    """Features after `num_blocks` × (3×3 conv, padding 1 → 2×2 max-pool, stride 2)."""
    hw = input_hw
    for _ in range(num_blocks):
        hw = pool2d_output_shape(conv2d_output_shape(hw, 3, padding=1), 2, 2)
    return channels * hw[0] * hw[1]


class SimpleCNN(nn.Module):
    """The chapter's SimpleCNN (section 1.6): same layers, names and initialisation.

    `forward` computes exactly the chapter's function with less work: max-pooling before the
    ReLU (the two commute exactly, since ReLU is monotone, and the ReLU then touches a quarter
    of the values), in-place ReLUs. `ChapterSimpleCNN` keeps the forward as printed, as the
    reference that tests and the benchmark compare against.
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_hw: tuple[int, int] = (28, 28)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.flat_features = _flat_features(64, input_hw, num_blocks=2)  # 64·7·7
        self.fc1 = nn.Linear(self.flat_features, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pool(self.conv1(x)), inplace=True)  # (N, 32, 14, 14)
        x = F.relu(self.pool(self.conv2(x)), inplace=True)  # (N, 64, 7, 7)
        x = x.flatten(1)  # (N, 64·7·7)
        x = F.relu(self.fc1(x), inplace=True)
        x = self.dropout(x)
        return self.fc2(x)


class ChapterSimpleCNN(SimpleCNN):
    """SimpleCNN with the forward exactly as the chapter prints it (the reference)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))  # 28×28 → 14×14
        x = self.pool(F.relu(self.conv2(x)))  # 14×14 → 7×7
        x = x.view(-1, self.flat_features)  # (N, 64·7·7)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        return self.fc2(x)


class ConvBlock(nn.Module):
    """The chapter's ConvBlock (section 1.5): 3×3 convolution, padding 1, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class CustomCNN(nn.Module):
    """Exercise 4's CustomCNN: 32×32×3 input, two conv/pool stages, one linear classifier."""

    def __init__(
        self, in_channels: int = 3, num_classes: int = 10, input_hw: tuple[int, int] = (32, 32)
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2, 2)
        self.flat_features = _flat_features(64, input_hw, num_blocks=2)  # 64·8·8
        self.fc = nn.Linear(self.flat_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pool(self.conv1(x)), inplace=True)  # (N, 32, 16, 16), pool ∘ ReLU
        x = F.relu(self.pool(self.conv2(x)), inplace=True)  # (N, 64, 8, 8)
        return self.fc(x.flatten(1))  # (N, 64·8·8) → (N, num_classes)


@register_model(input_shape=(1, 28, 28))
def simple_cnn(**kwargs: Any) -> nn.Module:
    """The chapter's SimpleCNN for MNIST (section 1.6)."""
    return SimpleCNN(**kwargs)


@register_model(input_shape=(3, 224, 224))
def conv_block(in_channels: int = 3, out_channels: int = 64) -> nn.Module:
    """The chapter's Conv + ReLU block (section 1.5), ConvBlock(3, 64) by default."""
    return ConvBlock(in_channels, out_channels)


@register_model(input_shape=(3, 32, 32))
def custom_cnn(**kwargs: Any) -> nn.Module:
    """Exercise 4's CNN for 32×32×3 (CIFAR-10-style) images."""
    return CustomCNN(**kwargs)


# --------------------------------------------------------------------------- parameter counts


@dataclass(frozen=True)
class LayerParams:
    name: str  # module path, e.g. "conv1"
    kind: str  # "Conv2d" or "Linear"
    weight: int
    bias: int
    total: int


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    input_shape: Shape
    layers: list[LayerParams]
    total_params: int


def model_info(name: str, **kwargs: Any) -> ModelInfo:
    """Per-layer parameter counts, computed with `cnnkit.arithmetic` from each layer's
    hyper-parameters (not from the tensors, which the tests use as the oracle)."""
    model = create_model(name, **kwargs)
    layers = []
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            count = conv2d_params(
                module.in_channels,
                module.out_channels,
                module.kernel_size,
                groups=module.groups,
                bias=module.bias is not None,
            )
        elif isinstance(module, nn.Linear):
            count = linear_params(
                module.in_features, module.out_features, bias=module.bias is not None
            )
        elif next(module.parameters(recurse=False), None) is not None:
            raise CnnkitError(f"model {name!r}: no parameter rule for layer {path} ({module})")
        else:
            continue
        layers.append(
            LayerParams(path, type(module).__name__, count.weight, count.bias, count.total)
        )
    total = sum(layer.total for layer in layers)
    return ModelInfo(name, model_description(name), model_input_shape(name), layers, total)
