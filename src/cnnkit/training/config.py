"""`TrainConfig`: the run's settings, with the chapter's recipe (section 1.6) as defaults.

This is the one copy of the recipe's defaults: `cnnkit.training.loop.train`, the `cnnkit train`
options and their help, the `cnnkit demo` banner, resume and docs/training.md all read it.

    TrainConfig()                      # the chapter's recipe: Adam lr 1e-3, batch 64, 3 epochs
    TrainConfig(lr=1e10)               # checked on construction (a CnnkitError naming 'lr')

At the API and CLI boundary "not given" is `None`: a new run fills it from these defaults,
a resumed run from its own config (`cnnkit.training.runs.resume_config`), and an explicit
value that contradicts the run is refused, whatever its value.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any

from cnnkit.core.checks import bad_parameter, check_bool, check_int, positive_int
from cnnkit.models.registry import ENGINES

__all__ = [
    "DEFAULT_OUT_DIR",
    "MAX_EPOCHS",
    "SEED_LIMIT",
    "TEST_BATCH_SIZE",
    "TrainConfig",
    "check_names",
    "max_threads",
]

TEST_BATCH_SIZE = 1000  # the chapter's test loader
SEED_LIMIT = 2**32  # seeds are in [0, 2**32): NumPy's legacy generator takes no more
MAX_EPOCHS = 10_000  # the chapter trains 3; a bound so a typo cannot ask for centuries of work
DEFAULT_OUT_DIR = "runs"  # the folder that holds the run folders


def max_threads() -> int:
    """The most threads a run may ask for: 4 per CPU (more only slows every step down)."""
    return 4 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class TrainConfig:
    """The settings that define a run (what resume keeps). Checked on construction."""

    dataset: str = "mnist"
    model: str = "simple-cnn"  # the chapter's SimpleCNN
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3  # Adam's learning rate
    seed: int = 0  # seeds torch (init, dropout), NumPy, Python and the batch shuffling
    engine: str = "torch"
    limit: int | None = None  # the first N training images (None: all)
    test_limit: int | None = None  # the first N test images (None: all)
    threads: int | None = None  # torch's and BLAS's threads (None: torch's choice)
    report: bool = True  # whether the run gets report.html (written by the CLI)

    def __post_init__(self) -> None:
        def keep(name: str, value: Any) -> None:  # NumPy ints become Python ints
            object.__setattr__(self, name, value)

        keep(
            "epochs", check_int(self.epochs, "epochs", func="train", minimum=1, maximum=MAX_EPOCHS)
        )
        keep("batch_size", positive_int(self.batch_size, "batch_size", func="train"))
        for name in ("limit", "test_limit"):
            if getattr(self, name) is not None:
                keep(name, positive_int(getattr(self, name), name, func="train"))
        lr = self.lr
        number = isinstance(lr, int | float) and not isinstance(lr, bool)
        if not (number and math.isfinite(lr) and lr > 0):
            raise bad_parameter("train", "lr", "a positive number", lr)
        keep("seed", check_int(self.seed, "seed", func="train", minimum=0, maximum=SEED_LIMIT - 1))
        if self.threads is not None:
            bound = max_threads()
            keep(
                "threads",
                check_int(self.threads, "threads", func="train", minimum=1, maximum=bound),
            )
        keep("report", check_bool(self.report, "report", func="train"))
        if self.engine not in ENGINES:
            raise bad_parameter("train", "engine", f"one of {', '.join(ENGINES)}", self.engine)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> TrainConfig:
        """The settings of a run from its config.json / checkpoint config (older runs lack
        `report` and may lack `threads`: the defaults fill them)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_names(config: TrainConfig) -> None:
    """The model (in the engine's registry) and the dataset exist."""
    from cnnkit.data.registry import DATASETS
    from cnnkit.models.registry import list_models

    models = list_models(engine=config.engine)
    for name, allowed in (("model", models), ("dataset", list(DATASETS))):
        value = getattr(config, name)
        if value not in allowed:
            raise bad_parameter("train", name, f"one of {', '.join(allowed)}", value)
