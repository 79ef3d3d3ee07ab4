"""Every human output of the commands in Japanese; machine output the same in both languages.

Oracle: the English run of the same argv. Each line of the English output that holds an
English word (three letters or more, other than the names in `NAMES`: layer, model and type
names, units, the program's name) must have a Japanese counterpart with Japanese characters
(the line at the same position when both outputs have as many lines), and no line of the
Japanese output may be English words alone or hold three English words in a row. `--json`
and CSV must be byte-identical across languages. Runs in-process (`cnnkit.cli.main.main`)
on small inputs; no training, no network.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cnnkit.cli.main import main
from cnnkit.core import i18n

# Names, not words: they stay as they are in every language
NAMES = frozenset(
    """
    cnnkit conv pool relu flatten dropout maxpool simple cnn simplecnn vgg like linear
    maxpool2d conv2d mib kib macs flops floor ceil png rgb fashion mnist cifar
    psame pvalid pfull
    """.split()
)
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e]")
_WORD = re.compile(r"[A-Za-z]{3,}")
_PATH = re.compile(r"(?:/[\w.#-]+)+/?|--[\w-]+|`[^`]*`|\b[A-Za-z]+_\w+")


@pytest.fixture(autouse=True)
def _english_after() -> Iterator[None]:
    yield
    i18n.set_language("en")  # main(--lang ja) leaves the process in Japanese


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image folder of two classes, three 8×8 PNGs each (grayscale)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("pngs") / "digits"
    for cls in ("c0", "c1"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=40 * i).save(root / cls / f"{i}.png")
    return root


MODEL_PY = """
import torch
from torch import nn


class NotAligned(nn.Module):
    # two stride-2 paths whose first units are centred half a pixel apart, a module that
    # never runs, and an op without a MAC rule: each gives the summary a note
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.b = nn.Conv2d(3, 4, 2, stride=2)
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return torch.fft.fft2(self.a(x) + self.b(x)).real
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("model") / "not_aligned.py"
    path.write_text(MODEL_PY)
    return f"{path}:NotAligned"


@pytest.fixture(scope="module")
def empty_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("no_data")


def _run(argv: Sequence[str], lang: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--lang", lang])
    i18n.set_language("en")
    return code, out.getvalue(), err.getvalue()


def _phrase(line: str) -> str | None:
    """Three English words in a row (a sentence left in English inside a Japanese line), or
    None; names break a run."""
    text = _WORD.sub(lambda m: "#" if m[0].lower() in NAMES else m[0], _PATH.sub("#", line))
    found = re.search(r"[A-Za-z]{2,}(?:[ ,-]+[A-Za-z]{2,}){2,}", text)
    return found[0] if found else None


def _words(line: str) -> list[str]:
    """The English words of a line, paths, options, `code` and names left out."""
    return [w for w in _WORD.findall(_PATH.sub(" ", line)) if w.lower() not in NAMES]


# argv; "{folder}" / "{data}" are filled in by the fixtures
HUMAN = [
    ["size", "28", "--kernel", "3", "--padding", "same"],
    ["size", "13", "--pool", "--kernel", "2", "--ceil-mode"],
    ["size", "14", "--transposed", "--kernel", "3", "--stride", "2", "--output-padding", "1"],
    ["size", "28", "--kernel", "3", "--dilation", "2"],
    ["size", "3", "--pool", "--kernel", "2", "--stride", "2", "--padding", "1", "--ceil-mode"],
    ["params", "--in", "3", "--out", "16", "--kernel", "3"],
    ["compare"],
    ["chapter", "1.2"],
    ["chapter", "1.3"],
    ["chapter", "1.4"],
    ["models"],
    ["rf", "vgg-like", "--chapter", "--input", "32"],
    ["rf", "vgg-like", "--chapter", "--input", "32", "--format", "markdown"],
    ["rf", "simple-cnn", "--format", "markdown"],
    ["summary", "simple-cnn"],
    ["summary", "simple-cnn", "--flops", "--format", "markdown"],
    ["summary", "{model}", "--input", "3,32,32"],  # notes: paths not aligned, unused, no rule
    ["summary", "{model}", "--input", "3,32,32", "--format", "markdown"],
    ["data", "info", "{folder}"],
    ["data", "info", "--data-dir", "{data}"],
]
MACHINE = [
    ["size", "28", "--kernel", "3", "--padding", "same", "--json"],
    ["params", "--in", "3", "--out", "16", "--kernel", "3", "--json"],
    ["compare", "--json"],
    ["chapter", "--json"],
    ["models", "--json"],
    ["rf", "vgg-like", "--chapter", "--input", "32", "--format", "json"],
    ["rf", "vgg-like", "--chapter", "--input", "32", "--format", "csv"],
    ["summary", "simple-cnn", "--format", "csv"],
    ["summary", "simple-cnn", "--json"],
    ["summary", "{model}", "--input", "3,32,32", "--json"],
    ["data", "info", "{folder}", "--json"],
    ["data", "info", "--data-dir", "{data}", "--json"],
]


def _fill(argv: list[str], folder: Path, data: Path, model: str = "") -> list[str]:
    return [a.format(folder=folder, data=data, model=model) for a in argv]


@pytest.mark.parametrize("argv", HUMAN, ids=" ".join)
def test_japanese_output_has_japanese_words_where_english_has_words(
    argv: list[str], folder: Path, empty_data_dir: Path, model_file: str
) -> None:
    _check_worded(_fill(argv, folder, empty_data_dir, model_file))


def _check_worded(argv: list[str]) -> None:
    code_en, out_en, err_en = _run(argv, "en")
    code_ja, out_ja, err_ja = _run(argv, "ja")
    assert code_en == code_ja == 0, (err_en, err_ja)
    for en, ja in ((out_en, out_ja), (err_en, err_ja)):
        en_lines, ja_lines = en.splitlines(), ja.splitlines()
        worded = [i for i, line in enumerate(en_lines) if _words(line)]
        assert not en or worded or not _words(en), "the English output should have words"
        if len(en_lines) == len(ja_lines):  # line by line
            untranslated = [
                (en_lines[i], ja_lines[i]) for i in worded if not _JAPANESE.search(ja_lines[i])
            ]
            assert not untranslated, untranslated
        else:  # a wrapped paragraph: at least as many Japanese lines as English worded ones
            assert sum(bool(_JAPANESE.search(x)) for x in ja_lines) >= min(len(worded), 1)
        english_only = [x for x in ja_lines if _words(x) and not _JAPANESE.search(x)]
        assert not english_only, english_only
        phrases = [x for x in ja_lines if _phrase(x)]
        assert not phrases, phrases


@pytest.mark.parametrize("argv", MACHINE, ids=" ".join)
def test_json_and_csv_are_byte_identical_across_languages(
    argv: list[str], folder: Path, empty_data_dir: Path, model_file: str
) -> None:
    _check_machine(_fill(argv, folder, empty_data_dir, model_file))


def _check_machine(argv: list[str]) -> None:
    code_en, out_en, _ = _run(argv, "en")
    code_ja, out_ja, _ = _run(argv, "ja")
    assert code_en == code_ja == 0
    assert out_en and out_ja == out_en


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two drawn digits (a 1 and a Z-shaped 2), dark on white, as `predict` expects."""
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("digits")
    paths = []
    for i, points in enumerate([[(30, 10), (30, 60)], [(15, 15), (45, 15), (15, 60), (45, 60)]]):
        image = Image.new("L", (64, 72), 255)
        ImageDraw.Draw(image).line(points, fill=0, width=6)
        image.save(root / f"d{i}.png")
        paths.append(str(root / f"d{i}.png"))
    return paths


# evaluate scores all 10,000 test images, four times (en, ja, text, JSON): ~30 s on 2 cores
@pytest.mark.parametrize(
    "command", [pytest.param("evaluate", marks=pytest.mark.slow), "predict", "export"]
)
def test_checkpoint_commands_in_japanese(
    command: str,
    random_checkpoint: Path,
    mnist_data_dir: Path,
    digits: list[str],
    tmp_path: Path,
) -> None:
    """evaluate, predict and export of an untrained checkpoint: the text in Japanese, the
    JSON the same (export writes the same file in both runs, so its path is the same)."""
    data = ["--data-dir", str(mnist_data_dir)]
    argv = {
        "evaluate": ["evaluate", str(random_checkpoint), *data],
        "predict": ["predict", str(random_checkpoint), *digits],
        "export": ["export", str(random_checkpoint), "-o", str(tmp_path / "m.onnx"), *data],
    }[command]
    if command == "export":
        argv += ["--images", "8"]
    _check_worded(argv)
    _check_machine([*argv, "--json"])


def test_text_tables_stay_aligned_by_display_width(folder: Path) -> None:
    """The class table of `data info FOLDER` and the rf table: every column ends at the same
    display column in Japanese (two cells a kanji), as in English."""
    from cnnkit.core.text import display_width

    for argv in (["data", "info", str(folder)], ["rf", "vgg-like"]):
        _, out, _ = _run(argv, "ja")
        lines = out.splitlines()
        table = [x for x in lines if x.startswith("  ")] if argv[0] == "data" else lines[:9]
        table = [x for x in table if set(x.strip()) != {"-"}]
        ends = {display_width(x.rstrip()) for x in table}
        assert len(ends) == 1, table  # the last column is right-aligned: one end for all


def test_notebook_html_and_markdown_follow_the_current_language() -> None:
    """`_repr_html_` of the calc/analysis results: English by default, Japanese after
    `set_language('ja')`, the same numbers in both."""
    from cnnkit.analysis.summary import summary
    from cnnkit.calc.arithmetic import layer_output_shape
    from cnnkit.calc.receptive_field import parse_layers, receptive_fields
    from cnnkit.models.registry import create_model

    objects = [
        layer_output_shape(input_size=13, kernel_size=2, stride=2, kind="pool", ceil_mode=True),
        receptive_fields(parse_layers("conv3,pool2"), 28),
        summary(create_model("simple-cnn"), (1, 28, 28)),
    ]
    for obj in objects:
        en = obj._repr_html_()
        i18n.set_language("ja")
        try:
            ja = obj._repr_html_()
        finally:
            i18n.set_language("en")
        assert en == obj._repr_html_()  # English again
        assert not _JAPANESE.search(en) and _JAPANESE.search(ja)
        cells = re.compile(r"<td[^>]*>([^<]*)</td>")
        numbers = [re.findall(r"\d+", c) for c in cells.findall(en)]
        assert numbers == [re.findall(r"\d+", c) for c in cells.findall(ja)]
        text_en = re.sub(r"<[^>]+>", "\n", en)
        assert [w for w in _words(text_en)], "the English table has words"
        text_ja = re.sub(r"<[^>]+>", "\n", ja)
        english_only = [x for x in text_ja.splitlines() if _words(x) and not _JAPANESE.search(x)]
        assert not english_only, english_only
