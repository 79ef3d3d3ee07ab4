"""`cnnkit data info FOLDER` (`cnnkit.data.folder.folder_info`).

Oracles: Pillow opened file by file for sizes and modes, the files written for the counts,
NumPy's median for the median size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import JAPANESE, run_cli
from PIL import Image
from shapes_data import CLASSES, draw, make_shapes

from cnnkit.core.errors import DataError
from cnnkit.data.folder import folder_info


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and test/ given; test/ has 2 colour drawings and an unreadable file."""
    root = tmp_path_factory.mktemp("info") / "photos"
    make_shapes(root / "train", per_class=4, corrupt=False)
    make_shapes(root / "test", per_class=2, seed=1, corrupt=False)
    rng = np.random.default_rng(5)
    for i, cls in enumerate(CLASSES[:2]):
        draw(cls, 40 + i, rng, colour=True).save(root / "test" / cls / "colour.png")  # type: ignore[attr-defined]
    (root / "test" / "circle" / "bad.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def pillow_facts(root: Path) -> tuple[list[tuple[int, int]], int]:
    sizes, rgb = [], 0
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name == "bad.jpg":
            continue
        with Image.open(p) as img:
            sizes.append((img.height, img.width))
            a = np.asarray(img.convert("RGB"))
            rgb += not (
                np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
            )
    return sizes, rgb


def test_folder_info_against_pillow(split_folder: Path) -> None:
    info = folder_info(split_folder)
    assert info.classes == sorted(CLASSES) and info.layout == "folders"
    by_split = {s.split: s for s in info.splits}
    assert by_split["train"].counts == dict.fromkeys(sorted(CLASSES), 4)
    assert by_split["test"].counts == {"circle": 3, "square": 3, "triangle": 2}
    assert by_split["test"].files == 9 and by_split["train"].files == 12
    sizes, rgb = pillow_facts(split_folder)
    hw = np.array(sizes)
    for i, got in enumerate((info.heights, info.widths)):
        assert got == (hw[:, i].min(), int(np.median(hw[:, i])), hw[:, i].max())
    assert info.heights[2] == 41  # the colour drawings are the largest
    modes = {m: sum(s.modes[m] for s in info.splits) for m in ("L", "RGB")}
    assert modes == {"L": len(sizes) - rgb, "RGB": rgb} and rgb == 2
    assert [Path(f).name for f, _ in info.bad] == ["bad.jpg"]


def test_cli_table_and_json(split_folder: Path) -> None:
    table = run_cli("data", "info", str(split_folder))
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "3 classes" in out and "train/ and test/ given" in out
    assert "circle" in out and "bad.jpg" in out and "unreadable files: 1" in out
    info = folder_info(split_folder)
    h, w = info.heights, info.widths
    assert f"min {h[0]}x{w[0]}, median {h[1]}x{w[1]}, max {h[2]}x{w[2]}" in out
    assert "RGB 2" in out
    js = run_cli("data", "info", str(split_folder), "--json")
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["classes"] == sorted(CLASSES)
    assert {s["split"]: s["counts"]["circle"] for s in data["splits"]} == {"train": 4, "test": 3}
    assert data["heights"] == list(info.heights) and data["widths"] == list(info.widths)


def test_one_split_folder_and_refusals(tmp_path: Path) -> None:
    root = tmp_path / "shapes"
    make_shapes(root, per_class=3)
    info = folder_info(root)
    assert info.layout == "one split" and [s.split for s in info.splits] == ["all"]
    assert info.splits[0].counts == dict.fromkeys(sorted(CLASSES), 3)
    assert [Path(f).name for f, _ in info.bad] == ["broken.png"]
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("L", (4, 4)).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(DataError, match="at least two"):
        folder_info(tmp_path / "one")
    r = run_cli("data", "info", str(tmp_path / "missing"))
    assert r.returncode == 2 and "not a folder" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1


def test_an_unreadable_files_reason_is_worded_in_japanese(split_folder: Path, capsys) -> None:
    """The reason kept for a file that does not decode is the English line (JSON), and the
    same reason in Japanese with --lang ja, also after a trip through the decode cache."""
    from cnnkit.cli.main import main
    from cnnkit.core import i18n
    from cnnkit.data.folder import _reason_from_json, _reason_to_json

    try:
        assert main(["data", "info", str(split_folder), "--lang", "ja"]) == 0
        ja = capsys.readouterr().out
        assert main(["data", "info", str(split_folder), "--lang", "en"]) == 0
        en = capsys.readouterr().out
    finally:
        i18n.set_language("en")
    (reason_en,) = [line for line in en.splitlines() if "bad.jpg:" in line]
    (reason_ja,) = [line for line in ja.splitlines() if "bad.jpg:" in line]
    assert reason_en != reason_ja and JAPANESE.search(reason_ja)
    (_, reason) = folder_info(split_folder).bad[0]
    assert f"bad.jpg: {reason}" in reason_en
    back = _reason_from_json(json.loads(json.dumps(_reason_to_json(reason))))
    assert back == reason
    i18n.set_language("ja")
    try:
        assert i18n.translate(back) == i18n.translate(reason) != str(reason)
    finally:
        i18n.set_language("en")
