"""A small timm-style model registry: the chapter's networks, built by name.

    from cnnkit.models.zoo import create_model, list_models, model_input_shape
    model = create_model("simple-cnn")          # the chapter's SimpleCNN (section 1.6)
    list_models("conv*")                         # ['conv-block']
    model_input_shape("simple-cnn")              # (1, 28, 28)  (C, H, W)

Each model is a 3-5-line factory function decorated with `@register_model(input_shape=...)`.
Flattened sizes (the chapter's `64 * 7 * 7`) are derived with `cnnkit.calc.arithmetic`, never
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

from cnnkit.calc.arithmetic import conv2d_params, conv_pool_blocks_output_shape, linear_params
from cnnkit.core.errors import CnnkitError

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
    h, w = conv_pool_blocks_output_shape(input_hw, num_blocks)
    return channels * h * w


class _Im2colConv2d(torch.autograd.Function):
    """Stride-1 convolution as im2col + one GEMM, for an input that needs no gradient.

    With a column of ones appended to the patches and the bias appended to the weights,
        out (N·H_out·W_out, C_out) = cols (N·H_out·W_out, C_in·kh·kw + 1) @ w_aug ᵀ,
    and in backward one more GEMM gives both gradients: colsᵀ @ grad_out = [grad_wᵀ; grad_b].
    The output is channels-last (its memory is (N, H_out, W_out, C_out)).
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        padding: tuple[int, int],
    ) -> torch.Tensor:
        c_out, c_in, kh, kw = weight.shape
        n, _, h, w = x.shape
        ph, pw = padding
        h_out, w_out = h + 2 * ph - kh + 1, w + 2 * pw - kw + 1
        k = c_in * kh * kw
        xp = F.pad(x, (pw, pw, ph, ph))  # (N, C_in, H + 2·ph, W + 2·pw)
        cols = x.new_empty(n, h_out, w_out, k + (bias is not None))
        patches = cols[..., :k].unflatten(-1, (c_in, kh * kw))  # (N, H_out, W_out, C_in, kh·kw)
        for i in range(kh):
            for j in range(kw):
                patches[..., i * kw + j] = xp[:, :, i : i + h_out, j : j + w_out].permute(
                    0, 2, 3, 1
                )
        w_aug = weight.reshape(c_out, k)  # (C_out, C_in·kh·kw), the patch order (c, i, j)
        if bias is not None:
            cols[..., k] = 1.0
            w_aug = torch.cat([w_aug, bias[:, None]], dim=1)  # (C_out, k + 1)
        cols = cols.view(n * h_out * w_out, -1)
        out = cols @ w_aug.t()  # (N·H_out·W_out, C_out)
        ctx.save_for_backward(cols)
        ctx.weight_shape, ctx.k = weight.shape, k
        return out.view(n, h_out, w_out, c_out).permute(0, 3, 1, 2)  # (N, C_out, H_out, W_out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        (cols,) = ctx.saved_tensors
        g = grad.permute(0, 2, 3, 1).reshape(-1, ctx.weight_shape[0])  # (N·H·W, C_out)
        # colsᵀ @ g rather than gᵀ @ cols: the operand order that is fast in MKL (5-15× here)
        both = cols.t() @ g  # (k [+ 1], C_out)
        grad_weight = both[: ctx.k].t().reshape(ctx.weight_shape)  # (C_out, C_in, kh, kw)
        grad_bias = both[ctx.k] if both.shape[0] > ctx.k else None
        return None, grad_weight, grad_bias, None


class Conv2d(nn.Conv2d):
    """`nn.Conv2d` (same parameters, same function, same name, as torch's own `qat.Conv2d`
    and friends do) with a faster training path for a network's first layer.

    While training on an input that needs no gradient, a stride-1 convolution runs as
    im2col + GEMM (`_Im2colConv2d`): with few input channels (MNIST's one) oneDNN's kernels
    are about 10× slower on CPU, the weight gradient worst of all. In eval mode, or for any
    other configuration, it is plain `nn.Conv2d`, so tools that trace or hook the model see
    the usual `conv2d`, and summaries and `print(model)` read as the chapter's.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if (
            self.training
            and input.dim() == 4  # batched (N, C, H, W); nn.Conv2d also takes (C, H, W)
            and not input.requires_grad
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
        ):
            padding = (int(self.padding[0]), int(self.padding[1]))
            return _Im2colConv2d.apply(input, self.weight, self.bias, padding)
        return super().forward(input)


class ChapterSimpleCNN(nn.Module):
    """The chapter's SimpleCNN (section 1.6), its forward exactly as printed: the reference
    that the tests and the benchmark compare `SimpleCNN` against."""

    first_conv: type[nn.Conv2d] = nn.Conv2d

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_hw: tuple[int, int] = (28, 28)
    ) -> None:
        super().__init__()
        self.conv1 = self.first_conv(in_channels, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.flat_features = _flat_features(64, input_hw, num_blocks=2)  # 64·7·7
        self.fc1 = nn.Linear(self.flat_features, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))  # 28×28 → 14×14
        x = self.pool(F.relu(self.conv2(x)))  # 14×14 → 7×7
        x = x.view(-1, self.flat_features)  # (N, 64·7·7)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        return self.fc2(x)


class SimpleCNN(ChapterSimpleCNN):
    """The chapter's SimpleCNN: same layers, names, initialisation and function, less work.

    - max-pooling before the ReLU: the two commute exactly (ReLU is monotone), and the ReLU
      then touches a quarter of the values; ReLUs in place;
    - conv1 is a `cnnkit.models.zoo.Conv2d` (im2col + GEMM while training), whose output comes out
      channels-last, the layout that the pooling and conv2 kernels are fastest on.
    """

    first_conv = Conv2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.pool(self.conv1(x)), inplace=True)  # (N, 32, 14, 14)
        x = F.relu(self.pool(self.conv2(x)), inplace=True)  # (N, 64, 7, 7)
        x = x.flatten(1)  # (N, 64·7·7)
        x = F.relu(self.fc1(x), inplace=True)
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
    """Per-layer parameter counts, computed with `cnnkit.calc.arithmetic` from each layer's
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
        kind = "Conv2d" if isinstance(module, nn.Conv2d) else "Linear"
        layers.append(LayerParams(path, kind, count.weight, count.bias, count.total))
    total = sum(layer.total for layer in layers)
    return ModelInfo(name, model_description(name), model_input_shape(name), layers, total)
