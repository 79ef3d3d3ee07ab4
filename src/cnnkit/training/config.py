"""`TrainConfig`: the run's settings, with the chapter's recipe (section 1.6) as defaults.

This is the one copy of the recipe's defaults: `cnnkit.training.loop.train`, the `cnnkit train`
options and their help, the `cnnkit demo` banner, resume and docs/training.md all read it.

    TrainConfig()                      # the chapter's recipe: Adam lr 1e-3, batch 64, 3 epochs
    TrainConfig(lr=1e10)               # checked on construction (a CnnkitError naming 'lr')
    new_config({"recipe": "fast"})     # the `fast` recipe's defaults (RECIPES), then the given

Two recipes (`RECIPES`): `chapter`, the defaults of TrainConfig itself, and `fast`, which
changes the defaults of a few settings (model, epochs, batch, lr, precision) and adds what has
no setting of its own (Adam's betas, label smoothing, the OneCycle schedule, channels-last).

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
from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message
from cnnkit.models.device import DEVICES, PRECISIONS
from cnnkit.models.registry import ENGINES

__all__ = [
    "DEFAULT_OUT_DIR",
    "MAX_BATCH_SIZE",
    "MAX_EPOCHS",
    "RECIPES",
    "SEED_LIMIT",
    "TEST_BATCH_SIZE",
    "Recipe",
    "TrainConfig",
    "check_names",
    "max_threads",
    "new_config",
]

TEST_BATCH_SIZE = 1000  # the chapter's test loader
SEED_LIMIT = 2**32  # seeds are in [0, 2**32): NumPy's legacy generator takes no more
MAX_EPOCHS = 10_000  # the chapter trains 3; a bound so a typo cannot ask for centuries of work
MAX_BATCH_SIZE = 2**20  # larger than any bundled training set (MNIST: 60,000); a typo is refused
DEFAULT_OUT_DIR = "runs"  # the folder that holds the run folders


def max_threads() -> int:
    """The most threads a run may ask for: 4 per CPU (more only slows every step down)."""
    return 4 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class Recipe:
    """A training recipe: the TrainConfig defaults it changes and its fixed choices."""

    name: str
    defaults: dict[str, Any]  # TrainConfig fields whose default differs from the chapter's
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's (torch's default: the chapter's)
    label_smoothing: float = 0.0
    one_cycle: bool = False  # OneCycleLR over the whole run, peaking at lr
    channels_last: bool = False  # model and inputs in NHWC memory


RECIPES: dict[str, Recipe] = {
    "chapter": Recipe("chapter", {}),  # section 1.6, unchanged: TrainConfig's own defaults
    # after tuomaso/train_mnist_fast: 99% in one epoch; label smoothing 0.1 added 0.2-0.25
    # points at this fixed budget in our measurements, the margin that makes 99.0% reliable
    "fast": Recipe(
        "fast",
        {"model": "fast-cnn", "epochs": 1, "batch_size": 256, "lr": 1e-2, "precision": "auto"},
        betas=(0.7, 0.9),
        label_smoothing=0.1,
        one_cycle=True,
        channels_last=True,
    ),
}


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
    threads: int | None = None  # torch's and BLAS's threads (None: the cores free now)
    report: bool = True  # whether the run gets report.html (written by the CLI)
    recipe: str = "chapter"  # see RECIPES
    device: str = "auto"  # CUDA, then MPS, then CPU (the chapter's choice); a run records its own
    precision: str = "fp32"  # autocast dtype (fp32 master weights); the chapter's is fp32
    # image folders (`dataset` a path; cnnkit.data.folder): size "HxW" (None: the median),
    # channels 1 or 3 (None: by content), the stratified test split, what a bad file does
    image_size: str | None = None
    channels: int | None = None
    test_fraction: float = 0.2
    on_bad_image: str = "skip"

    def __post_init__(self) -> None:
        def keep(name: str, value: Any) -> None:  # NumPy ints become Python ints
            object.__setattr__(self, name, value)

        keep(
            "epochs", check_int(self.epochs, "epochs", func="train", minimum=1, maximum=MAX_EPOCHS)
        )
        keep(
            "batch_size",
            check_int(
                self.batch_size, "batch_size", func="train", minimum=1, maximum=MAX_BATCH_SIZE
            ),
        )
        for name in ("limit", "test_limit"):
            if getattr(self, name) is not None:
                keep(name, positive_int(getattr(self, name), name, func="train"))
        lr = self.lr
        number = isinstance(lr, int | float) and not isinstance(lr, bool)
        if not (number and math.isfinite(lr) and lr > 0):
            raise bad_parameter("train", "lr", Message("a positive number"), lr)
        keep("seed", check_int(self.seed, "seed", func="train", minimum=0, maximum=SEED_LIMIT - 1))
        if self.threads is not None:
            bound = max_threads()
            keep(
                "threads",
                check_int(self.threads, "threads", func="train", minimum=1, maximum=bound),
            )
        keep("report", check_bool(self.report, "report", func="train"))
        if self.engine not in ENGINES:
            raise bad_parameter(
                "train",
                "engine",
                Message("one of {engines}", engines=", ".join(ENGINES)),
                self.engine,
            )
        for name, allowed in (("recipe", tuple(RECIPES)), ("device", DEVICES)):
            if getattr(self, name) not in allowed:
                raise bad_parameter(
                    "train",
                    name,
                    Message("one of {allowed}", allowed=", ".join(allowed)),
                    getattr(self, name),
                )
        if self.precision not in PRECISIONS:
            raise bad_parameter(
                "train",
                "precision",
                Message("one of {precisions}", precisions=", ".join(PRECISIONS)),
                self.precision,
            )
        if self.engine == "numpy" and self.device not in ("auto", "cpu"):
            raise CnnkitError.from_template(
                (
                    "the NumPy engine runs on the CPU only; got device={device!r} (use "
                    "engine='torch' for a GPU)"
                ),
                device=self.device,
            )
        if self.engine == "numpy" and self.precision not in ("auto", "fp32"):
            raise CnnkitError.from_template(
                "the NumPy engine computes in fp32 only; got precision={precision!r}",
                precision=self.precision,
            )

        self._check_image_folder_settings()

    def _check_image_folder_settings(self) -> None:
        if self.image_size is not None:  # (imported only then: cnnkit.data.folder loads NumPy)
            from cnnkit.data.folder import parse_image_size

            size = parse_image_size(self.image_size)  # a CnnkitError naming image_size
            assert size is not None
            object.__setattr__(self, "image_size", f"{size[0]}x{size[1]}")
        if self.channels is not None and self.channels not in (1, 3):
            raise bad_parameter("train", "channels", Message("1 or 3"), self.channels)
        fraction = self.test_fraction
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not (0 < fraction < 1)
        ):
            raise bad_parameter(
                "train", "test_fraction", Message("a number between 0 and 1"), fraction
            )
        if self.on_bad_image not in ("skip", "fail"):  # cnnkit.data.folder.BAD_IMAGE_POLICIES
            raise bad_parameter(
                "train", "on_bad_image", Message("one of skip, fail"), self.on_bad_image
            )

    @property
    def recipe_spec(self) -> Recipe:
        return RECIPES[self.recipe]

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> TrainConfig:
        """The settings of a run from its config.json / checkpoint config (older runs lack
        `report` and may lack `threads`: the defaults fill them)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def new_config(given: dict[str, Any]) -> TrainConfig:
    """A new run's settings: the given ones, else the recipe's defaults, else TrainConfig's."""
    recipe = given.get("recipe", TrainConfig.recipe)
    if recipe not in RECIPES:
        raise bad_parameter(
            "train", "recipe", Message("one of {recipes}", recipes=", ".join(RECIPES)), recipe
        )
    return TrainConfig(**{**RECIPES[recipe].defaults, **given})


def check_names(config: TrainConfig) -> None:
    """The model (in the engine's registry) and the dataset exist."""
    from cnnkit.data.registry import DATASETS
    from cnnkit.models.registry import list_models

    models = list_models(engine=config.engine)
    if config.model not in models:
        raise bad_parameter(
            "train", "model", Message("one of {models}", models=", ".join(models)), config.model
        )
    if config.dataset not in DATASETS and not os.path.isdir(config.dataset):
        raise bad_parameter(
            "train",
            "dataset",
            Message("one of {datasets} or an image folder", datasets=", ".join(DATASETS)),
            config.dataset,
        )
