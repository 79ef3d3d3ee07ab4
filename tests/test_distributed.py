"""Distributed training (`cnnkit.training.distributed`): torchrun, DDP, gloo on 127.0.0.1.

The oracle is the one-process run: with the same global batch, a 2-process run (each rank a
shard of every batch, DDP averaging the weighted gradients) must end with the same parameters
up to float32 rounding and the same metrics. A run whose rank is killed must stop, say so and
keep its last checkpoint, which `--resume` continues exactly as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import needs_mnist, run_cli
from shapes_data import make_shapes

from cnnkit.training.distributed import DistributedEngine, launch_command, step_seed

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dshapes") / "shapes"
    make_shapes(root, per_class=25, size=20, corrupt=False)  # 60 train / 15 test images
    return root


def train_args(dataset: Path, out: Path, name: str, *extra: str) -> list[str]:
    return [
        "train", "--dataset", str(dataset), "--out", str(out), "--name", name,
        "--no-progress", "--no-report", "--threads", "1", *extra,
    ]  # fmt: skip


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoint.pt", weights_only=True)["state_dict"]


def metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_shards_are_disjoint_consecutive_and_cover_the_batch() -> None:
    for n in (1, 7, 16, 17, 64):
        for world in (1, 2, 3):
            parts = []
            for rank in range(world):
                eng = DistributedEngine.__new__(DistributedEngine)
                eng.cluster = type("C", (), {"world_size": world, "rank": rank})()  # type: ignore[assignment]
                parts.append(np.arange(n)[eng._shard(n)])
            want = np.array_split(np.arange(n), world)
            assert [p.tolist() for p in parts] == [w.tolist() for w in want]


def test_step_seeds_differ_between_ranks_and_steps() -> None:
    seeds = {step_seed(0, r, s) for r in range(3) for s in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)


def test_launcher_binds_torchrun_to_localhost() -> None:
    cmd = launch_command("python", 2, ["train"], 29511)
    assert cmd[:3] == ["python", "-m", "torch.distributed.run"]
    assert cmd[cmd.index("--master-addr") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--nproc-per-node") + 1] == "2"


def test_two_processes_match_one_with_the_same_global_batch(shapes: Path, tmp_path: Path) -> None:
    """custom-cnn (no dropout), batch 17: uneven shards (9 + 8) and a last batch of 9."""
    common = ("--model", "custom-cnn", "--epochs", "2", "--batch-size", "17")
    one = run_cli(*train_args(shapes, tmp_path, "one", *common), env=ONE_THREAD)
    assert one.returncode == 0, one.stderr
    two = run_cli(*train_args(shapes, tmp_path, "two", *common, "--nproc", "2"), env=ONE_THREAD)
    assert two.returncode == 0, two.stderr
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert a.keys() == b.keys()
    diff = max(float((a[k] - b[k]).abs().max()) for k in a)
    scale = max(float(a[k].abs().max()) for k in a)
    print(f"max |w1 - w2| = {diff:.3g} (max |w| = {scale:.3g})")
    assert diff < 1e-5 * max(scale, 1.0)
    for r1, r2 in zip(metrics(tmp_path / "one"), metrics(tmp_path / "two"), strict=True):
        for key in ("train_loss", "test_loss"):
            assert r1[key] == pytest.approx(r2[key], rel=1e-5, abs=1e-6)
        assert r1["train_acc"] == r2["train_acc"] and r1["test_acc"] == r2["test_acc"]
    # rank 0 alone printed and wrote: one set of epoch lines, one config
    assert two.stdout.count("epoch 2/2") == 1
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["world_size"] == 2 and config["batch_size"] == 17


def _worker_pid(marker: str, local_rank: int) -> int | None:
    """The pid of the training process with LOCAL_RANK=local_rank started with `marker`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"CNNKIT_TEST_MARK={marker}".encode() in env and (
            f"LOCAL_RANK={local_rank}".encode() in env
        ):
            return int(proc.name)
    return None


@pytest.mark.slow  # three 2-process runs: about 50 s on the 2-core machine
def test_killed_rank_stops_the_run_and_resume_continues_exactly(
    shapes: Path, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    env = {**os.environ, **ONE_THREAD, "CNNKIT_TEST_MARK": marker, "PYTHONUNBUFFERED": "1"}
    args = train_args(shapes, tmp_path, "k", "--epochs", "400", "--batch-size", "8", "--nproc", "2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "k" / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "k" / "checkpoint.pt").exists(), "no checkpoint within 120 s"
        pid = _worker_pid(marker, 1)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)  # no hang: the run stops by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("cnnkit train: error: the 2-process run stopped"), err[-2000:]
    assert "last good checkpoint stays" in last and "--resume" in last
    from cnnkit.models.checkpoint import load_checkpoint

    done = load_checkpoint(tmp_path / "k").epoch  # readable, digest checked
    assert 1 <= done < 400
    assert len(metrics(tmp_path / "k")) == done
    # resume under torchrun, one epoch further; a straight run to the same epoch agrees
    target = str(done + 1)
    resumed = run_cli(
        "train", "--resume", str(tmp_path / "k"), "--epochs", target, "--nproc", "2",
        "--no-progress", env=ONE_THREAD,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path / 'k'} from epoch {done}" in resumed.stdout
    straight = run_cli(
        *train_args(shapes, tmp_path, "s", "--epochs", target, "--batch-size", "8", "--nproc", "2"),
        env=ONE_THREAD,
    )
    assert straight.returncode == 0, straight.stderr
    a, b = weights(tmp_path / "k"), weights(tmp_path / "s")
    assert all(torch.equal(a[k], b[k]) for k in a)  # dropout seeded per (seed, rank, step)
    assert metrics(tmp_path / "k") == [
        {**r, "seconds": m["seconds"]}
        for r, m in zip(metrics(tmp_path / "s"), metrics(tmp_path / "k"), strict=True)
    ]


@pytest.mark.slow
@needs_mnist
def test_mnist_one_epoch_accuracy_two_processes_vs_one(
    mnist_data_dir: Path, tmp_path: Path
) -> None:
    """12,000 MNIST images, one epoch, simple-cnn: 2 processes within 0.5 points of one."""
    common = (
        "train", "--data-dir", str(mnist_data_dir), "--limit", "12000", "--epochs", "1",
        "--out", str(tmp_path), "--no-progress", "--no-report", "--threads", "1",
    )  # fmt: skip
    one = run_cli(*common, "--name", "one", env=ONE_THREAD)
    assert one.returncode == 0, one.stderr
    two = run_cli(*common, "--name", "two", "--nproc", "2", env=ONE_THREAD)
    assert two.returncode == 0, two.stderr
    acc1 = metrics(tmp_path / "one")[0]["test_acc"]
    acc2 = metrics(tmp_path / "two")[0]["test_acc"]
    print(f"test accuracy after one epoch: 1 process {acc1:.2%}, 2 processes {acc2:.2%}")
    assert acc1 > 0.95 and abs(acc1 - acc2) <= 0.005


def test_nproc_refuses_bad_input_once_before_starting_processes(tmp_path: Path) -> None:
    out = run_cli("train", "--nproc", "2", "--dataset", str(tmp_path / "nope"), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "'dataset'" in lines[0] and "nope" in lines[0]
    assert "torch.distributed" not in out.stderr and not (tmp_path / "runs").exists()
