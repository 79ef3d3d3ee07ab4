"""Figures and the report in Japanese: every figure cnnkit draws (FIGURES) drawn with Japanese
words only (names that stay as they are aside) and not one missing glyph (matplotlib warns
"Glyph ... missing from font(s)" for each box it would draw); without a Japanese font the very
texts of the English figure, again with no missing glyph."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import JAPANESE

from cnnkit.core.i18n import set_language
from cnnkit.render import fonts


@pytest.fixture
def japanese() -> Iterator[None]:
    set_language("ja")
    yield
    set_language("en")


def _missing_glyphs(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_the_bundled_japanese_font_is_found_without_importing_its_package() -> None:
    import sys

    assert fonts.bundled_font_path() is not None, "matplotlib-fontja is a dependency"
    assert fonts.japanese_font() == "IPAexGothic"
    assert "matplotlib_fontja" not in sys.modules  # its import would change rcParams


def test_the_check_sees_tofu_when_no_japanese_font_is_used(tmp_path: Path) -> None:
    """The oracle can fail: the same Japanese title in matplotlib's default font warns."""
    from cnnkit.render.figures import new_figure

    fig = new_figure()
    fig.suptitle("活性化関数")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(tmp_path / "tofu.png")
    assert _missing_glyphs(caught)


def test_report_in_japanese(tmp_path: Path, japanese: None) -> None:
    from test_report import build  # tests/ is on sys.path (rootdir-relative imports)

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path, _ = build(tmp_path, "simple-cnn", images, labels)
    assert not _missing_glyphs(caught)
    text = Path(path).read_text(encoding="utf-8")
    assert '<html lang="ja">' in text
    assert "学習レポート:" in text and "<h2>概要</h2>" in text and "最終テスト正解率" in text


# --- every figure in Japanese has no English word left ----------------------------------------
#
# Each case draws one figure the way cnnkit does (the real command where it is quick), once in
# English and once in Japanese, and compares the two figures' texts: the Japanese one may keep
# an English word only if it is a name that stays as it is (KEPT_NAMES, or a registry name the
# reader types on the command line); every word-bearing English text must change; and every
# number must survive translation (the same numbers, text by text).

KEPT_NAMES = {
    # abbreviations and names that Japanese writing keeps as they are
    "ReLU", "torch", "Sobel", "Prewitt",
    # math written in a formula (max(0, x), exp(x), tanh(x), sqrt(2/pi), Phi(x))
    "max", "exp", "tanh", "sqrt", "Phi", "pi",
}  # fmt: skip


def _kept_names() -> set[str]:
    """KEPT_NAMES plus what the reader types: activation, kernel and model names, parameter
    names shown as `name=value`, and the --boundary modes."""
    from cnnkit.data.registry import DATASETS
    from cnnkit.imaging.kernels import BOUNDARIES, list_kernels
    from cnnkit.models.registry import list_models
    from cnnkit.ops.activations import ACTIVATIONS

    names = set(KEPT_NAMES) | set(BOUNDARIES) | set(list_models()) | set(DATASETS)
    for act in ACTIVATIONS.values():
        names |= {act.name, *act.params}
    for info in list_kernels():
        names |= {info.name, *info.params}
    return names


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _english_words(text: str) -> list[str]:
    """Words of 3+ letters outside $math$ and file names (digit.png); identifiers with digits
    (conv1, x28) and CamelCase class names (SimpleCNN) are names, not words."""
    plain = re.sub(r"\$[^$]*\$|[\w-]+\.(?:png|jpg|pt)\b", " ", text)
    return [
        w
        for w in _WORD.findall(plain)
        if not any(ch.isdigit() for ch in w)
        and sum(ch.isalpha() for ch in w) >= 3
        and not re.search(r"[a-z][A-Z]", w)
    ]


def _has_japanese(text: str) -> bool:
    return bool(JAPANESE.search(text))


def _figure_texts(fig) -> list[str]:  # type: ignore[no-untyped-def]
    """Every visible text of a drawn figure: titles, labels, legends, tick labels, annotations."""
    from matplotlib.text import Text

    # saved, so drawn: tick labels exist
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def _capture(monkeypatch: pytest.MonkeyPatch) -> list:  # type: ignore[type-arg]
    """Patch save_figure (where figures and the report call it) to keep every saved Figure."""
    import cnnkit.render.figures as figures
    import cnnkit.render.report as report

    saved: list = []  # type: ignore[type-arg]
    original = figures.save_figure

    def keep(fig, path, **kwargs):  # type: ignore[no-untyped-def]
        saved.append((Path(path).name, fig))
        return original(fig, path, **kwargs)

    monkeypatch.setattr(figures, "save_figure", keep)
    monkeypatch.setattr(report, "save_figure", keep)
    return saved


def _cli(*args: str) -> None:
    from cnnkit.cli.main import main

    assert main(list(args)) == 0, args


def _digit_png(path: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(path)
    return path


def _fig_activations(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    _cli("--lang", lang, "plot", "activations", "-o", str(tmp / "a.png"))


def _fig_kernels(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    # the chapter's test pattern, values written in each pixel (two panels: fast)
    _cli("--lang", lang, "kernels", "--kernels", "sobel-x", "-o", str(tmp / "k.png"))


def _fig_kernels_on_image(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    from cnnkit.imaging.kernels import list_kernels

    image = str(_digit_png(tmp / "digit.png"))
    # every registered kernel, and parameters in the titles
    kernels = ";".join([k.name for k in list_kernels()] + ["gaussian:5,1.4", "box:5"])
    _cli("--lang", lang, "kernels", image, "--kernels", kernels, "-o", str(tmp / "k.png"))


def _fig_summary_boxes(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    image = str(_digit_png(tmp / "digit.png"))
    _cli("--lang", lang, "summary", "simple-cnn", "--boxes", image, "-o", str(tmp / "b.png"))


def _fig_erf(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    data = str(ctx["mnist"]())
    args = ("erf", str(ctx["checkpoint"]), "--images", "4", "--data-dir", data)
    _cli("--lang", lang, *args, "-o", str(tmp / "erf.png"))


def _fig_visualize(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    # the bundled MNIST test digit
    _cli("--lang", lang, "visualize", str(ctx["checkpoint"]), "-o", str(tmp / "v.png"))


def _training_report(tmp: Path, lang: str, **kw) -> None:  # type: ignore[no-untyped-def]
    """The report `cnnkit train` writes (all its figures), for 12 random test images."""
    from test_report import build  # tests/ is on sys.path (rootdir-relative imports)

    set_language(lang)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    build(tmp, "simple-cnn", images, rng.integers(0, 10, size=12), **kw)


def _fig_report(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    _training_report(tmp, lang)


def _fig_one_epoch_curves(tmp: Path, lang: str, ctx: dict) -> None:  # type: ignore[type-arg]
    from test_report import HISTORY

    from cnnkit.render import figures, report

    set_language(lang)
    figures.save_figure(report.curves_figure(HISTORY[:1]), tmp / "curves.png")


FIGURES = {
    "activations": _fig_activations,
    "kernels": _fig_kernels,
    "kernels-on-image": _fig_kernels_on_image,
    "summary-boxes": _fig_summary_boxes,
    "erf": _fig_erf,
    "visualize": _fig_visualize,
    "curves": _fig_report,
    "curves-one-epoch": _fig_one_epoch_curves,
    "confusion": _fig_report,
    "misclassified": _fig_report,
    "filters": _fig_report,
    "training-feature-maps": _fig_report,
}
# which saved file a case checks (a report writes several)
FIGURE_FILE = {
    "curves": "curves.png",
    "curves-one-epoch": "curves.png",
    "confusion": "confusion.png",
    "misclassified": "misclassified.png",
    "filters": "filters.png",
    "training-feature-maps": "feature_maps_0.png",
}


# (draw function, language) -> [(file, texts, missing glyphs)]: the report is drawn once
_DRAWN: dict = {}  # type: ignore[type-arg]


def _draw(
    name: str,
    lang: str,
    tmp: Path,
    ctx: dict,
    *,
    font: bool = True,  # type: ignore[type-arg]
) -> tuple[list[str], list[str]]:
    """The texts of case `name`'s figure drawn in `lang` (without `font`: as if no Japanese
    font were installed), and the missing-glyph warnings."""
    draw = FIGURES[name]
    key = (draw, lang, font)
    if key not in _DRAWN:
        folder = tmp / f"{lang}{'' if font else '-no-font'}"
        folder.mkdir()
        with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            saved = _capture(patch)
            if not font:
                patch.setattr(fonts, "japanese_font", lambda: None)
            try:
                draw(folder, lang, ctx)
            finally:
                set_language("en")
            _DRAWN[key] = [(f, _figure_texts(fig), _missing_glyphs(caught)) for f, fig in saved]
    drawn = [(t, m) for f, t, m in _DRAWN[key] if f == FIGURE_FILE.get(name, f)]
    assert len(drawn) == 1, (name, [f for f, _, _ in _DRAWN[key]])
    return drawn[0]


def _context(name: str, request: pytest.FixtureRequest) -> dict:  # type: ignore[type-arg]
    return {
        "checkpoint": request.getfixturevalue("random_checkpoint")
        if name in ("erf", "visualize") else None,
        "mnist": lambda: request.getfixturevalue("mnist_data_dir"),
    }  # fmt: skip


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_in_japanese_has_no_english_word_left(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ctx = _context(name, request)
    english, _ = _draw(name, "en", tmp_path, ctx)
    japanese, missing = _draw(name, "ja", tmp_path, ctx)
    assert not missing, name
    assert not any(_has_japanese(t) for t in english), english
    kept = _kept_names()
    left = sorted({w for t in japanese for w in _english_words(t) if w not in kept})
    assert not left, f"English words left in the Japanese {name} figure: {left}"
    # text by text, those with letters (a taller Japanese figure may get other numeric ticks)
    english, japanese = ([t for t in ts if re.search(r"[^\W\d_]", t)] for ts in (english, japanese))
    assert len(japanese) == len(english), (english, japanese)
    for en, ja in zip(english, japanese, strict=True):
        if any(w not in kept for w in _english_words(en)):
            assert ja != en, f"{name}: {en!r} is not translated"
        # every number kept (Japanese may write one where English spells it: "one epoch")
        assert not Counter(_NUMBER.findall(en)) - Counter(_NUMBER.findall(ja)), (en, ja)


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_without_a_japanese_font_is_the_english_one(
    name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """--lang ja where no Japanese font exists: the very texts of the English figure."""
    ctx = _context(name, request)
    english, _ = _draw(name, "en", tmp_path, ctx)
    fallback, missing = _draw(name, "ja", tmp_path, ctx, font=False)
    assert not missing, name
    assert fallback == english
