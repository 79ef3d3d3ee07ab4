"""The training loop: the chapter's MNIST recipe (section 1.6), reproducible and resumable.

    from cnnkit.training.loop import train
    result = train()                      # the chapter's recipe (cnnkit.training.config)
    result.history[-1]["test_acc"]

Every setting left out (None) takes `TrainConfig`'s default, or on resume the run's own.
The loop owns data, shuffling, metrics and checkpoints (`cnnkit.training.runs`); an engine
(`cnnkit.training.engines`) owns the model and optimizer. `resume=RUN_DIR` continues from the
last completed epoch and ends, on CPU with the same seed and threads, with exactly the metrics
and weights of an uninterrupted run. A non-finite loss (or weights) stops the run: the last
good checkpoint stays, metrics get a `diverged` row, and `TrainingDiverged` is raised. The
HTML report is not written here (training sits below rendering): `cnnkit train` and
`cnnkit demo` write it from the `TrainResult`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import N_, Message, gettext
from cnnkit.nn.functional import cross_entropy
from cnnkit.training import distributed
from cnnkit.training.config import TEST_BATCH_SIZE, TrainConfig, new_config
from cnnkit.training.dataset import TrainData, fit_model, load_train_data
from cnnkit.training.engine import Engine
from cnnkit.training.engines import compute_threads, make_engine
from cnnkit.training.runs import (
    CHECKPOINT,
    Divergence,
    RunPlan,
    default_run_name,
    diverged_row,
    plan_run,
    prepare_run_dir,
    restore_rng_state,
    save_epoch_checkpoint,
    seed_everything,
    write_metrics,
)

__all__ = ["EpochCallback", "TrainResult", "TrainingDiverged", "evaluate", "train"]

EpochCallback = Callable[[dict[str, Any], int], None]  # (metrics row, total epochs)
StartCallback = Callable[[RunPlan], None]
_SETTINGS = frozenset(f.name for f in fields(TrainConfig))


@dataclass
class TrainResult:
    run_dir: Path | None  # None for a dry run (which writes nothing)
    config: dict[str, Any]  # the resolved config, as in config.json
    history: list[dict[str, Any]] = field(default_factory=list)  # completed epochs
    checkpoint: Path | None = None  # the last good checkpoint (None: no epoch completed)
    dry_run_loss: float | None = None  # the loss of the one batch of a dry run
    resumed_from_epoch: int = 0
    diverged: Divergence | None = None
    # what the report needs besides the checkpoint: the raw test images, their labels, and
    # conv1's weights at initialisation (None when the model has no 4-D weight)
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    initial_conv1_weight: np.ndarray | None = None


class TrainingDiverged(CnnkitError):
    """The loss (or the weights) became non-finite; `result` is the run up to there."""

    def __init__(self, result: TrainResult) -> None:
        d = result.diverged
        assert d is not None
        kept = (
            Message(
                "the last good checkpoint (epoch {epoch}) is kept: {checkpoint}",
                epoch=result.history[-1]["epoch"],
                checkpoint=result.checkpoint,
            )
            if result.checkpoint is not None
            else Message("no epoch completed, so no checkpoint was written")
        )
        template = N_(
            "training diverged: {what} (lr {lr:g}); the run stopped and is marked diverged in "
            "{run_dir}/metrics.jsonl; {kept}. A smaller lr may help."
        )
        fields = {"what": d.describe(), "lr": result.config["lr"], "run_dir": result.run_dir}
        fields["kept"] = kept
        super().__init__(template.format(**fields))
        self.template, self.fields = template, fields
        self.result = result


def train(
    *,
    dataset: str | None = None,
    model: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    limit: int | None = None,
    test_limit: int | None = None,
    engine: str | None = None,
    threads: int | None = None,
    report: bool | None = None,
    recipe: str | None = None,
    device: str | None = None,
    precision: str | None = None,
    image_size: str | int | None = None,
    channels: int | None = None,
    test_fraction: float | None = None,
    on_bad_image: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    run_name: str | None = None,
    resume: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    progress: bool = True,
    on_start: StartCallback | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train with the chapter's recipe; each setting left None takes `TrainConfig`'s default.

    `limit` / `test_limit` keep the first N training / test images (quick runs). `dry_run`
    trains one batch, evaluates one test batch, writes nothing. `resume` is a run folder (or
    its checkpoint.pt): the run continues from its last completed epoch up to `epochs` (the
    run's own target when not given); any other setting given must equal the run's.
    `threads` sets torch's and BLAS's threads for the run (the previous counts come back).
    `report` is recorded with the run for the caller (`cnnkit train` writes report.html).
    `dataset` may be an image folder (docs/own_data.md): `image_size`, `channels`,
    `test_fraction` and `on_bad_image` say how it is read. Under torchrun the run is
    distributed (`cnnkit.training.distributed`).
    `on_start(plan)` is called once the run is set up, `on_epoch(row, epochs)` after each
    epoch. Raises `TrainingDiverged` when the loss becomes non-finite.
    """
    # The settings are train's own parameters named as TrainConfig's fields (first statement:
    # locals() holds only the parameters here); None means "not given".
    given = {k: v for k, v in locals().items() if k in _SETTINGS and v is not None}
    ranks = distributed.cluster()  # under torchrun: joins its process group (docs/own_data.md)
    if ranks.active and run_name is None and resume is None and not dry_run:
        run_name = distributed.agree(default_run_name(new_config(given)))  # one time stamp
    progress = progress and ranks.is_main
    plan = plan_run(given, out_dir=out_dir, run_name=run_name, resume=resume, dry_run=dry_run)
    with (
        compute_threads(plan.config.threads) as threads_used,
        distributed.stop_cleanly(str(plan.run_dir)),
    ):
        plan = replace(plan, config=replace(plan.config, threads=threads_used))
        plan = replace(plan, config=_resolve_hardware(plan.config))  # before any work
        data = _load_data(plan.config, data_dir)
        config = _run_record(plan.config, data, data_dir)
        eng, shuffle_rng, initial_conv1 = _start_engine(
            plan.config, len(data.train_y), data.model_args
        )
        eng = distributed.wrap_engine(eng, plan.config.seed)  # DDP under torchrun
        if plan.config.device != "cpu":  # a GPU: the training set copied there once
            eng.attach_data(data.train_x, data.train_y)  # type: ignore[attr-defined]
        if dry_run:
            return _dry_run(eng, data, config)
        result = _open_run(plan, config, data, eng, shuffle_rng, initial_conv1)
        if on_start is not None and ranks.is_main:
            on_start(plan)
        _run_epochs(result, eng, data, shuffle_rng, plan, progress, on_epoch)
    if result.diverged is not None:
        raise TrainingDiverged(result)
    return result


def _load_data(c: TrainConfig, data_dir: str | os.PathLike[str] | None) -> TrainData:
    data = load_train_data(
        c.dataset,
        data_dir=data_dir,
        limit=c.limit,
        test_limit=c.test_limit,
        image_size=c.image_size,
        channels=c.channels,
        test_fraction=c.test_fraction,
        seed=c.seed,
        on_bad_image=c.on_bad_image,
    )
    data.model_args = fit_model(c.model, c.dataset, data, engine=c.engine)  # checked here
    return data


def _resolve_hardware(c: TrainConfig) -> TrainConfig:
    """The device and precision the run uses (`auto` resolved, recorded with the run)."""
    from cnnkit.models.device import resolve_device, resolve_precision

    if c.engine == "numpy":
        return replace(c, device="cpu", precision="fp32")
    device = resolve_device(c.device)
    pays_off = None
    if c.precision == "auto" and device == "cpu":
        pays_off = _bf16_timing(c)
    return replace(
        c, device=device, precision=resolve_precision(c.precision, device, pays_off=pays_off)
    )


def _bf16_timing(c: TrainConfig) -> Callable[[], bool]:
    """A one-step timing of the run's model, fp32 against bf16 autocast (torch's RNG state
    kept: it must not change the run)."""

    def pays_off() -> bool:
        import torch

        from cnnkit.models.device import autocast_dtype, bf16_pays_off
        from cnnkit.models.registry import create_model, model_input_shape

        rng = torch.get_rng_state()
        model = create_model(c.model)
        x = torch.randn(c.batch_size, *model_input_shape(c.model))

        def step(precision: str) -> None:
            with torch.autocast(
                "cpu", dtype=autocast_dtype(precision), enabled=precision != "fp32"
            ):
                model(x).float().sum().backward()

        try:
            return bf16_pays_off(step)
        finally:
            torch.set_rng_state(rng)

    return pays_off


def _start_engine(
    c: TrainConfig, train_size: int, model_args: dict[str, Any] | None = None
) -> tuple[Engine, np.random.Generator, np.ndarray | None]:
    """Every RNG seeded, the engine built: (engine, shuffling generator, conv1's initial
    weights)."""
    seed_everything(c.seed)
    eng = make_engine(
        c.engine,
        c.model,
        lr=c.lr,
        seed=c.seed,
        device=c.device,
        precision=c.precision,
        recipe=c.recipe_spec,
        total_steps=c.epochs * math.ceil(train_size / c.batch_size),
        model_args=model_args,
    )
    shuffle_rng = np.random.default_rng(c.seed)
    return eng, shuffle_rng, _first_conv_weight(eng.model_state_dict())


def _open_run(
    plan: RunPlan,
    config: dict[str, Any],
    data: TrainData,
    eng: Engine,
    shuffle_rng: np.random.Generator,
    initial_conv1: np.ndarray | None,
) -> TrainResult:
    """The result so far: a resumed run's engine, RNGs and history restored; the run folder
    prepared (partial files removed, config.json written)."""
    assert plan.run_dir is not None
    result = TrainResult(
        run_dir=plan.run_dir,
        config=config,
        resumed_from_epoch=plan.start_epoch,
        test_images=data.test_images,
        test_labels=data.test_y,
        initial_conv1_weight=initial_conv1,
    )
    if plan.checkpoint is not None:
        eng.load_state(plan.checkpoint["optimizer_state"])
        restore_rng_state(plan.checkpoint["rng_state"], shuffle_rng)
        result.history = list(plan.checkpoint["history"])
        result.checkpoint = plan.run_dir / CHECKPOINT
        result.initial_conv1_weight = plan.checkpoint.get("initial_conv1_weight")
    if distributed.is_main():  # under torchrun rank 0 alone writes the run's files
        prepare_run_dir(plan.run_dir, config, fresh=plan.checkpoint is None)
    return result


def _run_record(c: TrainConfig, data: TrainData, data_dir: Any) -> dict[str, Any]:
    """The run's config.json: its settings plus what they resolved to."""
    import torch

    return {
        **c.as_dict(),
        "model_args": data.model_args,
        **({"image_folder": data.image_folder} if data.image_folder is not None else {}),
        "world_size": distributed.cluster().world_size,
        "test_batch_size": TEST_BATCH_SIZE,
        "optimizer": "Adam",
        "loss": "CrossEntropyLoss",
        "normalize": data.normalize,
        "classes": data.classes,
        "train_size": len(data.train_y),
        "test_size": len(data.test_y),
        "data_dir": None if data_dir is None else str(data_dir),
        "torch_version": str(torch.__version__),
    }


def _dry_run(eng: Engine, data: TrainData, config: dict[str, Any]) -> TrainResult:
    batch = config["batch_size"]
    loss, _ = eng.train_batch(data.train_x[:batch], data.train_y[:batch])
    evaluate(eng, data.test_x[:TEST_BATCH_SIZE], data.test_y[:TEST_BATCH_SIZE])
    return TrainResult(run_dir=None, config=config, dry_run_loss=loss)


def _run_epochs(
    result: TrainResult,
    eng: Engine,
    data: TrainData,
    shuffle_rng: np.random.Generator,
    plan: RunPlan,
    progress: bool,
    on_epoch: EpochCallback | None,
) -> None:
    """Epochs start_epoch+1 .. epochs: train, evaluate, write metrics and the checkpoint; on a
    non-finite value, stop with `result.diverged` set and the last good checkpoint kept."""
    epochs, run_dir = plan.config.epochs, plan.run_dir
    assert run_dir is not None
    main = distributed.is_main()  # under torchrun only rank 0 writes files
    for epoch in range(plan.start_epoch + 1, epochs + 1):
        started = time.perf_counter()
        outcome = _train_epoch(
            eng, data, shuffle_rng, plan.config.batch_size, epoch, epochs, progress
        )
        if isinstance(outcome, Divergence):
            result.diverged = outcome
        else:
            test_loss, test_acc = evaluate(eng, data.test_x, data.test_y)
            result.diverged = _check_finite(eng, test_loss, epoch)
        if result.diverged is not None:
            row = diverged_row(result.diverged, time.perf_counter() - started)
            if main:
                write_metrics(run_dir, [*result.history, row])
            return
        assert not isinstance(outcome, Divergence)
        row = {
            "epoch": epoch,
            "train_loss": outcome[0],
            "train_acc": outcome[1],
            "test_loss": test_loss,
            "test_acc": test_acc,
            "seconds": round(time.perf_counter() - started, 3),
        }
        result.history.append(row)
        result.checkpoint = run_dir / CHECKPOINT
        if not main:
            continue
        write_metrics(run_dir, result.history)
        save_epoch_checkpoint(
            result.checkpoint,
            eng,
            result.config,
            epoch,
            shuffle_rng,
            result.history,
            result.initial_conv1_weight,
        )
        if on_epoch is not None:
            on_epoch(row, epochs)


def _check_finite(eng: Engine, test_loss: float, epoch: int) -> Divergence | None:
    """After an epoch: the weights and the test loss are finite, or where they are not."""
    for name, value in eng.model_state_dict().items():
        bad = ~np.isfinite(value)
        if bad.any():
            what = Message("weights ({name})", name=name)
            return Divergence(epoch, what, float(value[bad].flat[0]))
    if not math.isfinite(test_loss):
        return Divergence(epoch, Message("test loss"), test_loss)
    return None


def _train_epoch(
    eng: Engine,
    data: TrainData,
    shuffle_rng: np.random.Generator,
    batch_size: int,
    epoch: int,
    epochs: int,
    progress: bool,
) -> tuple[float, float] | Divergence:
    """One pass over the shuffled training set: (mean of batch losses, accuracy), or where
    the loss became non-finite (the pass stops there)."""
    from tqdm import tqdm

    n = len(data.train_y)
    order = shuffle_rng.permutation(n)
    num_batches = math.ceil(n / batch_size)
    loss_sum, correct, seen = 0.0, 0, 0
    bar = tqdm(
        total=num_batches,
        desc=gettext("epoch {epoch}/{epochs}").format(epoch=epoch, epochs=epochs),
        unit=gettext("batch"),
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    if getattr(getattr(eng, "device", None), "type", "cpu") != "cpu":
        try:  # a GPU: no host sync per step (one at the end of the pass)
            total, correct, bad = eng.train_order(order, batch_size, bar.update)  # type: ignore[attr-defined]
        finally:
            bar.close()
        if bad is not None:
            return Divergence(epoch, Message("training loss"), math.nan, bad + 1, num_batches)
        return total / num_batches, correct / n
    try:
        for step in range(num_batches):
            idx = order[step * batch_size : (step + 1) * batch_size]
            loss, batch_correct = eng.train_batch(data.train_x[idx], data.train_y[idx])
            if not math.isfinite(loss):
                return Divergence(epoch, Message("training loss"), loss, step + 1, num_batches)
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


def _first_conv_weight(state: dict[str, np.ndarray]) -> np.ndarray | None:
    """The first 4-D weight (the first convolution's), for the report's before/after filters."""
    for name, value in state.items():
        if name.endswith("weight") and np.ndim(value) == 4:
            return np.array(value, dtype=np.float32, copy=True)
    return None
