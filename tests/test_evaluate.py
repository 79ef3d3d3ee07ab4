"""Evaluation metrics against independent oracles (plain loops, torch's cross-entropy)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_checkpoint
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.analysis.evaluate import classification_metrics, evaluate
from cnnkit.core.errors import CnnkitError


def loop_metrics(labels, predictions, k):
    """The oracle: every count by a direct loop over the samples, formulas written out."""
    confusion = [[0] * k for _ in range(k)]
    for t, p in zip(labels, predictions, strict=True):
        confusion[t][p] += 1
    rows = []
    for c in range(k):
        tp = sum(1 for t, p in zip(labels, predictions, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(labels, predictions, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(labels, predictions, strict=True) if t == c and p != c)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((precision, recall, f1, tp + fn))
    accuracy = sum(t == p for t, p in zip(labels, predictions, strict=True)) / len(labels)
    return confusion, rows, accuracy


def assert_matches_oracle(metrics, labels, predictions, k):
    confusion, rows, accuracy = loop_metrics(list(labels), list(predictions), k)
    assert metrics.confusion == confusion
    assert metrics.accuracy == pytest.approx(accuracy, abs=1e-12)
    for m, (precision, recall, f1, support) in zip(metrics.per_class, rows, strict=True):
        assert m.precision == pytest.approx(precision, abs=1e-12)
        assert m.recall == pytest.approx(recall, abs=1e-12)
        assert m.f1 == pytest.approx(f1, abs=1e-12)
        assert m.support == support
    assert metrics.macro_f1 == pytest.approx(np.mean([r[2] for r in rows]), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 12),
    data=st.data(),
)
def test_classification_metrics_match_a_loop_oracle(k, data):
    n = data.draw(st.integers(1, 80))
    labels = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    predictions = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    metrics = classification_metrics(
        np.array(labels), np.array(predictions), [f"c{i}" for i in range(k)]
    )
    assert_matches_oracle(metrics, labels, predictions, k)
    assert sum(map(sum, metrics.confusion)) == n


def test_classes_never_seen_or_never_predicted_get_zero_not_nan():
    m = classification_metrics(np.array([0, 0, 1]), np.array([0, 1, 1]), ["a", "b", "c"])
    c = m.per_class[2]
    assert (c.precision, c.recall, c.f1, c.support) == (0.0, 0.0, 0.0, 0)


@pytest.mark.parametrize(
    "labels,predictions,message",
    [
        ([0, 1], [0], "equal length"),
        ([0, 3], [0, 1], r"labels must lie in \[0, 3\)"),
        ([0, 1], [-1, 1], "predictions must lie"),
    ],
)
def test_bad_inputs_are_refused(labels, predictions, message):
    with pytest.raises(CnnkitError, match=message):
        classification_metrics(np.array(labels), np.array(predictions), ["0", "1", "2"])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A seeded untrained SimpleCNN checkpoint and a tiny IDX dataset written to disk."""
    from cnnkit.data import Dataset
    from cnnkit.data.idx import read_idx, write_idx

    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    images[:25, 5:20, 5:20] = 255  # two kinds of images, so predictions vary
    labels = rng.integers(0, 10, size=50).astype(np.uint8)
    write_idx(folder / "images-idx3-ubyte", images)
    write_idx(folder / "labels-idx1-ubyte", labels)
    data = Dataset(
        images=read_idx(folder / "images-idx3-ubyte"),
        labels=read_idx(folder / "labels-idx1-ubyte").astype(np.int64),
        name="tiny",
        split="test",
        classes=[str(i) for i in range(10)],
    )
    config = {"normalize": [0.5, 0.25], "data_dir": str(folder / "none")}
    ckpt = make_checkpoint(folder / "checkpoint.pt", seed=3, config=config)
    return ckpt, data


def test_evaluate_matches_an_independent_computation(tiny_run):
    import torch
    import torch.nn.functional as F

    from cnnkit.models.checkpoint import load_checkpoint

    path, data = tiny_run
    result = evaluate(path, dataset=data)

    model = load_checkpoint(path).model
    x = torch.from_numpy(data.images).float().div(255).sub(0.5).div(0.25).unsqueeze(1)
    with torch.no_grad():
        logits = model(x).double()
    y = torch.from_numpy(data.labels)
    predictions = logits.argmax(1).numpy()
    assert len(set(predictions)) > 1  # the fixture is not degenerate
    assert result.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert result.num_images == 50 and (result.dataset, result.split) == ("tiny", "test")
    assert_matches_oracle(result, data.labels, predictions, 10)


def test_evaluate_cli_without_data_says_how_to_get_it(cli, tiny_run, tmp_path):
    path, _ = tiny_run
    r = cli("evaluate", str(path), "--data-dir", str(tmp_path / "empty"))
    assert r.returncode == 2
    assert "cnnkit data fetch mnist" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
