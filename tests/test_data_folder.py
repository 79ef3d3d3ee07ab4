"""Image-folder datasets (`cnnkit.data.folder`) and `cnnkit train --dataset FOLDER`.

Oracles: Pillow itself for sizes and resizing, NumPy for the split counts and the
normalisation, a fresh torch model for the derived model arguments, and drawings the model
never saw for `cnnkit predict`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image
from shapes_data import CLASSES, draw, make_shapes

from cnnkit.core.errors import CnnkitError, DataError
from cnnkit.data.folder import load_image_folder, parse_image_size, scan_image_folder


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes") / "shapes"
    make_shapes(root, per_class=30)
    return root


def good_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != "broken.png")


def test_scan_finds_classes_and_both_formats(shapes: Path) -> None:
    scan = scan_image_folder(shapes)
    assert scan.classes == sorted(CLASSES)
    suffixes = {p.suffix for p, _ in scan.files["all"]}
    assert suffixes == {".png", ".jpg"}
    assert len(scan.files["all"]) == 3 * 30 + 1  # the corrupt file is listed, then reported


def test_stratified_split_is_seeded_disjoint_and_per_class(shapes: Path) -> None:
    a = load_image_folder(shapes, test_fraction=0.25, seed=3)
    b = load_image_folder(shapes, test_fraction=0.25, seed=3)
    c = load_image_folder(shapes, test_fraction=0.25, seed=4)
    np.testing.assert_array_equal(a.test.images, b.test.images)
    assert not np.array_equal(a.test.images, c.test.images)
    # per class: 30 readable images (the corrupt square is extra), round(n * 0.25) held out
    counts = np.bincount(np.concatenate([a.train.labels, a.test.labels]))
    assert counts.tolist() == [30, 30, 30]
    for k in range(len(a.classes)):
        n = 30
        assert int((a.test.labels == k).sum()) == round(n * 0.25)
        assert int((a.train.labels == k).sum()) == n - round(n * 0.25)
    assert a.split == "stratified"
    # disjoint: no test image equals a training image bit for bit (drawings are all distinct)
    train_rows = {im.tobytes() for im in a.train.images}
    assert not any(im.tobytes() in train_rows for im in a.test.images)


def test_median_size_resize_and_channels_against_pillow(shapes: Path) -> None:
    data = load_image_folder(shapes, seed=0)
    sizes = [Image.open(p).size for p in good_files(shapes)]  # (W, H)
    median = (int(np.median([s[1] for s in sizes])), int(np.median([s[0] for s in sizes])))
    assert data.median_size == median and data.image_size == median
    assert data.channels == 1 and data.train.images.ndim == 3
    assert data.train.images.shape[1:] == median
    # one file, resized by Pillow directly, is among the images
    path = good_files(shapes)[0]
    want = np.asarray(
        Image.open(path).convert("L").resize((median[1], median[0]), Image.Resampling.BILINEAR)
    )
    everything = np.concatenate([data.train.images, data.test.images])
    assert any(np.array_equal(want, im) for im in everything)


def test_colour_folder_is_rgb_and_channels_can_be_forced(tmp_path: Path) -> None:
    make_shapes(tmp_path / "c", per_class=4, colour=True, corrupt=False)
    data = load_image_folder(tmp_path / "c", image_size=16)
    assert data.channels == 3 and data.train.images.shape[1:] == (16, 16, 3)
    gray = load_image_folder(tmp_path / "c", image_size="12x20", channels=1)
    assert gray.train.images.shape[1:] == (12, 20)


def test_grey_rgb_files_count_as_grayscale(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "g" / cls).mkdir(parents=True)
        for i in range(3):
            img = draw("circle" if cls == "a" else "square", 20, rng).convert("RGB")  # type: ignore[attr-defined]
            img.save(tmp_path / "g" / cls / f"{i}.png")
    assert load_image_folder(tmp_path / "g").channels == 1


def test_train_and_test_subfolders_are_used_as_given(tmp_path: Path) -> None:
    make_shapes(tmp_path / "s" / "train", per_class=5, corrupt=False)
    make_shapes(tmp_path / "s" / "test", per_class=2, seed=1, corrupt=False)
    data = load_image_folder(tmp_path / "s")
    assert data.split == "folders"
    assert np.bincount(data.train.labels).tolist() == [5, 5, 5]
    assert np.bincount(data.test.labels).tolist() == [2, 2, 2]


def test_corrupt_file_is_named_then_skipped_or_fatal(shapes: Path) -> None:
    data = load_image_folder(shapes)
    assert [Path(f).name for f, _ in data.bad] == ["broken.png"]
    assert "broken.png" in data.bad[0][1]
    with pytest.raises(DataError, match=r"broken\.png.*--on-bad-image fail"):
        load_image_folder(shapes, on_bad_image="fail")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": "3x"}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"on_bad_image": "ignore"}, "on_bad_image"),
    ],
)
def test_bad_settings_are_refused_by_name(shapes: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(CnnkitError, match=match):
        load_image_folder(shapes, **kwargs)


def test_not_a_class_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "one" / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "one" / "only" / "x.png")
    with pytest.raises(DataError, match="at least two"):
        scan_image_folder(tmp_path / "one")
    with pytest.raises(DataError, match="not a folder"):
        scan_image_folder(tmp_path / "missing")


def test_parse_image_size() -> None:
    assert parse_image_size(32) == (32, 32)
    assert parse_image_size("24x30") == (24, 30)
    assert parse_image_size(None) is None


def test_model_follows_the_data_and_checks_the_shape(shapes: Path) -> None:
    """simple-cnn gets the folder's (C, H, W) and class count; its flattened size, derived by
    cnnkit's arithmetic, is what torch's own forward needs."""
    import torch

    from cnnkit.models.registry import create_model
    from cnnkit.training.dataset import fit_model, load_train_data

    data = load_train_data(str(shapes), data_dir=None, image_size="20x24")
    args = fit_model("simple-cnn", str(shapes), data)
    assert args == {"in_channels": 1, "num_classes": 3, "input_hw": [20, 24]}
    model = create_model("simple-cnn", **args)
    assert model.fc1.in_features == 64 * (20 // 4) * (24 // 4)
    assert tuple(model(torch.zeros(2, 1, 20, 24)).shape) == (2, 3)
    tiny = load_train_data(str(shapes), data_dir=None, image_size=3)
    with pytest.raises(CnnkitError, match=r"cannot take dataset .*\(1, 3, 3\)"):
        fit_model("simple-cnn", str(shapes), tiny)
    with pytest.raises(CnnkitError, match="conv-block.*cannot take"):
        fit_model("conv-block", str(shapes), data)


def test_train_on_folder_reaches_high_accuracy_and_predict_names_classes(
    shapes: Path, tmp_path: Path
) -> None:
    out = run_cli(
        "train", "--dataset", str(shapes), "--epochs", "6", "--batch-size", "16",
        "--out", str(tmp_path), "--name", "s", "--no-progress", "--threads", "1",
        "--no-report",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    sizes = [Image.open(p).size for p in good_files(shapes)]  # (W, H)
    median = f"{int(np.median([s[1] for s in sizes]))}x{int(np.median([s[0] for s in sizes]))}"
    assert f"median size {median}" in out.stdout and "(circle, square, triangle)" in out.stdout
    assert "broken.png" in out.stderr and "1 image(s) skipped" in out.stderr
    rows = [
        json.loads(line) for line in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows[-1]["test_acc"] >= 0.9, rows
    ev = run_cli("evaluate", str(tmp_path / "s"), "--json")  # the run's test split again
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["accuracy"] == pytest.approx(rows[-1]["test_acc"], abs=1e-9)
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["classes"] == ["circle", "square", "triangle"]
    mean = config["normalize"][0]  # from the training split only
    from cnnkit.data.folder import load_image_folder as load

    train = load(shapes, seed=0).train.images
    assert mean == pytest.approx(round(float(train.mean() / 255), 4), abs=1e-4)
    # new drawings, never seen: predict prints class names
    rng = np.random.default_rng(99)
    paths = []
    for cls in CLASSES:
        for i in range(3):
            p = tmp_path / f"new_{cls}_{i}.png"
            draw(cls, 28, rng).save(p)  # type: ignore[attr-defined]
            paths.append(p)
    pred = run_cli("predict", str(tmp_path / "s"), *map(str, paths), "--json")
    assert pred.returncode == 0, pred.stderr
    results = json.loads(pred.stdout)
    names = [r["name"] for r in results]
    assert set(names) <= set(CLASSES)
    truth = [p.name.split("_")[1] for p in paths]
    assert sum(n == t for n, t in zip(names, truth, strict=True)) >= 8, (names, truth)


def test_cli_refuses_a_missing_folder_in_one_line(tmp_path: Path) -> None:
    out = run_cli("train", "--dataset", str(tmp_path / "nope"), "--dry-run", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset" in lines[0] and "nope" in lines[0]
