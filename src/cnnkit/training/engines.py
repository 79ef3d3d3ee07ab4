"""The engines that run the training steps, and the thread limits they run under.

`TorchEngine` (PyTorch) is here; `cnnkit.training.numpy_engine.NumpyEngine` (pure NumPy,
`engine="numpy"`) implements the same `cnnkit.training.engine.Engine` protocol.
`make_engine(name, ...)` builds either; `compute_threads(n)` limits torch and BLAS to n
threads while a run is inside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from cnnkit.core.checks import bad_parameter
from cnnkit.core.errors import CnnkitError
from cnnkit.models.registry import ENGINES
from cnnkit.training.engine import Engine

__all__ = ["TorchEngine", "compute_threads", "make_engine"]


class TorchEngine:
    """`cnnkit.training.engine.Engine` on PyTorch: a registry model, Adam, cross-entropy.

    The model's forward is the chapter's function computed with less work (see
    `cnnkit.models.chapter.SimpleCNN`); Adam runs its fused CPU kernel when available (the same
    update rule as the default for-loop kernel). Dropout draws from torch's global RNG,
    which `state()` carries.
    """

    name = "torch"

    def __init__(
        self,
        model_name: str = "simple-cnn",
        *,
        lr: float = 1e-3,
        seed: int = 0,
        model_args: dict[str, Any] | None = None,
    ) -> None:
        import torch

        from cnnkit.models.registry import create_model

        torch.manual_seed(seed)
        self.model = create_model(model_name, **(model_args or {}))
        try:  # one fused kernel for all parameters (CPU support since torch 2.4)
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError):
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        import torch
        import torch.nn.functional as F

        inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(inputs)  # (N, num_classes)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        self.optimizer.step()
        correct = (logits.detach().argmax(dim=1) == targets).sum()
        return loss.item(), int(correct)

    def eval_logits(self, x: np.ndarray) -> np.ndarray:
        import torch

        self.model.eval()
        with torch.inference_mode():
            return self.model(torch.from_numpy(x)).numpy()

    def model_state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}

    def load_model_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})

    def state(self) -> dict[str, Any]:
        import torch

        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),  # dropout masks
        }

    def load_state(self, state: dict[str, Any]) -> None:
        import torch

        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])


def make_engine(name: str, model: str, *, lr: float, seed: int) -> Engine:
    if name == "torch":
        return TorchEngine(model, lr=lr, seed=seed)
    if name == "numpy":
        try:
            from cnnkit.training.numpy_engine import NumpyEngine
        except ImportError as e:
            raise CnnkitError(f"the NumPy engine is not available in this install ({e})") from e
        return NumpyEngine(model, lr=lr, seed=seed)
    raise bad_parameter("train", "engine", f"one of {', '.join(ENGINES)}", name)


@contextlib.contextmanager
def compute_threads(threads: int | None) -> Iterator[int]:
    """torch's intra-op threads and NumPy's BLAS threads set to `threads` (None: leave
    torch's choice) while inside; yields the count in use. The previous counts come back
    whatever happens inside. The count changes the order of floating-point sums, hence the
    exact results: a resumed run uses its own."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            if threads is not None:
                torch.set_num_threads(threads)
                stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
            yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
