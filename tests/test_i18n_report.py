"""The training report (report.html) in Japanese: every sentence, heading, label, table head
and caption a person reads is Japanese, the page says lang="ja", and the numbers are the
English report's. English stays English (tests/test_report.py checks its words)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from conftest import JAPANESE_OR_FULL_WIDTH as JAPANESE
from test_report import HISTORY, build

from cnnkit.core.i18n import set_language

# an English word of 3+ letters (inside a token that may carry digits, dots and dashes)
ENGLISH_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.+-]*")
# two English words in a row: a phrase left in English, even inside a Japanese sentence
ENGLISH_PHRASE = re.compile(r"[A-Za-z]{2,}[ ,;:]+[A-Za-z]{2,}")

# Words a Japanese reader sees as they are: names of files, models, layers, functions, the
# dataset, units; and code-like config values (as config.json stores them).
ALLOWED = {
    "cnnkit", "MNIST", "mnist", "ReLU", "F1", "PyTorch", "CPU", "MACs",
    "simple-cnn", "conv1", "conv2", "torch", "numpy", "Adam", "CrossEntropyLoss",
    "chapter", "skip", "fp32", "cpu", "None", "config.json", "metrics.jsonl", "nan", "inf",
    "curves.png", "confusion.png", "misclassified.png", "filters.png",
    "feature_maps_0.png", "feature_maps_1.png", "feature_maps_2.png",
    "run",  # the run's name (its folder's, as test_report.build names it)
}  # fmt: skip

CONFIG = {
    "dataset": "mnist", "model": "simple-cnn", "epochs": 3, "batch_size": 64, "lr": 10.0,
    "seed": 0, "engine": "torch", "limit": None, "test_limit": 120, "threads": 1,
    "report": True, "recipe": "chapter", "device": "cpu", "precision": "fp32",
    "image_size": None, "channels": None, "test_fraction": 0.2, "on_bad_image": "skip",
    "model_args": {}, "world_size": 1, "test_batch_size": 1000, "optimizer": "Adam",
    "loss": "CrossEntropyLoss", "normalize": [0.1307, 0.3081], "classes": list("0123456789"),
    "train_size": 600, "test_size": 120, "data_dir": "data", "image_folder": "digits",
    "torch_version": "2.13.0",
}  # fmt: skip
DIVERGED = "the training loss became nan at batch 5 of 10 in epoch 3"


class _Text(HTMLParser):
    """The visible text nodes of a page (and alt/title attributes); text inside <code> apart."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self.code: list[str] = []
        self._hidden = 0
        self._in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("style", "script")
        self._in_code += tag == "code"
        self.nodes += [v for k, v in attrs if k in ("alt", "title") and v]

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("style", "script")
        self._in_code -= tag == "code"

    def handle_data(self, data: str) -> None:
        if data.strip() and not self._hidden:
            (self.code if self._in_code else self.nodes).append(data.strip())


def page_text(page: str) -> _Text:
    parser = _Text()
    parser.feed(page)
    return parser


def english_left(page: str, allowed: set[str]) -> list[str]:
    """Text nodes with English a Japanese reader would have to read: an English word of 3+
    letters (not allowed) in a node without Japanese, or two English words in a row anywhere."""
    bad = []
    for node in page_text(page).nodes:
        rest = " ".join(w for w in re.split(r"[\s()（）:：,、]+", node) if w not in allowed)
        words = [w for w in ENGLISH_WORD.findall(rest) if len(re.sub(r"[^A-Za-z]", "", w)) >= 3]
        if words and not JAPANESE.search(node) or ENGLISH_PHRASE.search(rest):
            bad.append(node)
    return bad


@pytest.fixture
def japanese() -> Iterator[None]:
    set_language("ja")
    yield
    set_language("en")


def _run(folder: Path, config: dict | None, rows: list[dict]) -> Path:
    from cnnkit.training.runs import METRIC_KEYS

    run = folder / "run"
    run.mkdir(parents=True)
    if config is not None:
        (run / "config.json").write_text(json.dumps(config))
    full = [{**dict.fromkeys(METRIC_KEYS), **r} for r in rows]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in full))
    return folder


@pytest.fixture(scope="module")
def mnist_like():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (60, 28, 28), dtype=np.uint8), rng.integers(0, 10, 60)


def _allowed(config: dict) -> set[str]:
    values = {str(v) for v in config.values() if not isinstance(v, (list, dict))}
    return ALLOWED | values


def test_a_diverged_run_with_every_setting_reads_in_japanese(tmp_path, mnist_like, japanese):
    from cnnkit.training.config import TrainConfig

    # every setting a run records has words (a new TrainConfig field needs them too)
    config = {**{k: v for k, v in TrainConfig().as_dict().items()}, **CONFIG}
    diverged = {"epoch": 3, "seconds": 1.0, "diverged": DIVERGED}
    folder = _run(tmp_path / "ja", config, [*HISTORY, diverged])
    ja = build(folder, "simple-cnn", *mnist_like)[0].read_text(encoding="utf-8")
    assert '<html lang="ja">' in ja
    assert english_left(ja, _allowed(config)) == []
    # the divergence sentence of metrics.jsonl, read back and worded in Japanese
    notice = ja.split('<p class="notice diverged">')[1].split("</p>")[0]
    assert "学習損失" in notice and "nan" in notice and "training loss" not in notice
    # every file key still named, as code, next to its Japanese words
    code = page_text(ja).code
    for key in ("train_loss", "test_acc", "seconds", "dataset", "lr", "world_size"):
        assert key in code, key
    # the same report in English: the same numbers, English words
    set_language("en")
    folder = _run(tmp_path / "en", config, [*HISTORY, diverged])
    en = build(folder, "simple-cnn", *mnist_like)[0].read_text(encoding="utf-8")
    assert '<html lang="en">' in en and not JAPANESE.search(en)
    assert "<th>train_loss</th>" in en and "<th>world_size</th>" in en and "<code>" not in en
    assert DIVERGED in en
    numbers = re.compile(r"\d+(?:\.\d+)?%?")
    texts = [n for n in page_text(en).nodes if not n.endswith(".png")]
    assert sorted(numbers.findall(" ".join(texts))) == sorted(
        numbers.findall(" ".join(n for n in page_text(ja).nodes if not n.endswith(".png")))
    )


def test_a_single_epoch_run_without_config_reads_in_japanese(tmp_path, mnist_like, japanese):
    folder = tmp_path / "one"
    path = build(folder, "simple-cnn", *mnist_like, history=HISTORY[:1])[0]
    ja = path.read_text(encoding="utf-8")
    assert '<html lang="ja">' in ja
    assert english_left(ja, ALLOWED) == []
    assert "config.json" in ja  # "no config.json in the run folder", in Japanese


def test_the_check_finds_english():
    """The scan itself: English sentences, table heads and phrases inside Japanese are found."""
    page = (
        "<html><style>body { color: red }</style><h1>学習レポート</h1><table><tr><th>train_loss"
        "</th><th>学習損失 <code>train_loss</code></th></tr></table><p>これは (the training loss"
        " became nan) です</p><p>simple-cnn</p><figcaption>曲線 (curves.png)</figcaption>"
        '<img alt="Loss per epoch"></html>'
    )
    assert english_left(page, ALLOWED) == [
        "train_loss",
        "これは (the training loss became nan) です",
        "Loss per epoch",
    ]
