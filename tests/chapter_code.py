"""The chapter's own model code (section 1.6), copied verbatim as a test oracle.

Hand-written sizes such as 64 * 7 * 7 are the chapter's; cnnkit derives them instead.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class ChapterText_SimpleCNN(nn.Module):
    """Section 1.6's SimpleCNN, as printed in the chapter."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.pool = nn.MaxPool2d(2, 2)
        self.dropout = nn.Dropout(0.25)

    def features(self, x):
        """The convolutional part of `forward` (what fc1 receives, before flattening)."""
        x = self.pool(F.relu(self.conv1(x)))
        return self.pool(F.relu(self.conv2(x)))

    def forward(self, x):
        x = self.features(x)
        x = x.view(-1, 64 * 7 * 7)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        x = self.fc2(x)
        return x
