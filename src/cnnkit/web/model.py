"""The playground's model: one checkpoint, loaded once, and its per-layer outputs for one input.

`Playground.load(path)` reads a cnnkit checkpoint (`torch.load(weights_only=True)`, through
`cnnkit.models.checkpoint`), computes its `cnnkit.summary` once, and keeps a few deep copies
of the model ("replicas"): a forward pass registers hooks on the model (the summary's tracer),
so two requests must never run the same module object at once. `Playground.replica()` hands
one out and takes it back; the server bounds concurrency to the number of replicas.

`Playground.forward(pixels, grad=...)` runs the model once through the summary's tracer
(`cnnkit.analysis.summary.core.run_traced`) and returns the output of every summary row,
indexed like `Playground.summary.rows`. Each op's output is copied (`clone`, differentiable)
the moment it is produced, so an in-place op that runs later (`F.relu(x, inplace=True)` after
a pool) does not change the row's values, and a gradient taken from a row's copy flows back
through exactly the ops that produced it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.core.errors import CnnkitError

if TYPE_CHECKING:
    import torch

    from cnnkit.analysis.summary.core import Summary
    from cnnkit.models.checkpoint import LoadedCheckpoint

__all__ = [
    "ACCURACY_SUFFIX",
    "Forward",
    "Playground",
    "bundled_checkpoint",
    "checkpoint_input_shape",
    "find_checkpoint",
]

# The JSON beside a checkpoint that records its measured test accuracy (the bundled model's).
ACCURACY_SUFFIX = ".json"
BUNDLED_NAME = (
    "simple-cnn.pt"  # in cnnkit/assets/playground/, made by scripts/bundle_playground_model.py
)


def bundled_checkpoint() -> Path:
    """The small SimpleCNN shipped in the package (trained by `cnnkit train`)."""
    from importlib import resources

    return Path(str(resources.files("cnnkit") / "assets" / "playground" / BUNDLED_NAME))


def find_checkpoint(
    spec: str | os.PathLike[str] | None, runs_dir: str | os.PathLike[str] = "runs"
) -> tuple[Path, str]:
    """(checkpoint file, source label) for `cnnkit serve [CHECKPOINT|RUN_DIR]`.

    None: the newest `RUNS/*/checkpoint.pt` by modification time, else the bundled model
    (label "bundled"). A folder: its checkpoint.pt. A file: itself.
    """
    if spec is None:
        runs = Path(runs_dir)
        found = sorted(
            (p for p in runs.glob("*/checkpoint.pt") if p.is_file()),
            key=lambda p: p.stat().st_mtime,
        ) if runs.is_dir() else []  # fmt: skip
        if found:
            return found[-1], os.fspath(found[-1])
        return bundled_checkpoint(), "bundled"
    path = Path(spec)
    if path.is_dir():
        ckpt = path / "checkpoint.pt"
        if not ckpt.is_file():
            raise CnnkitError(f"{os.fspath(path)!r} is a folder without checkpoint.pt (not a run)")
        return ckpt, os.fspath(ckpt)
    if not path.is_file():
        raise CnnkitError(f"{os.fspath(path)!r}: no such checkpoint file or run folder")
    return path, os.fspath(path)


@dataclass
class Forward:
    """One traced forward pass: the input tensor, the logits, and each summary row's output."""

    x: Any  # torch.Tensor (1, C, H, W), the normalised input
    logits: Any  # torch.Tensor (1, num_classes)
    rows: list[Any]  # torch.Tensor per summary row (None where a row produced no tensor)


def checkpoint_input_shape(ckpt: LoadedCheckpoint) -> tuple[int, int, int]:
    """(C, H, W) of the checkpoint's model: the registry's shape, with the run's model_args."""
    from cnnkit.models.registry import model_input_shape

    c, h, w = model_input_shape(ckpt.model_name)
    args = ckpt.model_args
    c = int(args.get("in_channels", c))
    if "input_hw" in args:
        h, w = (int(v) for v in args["input_hw"])
    return (c, h, w)


def _recorded_accuracy(path: Path, ckpt: LoadedCheckpoint) -> float | None:
    """The accuracy recorded beside the file (bundled model), else the run's last test_acc."""
    beside = path.with_suffix(ACCURACY_SUFFIX)
    if beside.is_file():
        with contextlib.suppress(ValueError, OSError, KeyError, TypeError):
            return float(json.loads(beside.read_text(encoding="utf-8"))["accuracy"])
    for row in reversed(ckpt.history):
        if isinstance(row, dict) and isinstance(row.get("test_acc"), int | float):
            return float(row["test_acc"])
    return None


@dataclass
class Playground:
    """A loaded checkpoint with its summary, ready to serve."""

    name: str  # the registry name, e.g. "simple-cnn"
    source: str  # the checkpoint path as given, or "bundled"
    input_shape: tuple[int, int, int]  # (C, H, W)
    classes: list[str]
    normalize: tuple[Any, Any]  # (mean, std) as in training
    accuracy: float | None
    summary: Summary
    checkpoint: LoadedCheckpoint
    _pool: queue.Queue[Any] = field(default_factory=queue.Queue, repr=False)
    replicas: int = 1

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, source: str | None = None, replicas: int = 2
    ) -> Playground:
        """Load the checkpoint once (weights_only) and prepare `replicas` copies of its model."""
        from cnnkit.analysis.predict import class_names
        from cnnkit.analysis.summary import summary
        from cnnkit.models.checkpoint import load_checkpoint

        if replicas < 1:
            raise CnnkitError(f"The 'replicas' parameter must be a positive int. Got {replicas}.")
        ckpt = load_checkpoint(path)
        shape = checkpoint_input_shape(ckpt)
        s = summary(ckpt.model, shape)
        out_shape: tuple[int, ...] = s.rows[-1].output_shape if s.rows else ()
        num_classes = int(out_shape[-1]) if len(out_shape) == 2 else 0
        if num_classes < 1:
            raise CnnkitError(
                f"{os.fspath(path)}: the playground needs a classifier with output "
                f"(N, num_classes); {ckpt.model_name!r} ends with shape {out_shape}"
            )
        normalize = ckpt.config.get("normalize")
        if not isinstance(normalize, list | tuple) or len(normalize) != 2:
            raise CnnkitError(f"{os.fspath(path)}: the run's config has no 'normalize' (mean, std)")
        pg = cls(
            name=ckpt.model_name,
            source=source if source is not None else os.fspath(path),
            input_shape=shape,
            classes=class_names(ckpt, num_classes),
            normalize=(normalize[0], normalize[1]),
            accuracy=_recorded_accuracy(Path(path), ckpt),
            summary=s,
            checkpoint=ckpt,
            replicas=replicas,
        )
        pg._pool.put(ckpt.model)
        for _ in range(replicas - 1):
            pg._pool.put(copy.deepcopy(ckpt.model))
        return pg

    @contextlib.contextmanager
    def replica(self) -> Iterator[Any]:
        """A model copy no other thread uses until it is given back (blocks while all are out)."""
        model = self._pool.get()
        try:
            yield model
        finally:
            self._pool.put(model)

    def normalized(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (H, W) or (H, W, C) in [0, 255] -> the network's input (1, C, H, W) float32."""
        from cnnkit.data.transforms import normalize_images

        return normalize_images(pixels[None], self.normalize)

    def forward(self, pixels: np.ndarray, *, grad: bool = False) -> Forward:
        """Run the model on one input; every summary row's output (see the module docstring)."""
        import torch

        from cnnkit.analysis.summary.core import row_names, row_output, run_traced

        x = torch.from_numpy(self.normalized(pixels))  # (1, C, H, W)
        if grad:
            x.requires_grad_(True)
        snapshots: list[tuple[int, torch.Tensor]] = []
        with self.replica() as model:
            trace, _ = run_traced(
                model, tuple(x.shape), x=x, grad=grad, replace=_snapshot_into(snapshots)
            )
        copies = _align(trace.nodes, snapshots)
        named = row_names(trace, self.summary.depth)
        if [name for _, name in named] != [r.name for r in self.summary.rows]:
            raise CnnkitError(
                f"{self.name} ran different layers on this input than on the summary's "
                "(data-dependent control flow); the playground cannot line them up"
            )
        rows = []
        for (call, group), _name in named:
            node = row_output(trace, call, group)
            rows.append(None if node is None else copies.get(node.index, node.output))
        logits = trace.output
        while isinstance(logits, list | tuple):
            logits = logits[0]
        return Forward(x=x, logits=logits, rows=rows)


def _snapshot_into(snapshots: list[tuple[int, Any]]) -> Callable[..., Any]:
    """A tracer `replace` hook: runs each op as it is and keeps (id, copy) of its first output.

    The tracer calls the hook for every op with a traced input and records a node for each of
    those with a tensor output (for `x[...] = y`, x itself), in the same order (`_align`).
    """
    import torch
    from torch.utils._pytree import tree_flatten

    def hook(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "__setitem__" and args and isinstance(args[0], torch.Tensor):
            snapshots.append((id(args[0]), args[0].clone()))
            return out
        first = next((t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)), None)
        if first is not None:
            snapshots.append((id(first), first.clone()))
        return out

    return hook


def _align(nodes: list[Any], snapshots: list[tuple[int, Any]]) -> dict[int, Any]:
    """node index -> the copy of its output taken when it ran.

    Nodes and copies come in the same order; a node without a copy is an op the hook did not
    see (an input, or an op on weights only, whose output no later op changes in place).
    The output tensors stay alive during the trace, so an id names one tensor, and an op
    done in place (same tensor as its input) takes the next copy in order.
    """
    copies: dict[int, Any] = {}
    k = 0
    for node in nodes:
        if node.op == "input" or node.output is None:
            continue
        if k < len(snapshots) and snapshots[k][0] == id(node.output):
            copies[node.index] = snapshots[k][1]
            k += 1
    if k != len(snapshots):
        raise CnnkitError(
            f"internal error: {len(snapshots) - k} op outputs could not be matched to the trace"
        )
    return copies
