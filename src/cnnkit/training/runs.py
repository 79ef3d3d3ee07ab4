"""Run folders: where a run lives, what it writes, and how it is resumed.

`<out_dir>/<run_name>/` holds `config.json` (the resolved config), `metrics.jsonl` and
`metrics.csv` (one row per completed epoch, plus a `diverged` row if the run diverged) and
`checkpoint.pt` (after every epoch, with every RNG state). `plan_run` turns the settings a user
gave (None: not given) into a `RunPlan`:

- a new run takes `TrainConfig`'s defaults; its folder must not hold a checkpoint already (a
  folder with only a config.json, from a run stopped in its first epoch, is taken over afresh);
- a resumed run takes its own config; an explicit setting that differs from the run's, its
  place (`out_dir`, `run_name`) included, is refused naming both values. Only `epochs` may
  change: it is the epoch to train up to. A run stopped before its first checkpoint restarts
  from the start with its config.json (the same result as a straight run); a diverged run is
  refused (with its settings it would diverge again).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.core.checks import bad_parameter
from cnnkit.core.errors import CnnkitError
from cnnkit.core.files import atomic_write_text
from cnnkit.core.i18n import Message
from cnnkit.training.config import DEFAULT_OUT_DIR, TrainConfig, check_names, new_config
from cnnkit.training.engine import Engine

__all__ = [
    "CHECKPOINT",
    "CONFIG",
    "METRICS",
    "METRIC_KEYS",
    "Divergence",
    "RunPlan",
    "default_run_name",
    "diverged_row",
    "plan_run",
    "prepare_run_dir",
    "restore_rng_state",
    "rng_state",
    "save_epoch_checkpoint",
    "seed_everything",
    "write_metrics",
]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = ("metrics.jsonl", "metrics.csv")
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")


@dataclass(frozen=True)
class Divergence:
    """Where a run stopped on a non-finite value: `what` is "training loss", "weights" or
    "test loss"; `batch` the training batch (1-based) whose loss it was."""

    epoch: int
    what: str
    value: float
    batch: int | None = None
    batches: int | None = None

    def describe(self) -> str:
        what = Message(self.what)  # "training loss", "test loss" or "weights (NAME)"
        if self.batch is not None:
            return Message(
                "the {what} became {value} at batch {batch} of {batches} in epoch {epoch}",
                what=what,
                value=self.value,
                batch=self.batch,
                batches=self.batches,
                epoch=self.epoch,
            )
        return Message(
            "the {what} became {value} after epoch {epoch}",
            what=what,
            value=self.value,
            epoch=self.epoch,
        )


@dataclass(frozen=True)
class RunPlan:
    config: TrainConfig  # the run's settings (threads None: torch's choice, fresh runs only)
    run_dir: Path | None  # None for a dry run, which writes nothing
    start_epoch: int = 0  # epochs already completed (a resumed run)
    resumed: bool = False
    checkpoint: dict[str, Any] | None = None  # the raw checkpoint a resumed run continues


def plan_run(
    given: dict[str, Any],
    *,
    out_dir: str | os.PathLike[str] | None,
    run_name: str | None,
    resume: str | os.PathLike[str] | None,
    dry_run: bool,
) -> RunPlan:
    """The run to do, checked before any work: `given` holds the settings given explicitly."""
    explicit = new_config(given)  # the given values' own checks come first
    if resume is not None:
        return _resume_plan(resume, given, out_dir=out_dir, run_name=run_name)
    check_names(explicit)
    run_dir = _new_run_dir(out_dir, run_name, explicit)  # checked by a dry run too
    if dry_run:
        return RunPlan(explicit, None)
    if (run_dir / CHECKPOINT).exists():
        how = Message(
            "continue it with resume (--resume {run_dir}) or choose another run name",
            run_dir=run_dir,
        )
        if _diverged(run_dir):
            how = Message("choose another run name (it diverged, so resume would diverge again)")
        raise CnnkitError.from_template(
            "{run_dir} already holds a run; {how}", run_dir=run_dir, how=how
        )
    return RunPlan(explicit, run_dir)


def _new_run_dir(
    out_dir: str | os.PathLike[str] | None, run_name: str | None, config: TrainConfig
) -> Path:
    """OUT/NAME, once NAME is a plain folder name and the folder can be written."""
    if run_name is None:
        run_name = default_run_name(config)
    if not isinstance(run_name, str) or not run_name or run_name in (".", ".."):
        raise bad_parameter("train", "run_name", Message("a plain folder name"), run_name)
    if "/" in run_name or os.sep in run_name:
        raise bad_parameter("train", "run_name", Message("a plain folder name"), run_name)
    run_dir = Path(DEFAULT_OUT_DIR if out_dir is None else out_dir) / run_name
    _check_writable(run_dir)
    return run_dir


def default_run_name(config: TrainConfig) -> str:
    """DATASET-MODEL-YYYYmmdd-HHMMSS; an image folder's DATASET is its folder name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    dataset = Path(config.dataset).name or "images"
    return f"{dataset}-{config.model}-{stamp}"


def _check_writable(run_dir: Path) -> None:
    """The run folder can be created or written: none of its ancestors is a file, and the
    nearest existing one is writable (checked before any work, so nothing is half-written)."""
    existing = run_dir
    while not existing.exists() and not existing.is_symlink() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise CnnkitError.from_template(
            (
                "cannot write the run folder {run_dir}: {existing} is a file, not a "
                "folder (see out_dir / --out and run_name / --name)"
            ),
            run_dir=run_dir,
            existing=existing,
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CnnkitError.from_template(
            "cannot write the run folder {run_dir}: {existing} is not writable",
            run_dir=run_dir,
            existing=existing,
        )


def _resume_plan(
    resume: str | os.PathLike[str],
    given: dict[str, Any],
    *,
    out_dir: str | os.PathLike[str] | None,
    run_name: str | None,
) -> RunPlan:
    from cnnkit.models.checkpoint import read_checkpoint

    run_dir, ckpt_path = _locate_run(resume)
    raw = read_checkpoint(ckpt_path) if ckpt_path.is_file() else None
    saved = TrainConfig.from_saved(raw["config"] if raw else _read_config(run_dir))
    completed = int(raw["epoch"]) if raw else 0
    _refuse_diverged(resume, run_dir)
    _refuse_other_place(resume, run_dir, out_dir=out_dir, run_name=run_name)
    for key, value in given.items():
        if key != "epochs" and value != getattr(saved, key):
            raise CnnkitError.from_template(
                (
                    "cannot resume {resume} with {key}={value!r}: the run used {saved!r} (a "
                    "resumed run keeps its settings; only epochs may change)"
                ),
                resume=resume,
                key=key,
                value=value,
                saved=getattr(saved, key),
            )
    epochs = given.get("epochs", saved.epochs)
    if saved.recipe_spec.one_cycle and epochs != saved.epochs:
        raise CnnkitError.from_template(
            (
                "cannot resume {resume} with epochs={epochs}: its {recipe} recipe's "
                "OneCycle schedule spans its {epochs2} epoch(s); start a new run for a "
                "longer one"
            ),
            resume=resume,
            epochs=epochs,
            recipe=saved.recipe,
            epochs2=saved.epochs,
        )
    if epochs <= completed:
        raise CnnkitError.from_template(
            (
                "{run_dir} has already completed {completed} epoch(s); to continue it, "
                "ask for more epochs (got epochs={epochs})"
            ),
            run_dir=run_dir,
            completed=completed,
            epochs=epochs,
        )
    config = dataclasses.replace(saved, epochs=epochs)
    check_names(config)
    return RunPlan(config, run_dir, start_epoch=completed, resumed=True, checkpoint=raw)


def _refuse_other_place(
    resume: str | os.PathLike[str],
    run_dir: Path,
    *,
    out_dir: str | os.PathLike[str] | None,
    run_name: str | None,
) -> None:
    """A resumed run stays in its folder: an explicit other out_dir or run_name is refused."""
    other = None
    if run_name is not None and run_name != run_dir.name:
        other = ("run_name", run_name)
    elif out_dir is not None and Path(out_dir).resolve() != run_dir.parent.resolve():
        other = ("out_dir", str(out_dir))
    if other is not None:
        raise CnnkitError.from_template(
            (
                "cannot resume {resume} with {other}={other2!r}: the run is {run_dir} (a "
                "resumed run stays in its folder)"
            ),
            resume=resume,
            other=other[0],
            other2=other[1],
            run_dir=run_dir,
        )


def _locate_run(resume: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(run folder, its checkpoint path): `resume` is the folder or its checkpoint.pt."""
    path = Path(resume)
    if path.is_file():
        return path.parent, path
    if path.is_dir() and ((path / CHECKPOINT).is_file() or (path / CONFIG).is_file()):
        return path, path / CHECKPOINT
    raise CnnkitError.from_template(
        ("cannot resume {resume}: no {checkpoint} there, nor a {config} (not a run folder)"),
        resume=resume,
        checkpoint=CHECKPOINT,
        config=CONFIG,
    )


def _read_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run stopped before its first checkpoint."""
    path = run_dir / CONFIG
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CnnkitError.from_template(
            "cannot resume {run_dir}: {path} is not readable JSON ({e})",
            run_dir=run_dir,
            path=path,
            e=e,
        ) from e
    if not isinstance(saved, dict):
        raise CnnkitError.from_template(
            "cannot resume {run_dir}: {path} does not hold a run's config",
            run_dir=run_dir,
            path=path,
        )
    return saved


def _diverged(run_dir: Path) -> str | None:
    """The `diverged` text of the run's last metrics row, if it diverged."""
    try:
        lines = (run_dir / METRICS[0]).read_text(encoding="utf-8").splitlines()
        last = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError):
        return None  # no readable metrics: nothing says the run diverged
    return str(last["diverged"]) if isinstance(last, dict) and last.get("diverged") else None


def _refuse_diverged(resume: str | os.PathLike[str], run_dir: Path) -> None:
    what = _diverged(run_dir)
    if what is not None:
        raise CnnkitError.from_template(
            (
                "cannot resume {resume}: it diverged ({what}); with its settings it "
                "would diverge again: start a new run (with a smaller lr)"
            ),
            resume=resume,
            what=what,
        )


# --------------------------------------------------------------------------- files


def prepare_run_dir(run_dir: Path, config: dict[str, Any], *, fresh: bool) -> None:
    """Create the folder, remove partial files that interrupted writes left behind (and, for
    a run started afresh, the metrics of the run it takes over), write config.json."""
    names = (CHECKPOINT, CONFIG, *METRICS)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in names:  # temporary names of cnnkit.core.files.atomic_path
            for partial in run_dir.glob(f".{name}.*.part{Path(name).suffix}"):
                partial.unlink(missing_ok=True)
        if fresh:
            for name in METRICS:
                (run_dir / name).unlink(missing_ok=True)
        atomic_write_text(run_dir / CONFIG, json.dumps(config, indent=2) + "\n")
    except OSError as e:
        raise CnnkitError.from_template(
            "cannot write the run folder {run_dir}: {reason}",
            run_dir=run_dir,
            reason=e.strerror or e,
        ) from e


def diverged_row(divergence: Divergence, seconds: float) -> dict[str, Any]:
    """The metrics row of the epoch in which the run diverged: nothing measured but time."""
    row: dict[str, Any] = dict.fromkeys(METRIC_KEYS)
    row.update(epoch=divergence.epoch, seconds=round(seconds, 3))
    row["diverged"] = divergence.describe()
    return row


def write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """metrics.jsonl and metrics.csv, rewritten whole (atomically) after each epoch. A
    diverged run's last row has a `diverged` column saying what became non-finite, where."""
    keys = METRIC_KEYS + (("diverged",) if any("diverged" in row for row in rows) else ())
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=keys, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    try:
        atomic_write_text(run_dir / METRICS[0], "".join(json.dumps(r) + "\n" for r in rows))
        atomic_write_text(run_dir / METRICS[1], text.getvalue())
    except OSError as e:
        raise CnnkitError.from_template(
            "cannot write the metrics of {run_dir}: {reason}",
            run_dir=run_dir,
            reason=e.strerror or e,
        ) from e


def save_epoch_checkpoint(
    path: Path,
    eng: Engine,
    config: dict[str, Any],
    epoch: int,
    shuffle_rng: np.random.Generator,
    history: list[dict[str, Any]],
    initial_conv1: np.ndarray | None,
) -> None:
    from cnnkit.models.checkpoint import save_checkpoint

    try:
        save_checkpoint(
            path,
            model_name=config["model"],
            model_args=config["model_args"],
            state_dict=eng.model_state_dict(),
            config=config,
            optimizer_state=eng.state(),
            epoch=epoch,
            rng_state=rng_state(shuffle_rng),
            history=history,
            initial_conv1_weight=initial_conv1,
        )
    except OSError as e:
        raise CnnkitError.from_template(
            "cannot write the checkpoint {path}: {reason}",
            path=path,
            reason=e.strerror or e,
        ) from e


# --------------------------------------------------------------------------- RNG state


def rng_state(shuffle_rng: np.random.Generator) -> dict[str, Any]:
    import torch

    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "shuffle": shuffle_rng.bit_generator.state,
    }


def restore_rng_state(state: dict[str, Any], shuffle_rng: np.random.Generator) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    shuffle_rng.bit_generator.state = state["shuffle"]


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
