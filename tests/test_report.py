"""The training report: every picture written and embedded, numbers as in the history."""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.core.errors import CnnkitError

PICTURES = [
    "curves.png",
    "confusion.png",
    "misclassified.png",
    "filters.png",
    "feature_maps_0.png",
    "feature_maps_1.png",
    "feature_maps_2.png",
]
HISTORY = [
    {
        "epoch": 1,
        "train_loss": 0.4321,
        "train_acc": 0.8765,
        "test_loss": 0.2345,
        "test_acc": 0.9312,
        "seconds": 12.3,
    },
    {
        "epoch": 2,
        "train_loss": 0.1234,
        "train_acc": 0.9645,
        "test_loss": 0.0987,
        "test_acc": 0.9701,
        "seconds": 11.1,
    },
]


def report_arguments(model_name: str, images: np.ndarray, labels: np.ndarray, **kw) -> dict:
    """build_report's / analyse_run's keyword arguments: a seeded model whose conv1 was
    "trained" (scaled, so it differs from the initial weights), in training mode."""
    import torch

    from cnnkit.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(model_name)
    initial = model.conv1.weight.detach().numpy().copy()
    with torch.no_grad():
        model.conv1.weight.mul_(1.5)
    model.train()
    return dict(
        model=model,
        initial_conv1_weight=initial,
        test_images=images,
        test_labels=labels,
        normalize=kw.pop("normalize", (0.1307, 0.3081)),
        history=kw.pop("history", HISTORY),
        class_names=kw.pop("class_names", [str(i) for i in range(10)]),
    )


def build(tmp_path: Path, model_name: str, images: np.ndarray, labels: np.ndarray, **kw):
    from cnnkit.render.report import build_report

    arguments = report_arguments(model_name, images, labels, **kw)
    return build_report(tmp_path / "run", **arguments), arguments["model"]


@pytest.fixture(scope="module")
def mnist_like():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=120)
    return images, labels


@pytest.fixture(scope="module")
def simple_report(tmp_path_factory, mnist_like):
    return build(tmp_path_factory.mktemp("report"), "simple-cnn", *mnist_like)


def test_every_picture_is_written_and_embedded(simple_report):
    path, _ = simple_report
    run = path.parent
    assert path.name == "report.html"
    page = path.read_text()
    for name in PICTURES:
        picture = run / name
        with Image.open(picture) as img:
            assert img.format == "PNG" and min(img.size) > 200
        assert base64.b64encode(picture.read_bytes()).decode() in page, name
    assert page.count("<img ") == len(PICTURES)
    assert not [p for p in run.iterdir() if ".part" in p.name]  # nothing half-written left


def test_history_table_and_summary_match(simple_report, mnist_like):
    import torch

    path, model = simple_report
    page = path.read_text()
    table = page.split("<h2>History</h2>")[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]
    cells = [re.findall(r"<td>(.*?)</td>", row) for row in rows]
    assert cells == [
        ["1", "0.4321", "87.65%", "0.2345", "93.12%", "12.3"],
        ["2", "0.1234", "96.45%", "0.0987", "97.01%", "11.1"],
    ]
    # the per-class table and the summary come from the model's own predictions
    images, labels = mnist_like
    x = torch.from_numpy(images).float().div(255).sub(0.1307).div(0.3081).unsqueeze(1)
    with torch.no_grad():
        predictions = copy.deepcopy(model).eval()(x).argmax(1).numpy()
    accuracy = (predictions == labels).mean()
    assert f"<tr><th>final test accuracy</th><td>{accuracy:.2%}</td></tr>" in page
    assert f"<tr><th>training time</th><td>{12.3 + 11.1:.1f} s</td></tr>" in page
    per_class = page.split("<h2>Per class (test set)</h2>")[1].split("</table>")[0]
    for c in range(10):
        predicted, actual = predictions == c, labels == c
        hits = (predicted & actual).sum()
        precision = hits / predicted.sum() if predicted.sum() else 0.0
        recall = hits / actual.sum() if actual.sum() else 0.0
        assert f"<tr><td>{c}</td><td>{precision:.2%}</td><td>{recall:.2%}</td>" in per_class, c


def test_model_mode_is_restored_and_hooks_removed(simple_report):
    _, model = simple_report
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_are_removed_when_the_model_raises():
    import torch
    from torch import nn

    from cnnkit.analysis.feature_maps import conv_feature_maps

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            self.conv(x)
            raise RuntimeError("boom")

    model = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        conv_feature_maps(model, np.zeros((1, 1, 8, 8), np.float32))
    assert model.training and not model.conv._forward_hooks
    with torch.no_grad():
        assert model.conv(torch.zeros(1, 1, 8, 8)).shape == (1, 2, 6, 6)


def test_report_works_for_a_colour_model(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(30, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=30)
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    path, _ = build(
        tmp_path,
        "custom-cnn",
        images,
        labels,
        normalize=((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)),
        class_names=names,
        history=HISTORY[:1],
    )
    page = path.read_text()
    assert all((path.parent / name).is_file() for name in PICTURES)
    assert "<td>truck</td>" in page


def test_normalised_floats_instead_of_raw_images_are_refused(tmp_path, mnist_like):
    images, labels = mnist_like
    with pytest.raises(CnnkitError, match="raw test images"):
        build(tmp_path, "simple-cnn", images.astype(np.float32) / 255, labels)
    assert not (tmp_path / "run").exists()


def test_analysis_returns_what_the_model_predicts(mnist_like, tmp_path):
    """analyse_run's numbers, against the torch model run directly (the oracle)."""
    import torch

    from cnnkit.analysis.report import analyse_run

    images, labels = mnist_like
    arguments = report_arguments("simple-cnn", images, labels)
    model = arguments["model"]
    report = analyse_run(tmp_path / "run", **arguments)
    x = torch.from_numpy(images).float().div(255).sub(0.1307).div(0.3081).unsqueeze(1)
    with torch.no_grad():
        logits = copy.deepcopy(model).eval()(x).double()
    predicted = logits.argmax(1).numpy()
    np.testing.assert_array_equal(report.predictions, predicted)
    np.testing.assert_array_equal(report.misclassified, np.flatnonzero(predicted != labels))
    np.testing.assert_allclose(report.confidence, logits.softmax(1).max(1).values, rtol=1e-5)
    expected_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)).item()
    assert report.test_loss == pytest.approx(expected_loss, rel=1e-5)
    assert [i for i, _ in report.feature_maps] == [0, 1, 2]
    np.testing.assert_array_equal(report.initial_filters, arguments["initial_conv1_weight"])
    np.testing.assert_array_equal(report.trained_filters, model.conv1.weight.detach().numpy())
    assert model.training  # the mode is restored
    assert [m.name for m in report.feature_maps[0][1]] == ["conv1", "conv2"]
    assert not (tmp_path / "run").exists()  # the analysis writes nothing


def _write_run_files(run: Path, config: dict, rows: list[dict]) -> None:
    import json

    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_report_states_its_data_and_settings(tmp_path, mnist_like):
    config = {"dataset": "mnist", "model": "simple-cnn", "lr": 0.01, "batch_size": 32, "epochs": 2,
              "seed": 7, "limit": None, "train_size": 600, "test_size": 120}  # fmt: skip
    _write_run_files(tmp_path / "run", config, HISTORY)
    path, _ = build(tmp_path, "simple-cnn", *mnist_like)
    settings = path.read_text().split("<h2>Data and settings</h2>")[1].split("</table>")[0]
    rows = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", settings))
    assert rows["report evaluated on"] == "120 test images, 10 classes"
    assert rows["normalisation"].startswith("mean 0.1307, std 0.3081")
    for key in ("dataset", "model", "lr", "batch_size", "seed", "train_size"):
        assert rows[key] == str(config[key]), key
    assert rows["limit"] == "all"
    assert "This run diverged" not in path.read_text()


def test_report_without_config_says_so(tmp_path, mnist_like):
    path, _ = build(tmp_path, "simple-cnn", *mnist_like)
    assert "<tr><th>settings</th><td>no config.json in the run folder</td></tr>" in path.read_text()


def test_a_diverged_run_is_flagged(tmp_path, mnist_like):
    """The training loop marks divergence in metrics.jsonl's last row (runs.diverged_row)."""
    from cnnkit.training.runs import METRIC_KEYS

    diverged = {**dict.fromkeys(METRIC_KEYS), "epoch": 3, "seconds": 1.0,
                "diverged": "loss became nan in batch 5 of epoch 3"}  # fmt: skip
    _write_run_files(tmp_path / "run", {"lr": 10.0}, [*HISTORY, diverged])
    path, _ = build(tmp_path, "simple-cnn", *mnist_like)
    page = path.read_text()
    notice = page.split('<p class="notice diverged">')[1].split("</p>")[0]
    assert "loss became nan in batch 5 of epoch 3" in notice
    assert "the last good epoch (2)" in notice
    assert "<tr><th>epochs</th><td>2 (diverged after it)</td></tr>" in page
    history = page.split("<h2>History</h2>")[1].split("</table>")[0]
    assert '<tr class="diverged"><td>3</td>' in history and "diverged: loss became nan" in history


def test_a_single_epoch_run_says_so_and_labels_its_points(tmp_path, mnist_like):
    from cnnkit.render.report import curves_figure

    path, _ = build(tmp_path, "simple-cnn", *mnist_like, history=HISTORY[:1])
    page = path.read_text()
    assert "single epoch" in page.split("<h2>Summary</h2>")[0]
    fig = curves_figure(HISTORY[:1])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["train 0.4321", "test 0.2345", "train 87.65%", "test 93.12%"]
    assert all(line.get_markersize() >= 12 for ax in fig.axes for line in ax.lines)
    two = curves_figure(HISTORY)
    assert not [t for ax in two.axes for t in ax.texts]
    assert "single epoch" not in build(tmp_path / "b", "simple-cnn", *mnist_like)[0].read_text()
