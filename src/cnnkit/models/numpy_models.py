"""NumPy models with the parameter names of their torch twins in `cnnkit.models.chapter`.

Built by name with `cnnkit.models.registry.create_model(name, engine="numpy")`.

A state dict moves between the two unchanged (`conv1.weight`, `conv1.bias`, ..., `fc2.bias`).
Weights are drawn from torch's default distributions (U(±1/√fan_in)) with a NumPy Generator,
so a seed gives the same model every time, though not the same numbers as torch's seed.
"""

from __future__ import annotations

import numpy as np

from cnnkit.nn.layers import Conv2d, Dropout, Flatten, Linear, ReLU
from cnnkit.nn.module import DType, Module
from cnnkit.nn.pooling import MaxPool2d

__all__ = ["SimpleCNN"]


class SimpleCNN(Module):
    """The chapter's SimpleCNN:

        conv1 (C→32, 3×3, pad 1) → ReLU → max-pool 2×2 → conv2 (32→64, 3×3, pad 1) → ReLU →
        max-pool 2×2 → flatten → fc1 (64·H/4·W/4 → 128) → ReLU → dropout(0.25) → fc2 (128 → K)

    Here each max-pool runs before its ReLU: max and ReLU commute (ReLU is monotone), so the
    function and its gradients are the same, and ReLU touches a quarter of the values.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_hw: tuple[int, int] = (28, 28),
        *,
        dtype: DType = np.float32,
        rng: np.random.Generator | None = None,
        dropout_rng: np.random.Generator | None = None,
    ) -> None:
        from cnnkit.calc.arithmetic import conv_pool_blocks_output_shape

        rng = np.random.default_rng() if rng is None else rng
        hw = conv_pool_blocks_output_shape(input_hw, 2)
        self.conv1 = Conv2d(in_channels, 32, kernel_size=3, padding=1, dtype=dtype, rng=rng)
        self.conv2 = Conv2d(32, 64, kernel_size=3, padding=1, dtype=dtype, rng=rng)
        self.fc1 = Linear(64 * hw[0] * hw[1], 128, dtype=dtype, rng=rng)
        self.fc2 = Linear(128, num_classes, dtype=dtype, rng=rng)
        # torch reuses one `pool` module; here each use keeps its own forward state.
        self.pool1, self.pool2 = MaxPool2d(2, 2), MaxPool2d(2, 2)
        # in place: a pool's or fc1's output is needed by no backward but the ReLU's own
        self.relu1, self.relu2, self.relu3 = ReLU(inplace=True), ReLU(inplace=True), ReLU(True)
        self.flatten = Flatten()
        self.dropout = Dropout(0.25, rng=dropout_rng)
        self.conv1.needs_input_grad = False  # nothing upstream of conv1 learns
        self.layers: list[Module] = [
            self.conv1, self.pool1, self.relu1,
            self.conv2, self.pool2, self.relu2,
            self.flatten, self.fc1, self.relu3, self.dropout, self.fc2,
        ]  # fmt: skip

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer(x)
        return x  # (N, num_classes)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad_output = layer.backward(grad_output)
        return grad_output  # None: conv1 computes no input gradient
