"""A pure-NumPy neural-network engine: torch-named layers, SGD/Adam, and a training engine.

`import cnnkit.nn` imports NumPy only; convolution and pooling come from `cnnkit.ops`.
"""

from cnnkit.nn.layers import (
    ELU,
    GELU,
    Conv2d,
    Dropout,
    Flatten,
    LeakyReLU,
    Linear,
    ReLU,
    Sigmoid,
    Tanh,
)
from cnnkit.nn.module import Module, Parameter, Sequential
from cnnkit.nn.optim import SGD, Adam, Optimizer
from cnnkit.nn.pooling import AvgPool2d, MaxPool2d

__all__ = [
    "ELU",
    "GELU",
    "SGD",
    "Adam",
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "MaxPool2d",
    "Module",
    "Optimizer",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
]
