"""The NumPy SimpleCNN and `NumpyEngine` against the torch SimpleCNN of `cnnkit.models.chapter`.

- same weights -> same logits (float64: 1e-10) and the same parameter gradients, with
  dropout off and with one dropout mask shared by both;
- weights move both ways: a NumPy-trained model predicts the same in torch (float32: 1e-4)
  and a torch-trained model the same in NumPy;
- the engine is seeded, resumable bit-exactly from `state()`, and learns;
- one real epoch on MNIST through `cnnkit train --engine numpy` reaches 98.3 % (slow).
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from cnnkit.core.errors import CnnkitError
from cnnkit.models.chapter import ChapterSimpleCNN
from cnnkit.models.numpy_models import SimpleCNN
from cnnkit.models.registry import create_model
from cnnkit.nn import functional as F
from cnnkit.training.numpy_engine import NumpyEngine

TORCH_MODELS = {
    "registry simple-cnn": lambda: create_model("simple-cnn"),
    "chapter": ChapterSimpleCNN,
}


def _batch(n=8, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(dtype), rng.integers(0, 10, n)


def _pair(make_torch, dtype=np.float64, seed=0):
    """A NumPy SimpleCNN and a torch SimpleCNN holding the same weights."""
    torch.manual_seed(seed)
    theirs = make_torch()
    if dtype == np.float64:
        theirs = theirs.double()
    ours = SimpleCNN(dtype=dtype, rng=np.random.default_rng(seed))
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


class _SharedMask(torch.nn.Module):
    """Replaces torch's Dropout with the mask the NumPy model drew."""

    def __init__(self, mask: np.ndarray) -> None:
        super().__init__()
        self.mask = torch.from_numpy(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


def _torch_grads(theirs, x, y):
    theirs.zero_grad()
    logits = theirs(torch.from_numpy(x))
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    return (
        logits.detach().numpy(),
        loss.item(),
        {n: p.grad.numpy() for n, p in theirs.named_parameters()},
    )


def _numpy_grads(ours, x, y):
    ours.zero_grad()
    logits = ours.forward(x)
    loss, grad = F.softmax_cross_entropy(logits, y)
    ours.backward(grad)
    return logits, loss, {n: p.grad for n, p in ours.named_parameters()}


@pytest.mark.parametrize("make_torch", TORCH_MODELS.values(), ids=TORCH_MODELS.keys())
@pytest.mark.parametrize("dropout", ["off", "shared mask"])
def test_simple_cnn_logits_and_gradients_match_torch(make_torch, dropout):
    ours, theirs = _pair(make_torch)
    x, y = _batch()
    if dropout == "off":
        ours.eval(), theirs.eval()
    else:
        ours.train(), theirs.train()
        ours.dropout.rng = np.random.default_rng(5)
        ours.forward(x)  # draws the mask
        mask = ours.dropout.mask
        assert mask is not None and (mask == 0).any()
        ours.dropout.rng = np.random.default_rng(5)  # the same mask again in the step below
        theirs.dropout = _SharedMask(mask)
    t_logits, t_loss, t_grads = _torch_grads(theirs, x, y)
    n_logits, n_loss, n_grads = _numpy_grads(ours, x, y)
    np.testing.assert_allclose(n_logits, t_logits, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(n_loss, t_loss, rtol=1e-10)
    assert list(n_grads) == list(t_grads)
    for name in t_grads:
        np.testing.assert_allclose(
            n_grads[name], t_grads[name], rtol=1e-7, atol=1e-12, err_msg=name
        )


@pytest.mark.parametrize(
    "model_args", [{}, {"in_channels": 3, "input_hw": (32, 32)}, {"num_classes": 4}]
)
def test_state_dict_names_and_shapes_are_torchs(model_args):
    ours = NumpyEngine(model_args=model_args).model_state_dict()
    theirs = create_model("simple-cnn", **model_args).state_dict()
    assert list(ours) == list(theirs)
    for name, value in ours.items():
        assert value.shape == tuple(theirs[name].shape) and value.dtype == np.float32


def _train_numpy(engine: NumpyEngine, steps: int, seed: int = 0) -> list[float]:
    losses = []
    for i in range(steps):
        x, y = _batch(16, seed=seed + i, dtype=np.float32)
        losses.append(engine.train_batch(x, y)[0])
    return losses


def test_numpy_trained_weights_predict_the_same_in_torch():
    engine = NumpyEngine(seed=3)
    _train_numpy(engine, 5)
    torch_model = create_model("simple-cnn").eval()
    torch_model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in engine.model_state_dict().items()}
    )
    x, _ = _batch(64, seed=99, dtype=np.float32)
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    got = engine.eval_logits(x)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


def test_torch_trained_weights_predict_the_same_in_numpy():
    torch.manual_seed(4)
    model = create_model("simple-cnn")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(5):
        x, y = _batch(16, seed=i, dtype=np.float32)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            model(torch.from_numpy(x)), torch.from_numpy(y)
        ).backward()
        opt.step()
    engine = NumpyEngine()
    engine.load_model_state_dict({k: v.numpy() for k, v in model.state_dict().items()})
    x, _ = _batch(64, seed=98, dtype=np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(engine.eval_logits(x), expected, atol=1e-4, rtol=0)


def test_engine_train_step_is_the_torch_step():
    """One engine step = torch forward/backward + torch Adam, with dropout's mask shared."""
    engine = NumpyEngine(seed=1, dtype=np.float64)
    torch_model = create_model("simple-cnn").double()
    torch_model.load_state_dict(
        {k: torch.from_numpy(v) for k, v in engine.model_state_dict().items()}
    )
    opt = torch.optim.Adam(torch_model.parameters(), lr=1e-3)
    for i in range(3):
        x, y = _batch(16, seed=i)
        state = engine.dropout_rng.bit_generator.state
        probe = np.random.default_rng()
        probe.bit_generator.state = state
        mask = F.dropout_mask((16, 128), 0.25, probe, np.float64)  # the mask the step will draw
        torch_model.dropout = _SharedMask(mask)
        loss, correct = engine.train_batch(x, y)
        opt.zero_grad()
        logits = torch_model(torch.from_numpy(x))
        t_loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
        t_loss.backward()
        opt.step()
        assert loss == pytest.approx(t_loss.item(), rel=1e-10)
        assert correct == int((logits.argmax(1).numpy() == y).sum())
    for name, value in torch_model.state_dict().items():
        np.testing.assert_allclose(
            engine.model_state_dict()[name], value.numpy(), rtol=1e-9, atol=1e-12
        )


def test_same_seed_same_run_other_seed_other_run():
    a, b, c = NumpyEngine(seed=7), NumpyEngine(seed=7), NumpyEngine(seed=8)
    assert _train_numpy(a, 3) == _train_numpy(b, 3)
    assert _train_numpy(c, 3) != _train_numpy(NumpyEngine(seed=7), 3)


def test_state_resumes_bit_exactly():
    """3 steps, state() through pickle (as a checkpoint stores it), 3 more == 6 straight."""
    straight = NumpyEngine(seed=2)
    expected = _train_numpy(straight, 6)

    first = NumpyEngine(seed=2)
    losses = _train_numpy(first, 3)
    saved = pickle.loads(pickle.dumps(first.state()))
    _train_numpy(first, 1)  # later steps of the original must not leak into the saved state
    resumed = NumpyEngine(seed=11)  # another seed: everything must come from the state
    resumed.load_state(saved)
    losses += _train_numpy(resumed, 3, seed=3)
    assert losses == expected
    for name, value in straight.model_state_dict().items():
        np.testing.assert_array_equal(resumed.model_state_dict()[name], value)


def test_eval_logits_is_deterministic_and_leaves_train_mode():
    engine = NumpyEngine()
    x, _ = _batch(4, dtype=np.float32)
    a, b = engine.eval_logits(x), engine.eval_logits(x)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (4, 10) and a.dtype == np.float32
    assert engine.model.training


def test_engine_learns_a_small_batch():
    engine = NumpyEngine(seed=0)
    x, y = _batch(32, dtype=np.float32)
    losses = [engine.train_batch(x, y)[0] for _ in range(30)]
    assert losses[-1] < 0.2 * losses[0]
    assert engine.train_batch(x, y)[1] == 32


def test_engine_refuses_unknown_models_and_foreign_states():
    with pytest.raises(CnnkitError, match="simple-cnn"):
        NumpyEngine("resnet-9000")
    with pytest.raises(CnnkitError, match="unexpected keyword"):
        NumpyEngine(model_args={"channels": 3})
    state = NumpyEngine().state()
    with pytest.raises(CnnkitError, match="cannot resume"):
        NumpyEngine().load_state({**state, "engine": "torch"})


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 1, 32, 32), (2, 1, 8, 8), (2, 28, 28)])
def test_engine_refuses_the_images_the_torch_engine_refuses(shape):
    from cnnkit.training.engines import TorchEngine

    x, y = np.zeros(shape, dtype=np.float32), np.array([0, 1])
    with pytest.raises((RuntimeError, ValueError)):
        TorchEngine().train_batch(x, y)
    with pytest.raises(CnnkitError):
        NumpyEngine().train_batch(x, y)


def test_engine_refuses_labels_out_of_range():
    x, _ = _batch(2, dtype=np.float32)
    with pytest.raises(CnnkitError, match="out of bounds"):
        NumpyEngine().train_batch(x, np.array([0, 10]))


@pytest.fixture
def mnist_dir(cli, tmp_path, shared_mnist) -> str:
    """A data dir holding MNIST, copied from the shared copy by `cnnkit data fetch --from`."""
    data_dir = str(tmp_path / "data")
    fetched = cli("data", "fetch", "mnist", "--from", str(shared_mnist), "--data-dir", data_dir)
    assert fetched.returncode == 0, fetched.stderr
    return data_dir


# One BLAS thread: on a busy 2-core machine OpenBLAS's second thread made a NumPy training
# step 5-20x slower (measured: 73 vs 1486 ms). It changes the order of sums, not the recipe.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train_cli(cli, tmp_path, data_dir: str, run: str, *options: str, timeout=600) -> list[dict]:
    """`cnnkit train ... OPTIONS` writing into tmp_path/runs -> the metric rows of `run`."""
    runs = tmp_path / "runs"
    common = ("--no-report", "--no-progress", "--data-dir", data_dir, "--out", str(runs))
    result = cli("train", *common, *options, env=ONE_BLAS_THREAD, timeout=timeout)
    assert result.returncode == 0, result.stderr
    assert (runs / run / "checkpoint.pt").is_file()
    lines = (runs / run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_cli_trains_with_the_numpy_engine_and_resumes_exactly(cli, tmp_path, mnist_dir):
    """Through the CLI: 2 epochs straight == 1 epoch, then --resume for the second."""
    quick = ("--engine", "numpy", "--limit", "320", "--test-limit", "500")
    straight = _train_cli(cli, tmp_path, mnist_dir, "a", *quick, "--epochs", "2", "--name", "a")
    _train_cli(cli, tmp_path, mnist_dir, "b", *quick, "--epochs", "1", "--name", "b")
    resumed = _train_cli(
        cli, tmp_path, mnist_dir, "b", "--resume", str(tmp_path / "runs/b"), "--epochs", "2"
    )
    assert len(straight) == 2
    assert resumed == straight
    # The recorded test metrics, recomputed independently: the saved weights in the torch
    # model (load_checkpoint), torch's own normalisation arithmetic and cross-entropy.
    _assert_metrics_match_torch(tmp_path / "runs" / "a", mnist_dir, straight[1], test_limit=500)


def _assert_metrics_match_torch(run, data_dir: str, row: dict, *, test_limit: int) -> None:
    from cnnkit.data import load_dataset
    from cnnkit.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(run / "checkpoint.pt")
    mean, std = json.loads((run / "config.json").read_text())["normalize"]
    test = load_dataset("mnist", "test", data_dir=data_dir)
    x = torch.from_numpy(test.images[:test_limit]).double().div(255).sub(mean).div(std)
    y = torch.from_numpy(test.labels[:test_limit].astype(np.int64))
    with torch.no_grad():
        logits = loaded.model.double()(x.unsqueeze(1))  # (N, 10)
    accuracy = (logits.argmax(1) == y).double().mean().item()
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    # float32 training arithmetic vs float64 here: at most one near-tie may flip
    assert abs(row["test_acc"] - accuracy) <= 1 / test_limit + 1e-12, (row, accuracy)
    assert row["test_loss"] == pytest.approx(loss, rel=1e-3)


@pytest.mark.slow
def test_one_numpy_epoch_on_mnist_reaches_98_3_percent(cli, tmp_path, mnist_dir):
    options = ("--engine", "numpy", "--epochs", "1", "--seed", "0", "--name", "np")
    rows = _train_cli(cli, tmp_path, mnist_dir, "np", *options, timeout=3600)
    assert len(rows) == 1
    assert rows[0]["test_acc"] >= 0.983, rows
