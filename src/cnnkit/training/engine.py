"""The contract between the training loop (`cnnkit.training.loop`) and a compute engine.

Two engines implement it: the torch engine (`cnnkit.training.engines.TorchEngine`) and the pure
NumPy engine (`cnnkit.training.numpy_engine.NumpyEngine`). The loop owns data, batching,
shuffling, metrics and checkpoints; an engine owns the model, its optimizer and its dropout RNG.
Arrays cross the boundary as NumPy (the torch engine wraps them with `torch.from_numpy`,
no copy).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Engine(Protocol):
    name: str  # "torch" or "numpy"

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One optimizer step on x (N, C, H, W) float32, normalised, and labels y (N,) int64.

        Returns (mean cross-entropy loss of the batch, number of correct predictions).
        """
        ...

    def eval_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, num_classes) float32 in eval mode (no dropout, no gradient)."""
        ...

    def model_state_dict(self) -> dict[str, np.ndarray]:
        """Parameters under torch's names for the same model ("conv1.weight", ...)."""
        ...

    def load_model_state_dict(self, state: dict[str, np.ndarray]) -> None: ...

    def state(self) -> dict[str, Any]:
        """Everything needed to resume bit-exactly: parameters, optimizer state, RNG state."""
        ...

    def load_state(self, state: dict[str, Any]) -> None: ...
