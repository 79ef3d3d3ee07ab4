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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.web.capture import Counter, Plan, align, make_plan, snapshot_hook

if TYPE_CHECKING:
    from cnnkit.analysis.summary.core import Summary
    from cnnkit.models.checkpoint import LoadedCheckpoint

__all__ = [
    "ACCURACY_SUFFIX",
    "Forward",
    "Playground",
    "bundled_checkpoint",
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
            raise CnnkitError.from_template(
                "{fspath!r} is a folder without checkpoint.pt (not a run)", fspath=os.fspath(path)
            )
        return ckpt, os.fspath(ckpt)
    if not path.is_file():
        raise CnnkitError.from_template(
            "{fspath!r}: no such checkpoint file or run folder", fspath=os.fspath(path)
        )
    return path, os.fspath(path)


@dataclass
class Forward:
    """One traced forward pass: the input tensor, the logits, and each summary row's output."""

    x: Any  # torch.Tensor (1, C, H, W), the normalised input
    logits: Any  # torch.Tensor (1, num_classes)
    rows: list[Any]  # torch.Tensor per summary row (None where a row produced no tensor)


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
    plan: Plan | None = None  # the fast path (cnnkit.web.capture); None: always trace
    # flatten row -> the spatial row it flattens (C order), checked on a test input at load
    flatten_sources: dict[int, int] = field(default_factory=dict)
    device: str = "cpu"  # where the replicas run; inputs go there, outputs come back to the CPU

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        source: str | None = None,
        replicas: int = 2,
        device: str = "cpu",
    ) -> Playground:
        """Load the checkpoint once (weights_only, onto the CPU) and prepare `replicas` copies
        of its model on `device` (auto, cpu, cuda, mps)."""
        from cnnkit.analysis.predict import class_names
        from cnnkit.analysis.summary import summary
        from cnnkit.models.checkpoint import checkpoint_input_shape, load_checkpoint
        from cnnkit.models.device import resolve_device

        device = resolve_device(device, func="Playground.load")
        if replicas < 1:
            raise CnnkitError.from_template(
                "The 'replicas' parameter must be a positive int. Got {replicas}.",
                replicas=replicas,
            )
        ckpt = load_checkpoint(path)
        shape = checkpoint_input_shape(ckpt)
        s = summary(ckpt.model, shape)
        out_shape: tuple[int, ...] = s.rows[-1].output_shape if s.rows else ()
        num_classes = int(out_shape[-1]) if len(out_shape) == 2 else 0
        if num_classes < 1:
            raise CnnkitError.from_template(
                (
                    "{fspath}: the playground needs a classifier with output (N, "
                    "num_classes); {model_name!r} ends with shape {out_shape}"
                ),
                fspath=os.fspath(path),
                model_name=ckpt.model_name,
                out_shape=out_shape,
            )
        normalize = ckpt.config.get("normalize")
        if not isinstance(normalize, list | tuple) or len(normalize) != 2:
            raise CnnkitError.from_template(
                "{fspath}: the run's config has no 'normalize' (mean, std)", fspath=os.fspath(path)
            )
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
            device=device,
        )
        ckpt.model.to(device)
        pg._pool.put(ckpt.model)
        for _ in range(replicas - 1):
            pg._pool.put(copy.deepcopy(ckpt.model))
        pg.plan = pg._make_plan()
        pg.flatten_sources = pg._find_flatten_sources()
        return pg

    def _find_flatten_sources(self) -> dict[int, int]:
        """Each flatten row (N, F) -> the nearest earlier spatial row (N, C, H, W) whose
        output, flattened in C order, is exactly the row's output on a test input: feature
        f of the row is then unit (c, y, x) = unravel_index(f, (C, H, W)) of that row."""
        import torch

        rows = self.summary.rows
        flats = [
            i
            for i, r in enumerate(rows)
            if len(r.output_shape) == 2 and r.type.lower() in ("flatten", "view", "reshape")
        ]
        if not flats:
            return {}
        gen = torch.Generator().manual_seed(1)
        pixels = torch.rand(
            self.input_shape[1:]
            if self.input_shape[0] == 1
            else (*self.input_shape[1:], self.input_shape[0]),
            generator=gen,
        )
        fwd = self.forward(pixels.double().numpy() * 255.0)
        found: dict[int, int] = {}
        for i in flats:
            out = fwd.rows[i]
            for j in range(i - 1, -1, -1):
                src = fwd.rows[j]
                if len(rows[j].output_shape) != 4 or out is None or src is None:
                    continue
                if src.numel() == out.numel() and torch.equal(src.reshape(out.shape), out):
                    if rows[j].rf.status == "local":
                        found[i] = j
                    break
        return found

    def _make_plan(self) -> Plan | None:
        """Trace once with a recording counter alongside; keep the plan only if a counted pass
        gives exactly the tracer's rows (module docstring of cnnkit.web.capture)."""
        import torch

        from cnnkit.analysis.summary.core import row_names, row_output
        from cnnkit.analysis.summary.trace import record

        gen = torch.Generator().manual_seed(0)
        x = torch.rand((1, *self.input_shape), generator=gen).to(self.device)
        recorder = Counter(record=True)
        with self.replica() as model:
            if model.training:
                return None  # the fast path never changes modes; checkpoints load in eval
            with torch.no_grad(), recorder:  # the tracer itself, in the counted calls only
                trace = record(model, x)
            named = row_names(trace, self.summary.depth)
            row_nodes = [row_output(trace, call, group) for (call, group), _ in named]
            plan = make_plan(trace.nodes, row_nodes, recorder.recorded)
            if plan is None or [n for _, n in named] != [r.name for r in self.summary.rows]:
                return None
            plain = Counter()
            with torch.no_grad(), plain:
                model(x)
            plan = Plan(plan.calls, plan.names, plan.input_rows, plain.count)
        fast = self._forward_counted(x, plan, grad=False)
        slow = self._forward_traced(x, grad=False)
        if fast is None or len(fast.rows) != len(slow.rows):
            return None
        for a, b in zip(fast.rows, slow.rows, strict=True):
            if (a is None) != (b is None) or (a is not None and not torch.equal(a, b)):
                return None
        return plan

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

        x = torch.from_numpy(self.normalized(pixels))  # (1, C, H, W), on the CPU
        if grad:
            x.requires_grad_(True)
        there = x.to(self.device)  # the same tensor on the CPU; a differentiable copy elsewhere
        fwd = None
        if self.plan is not None:
            fwd = self._forward_counted(there, self.plan, grad=grad)
        if fwd is None:
            fwd = self._forward_traced(there, grad=grad)
        if self.device == "cpu":
            return fwd
        # back to the CPU for encoding; gradients still flow to `x` through the copies
        rows = [None if r is None else r.cpu() for r in fwd.rows]
        return Forward(x=x, logits=fwd.logits.cpu(), rows=rows)

    def _forward_counted(self, x: Any, plan: Plan, *, grad: bool) -> Forward | None:
        """The fast path; None when this pass did not follow the plan."""
        import torch

        counter = Counter(plan.calls)
        with self.replica() as model, torch.set_grad_enabled(grad):
            try:
                with counter:
                    out = model(x)
            except Exception as e:
                first = (str(e).strip().splitlines() or [""])[0]
                raise CnnkitError.from_template(
                    "{name} failed on this input: {type_name}: {first}",
                    name=self.name,
                    type_name=type(e).__name__,
                    first=first,
                ) from e
        rows = plan.rows(counter, x, len(self.summary.rows))
        return None if rows is None else Forward(x=x, logits=_first(out), rows=rows)

    def _forward_traced(self, x: Any, *, grad: bool) -> Forward:
        """The slow path: the summary's tracer, copying every op's output as it is made."""
        from cnnkit.analysis.summary.core import row_names, row_output, run_traced

        snapshots: list[tuple[int, Any]] = []
        with self.replica() as model:
            trace, _ = run_traced(
                model, tuple(x.shape), x=x, grad=grad, replace=snapshot_hook(snapshots)
            )
        copies = align(trace.nodes, snapshots)
        if copies is None:
            raise CnnkitError("internal error: the traced ops and their copies do not line up")
        named = row_names(trace, self.summary.depth)
        if [name for _, name in named] != [r.name for r in self.summary.rows]:
            raise CnnkitError.from_template(
                (
                    "{name} ran different layers on this input than on the summary's "
                    "(data-dependent control flow); the playground cannot line them up"
                ),
                name=self.name,
            )
        rows = []
        for (call, group), _name in named:
            node = row_output(trace, call, group)
            rows.append(None if node is None else copies.get(node.index, node.output))
        return Forward(x=x, logits=_first(trace.output), rows=rows)


def _first(out: Any) -> Any:
    """The first tensor of a model's output (the logits)."""
    while isinstance(out, list | tuple):
        out = out[0]
    return out
