"""The engines that run the training steps, and the thread limits they run under.

`TorchEngine` (PyTorch) is here; `cnnkit.training.numpy_engine.NumpyEngine` (pure NumPy,
`engine="numpy"`) implements the same `cnnkit.training.engine.Engine` protocol.
`make_engine(name, ...)` builds either; `compute_threads(n)` limits torch and BLAS to n
threads while a run is inside it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from cnnkit.core.checks import bad_parameter
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message
from cnnkit.models.registry import ENGINES
from cnnkit.training.config import RECIPES, Recipe
from cnnkit.training.engine import Engine

__all__ = ["TorchEngine", "compute_threads", "make_engine"]


class TorchEngine:
    """`cnnkit.training.engine.Engine` on PyTorch: a registry model, Adam, cross-entropy.

    The chapter's recipe (the defaults) is unchanged: its forward is the chapter's function
    computed with less work (see `cnnkit.models.chapter.SimpleCNN`); Adam runs its fused
    kernel when available (the same update rule as the default for-loop kernel). A `Recipe`
    (`cnnkit.training.config.RECIPES`) may add Adam betas, label smoothing, a OneCycle
    schedule over `total_steps` and channels-last memory. `device` ('cpu', 'cuda', 'mps')
    holds the model and, after `attach_data`, the training set (`train_order`: a pass over
    it); `precision` 'bf16'/'fp16' runs forward and loss under autocast with fp32 master
    weights (fp16 with a gradient scaler). Dropout draws from torch's global RNG, which
    `state()` carries.
    """

    name = "torch"

    def __init__(
        self,
        model_name: str = "simple-cnn",
        *,
        lr: float = 1e-3,
        seed: int = 0,
        model_args: dict[str, Any] | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        recipe: Recipe | None = None,
        total_steps: int | None = None,
    ) -> None:
        import torch

        from cnnkit.models.registry import create_model

        recipe = recipe or RECIPES["chapter"]
        self.device, self.precision, self.recipe = torch.device(device), precision, recipe
        torch.manual_seed(seed)
        self.model = create_model(model_name, **(model_args or {}))
        self.memory_format = torch.channels_last if recipe.channels_last else None
        self.model.to(device=self.device, memory_format=self.memory_format or torch.preserve_format)
        self.optimizer = _adam(self.model.parameters(), lr, recipe.betas, self.device.type)
        self.scheduler: Any = None
        if recipe.one_cycle:
            if total_steps is None:
                raise ValueError("a OneCycle recipe needs total_steps")
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=lr, total_steps=total_steps
            )
        self.scaler: Any = None
        if precision == "fp16":
            self.scaler = torch.amp.GradScaler(self.device.type)
        self._train_x: Any = None
        self._train_y: Any = None

    def _input(self, x: Any) -> Any:
        import torch

        t = torch.as_tensor(x).to(self.device, non_blocking=True)
        return t if self.memory_format is None else t.contiguous(memory_format=self.memory_format)

    def _autocast(self) -> Any:
        import torch

        from cnnkit.models.device import autocast_dtype

        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _step(self, inputs: Any, targets: Any) -> tuple[Any, Any]:
        """One optimizer step; (loss, number correct) as 0-d tensors on the device."""
        import torch.nn.functional as F

        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.model(inputs)  # (N, num_classes)
            loss = F.cross_entropy(
                logits.float(), targets, label_smoothing=self.recipe.label_smoothing
            )
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return loss.detach(), (logits.detach().argmax(dim=1) == targets).sum()

    def train_batch(self, x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
        import torch

        loss, correct = self._step(self._input(x), torch.as_tensor(y).to(self.device))
        return loss.item(), int(correct)

    def attach_data(self, x: np.ndarray, y: np.ndarray) -> None:
        """Put the training set on the device once; `train_order` then gathers batches there."""
        import torch

        self._train_x = self._input(x)
        self._train_y = torch.as_tensor(y).to(self.device)

    def train_order(
        self, order: np.ndarray, batch_size: int, on_step: Callable[[], None] | None = None
    ) -> tuple[float, int, int | None]:
        """A pass over the attached training set in `order`, without a host sync per step
        (for a GPU): the losses, correct counts and the first non-finite step stay on the
        device until the end. Returns (sum of batch losses, correct, first non-finite step
        (0-based) or None); the pass goes on after a non-finite loss, the caller stops there."""
        import torch

        index = torch.as_tensor(order).to(self.device, non_blocking=True)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        first_bad = torch.full((), -1, dtype=torch.int64, device=self.device)
        for step, start in enumerate(range(0, len(order), batch_size)):
            idx = index[start : start + batch_size]
            loss, batch_correct = self._step(self._train_x[idx], self._train_y[idx])
            bad = ~torch.isfinite(loss)
            first_bad = torch.where(bad & (first_bad < 0), step, first_bad)
            loss_sum += loss.double()
            correct += batch_correct
            if on_step is not None:
                on_step()
        bad_step = int(first_bad)  # the one sync of the pass
        return float(loss_sum), int(correct), None if bad_step < 0 else bad_step

    def eval_logits(self, x: np.ndarray) -> np.ndarray:
        import torch

        self.model.eval()
        with torch.inference_mode(), self._autocast():
            return self.model(self._input(x)).float().cpu().numpy()

    def model_state_dict(self) -> dict[str, np.ndarray]:
        return {
            k: v.detach().cpu().contiguous().numpy().copy()
            for k, v in self.model.state_dict().items()
        }

    def load_model_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        self.model.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})

    def state(self) -> dict[str, Any]:
        import torch

        state = {
            "model": {k: v.cpu() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),  # dropout masks
        }
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        import torch

        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None:
            self.scaler.load_state_dict(state["scaler"])


def _adam(params: Any, lr: float, betas: tuple[float, float], device_type: str) -> Any:
    """Adam with one fused kernel for all parameters where torch has it (CPU since 2.4)."""
    import torch

    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, betas=betas)


def make_engine(
    name: str,
    model: str,
    *,
    lr: float,
    seed: int,
    device: str = "cpu",
    precision: str = "fp32",
    recipe: Recipe | None = None,
    total_steps: int | None = None,
    model_args: dict[str, Any] | None = None,
) -> Engine:
    if name == "torch":
        return TorchEngine(
            model,
            lr=lr,
            seed=seed,
            model_args=model_args,
            device=device,
            precision=precision,
            recipe=recipe,
            total_steps=total_steps,
        )
    if name == "numpy":
        if device != "cpu" or precision != "fp32":
            raise CnnkitError.from_template(
                (
                    "the NumPy engine runs on the CPU in fp32 only; got device={device!r}, "
                    "precision={precision!r}"
                ),
                device=device,
                precision=precision,
            )
        try:
            from cnnkit.training.numpy_engine import NumpyEngine
        except ImportError as e:
            raise CnnkitError.from_template(
                "the NumPy engine is not available in this install ({e})", e=e
            ) from e
        return NumpyEngine(model, lr=lr, seed=seed, model_args=model_args)
    raise bad_parameter(
        "train", "engine", Message("one of {engines}", engines=", ".join(ENGINES)), name
    )


@contextlib.contextmanager
def compute_threads(threads: int | None) -> Iterator[int]:
    """torch's intra-op threads and NumPy's BLAS threads set to `threads` (None: the cores
    free now, `cnnkit.models.device.default_threads`) while inside; yields the count in
    use. The previous counts come back whatever happens inside. The count changes the order
    of floating-point sums, hence the exact results: a resumed run uses its own."""
    import torch
    from threadpoolctl import threadpool_limits

    from cnnkit.models.device import default_threads

    before = torch.get_num_threads()
    if threads is None:
        threads = default_threads()
    try:
        with contextlib.ExitStack() as stack:
            if threads is not None:
                torch.set_num_threads(threads)
                stack.enter_context(threadpool_limits(limits=threads, user_api="blas"))
            yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
