"""The chapter's networks as torch modules: SimpleCNN (1.6), ConvBlock (1.5), CustomCNN (ex. 4).

Flattened sizes (the chapter's `64 * 7 * 7`) are derived with `cnnkit.calc.arithmetic`, never
hand-written. Layers are created in the chapter's order with torch's default initialisation,
so after `torch.manual_seed(s)` a model here and the chapter's own class hold the same weights.
Build them by name with `cnnkit.models.registry.create_model`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.calc.arithmetic import conv_pool_blocks_output_shape
from cnnkit.models.fastconv import Conv2d

__all__ = ["ChapterSimpleCNN", "ConvBlock", "CustomCNN", "SimpleCNN"]


def _flat_features(channels: int, input_hw: tuple[int, int], num_blocks: int) -> int:
    """Features after `num_blocks` × (3×3 conv, padding 1 → 2×2 max-pool, stride 2)."""
    h, w = conv_pool_blocks_output_shape(input_hw, num_blocks)
    return channels * h * w


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
    - conv1 is a `cnnkit.models.fastconv.Conv2d` (im2col + GEMM while training), whose output
      comes out channels-last, the layout that the pooling and conv2 kernels are fastest on.
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
