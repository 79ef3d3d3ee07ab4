"""The training loop: files, metrics, reproducibility, exact resume, errors, the CLI.

Fast tests train on a few hundred real MNIST images (the shared copy); the slow test runs the
chapter's full recipe and checks its accuracy.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SHARED_MNIST

from cnnkit.core.errors import CnnkitError
from cnnkit.data.transforms import dataset_normalize
from cnnkit.models.checkpoint import load_checkpoint, read_checkpoint
from cnnkit.nn.functional import cross_entropy
from cnnkit.training.loop import train

needs_mnist = pytest.mark.skipif(
    not SHARED_MNIST.is_dir(), reason=f"shared MNIST copy not present at {SHARED_MNIST}"
)
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data dir holding MNIST, copied (and verified) from the shared copy."""
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"shared MNIST copy not present at {SHARED_MNIST}")
    from cnnkit.data import fetch

    root = tmp_path_factory.mktemp("data")
    fetch("mnist", data_dir=root, source_dir=SHARED_MNIST, progress=False)
    return root


def quick(data_dir, tmp_path, **kwargs):
    """A small run (500 training images, 1000 test images), no progress bar, no report."""
    options = dict(
        data_dir=data_dir,
        out_dir=tmp_path / "runs",
        progress=False,
        report=False,
        limit=500,
        test_limit=1000,
    )
    options.update(kwargs)
    return train(**options)


def metrics_only(history):
    return [{k: row[k] for k in ("epoch", *METRICS)} for row in history]


def test_cross_entropy_matches_torch():
    # The loop scores float32 logits in float64, as here.
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((50, 10)) * 20).astype(np.float32)
    labels = rng.integers(0, 10, 50)
    expected = F.cross_entropy(torch.from_numpy(logits).double(), torch.from_numpy(labels))
    got = cross_entropy(logits.astype(np.float64), labels)
    assert got == pytest.approx(expected.item(), rel=1e-12)


def test_normalize_uses_the_chapter_constants_for_mnist_and_computes_others():
    images = np.zeros((4, 2, 2), np.uint8)
    assert dataset_normalize("mnist", images) == (0.1307, 0.3081)
    images[:2] = 255  # half white, half black: mean 0.5, std 0.5
    assert dataset_normalize("fashion-mnist", images) == (0.5, 0.5)
    colour = np.zeros((2, 2, 2, 3), np.uint8)
    colour[..., 0] = 255
    colour[0, ..., 2] = 255
    assert dataset_normalize("cifar10", colour) == ([1.0, 0.0, 0.5], [0.0, 0.0, 0.5])


@needs_mnist
def test_run_writes_config_metrics_and_a_checkpoint_that_reproduces_them(data_dir, tmp_path):
    seen = []
    result = quick(
        data_dir, tmp_path, epochs=2, run_name="r", on_epoch=lambda row, n: seen.append((row, n))
    )
    run = tmp_path / "runs" / "r"
    assert result.run_dir == run
    config = json.loads((run / "config.json").read_text())
    assert config["normalize"] == [0.1307, 0.3081]
    assert config["batch_size"] == 64 and config["lr"] == 1e-3 and config["epochs"] == 2
    assert config["train_size"] == 500 and config["test_size"] == 1000
    assert [n for _, n in seen] == [2, 2]
    assert [row for row, _ in seen] == result.history
    assert [row["epoch"] for row in result.history] == [1, 2]

    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == result.history
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    for row, expected in zip(rows, result.history, strict=True):
        assert set(row) == set(expected)
        for key, value in expected.items():
            assert float(row[key]) == pytest.approx(value)

    # the checkpoint alone rebuilds the model, which scores the recorded test metrics
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert ckpt.epoch == 2 and ckpt.history == result.history
    from cnnkit.data import load_dataset
    from cnnkit.data.transforms import normalize_images

    test = load_dataset("mnist", "test", data_dir=data_dir)
    images, labels = test.images[:1000], test.labels[:1000]
    x = torch.from_numpy(normalize_images(images, ckpt.config["normalize"]))
    with torch.no_grad():
        logits = torch.cat([ckpt.model(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    accuracy = (logits.argmax(1).numpy() == labels).mean()
    assert accuracy == result.history[-1]["test_acc"]


@needs_mnist
def test_a_checkpoint_is_written_at_the_end_of_every_epoch(data_dir, tmp_path):
    epochs_on_disk = []

    def on_epoch(row, _):
        raw = read_checkpoint(tmp_path / "runs" / "e" / "checkpoint.pt")
        epochs_on_disk.append((raw["epoch"], len(raw["history"])))

    quick(data_dir, tmp_path, epochs=2, limit=128, run_name="e", on_epoch=on_epoch)
    assert epochs_on_disk == [(1, 1), (2, 2)]


@needs_mnist
def test_same_seed_same_metrics_other_seed_other_metrics(data_dir, tmp_path):
    a = quick(data_dir, tmp_path, epochs=1, run_name="a")
    b = quick(data_dir, tmp_path, epochs=1, run_name="b")
    c = quick(data_dir, tmp_path, epochs=1, run_name="c", seed=1)
    assert metrics_only(a.history) == metrics_only(b.history)
    assert metrics_only(a.history) != metrics_only(c.history)


@needs_mnist
def test_resume_ends_exactly_like_an_uninterrupted_run(data_dir, tmp_path):
    full = quick(data_dir, tmp_path, epochs=2, limit=1000, run_name="full")
    first = quick(data_dir, tmp_path, epochs=1, limit=1000, run_name="split")
    torch.manual_seed(999)  # whatever happens in between must not matter
    np.random.seed(999)
    resumed = quick(data_dir, tmp_path, epochs=2, limit=None, resume=first.run_dir)
    assert resumed.run_dir == first.run_dir
    assert resumed.resumed_from_epoch == 1
    assert metrics_only(resumed.history) == metrics_only(full.history)
    a = read_checkpoint(full.checkpoint)["state_dict"]
    b = read_checkpoint(resumed.checkpoint)["state_dict"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


@needs_mnist
def test_numpy_engine_runs_the_same_loop_and_resumes_exactly(data_dir, tmp_path):
    pytest.importorskip(
        "cnnkit.training.numpy_engine", reason="the NumPy engine is not in this install"
    )
    small = dict(engine="numpy", limit=192, test_limit=300)
    full = quick(data_dir, tmp_path, epochs=2, run_name="full", **small)
    first = quick(data_dir, tmp_path, epochs=1, run_name="split", **small)
    resumed = quick(data_dir, tmp_path, epochs=2, limit=None, test_limit=None, resume=first.run_dir)
    assert resumed.config["engine"] == "numpy"
    assert metrics_only(resumed.history) == metrics_only(full.history)
    ckpt = load_checkpoint(resumed.checkpoint)  # a torch model rebuilt from NumPy weights
    assert type(ckpt.model).__name__ == "SimpleCNN"


@needs_mnist
def test_resume_keeps_the_runs_settings_and_refuses_contradictions(data_dir, tmp_path):
    first = quick(data_dir, tmp_path, epochs=1, limit=128, batch_size=32, run_name="s")
    with pytest.raises(CnnkitError, match="with batch_size=16: the run used 32"):
        quick(data_dir, tmp_path, epochs=2, limit=None, batch_size=16, resume=first.run_dir)
    with pytest.raises(CnnkitError, match="already completed 1 epoch"):
        quick(data_dir, tmp_path, epochs=1, limit=None, resume=first.run_dir)
    resumed = quick(data_dir, tmp_path, epochs=2, limit=None, resume=first.run_dir)
    assert resumed.config["batch_size"] == 32 and resumed.config["limit"] == 128  # kept


@needs_mnist
def test_dry_run_trains_one_batch_and_writes_nothing(data_dir, tmp_path):
    result = quick(data_dir, tmp_path, dry_run=True, limit=None)
    assert result.run_dir is None and result.history == []
    assert 0 < result.dry_run_loss < 10
    assert not (tmp_path / "runs").exists()


@needs_mnist
def test_an_existing_run_is_not_overwritten(data_dir, tmp_path):
    quick(data_dir, tmp_path, epochs=1, limit=64, run_name="x")
    with pytest.raises(CnnkitError, match="already holds a run"):
        quick(data_dir, tmp_path, epochs=1, limit=64, run_name="x")


@needs_mnist
def test_model_follows_the_dataset_or_says_why_not(data_dir, tmp_path):
    """custom-cnn (designed for 3x32x32) takes MNIST's (1, 28, 28) through its arguments;
    conv-block, which has no classes, is refused naming both."""
    result = quick(data_dir, tmp_path, model="custom-cnn", dry_run=True)
    args = {"in_channels": 1, "num_classes": 10, "input_hw": [28, 28]}
    assert result.config["model_args"] == args
    with pytest.raises(CnnkitError, match=r"'conv-block' cannot take .*\(1, 28, 28\), 10 classes"):
        quick(data_dir, tmp_path, model="conv-block", dry_run=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "'epochs' parameter of train must be an int from 1 to 10000. Got 0"),
        ({"epochs": 10**11}, "'epochs' parameter .* an int from 1 to 10000. Got 100000000000"),
        ({"batch_size": True}, "'batch_size' parameter .* Got True"),
        ({"lr": float("nan")}, "'lr' parameter .* positive number. Got nan"),
        ({"seed": -1}, r"'seed' parameter .* an int from 0 to 4294967295. Got -1"),
        ({"seed": 2**32}, r"'seed' parameter .* an int from 0 to 4294967295. Got 4294967296"),
        ({"threads": 10**4}, r"'threads' parameter .* an int from 1 to \d+. Got 10000"),
        ({"threads": 0}, r"'threads' parameter .* an int from 1 to \d+. Got 0"),
        ({"report": "no"}, r"'report' parameter .* a bool \(True or False\). Got 'no'"),
        ({"run_name": "a/b"}, r"'run_name' parameter .* a plain folder name. Got 'a/b'"),
        ({"engine": "jax"}, "'engine' parameter .* one of torch, numpy. Got 'jax'"),
        ({"model": "vgg"}, "'model' parameter .* Got 'vgg'"),
        ({"dataset": "imagenet"}, "'dataset' parameter .* Got 'imagenet'"),
        ({"limit": 0}, "'limit' parameter .* Got 0"),
        ({"resume": "no/such/run"}, "cannot resume no/such/run: no checkpoint.pt"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(kwargs, message, tmp_path):
    with pytest.raises(CnnkitError, match=message):
        train(out_dir=tmp_path, data_dir=tmp_path / "empty", progress=False, **kwargs)
    assert not (tmp_path / "empty").exists()  # refused before looking for data


@needs_mnist
def test_numpy_engine_missing_is_a_clear_error(data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "cnnkit.training.numpy_engine", None)  # import fails
    with pytest.raises(CnnkitError, match="NumPy engine is not available"):
        quick(data_dir, tmp_path, engine="numpy", dry_run=True)


# --------------------------------------------------------------------------- the CLI


@needs_mnist
def test_cli_dry_run(cli, data_dir, tmp_path):
    r = cli("train", "--dry-run", "--data-dir", str(data_dir), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("dry run: one batch of 64 trained")
    assert not (tmp_path / "runs").exists()


@needs_mnist
def test_cli_run_prints_each_epoch_and_the_files(cli, data_dir, tmp_path):
    r = cli(
        "train", "--limit", "256", "--epochs", "2", "--name", "c", "--data-dir", str(data_dir),
        "--no-report", "--batch-size", "128", "--test-limit", "500",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    start, *lines = r.stdout.splitlines()  # first the device, precision and threads in use
    assert start.startswith("chapter recipe, model simple-cnn: device cpu, precision fp32, ")
    assert lines[0].startswith("epoch 1/2  train loss ")
    assert lines[1].startswith("epoch 2/2  train loss ")
    history = [json.loads(x) for x in (tmp_path / "runs/c/metrics.jsonl").read_text().splitlines()]
    assert f"test loss {history[1]['test_loss']:.4f} acc {history[1]['test_acc']:.2%}" in lines[1]
    assert "checkpoint: runs/c/checkpoint.pt" in r.stdout
    assert "batch/s" in r.stderr or "s/batch" in r.stderr  # the progress bar


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "argument --epochs: expected a positive integer, got 0"),
        (["--lr", "-1"], "argument --lr: expected a positive number, got -1"),
        (["--lr", "inf"], "argument --lr: expected a positive number, got inf"),
        (["--batch-size", "x"], "argument --batch-size: expected a positive integer, got 'x'"),
        (["--engine", "jax"], "argument --engine: invalid choice: 'jax'"),
        (["--model", "vgg"], "The 'model' parameter of train must be one of"),
        (["--resume", "nowhere"], "cannot resume nowhere: no checkpoint.pt there"),
    ],
)
def test_cli_bad_values_are_one_line_errors(cli, args, message):
    r = cli("train", *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("cnnkit train: error:")


# --------------------------------------------------------------------------- the full recipe


@pytest.mark.slow
@needs_mnist
def test_chapter_recipe_reaches_its_accuracy(cli, data_dir, tmp_path):
    """The main job (`cnnkit demo`, what `make demo` runs: the chapter's recipe, seed 0, on
    CPU): >= 98.5% after epoch 1, >= 98.8% after 3, and it says where the report is."""
    r = cli("demo", "--data-dir", str(data_dir), "--no-progress", timeout=1800)
    assert r.returncode == 0, r.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    history = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[0]["test_acc"] >= 0.985, history
    assert history[2]["test_acc"] >= 0.988, history
    assert "MNIST: already there, SHA-256 of every file verified" in r.stdout
    assert f"final test accuracy: {history[2]['test_acc']:.2%} (after 3 epochs)" in r.stdout
    report = r.stdout.split("report:")[1].split()[0]
    assert (tmp_path / report).resolve() == (run_dir / "report.html").resolve()
    assert (run_dir / "report.html").is_file()
    assert (
        r.stdout.strip().splitlines()[-1]
        == f"open it in the playground: cnnkit serve runs/{run_dir.name}"
    )


def test_demo_ends_with_the_command_that_opens_the_run_in_the_playground(
    data_dir, tmp_path, monkeypatch, capsys
):
    """`cnnkit demo`'s last line: `cnnkit serve RUN_DIR` with the run's real folder, which
    `cnnkit serve` resolves to that run's checkpoint and the playground loads (a small run
    stands in for the recipe's three epochs)."""
    import shlex

    from cnnkit.cli import main as cli_main
    from cnnkit.cli.commands import demo
    from cnnkit.web.model import Playground, find_checkpoint

    def small_run(command, **options):
        return quick(data_dir, tmp_path, out_dir=options["out_dir"], epochs=1), None, 0

    monkeypatch.setattr(demo, "run_training", small_run)
    monkeypatch.chdir(tmp_path)
    code = cli_main.main(["demo", "--data-dir", str(data_dir), "--out", "runs", "--no-progress"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("open it in the playground: cnnkit serve ")
    argv = shlex.split(last.split(": ", 1)[1])
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert argv[:2] == ["cnnkit", "serve"] and Path(argv[2]).resolve() == run_dir.resolve()
    path, _ = find_checkpoint(argv[2])
    assert path.resolve() == (run_dir / "checkpoint.pt").resolve()
    assert Playground.load(path, replicas=1).name == "simple-cnn"


def test_threads_limit_torch_and_blas_during_the_run_only(data_dir, tmp_path):
    from threadpoolctl import threadpool_info

    def counts():
        blas = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
        return torch.get_num_threads(), blas

    before = counts()
    seen = []
    quick(
        data_dir,
        tmp_path,
        engine="numpy",
        epochs=1,
        threads=1,
        on_epoch=lambda row, epochs: seen.append(counts()),
    )
    assert seen == [(1, [1] * len(before[1]))]
    assert counts() == before


# --------------------------------------------------------------------------- one recipe


def test_train_takes_every_setting_of_train_config_and_leaves_them_unset():
    """train()'s settings are TrainConfig's fields, each defaulting to None ("not given"):
    the only copy of the recipe's defaults is TrainConfig."""
    import dataclasses
    import inspect

    from cnnkit.training.config import TrainConfig

    parameters = inspect.signature(train).parameters
    for f in dataclasses.fields(TrainConfig):
        assert parameters[f.name].default is None, f.name
        assert parameters[f.name].kind is inspect.Parameter.KEYWORD_ONLY


def test_cli_help_and_demo_banner_show_train_config_defaults(cli):
    from cnnkit.training.config import TrainConfig

    recipe = TrainConfig()
    help_text = " ".join(cli("train", "--help").stdout.split())
    for option, value in (("--epochs", recipe.epochs), ("--batch-size", recipe.batch_size),
                          ("--lr", f"{recipe.lr:g}"), ("--seed", recipe.seed)):  # fmt: skip
        assert option in help_text and f"(default: {value};" in help_text, option
    demo = " ".join(cli("demo", "--help").stdout.split())
    assert f"Adam lr {recipe.lr:g}, batch {recipe.batch_size}, {recipe.epochs} epochs" in demo


# --------------------------------------------------------------------------- resume refuses


@pytest.fixture(scope="module")
def lr_run(data_dir, tmp_path_factory):
    """One epoch trained with settings other than the recipe's (lr 0.01, batch 32, 1 thread),
    report asked for (the API records it; it does not render)."""
    out = tmp_path_factory.mktemp("resume") / "runs"
    train(data_dir=data_dir, out_dir=out, run_name="r", epochs=1, lr=0.01, batch_size=32,
          threads=1, limit=128, test_limit=200, report=True, progress=False)  # fmt: skip
    return out / "r"


@needs_mnist
@pytest.mark.parametrize(
    "options, message",
    [
        (["--lr", "0.001"], "with lr=0.001: the run used 0.01"),  # the recipe's default
        (["--batch-size", "64"], "with batch_size=64: the run used 32"),  # the default
        (["--threads", "2"], "with threads=2: the run used 1"),
        (["--seed", "0", "--lr", "0.02"], "with lr=0.02: the run used 0.01"),
        (["--no-report"], "with report=False: the run used True"),
        (["--limit", "64"], "with limit=64: the run used 128"),
        (["--engine", "numpy"], "with engine='numpy': the run used 'torch'"),
        (["--name", "other"], "with run_name='other': the run is "),
        (["--out", "elsewhere"], "with out_dir='elsewhere': the run is "),
        (["--epochs", "1"], "has already completed 1 epoch(s)"),
    ],
)
def test_resume_refuses_any_explicit_setting_that_contradicts_the_run(
    cli, lr_run, data_dir, options, message
):
    before = {p.name: p.stat().st_mtime_ns for p in lr_run.iterdir()}
    r = cli("train", "--resume", str(lr_run), "--data-dir", str(data_dir), *options)
    assert r.returncode == 2, r.stdout + r.stderr
    (line,) = r.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"cnnkit train: error: cannot resume {lr_run}") or (
        "already completed" in message and line.startswith("cnnkit train: error: ")
    )
    assert message in line
    assert {p.name: p.stat().st_mtime_ns for p in lr_run.iterdir()} == before  # untouched


@needs_mnist
def test_resume_accepts_settings_equal_to_the_runs_and_an_explicit_epochs_target(
    lr_run, data_dir, tmp_path
):
    import shutil

    run = tmp_path / "runs" / "r"
    shutil.copytree(lr_run, run)
    resumed = quick(data_dir, tmp_path, resume=run, limit=128, test_limit=200, lr=0.01,
                    batch_size=32, threads=1, seed=0, epochs=3, out_dir=tmp_path / "runs",
                    run_name="r", report=True)  # fmt: skip
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]  # epochs=3 not ignored
    assert json.loads((run / "config.json").read_text())["epochs"] == 3


@needs_mnist
def test_resume_keeps_no_report_and_says_where_it_starts(cli, data_dir, tmp_path):
    common = ("--data-dir", str(data_dir), "--no-progress", "--limit", "128", "--test-limit",
              "200")  # fmt: skip
    first = cli("train", *common, "--epochs", "1", "--name", "n", "--no-report")
    assert first.returncode == 0, first.stderr
    run = tmp_path / "runs" / "n"
    r = cli("train", "--resume", str(run), "--epochs", "2", *common)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()[1:]  # after the device, precision and threads line
    assert lines[0] == f"resuming {run} from epoch 1 (its last completed), up to epoch 2"
    assert lines[1].startswith("epoch 2/2  train loss ")
    assert not (run / "report.html").exists() and "report:" not in r.stdout


# --------------------------------------------------------------------------- failures


def _straight_checkpoint(data_dir, tmp_path, name, **kwargs):
    return read_checkpoint(quick(data_dir, tmp_path, run_name=name, **kwargs).checkpoint)


@needs_mnist
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    data_dir, tmp_path, monkeypatch
):
    from cnnkit.training.engines import TorchEngine
    from cnnkit.training.loop import TrainingDiverged

    small = dict(limit=192, test_limit=300)  # 3 batches of 64 per epoch
    good = _straight_checkpoint(data_dir, tmp_path, "good", epochs=1, **small)
    real_step, calls = TorchEngine.train_batch, []

    def step_then_nan(self, x, y):  # the 2nd batch of epoch 2 returns a NaN loss
        calls.append(1)
        loss, correct = real_step(self, x, y)
        return (float("nan") if len(calls) == 5 else loss), correct

    monkeypatch.setattr(TorchEngine, "train_batch", step_then_nan)
    with pytest.raises(TrainingDiverged, match="loss became nan at batch 2 of 3 in epoch 2") as e:
        quick(data_dir, tmp_path, run_name="d", epochs=3, report=True, **small)
    run = tmp_path / "runs" / "d"
    assert e.value.result.diverged.epoch == 2 and len(e.value.result.history) == 1
    from cnnkit.cli.commands.train import write_report

    page = write_report(e.value.result).read_text()  # the last good epoch's, flagged
    assert "This run diverged" in page and "loss became nan at batch 2 of 3" in page
    kept = read_checkpoint(run / "checkpoint.pt")
    assert kept["epoch"] == 1
    for key, value in good["state_dict"].items():  # the epoch-1 weights, bit for bit
        assert torch.equal(kept["state_dict"][key], value), key
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert "diverged" not in rows[0] and rows[0]["test_acc"] == good["history"][0]["test_acc"]
    assert rows[1]["diverged"].startswith("the training loss became nan at batch 2")
    assert rows[1]["test_acc"] is None
    with pytest.raises(CnnkitError, match="it diverged .* would diverge again"):
        quick(data_dir, tmp_path, resume=run)
    with pytest.raises(CnnkitError, match="already holds a run; choose another run name"):
        quick(data_dir, tmp_path, run_name="d", epochs=3, **small)


@needs_mnist
def test_cli_lr_1e10_diverges_exits_1_and_is_marked(cli, data_dir, tmp_path):
    r = cli("train", "--lr", "1e10", "--limit", "640", "--test-limit", "200", "--name", "x",
            "--data-dir", str(data_dir), "--no-progress", "--epochs", "2")  # fmt: skip
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("cnnkit train: error: training diverged: the ")
    assert "(lr 1e+10)" in line and "Traceback" not in r.stderr
    run = tmp_path / "runs" / "x"
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["diverged"] and last["train_loss"] is None
    if not (run / "checkpoint.pt").exists():  # diverged in epoch 1: nothing good to keep
        assert "no epoch completed" in line and not (run / "report.html").exists()
    else:  # what was kept loads: its weights are finite (read_checkpoint checks them)
        assert read_checkpoint(run)["epoch"] >= 1


@needs_mnist
def test_a_run_stopped_in_its_first_epoch_restarts_cleanly(data_dir, tmp_path):
    """killed before its first checkpoint: config.json and a partial write are left. Resume
    restarts it (the same result as a straight run) and removes the partial file; a new run
    under its name may also take the folder over."""
    small = dict(limit=192, test_limit=300)
    straight = quick(data_dir, tmp_path, run_name="straight", epochs=1, **small)
    killed = quick(data_dir, tmp_path, run_name="killed", epochs=1, **small).run_dir
    for name in ("checkpoint.pt", "metrics.jsonl", "metrics.csv"):
        (killed / name).unlink()
    partial = killed / ".checkpoint.pt.k3x9.part.pt"
    partial.write_bytes(b"PK\x03\x04 half a checkpoint")
    starts = []
    unset = dict(limit=None, test_limit=None)  # quick()'s own limits: leave the run's
    resumed = quick(data_dir, tmp_path, resume=killed, on_start=starts.append, **unset)
    assert [(p.resumed, p.start_epoch) for p in starts] == [(True, 0)]
    assert metrics_only(resumed.history) == metrics_only(straight.history)
    assert not partial.exists()
    (killed / "checkpoint.pt").unlink()  # stopped again before its first checkpoint
    again = quick(data_dir, tmp_path, run_name="killed", epochs=1, **small)
    assert metrics_only(again.history) == metrics_only(straight.history)


@needs_mnist
def test_resume_removes_partial_checkpoint_writes(data_dir, tmp_path):
    run = quick(data_dir, tmp_path, run_name="p", epochs=1, limit=64).run_dir
    stale = [run / ".checkpoint.pt.ab12.part.pt", run / ".metrics.jsonl.cd34.part.jsonl"]
    for path in stale:
        path.write_bytes(b"x" * 1000)
    mine = run / ".notes.part.pt"  # not one of the run's files: left alone
    mine.write_bytes(b"mine")
    quick(data_dir, tmp_path, resume=run, epochs=2, limit=None, test_limit=None)
    assert not any(p.exists() for p in stale) and mine.exists()


@pytest.mark.parametrize(
    "make_out, message",
    [
        (lambda tmp: tmp / "notes.txt", "notes.txt is a file, not a folder"),
        (lambda tmp: tmp / "notes.txt" / "deeper", "notes.txt is a file, not a folder"),
    ],
)
def test_cli_out_that_is_a_file_is_one_line(cli, tmp_path, make_out, message):
    (tmp_path / "notes.txt").write_text("keep me")
    r = cli("train", "--out", str(make_out(tmp_path)), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("cnnkit train: error: cannot write the run folder") and message in line
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "d").exists()  # refused before looking for data


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_cli_out_that_is_read_only_is_one_line(cli, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = cli("train", "--out", str(ro), "--data-dir", str(tmp_path / "d"))
    finally:
        ro.chmod(0o755)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "is not writable" in line and not list(ro.iterdir())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seed", str(2**32)], "'seed' parameter of train must be an int from 0 to 4294967295"),
        (["--threads", "100000"], "'threads' parameter of train must be an int from 1 to"),
        (["--epochs", "99999999999"], "'epochs' parameter of train must be an int from 1 to"),
        (["--dry-run", "--name", "../x"], "'run_name' parameter of train must be a plain folder"),
        (["--dry-run", "--name", ""], "'run_name' parameter of train must be a plain folder"),
        (["--dry-run", "--out", "notes.txt"], "notes.txt is a file, not a folder"),
    ],
)
def test_cli_unbounded_values_are_refused_with_the_bound(cli, tmp_path, args, message):
    """...and a dry run checks the run folder it would write (name, place) as a run does."""
    (tmp_path / "notes.txt").write_text("x")
    r = cli("train", *args, "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert message in line and not (tmp_path / "d").exists() and not (tmp_path / "runs").exists()


@needs_mnist
def test_cli_run_killed_in_its_first_epoch_is_restarted_by_resume(cli, data_dir, tmp_path):
    """`kill -9` during epoch 1 (config.json written, no checkpoint yet): --resume restarts
    the run from the start and ends exactly as a straight run."""
    import signal
    import subprocess
    import time

    common = ["--data-dir", str(data_dir), "--no-progress", "--no-report", "--limit", "3000",
              "--test-limit", "300", "--threads", "1", "--epochs", "1"]  # fmt: skip
    straight = cli("train", *common, "--name", "straight")
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "runs" / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cnnkit", "train", *common, "--name", "killed"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run / "config.json").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (run / "config.json").exists()
    if (run / "checkpoint.pt").exists():
        pytest.skip("epoch 1 ended before the kill landed (a very fast machine)")
    r = cli("train", "--resume", str(run), "--data-dir", str(data_dir), "--no-progress")
    assert r.returncode == 0, r.stderr
    restart = f"restarting {run} from the start: it completed no epoch"
    assert r.stdout.splitlines()[1].startswith(restart)  # after the device line

    def metrics(name):
        lines = (tmp_path / "runs" / name / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]

    assert metrics("killed") == metrics("straight")
