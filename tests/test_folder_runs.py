"""A run trained on an image folder, seen by `visualize`, the report and the playground.

The run is trained at 28x28 grayscale on purpose: the shape of an MNIST digit, where reading a
file as a digit (`preprocess_digit`: crop, 20 px box, centre of mass) would be silently
accepted and wrong. Oracles: Pillow resizing the file itself (what training did), and
`cnnkit predict` (tested in test_data_folder.py) for the class names and probabilities.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image
from shapes_data import CLASSES, make_shapes

from cnnkit.imaging.digits import preprocess_digit
from cnnkit.imaging.images import read_image
from cnnkit.web.app import create_app

with warnings.catch_warnings():  # starlette 1.x asks for "httpx2"; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("folder_run")
    make_shapes(tmp / "shapes", per_class=16)
    out = run_cli(
        "train", "--dataset", str(tmp / "shapes"), "--image-size", "28", "--epochs", "3",
        "--batch-size", "16", "--out", str(tmp / "runs"), "--name", "s", "--no-progress",
        "--threads", "1",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return tmp / "runs" / "s"


def as_trained(path: Path) -> np.ndarray:
    """The file as training read it: Pillow, grayscale, bilinear to 28x28."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L").resize((28, 28), Image.Resampling.BILINEAR))


def predicted(run: Path, path: Path) -> dict:
    """`cnnkit predict`'s answer (its API, in this process) for one file, all classes."""
    from cnnkit.analysis.predict import predict

    p = predict(run / "checkpoint.pt", [path], top=3)[0]
    return {
        "name": p.name,
        "probability": p.probability,
        "top": [{"name": c.name, "probability": c.probability} for c in p.top],
    }


@pytest.fixture(scope="module")
def sample(run: Path) -> Path:
    """A circle whose digit preprocessing differs from the training pipeline (so a test that
    read it as a digit would fail)."""
    path = Path(json.loads((run / "config.json").read_text())["dataset"]) / "circle" / "003.png"
    digit = preprocess_digit(read_image(path, "L"))
    assert not np.allclose(digit, as_trained(path), atol=2)
    return path


def test_visualize_reads_the_file_as_training_did(run: Path, sample: Path, monkeypatch) -> None:
    import cnnkit.render.figures as figures
    from cnnkit.render.feature_maps import visualize

    figs = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, out: figs.append(fig) or Path(out))
    visualize(run / "checkpoint.pt", sample, run / "v.png")
    fig = figs[0]
    expected = predicted(run, sample)
    title = fig._suptitle.get_text()
    assert title.startswith(f"{sample.name}: predicted {expected['name']} ")
    assert f"({expected['probability']:.1%})" in title
    assert expected["name"] in CLASSES
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_array_equal(shown, as_trained(sample))


def test_visualize_cli_default_image_is_from_the_folder(run: Path) -> None:
    out = run_cli("visualize", str(run), "-o", str(run / "v_default.png"), "--device", "cpu")
    assert out.returncode == 0, out.stderr
    assert (run / "v_default.png").stat().st_size > 1000


def test_report_names_the_classes(run: Path) -> None:
    html = (run / "report.html").read_text(encoding="utf-8")
    for name in CLASSES:
        assert f"<td>{name}" in html


def test_playground_classes_and_predict(run: Path, sample: Path) -> None:
    client = TestClient(create_app(run / "checkpoint.pt"))
    info = client.get("/api/model").json()
    assert info["classes"] == sorted(CLASSES)
    assert info["input_shape"] == [1, 28, 28]
    r = client.post("/api/predict?layers=0", content=sample.read_bytes(),
                    headers={"content-type": "image/png"})  # fmt: skip
    assert r.status_code == 200, r.text
    got = r.json()
    np.testing.assert_array_equal(np.array(got["pixels"]), as_trained(sample))
    expected = predicted(run, sample)
    probs = {info["classes"][k]: p for k, p in enumerate(got["probabilities"])}
    for ranked in expected["top"]:
        assert probs[ranked["name"]] == pytest.approx(ranked["probability"], abs=1e-5)
    assert info["classes"][got["predicted"]] == expected["name"]
