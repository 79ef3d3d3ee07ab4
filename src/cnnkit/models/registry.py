"""One timm-style model registry for both engines: the chapter's networks, built by name.

    from cnnkit.models.registry import create_model, list_models, model_input_shape
    model = create_model("simple-cnn")                  # torch: the chapter's SimpleCNN (1.6)
    model = create_model("simple-cnn", engine="numpy")  # the NumPy engine's twin
    list_models("conv*")                                 # ['conv-block']
    model_input_shape("simple-cnn")                      # (1, 28, 28)  (C, H, W)

Each model is a 3-5-line factory decorated with `@register_model(input_shape=..., engine=...)`;
a name may exist once per engine (`simple-cnn` has a torch and a NumPy model with the same
parameter names). The factories import their classes when called, so this module imports
neither torch nor the NumPy layers: `cnnkit models` and `list_models()` stay fast, and the
NumPy engine never loads torch. An unknown name lists the known ones.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

if TYPE_CHECKING:
    from cnnkit.nn.module import Module

__all__ = [
    "ENGINES",
    "LayerParams",
    "ModelInfo",
    "create_model",
    "list_models",
    "model_description",
    "model_info",
    "model_input_shape",
    "register_model",
]

Shape = tuple[int, int, int]  # (C, H, W)
ENGINES = ("torch", "numpy")
Factory = Callable[..., Any]


@dataclass(frozen=True)
class _Entry:
    factory: Factory
    input_shape: Shape
    description: str


_REGISTRY: dict[str, dict[str, _Entry]] = {engine: {} for engine in ENGINES}


def _check_engine(engine: str) -> dict[str, _Entry]:
    if engine not in _REGISTRY:
        raise CnnkitError.from_template(
            "The 'engine' parameter must be one of {engines}. Got {engine!r} instead.",
            engines=", ".join(ENGINES),
            engine=engine,
        )
    return _REGISTRY[engine]


def register_model(*, input_shape: Shape, engine: str = "torch") -> Callable[[Factory], Factory]:
    """Register a factory under its function name, `_` written as `-` (`simple_cnn`)."""
    models = _check_engine(engine)

    def decorate(factory: Factory) -> Factory:
        name = factory.__name__.removesuffix("_numpy").replace("_", "-")
        doc = (factory.__doc__ or "").strip().splitlines()
        models[name] = _Entry(factory, input_shape, doc[0] if doc else "")
        return factory

    return decorate


def _entry(name: str, engine: str = "torch") -> _Entry:
    entry = _check_engine(engine).get(name)
    if entry is None:
        which = "" if engine == "torch" else Message(" for the {engine} engine", engine=engine)
        raise CnnkitError.from_template(
            "Unknown model {name!r}{which}. Known models: {items}.",
            name=name,
            which=which,
            items=", ".join(list_models(engine=engine)),
        )
    return entry


def list_models(pattern: str = "*", *, engine: str = "torch") -> list[str]:
    """Registered model names of `engine` matching a shell-style pattern, sorted."""
    if not isinstance(pattern, str):
        raise CnnkitError.from_template(
            (
                "The 'pattern' parameter of list_models must be a str (a shell-style "
                "pattern such as 'resnet*'). Got {type_name} {pattern!r:.80} instead."
            ),
            type_name=type(pattern).__name__,
            pattern=pattern,
        )
    return sorted(n for n in _check_engine(engine) if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, *, engine: str = "torch", **kwargs: Any) -> Any:
    """Build a registered model; `kwargs` go to its factory (e.g. conv-block's channels).

    Returns an `nn.Module` for engine "torch", a `cnnkit.nn.module.Module` for "numpy".
    """
    entry = _entry(name, engine)
    try:
        return entry.factory(**kwargs)
    except TypeError as e:
        raise CnnkitError.from_template(
            "Bad arguments {kwargs!r} for model {name!r}: {e}", kwargs=kwargs, name=name, e=e
        ) from e


def model_input_shape(name: str, *, engine: str = "torch") -> Shape:
    """The (C, H, W) input the model was designed for (with its default arguments)."""
    return _entry(name, engine).input_shape


def model_description(name: str, *, engine: str = "torch") -> str:
    return _entry(name, engine).description


# --------------------------------------------------------------------------- the models


@register_model(input_shape=(1, 28, 28))
def simple_cnn(**kwargs: Any) -> Any:
    """The chapter's SimpleCNN for MNIST (section 1.6)."""
    from cnnkit.models.chapter import SimpleCNN

    return SimpleCNN(**kwargs)


@register_model(input_shape=(3, 224, 224))
def conv_block(in_channels: int = 3, out_channels: int = 64) -> Any:
    """The chapter's Conv + ReLU block (section 1.5), ConvBlock(3, 64) by default."""
    from cnnkit.models.chapter import ConvBlock

    return ConvBlock(in_channels, out_channels)


@register_model(input_shape=(3, 32, 32))
def custom_cnn(**kwargs: Any) -> Any:
    """Exercise 4's CNN for 32×32×3 (CIFAR-10-style) images."""
    from cnnkit.models.chapter import CustomCNN

    return CustomCNN(**kwargs)


@register_model(input_shape=(1, 28, 28))
def fast_cnn(**kwargs: Any) -> Any:
    """A speed net for MNIST (after tuomaso/train_mnist_fast): the `fast` recipe's model."""
    from cnnkit.models.speed import FastCNN

    return FastCNN(**kwargs)


@register_model(input_shape=(1, 28, 28), engine="numpy")
def simple_cnn_numpy(**kwargs: Any) -> Module:
    """The chapter's SimpleCNN on the NumPy engine, torch's parameter names."""
    from cnnkit.models.numpy_models import SimpleCNN

    return SimpleCNN(**kwargs)


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
    """Per-layer parameter counts of the torch model `name`, computed with
    `cnnkit.calc.params` from each layer's hyper-parameters (not from the tensors, which
    the tests use as the oracle)."""
    from torch import nn

    from cnnkit.calc.params import conv2d_params, linear_params

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
            raise CnnkitError.from_template(
                "model {name!r}: no parameter rule for layer {path} ({module})",
                name=name,
                path=path,
                module=module,
            )
        else:
            continue
        kind = "Conv2d" if isinstance(module, nn.Conv2d) else "Linear"
        layers.append(LayerParams(path, kind, count.weight, count.bias, count.total))
    total = sum(layer.total for layer in layers)
    return ModelInfo(name, model_description(name), model_input_shape(name), layers, total)
