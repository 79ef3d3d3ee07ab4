"""The chapter's VGG-like stack (section 1.3) as a torch model, for `cnnkit summary`:
two 3×3 convolutions (padding 1) with ReLU, a 2×2 max-pool, twice (VGG-16's first blocks)."""

from torch import nn


def build() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(128, 128, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )
