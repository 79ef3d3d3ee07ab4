"""The training loop: the chapter's MNIST recipe (section 1.6), reproducible and resumable.

    from cnnkit.training.loop import train
    result = train(dataset="mnist", model="simple-cnn", epochs=3)   # the chapter's recipe
    result.history[-1]["test_acc"]

Defaults are the chapter's: Adam (lr 1e-3), cross-entropy, batch 64, 3 epochs, test batch
1000, inputs normalised with MNIST's (0.1307, 0.3081). The loop owns data, shuffling, metrics,
checkpoints and the report; an engine (`cnnkit.training.engine.Engine`) owns the model and
optimizer:
`TorchEngine` here, or `cnnkit.training.numpy_engine.NumpyEngine` (`engine="numpy"`).

The dataset lives in memory as one normalised float32 array (N, C, H, W); each epoch draws
a permutation from a seeded NumPy generator and slices batches from it (no DataLoader, no
per-sample transforms). Each run writes `<out_dir>/<run_name>/`: `config.json`,
`metrics.jsonl`, `metrics.csv` and `checkpoint.pt` (after every epoch, with every RNG state),
then `report.html` (`cnnkit.render.report`). `resume=RUN_DIR` continues from the last completed
epoch and ends, on CPU with the same seed, with exactly the metrics of an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.files import atomic_write_text
from cnnkit.data.transforms import dataset_normalize
from cnnkit.nn.functional import cross_entropy
from cnnkit.training.engine import Engine

ENGINES = ("torch", "numpy")
DEFAULT_EPOCHS = 3  # the chapter's
TEST_BATCH_SIZE = 1000  # the chapter's test loader
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
# Settings that define a run; on resume, those left at their default come from the run.
RUN_SETTINGS = {
    "dataset": "mnist",
    "model": "simple-cnn",
    "batch_size": 64,
    "lr": 1e-3,
    "seed": 0,
    "limit": None,
    "test_limit": None,
    "engine": "torch",
}


# --------------------------------------------------------------------------- the torch engine


class TorchEngine:
    """`cnnkit.training.engine.Engine` on PyTorch: a registry model, Adam, cross-entropy.

    The model's forward is the chapter's function computed with less work (see
    `cnnkit.models.zoo.SimpleCNN`); Adam runs its fused CPU kernel when available (the same
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

        from cnnkit.models.zoo import create_model

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
    raise _bad_parameter("engine", f"one of {', '.join(ENGINES)}", name)


# --------------------------------------------------------------------------- data


@dataclass
class TrainData:
    train_x: np.ndarray  # (N, C, H, W) float32, normalised
    train_y: np.ndarray  # (N,) int64
    test_x: np.ndarray  # (M, C, H, W) float32, normalised
    test_y: np.ndarray  # (M,) int64
    test_images: np.ndarray  # raw uint8 test images, for the report
    classes: list[str]
    normalize: tuple[Any, Any]


def load_train_data(
    dataset: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    limit: int | None = None,
    test_limit: int | None = None,
) -> TrainData:
    """Both splits in memory, normalised; the first `limit` / `test_limit` images of each."""
    from cnnkit.data import load_dataset
    from cnnkit.data.transforms import normalize_images

    train_split = load_dataset(dataset, "train", data_dir=data_dir, download=True)
    test_split = load_dataset(dataset, "test", data_dir=data_dir, download=True)
    normalize = dataset_normalize(dataset, train_split.images)
    images, labels = train_split.images, train_split.labels
    test_images, test_labels = test_split.images[:test_limit], test_split.labels[:test_limit]
    return TrainData(
        train_x=normalize_images(images[:limit], normalize),
        train_y=np.ascontiguousarray(labels[:limit], dtype=np.int64),
        test_x=normalize_images(test_images, normalize),
        test_y=np.ascontiguousarray(test_labels, dtype=np.int64),
        test_images=test_images,
        classes=list(train_split.classes),
        normalize=normalize,
    )


# --------------------------------------------------------------------------- metrics


def evaluate(
    engine: Engine, x: np.ndarray, y: np.ndarray, batch_size: int = TEST_BATCH_SIZE
) -> tuple[float, float]:
    """(loss, accuracy) as the chapter computes them: the mean of per-batch mean losses."""
    losses, correct = [], 0
    for start in range(0, len(y), batch_size):
        logits = engine.eval_logits(x[start : start + batch_size])
        labels = y[start : start + batch_size]
        losses.append(cross_entropy(logits.astype(np.float64), labels))
        correct += int((logits.argmax(axis=1) == labels).sum())
    return float(np.mean(losses)), correct / len(y)


def write_metrics(run_dir: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl and metrics.csv, rewritten whole (atomically) after each epoch."""
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=METRIC_KEYS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_text(run_dir / "metrics.csv", text.getvalue())


# --------------------------------------------------------------------------- RNG state


def _rng_state(shuffle_rng: np.random.Generator) -> dict[str, Any]:
    import torch

    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "shuffle": shuffle_rng.bit_generator.state,
    }


def _restore_rng_state(state: dict[str, Any], shuffle_rng: np.random.Generator) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    shuffle_rng.bit_generator.state = state["shuffle"]


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    run_dir: Path | None  # None for a dry run (which writes nothing)
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    report: Path | None = None  # report.html, when one was written
    dry_run_loss: float | None = None  # the loss of the one batch of a dry run
    resumed_from_epoch: int = 0


EpochCallback = Callable[[dict[str, Any], int], None]  # (metrics row, total epochs)


def _bad_parameter(name: str, allowed: str, value: Any) -> CnnkitError:
    return CnnkitError(f"The '{name}' parameter of train must be {allowed}. Got {value!r} instead.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive_int(name: str, value: Any) -> None:
    if not _is_int(value) or value < 1:
        raise _bad_parameter(name, "a positive int", value)


def _validate(settings: dict[str, Any], epochs: Any) -> None:
    from cnnkit.data.registry import DATASETS
    from cnnkit.models.zoo import list_models

    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", settings["batch_size"])
    for name in ("limit", "test_limit"):
        if settings[name] is not None:
            _check_positive_int(name, settings[name])
    lr = settings["lr"]
    if not (_is_int(lr) or isinstance(lr, float)) or not (math.isfinite(lr) and lr > 0):
        raise _bad_parameter("lr", "a positive number", lr)
    if not _is_int(settings["seed"]) or settings["seed"] < 0:
        raise _bad_parameter("seed", "a non-negative int", settings["seed"])
    for name, allowed in (
        ("engine", ENGINES),
        ("model", list_models()),
        ("dataset", list(DATASETS)),
    ):
        if settings[name] not in allowed:
            raise _bad_parameter(name, f"one of {', '.join(allowed)}", settings[name])


def _resume_settings(
    resume: str | os.PathLike[str], given: dict[str, Any]
) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """The run to continue, its settings, and its checkpoint; settings given explicitly (not
    at their default) must agree with the run's."""
    from cnnkit.models.checkpoint import read_checkpoint

    run_dir = Path(resume)
    ckpt_path = run_dir / "checkpoint.pt" if run_dir.is_dir() else run_dir
    if not ckpt_path.is_file():
        raise CnnkitError(f"cannot resume {resume}: no checkpoint.pt there (no completed epoch)")
    raw = read_checkpoint(ckpt_path)
    saved = raw["config"]
    settings = {}
    for key, default in RUN_SETTINGS.items():
        value = given[key]
        if value != default and value != saved[key]:
            raise CnnkitError(
                f"cannot resume {resume} with {key}={value!r}: the run used {saved[key]!r} "
                f"(a resumed run keeps its settings; only epochs may change)"
            )
        settings[key] = saved[key]
    return ckpt_path.parent, settings, raw


def _new_run_dir(out_dir: str | os.PathLike[str], run_name: str | None, settings: dict) -> Path:
    if run_name is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run_name = f"{settings['dataset']}-{settings['model']}-{stamp}"
    if not run_name or "/" in run_name or run_name in (".", ".."):
        raise _bad_parameter("run_name", "a plain folder name", run_name)
    run_dir = Path(out_dir) / run_name
    if (run_dir / "checkpoint.pt").exists() or (run_dir / "config.json").exists():
        raise CnnkitError(
            f"{run_dir} already holds a run; continue it with resume (--resume {run_dir}) "
            "or choose another run name"
        )
    return run_dir


def _first_conv_weight(state: dict[str, np.ndarray]) -> np.ndarray | None:
    """The first 4-D weight (the first convolution's), for the report's before/after filters."""
    for name, value in state.items():
        if name.endswith("weight") and np.ndim(value) == 4:
            return np.array(value, dtype=np.float32, copy=True)
    return None


@contextlib.contextmanager
def _restored_threads() -> Iterator[None]:
    """torch's thread count as it was before, whatever happens inside."""
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _blas_threads(threads: int) -> contextlib.AbstractContextManager[Any]:
    """NumPy's BLAS (used by the NumPy engine's GEMMs) limited to `threads` while inside."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def train(
    *,
    dataset: str = "mnist",
    model: str = "simple-cnn",
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] = "runs",
    run_name: str | None = None,
    resume: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    test_limit: int | None = None,
    engine: str = "torch",
    report: bool = True,
    progress: bool = True,
    threads: int | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train `model` on `dataset` with the chapter's recipe; see the module docstring.

    `limit` keeps the first N training images and `test_limit` the first N test images
    (quick runs). `dry_run` trains one batch and evaluates one test batch, writes nothing and
    returns. `resume` is a run folder (or its checkpoint.pt): the run continues from its last
    completed epoch up to `epochs`, with its own settings. `on_epoch(row, epochs)` is called
    after each epoch with its metrics row. `threads` sets torch's intra-op threads for the
    run (default: torch's choice; on resume, the run's, since the thread count changes the
    order of floating-point sums and so the exact results); the previous count is restored.
    """
    import torch

    with _restored_threads(), contextlib.ExitStack() as limits:
        given = dict(
            dataset=dataset,
            model=model,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            limit=limit,
            test_limit=test_limit,
            engine=engine,
        )
        raw_ckpt: dict[str, Any] | None = None
        if resume is not None:
            run_dir, settings, raw_ckpt = _resume_settings(resume, given)
            if epochs == DEFAULT_EPOCHS:
                epochs = raw_ckpt["config"]["epochs"]
            if epochs <= raw_ckpt["epoch"]:
                raise CnnkitError(
                    f"{run_dir} has already completed {raw_ckpt['epoch']} epoch(s); "
                    f"to continue it, ask for more epochs (got epochs={epochs})"
                )
        else:
            settings = given
        _validate(settings, epochs)
        if threads is None and raw_ckpt is not None:
            threads = raw_ckpt["config"].get("threads")  # the sums' order, hence exact resume
        if threads is not None:
            _check_positive_int("threads", threads)
            torch.set_num_threads(threads)
            limits.enter_context(_blas_threads(threads))
        if raw_ckpt is None and not dry_run:
            run_dir = _new_run_dir(out_dir, run_name, settings)  # refused before any work

        from cnnkit.models.zoo import model_input_shape

        data = load_train_data(
            settings["dataset"],
            data_dir=data_dir,
            limit=settings["limit"],
            test_limit=settings["test_limit"],
        )
        want = tuple(model_input_shape(settings["model"]))
        have = tuple(data.train_x.shape[1:])
        if want != have:
            raise CnnkitError(
                f"model {settings['model']!r} takes (C, H, W) = {want} inputs; dataset "
                f"{settings['dataset']!r} has {have}"
            )
        config = {
            **settings,
            "epochs": epochs,
            "model_args": {},
            "test_batch_size": TEST_BATCH_SIZE,
            "optimizer": "Adam",
            "loss": "CrossEntropyLoss",
            "normalize": data.normalize,
            "classes": data.classes,
            "train_size": len(data.train_y),
            "test_size": len(data.test_y),
            "data_dir": None if data_dir is None else str(data_dir),
            "threads": torch.get_num_threads(),
            "torch_version": str(torch.__version__),
        }

        _seed_everything(settings["seed"])
        eng = make_engine(
            settings["engine"], settings["model"], lr=settings["lr"], seed=settings["seed"]
        )
        shuffle_rng = np.random.default_rng(settings["seed"])
        initial_conv1 = _first_conv_weight(eng.model_state_dict())
        history: list[dict[str, Any]] = []
        start_epoch = 0

        if dry_run:
            x, y = data.train_x[: settings["batch_size"]], data.train_y[: settings["batch_size"]]
            loss, _ = eng.train_batch(x, y)
            evaluate(eng, data.test_x[:TEST_BATCH_SIZE], data.test_y[:TEST_BATCH_SIZE])
            return TrainResult(run_dir=None, config=config, dry_run_loss=loss)

        if raw_ckpt is not None:
            eng.load_state(raw_ckpt["optimizer_state"])
            _restore_rng_state(raw_ckpt["rng_state"], shuffle_rng)
            history = list(raw_ckpt["history"])
            start_epoch = int(raw_ckpt["epoch"])
            initial_conv1 = raw_ckpt.get("initial_conv1_weight")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", json.dumps(config, indent=2) + "\n")
        checkpoint = run_dir / "checkpoint.pt"

        for epoch in range(start_epoch + 1, epochs + 1):
            started = time.perf_counter()
            train_loss, train_acc = _train_epoch(
                eng, data, shuffle_rng, settings["batch_size"], epoch, epochs, progress
            )
            test_loss, test_acc = evaluate(eng, data.test_x, data.test_y)
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                "seconds": round(time.perf_counter() - started, 3),
            }
            history.append(row)
            write_metrics(run_dir, history)
            _save(checkpoint, eng, settings, config, epoch, shuffle_rng, history, initial_conv1)
            if on_epoch is not None:
                on_epoch(row, epochs)

        result = TrainResult(
            run_dir=run_dir,
            config=config,
            history=history,
            checkpoint=checkpoint,
            resumed_from_epoch=start_epoch,
        )
        if report and initial_conv1 is not None:
            result.report = _report(run_dir, eng, settings["model"], initial_conv1, data, history)
        return result


def _train_epoch(
    eng: Engine,
    data: TrainData,
    shuffle_rng: np.random.Generator,
    batch_size: int,
    epoch: int,
    epochs: int,
    progress: bool,
) -> tuple[float, float]:
    """One pass over the shuffled training set: (mean of batch losses, accuracy)."""
    from tqdm import tqdm

    n = len(data.train_y)
    order = shuffle_rng.permutation(n)
    num_batches = math.ceil(n / batch_size)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(
        total=num_batches,
        desc=f"epoch {epoch}/{epochs}",
        unit="batch",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        for step in range(num_batches):
            idx = order[step * batch_size : (step + 1) * batch_size]
            loss, batch_correct = eng.train_batch(data.train_x[idx], data.train_y[idx])
            loss_sum += loss
            correct += batch_correct
            seen += len(idx)
            if progress:  # tqdm redraws at most every 0.1 s; the postfix itself is cheap
                bar.set_postfix(
                    loss=f"{loss_sum / (step + 1):.4f}", acc=f"{correct / seen:.2%}", refresh=False
                )
            bar.update()
    finally:
        bar.close()
    return loss_sum / num_batches, correct / seen


def _save(
    path: Path,
    eng: Engine,
    settings: dict[str, Any],
    config: dict[str, Any],
    epoch: int,
    shuffle_rng: np.random.Generator,
    history: list[dict[str, Any]],
    initial_conv1: np.ndarray | None,
) -> None:
    from cnnkit.models.checkpoint import save_checkpoint

    save_checkpoint(
        path,
        model_name=settings["model"],
        model_args=config["model_args"],
        state_dict=eng.model_state_dict(),
        config=config,
        optimizer_state=eng.state(),
        epoch=epoch,
        rng_state=_rng_state(shuffle_rng),
        history=history,
        initial_conv1_weight=initial_conv1,
    )


def _report(
    run_dir: Path,
    eng: Engine,
    model_name: str,
    initial_conv1: np.ndarray,
    data: TrainData,
    history: list[dict[str, Any]],
) -> Path | None:
    """report.html via `cnnkit.render.report` (skipped when this install has no report module)."""
    try:
        from cnnkit.render.report import build_report
    except ImportError:
        return None
    import torch

    from cnnkit.models.zoo import create_model

    model = create_model(model_name)
    model.load_state_dict({k: torch.as_tensor(v) for k, v in eng.model_state_dict().items()})
    model.eval()
    return build_report(
        run_dir,
        model=model,
        initial_conv1_weight=initial_conv1,
        test_images=data.test_images,
        test_labels=data.test_y,
        normalize=data.normalize,
        history=history,
        class_names=data.classes,
    )
