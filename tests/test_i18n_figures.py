"""Figures and the report in Japanese: every figure drawn with its Japanese labels and not one
missing glyph (matplotlib warns "Glyph ... missing from font(s)" for each box it would draw);
without a Japanese font the labels fall back to English, again with no missing glyph."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cnnkit.core.i18n import set_language
from cnnkit.render import fonts


@pytest.fixture
def japanese() -> Iterator[None]:
    set_language("ja")
    yield
    set_language("en")


def _missing_glyphs(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def _texts(fig) -> list[str]:  # type: ignore[no-untyped-def]
    from matplotlib.text import Text

    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _draw_every_figure(tmp_path: Path) -> list[list[str]]:
    """Every figure cnnkit draws, saved through save_figure; returns each figure's texts."""
    from cnnkit.analysis.feature_maps import LayerMaps
    from cnnkit.analysis.summary.core import Box
    from cnnkit.imaging.kernels import chapter_test_pattern, kernel_responses
    from cnnkit.ops.activations import get_activation
    from cnnkit.render.feature_maps import feature_maps_figure
    from cnnkit.render.figures import activations_figure, kernel_comparison_figure, save_figure
    from cnnkit.render.summary_figures import plot_boxes, plot_erf

    rng = np.random.default_rng(0)
    drawn = []
    image = chapter_test_pattern()
    fig = kernel_comparison_figure(image, kernel_responses(image, ["sobel-x", "box:3"]))
    save_figure(fig, tmp_path / "kernels.png")
    drawn.append(_texts(fig))
    fig = activations_figure([get_activation("relu"), get_activation("gelu")])
    save_figure(fig, tmp_path / "activations.png")
    drawn.append(_texts(fig))
    maps = [LayerMaps("conv1", rng.random((4, 26, 26), dtype=np.float32))]
    fig = feature_maps_figure(rng.integers(0, 255, (28, 28)).astype(np.uint8), maps, title="x")
    save_figure(fig, tmp_path / "maps.png")
    drawn.append(_texts(fig))
    box = Box(2, 6, 3, 7, (2, 6, 3, 7), (28, 28))
    plot_boxes(rng.integers(0, 255, (28, 28)).astype(float), [("conv1", box)], tmp_path / "b.png")
    erf = SimpleNamespace(
        grad=rng.random((28, 28)), theoretical=box, layer="conv2", unit=(3, 3),
        n_images=8, mass_inside=0.75,
    )  # fmt: skip
    plot_erf(erf, tmp_path / "erf.png")
    return drawn


def test_the_bundled_japanese_font_is_found_without_importing_its_package() -> None:
    import sys

    assert fonts.bundled_font_path() is not None, "matplotlib-fontja is a dependency"
    assert fonts.japanese_font() == "IPAexGothic"
    assert "matplotlib_fontja" not in sys.modules  # its import would change rcParams


def test_every_figure_in_japanese_has_no_missing_glyph(tmp_path: Path, japanese: None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = _draw_every_figure(tmp_path)
    assert not _missing_glyphs(caught)
    assert "元の画像" in drawn[0]
    assert any("活性化関数" in t for t in drawn[1])
    assert any("前処理" in t or "入力" in t for t in drawn[2])


def test_the_check_sees_tofu_when_no_japanese_font_is_used(tmp_path: Path) -> None:
    """The oracle can fail: the same Japanese title in matplotlib's default font warns."""
    from cnnkit.render.figures import new_figure

    fig = new_figure()
    fig.suptitle("活性化関数")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(tmp_path / "tofu.png")
    assert _missing_glyphs(caught)


def test_without_a_japanese_font_labels_fall_back_to_english(
    tmp_path: Path, japanese: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fonts, "japanese_font", lambda: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = _draw_every_figure(tmp_path)
    assert not _missing_glyphs(caught)
    assert "original" in drawn[0]
    assert not any(ord(ch) > 0x3000 for texts in drawn for t in texts for ch in t)


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
