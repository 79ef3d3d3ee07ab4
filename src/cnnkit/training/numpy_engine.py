"""`NumpyEngine`: the `cnnkit.training.engine.Engine` protocol in pure NumPy (`--engine numpy`).

It owns the model (float32 by default), its Adam optimizer and the dropout RNG. Two streams
come from the seed: one draws the initial weights, the other the dropout masks; both are
NumPy PCG64 generators, so `state()` / `load_state()` resume bit-exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.models.registry import create_model
from cnnkit.nn.functional import softmax_cross_entropy
from cnnkit.nn.optim import Adam


class NumpyEngine:
    name = "numpy"

    def __init__(
        self,
        model_name: str = "simple-cnn",
        *,
        lr: float = 1e-3,
        seed: int = 0,
        model_args: dict[str, Any] | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        init_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
        self.model_name = model_name
        self.dtype = np.dtype(dtype)
        self.dropout_rng = np.random.default_rng(dropout_seed)
        self.model = create_model(
            model_name,
            engine="numpy",
            **(model_args or {}),
            dtype=self.dtype,
            rng=np.random.default_rng(init_seed),
            dropout_rng=self.dropout_rng,
        )
        self.optimizer = Adam(self.model.parameters(), lr=lr)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        """One Adam step on a batch; returns (mean cross-entropy, number of correct)."""
        self.model.train()
        logits = self.model.forward(np.asarray(x, dtype=self.dtype))  # (N, K)
        loss, grad = softmax_cross_entropy(logits, np.asarray(y))  # checks y, keeps logits
        assert grad is not None
        correct = int((logits.argmax(axis=1) == y).sum())
        self.optimizer.zero_grad()
        self.model.backward(grad)
        self.optimizer.step()
        return loss, correct

    def eval_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, K) in eval mode (dropout off)."""
        self.model.eval()
        try:
            return self.model.forward(np.asarray(x, dtype=self.dtype))
        finally:
            self.model.train()

    def model_state_dict(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()

    def load_model_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(state)

    def state(self) -> dict[str, Any]:
        """Parameters, Adam state and the dropout generator: enough to resume bit-exactly."""
        return {
            "engine": self.name,
            "model_name": self.model_name,
            "dtype": self.dtype.name,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "dropout_rng": self.dropout_rng.bit_generator.state,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("engine") != self.name or state.get("model_name") != self.model_name:
            raise CnnkitError.from_template(
                (
                    "cannot resume a {get!r} engine state of model {get2!r} in the numpy "
                    "engine with model {model_name!r}"
                ),
                get=state.get("engine"),
                get2=state.get("model_name"),
                model_name=self.model_name,
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.dropout_rng.bit_generator.state = state["dropout_rng"]
