"""Time to 99% test accuracy on MNIST: a public fast recipe, `--recipe fast`, the chapter's.

    python benchmarks/bench_time_to_accuracy.py [--seeds 5] [--device auto] [--threads T]
        [--chapter-seeds N] [--data-dir DIR]

Three sides, in this one process, interleaved seed by seed (the order rotating, so that all
see the same machine load):

(a) baseline: the recipe of tuomaso/train_mnist_fast as published, written out here: its net
    (conv 24@5×5, pool, ReLU, conv 32@3×3, pool, ReLU, fc 256, log-softmax + NLL), the
    training set resident on the device in one tensor, shuffled there, Adam lr 1e-2 betas
    (0.7, 0.9), OneCycleLR, batch 256, one epoch, then one evaluation of the test set;
(b) cnnkit: `cnnkit.training.loop.train(recipe="fast")`, the API that `cnnkit train --recipe
    fast` calls, timed from its start callback (data loaded, engine built) to its last epoch
    callback (evaluated, checkpoint written);
(c) chapter: `train()` with the chapter's recipe, until a test accuracy >= 99.0% or its 3
    epochs (timed the same way; the accuracy is the last evaluated epoch's).

On CUDA every side first runs once off the clock (warm-up: kernel selection, allocator);
the warm-up times are printed apart. Wall times are wall-clock seconds including the final
evaluation (`torch.cuda.synchronize` before each reading). Printed: per-seed accuracy and
time, mean accuracy, median time, the load average around each run, and cnnkit/baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

TARGET = 0.99


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per side (0 .. N-1)")
    parser.add_argument(
        "--chapter-seeds", type=int, default=None, help="seeds for side (c) (default: --seeds)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (all sides)")
    parser.add_argument("--data-dir", default=None, help="cnnkit data dir (MNIST fetched there)")
    return parser.parse_args()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Baseline:
    """tuomaso/train_mnist_fast's recipe, written out (MIT; the structure of its train loop)."""

    def __init__(self, device: str, data: Any) -> None:
        import torch

        self.device = torch.device(device)
        self.train_x = torch.from_numpy(data.train_x).to(self.device)
        self.train_y = torch.from_numpy(data.train_y).to(self.device)
        self.test_x = torch.from_numpy(data.test_x).to(self.device)
        self.test_y = torch.from_numpy(data.test_y).to(self.device)

    @staticmethod
    def net() -> Any:
        import torch
        import torch.nn.functional as F
        from torch import nn

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv1 = nn.Conv2d(1, 24, 5, 1)
                self.conv2 = nn.Conv2d(24, 32, 3, 1)
                self.fc1 = nn.Linear(800, 256)
                self.fc2 = nn.Linear(256, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                x = F.relu(F.max_pool2d(self.conv1(x), 2))
                x = F.relu(F.max_pool2d(self.conv2(x), 2))
                x = F.relu(self.fc1(torch.flatten(x, 1)))
                return F.log_softmax(self.fc2(x), dim=1)

        return Net()

    def run(self, seed: int) -> tuple[float, float]:
        """(test accuracy, seconds) of one seed: one epoch, then the test set."""
        import torch
        import torch.nn.functional as F

        torch.manual_seed(seed)
        sync(self.device)
        t0 = time.perf_counter()
        model = self.net().to(self.device)
        batch = 256
        steps = math.ceil(len(self.train_y) / batch)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.7, 0.9))
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
        order = torch.randperm(len(self.train_y), device=self.device)
        model.train()
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            optimizer.zero_grad(set_to_none=True)
            loss = F.nll_loss(model(self.train_x[idx]), self.train_y[idx])
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        with torch.inference_mode():
            for i in range(0, len(self.test_y), 1000):
                pred = model(self.test_x[i : i + 1000]).argmax(dim=1)
                correct += (pred == self.test_y[i : i + 1000]).sum()
        acc = correct.item() / len(self.test_y)
        sync(self.device)
        return acc, time.perf_counter() - t0


def sync(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class _Reached(Exception):
    """Raised from the epoch callback to stop side (c) once it reaches the target."""


def cnnkit_run(recipe: str, seed: int, args: argparse.Namespace, out: str) -> tuple[float, float]:
    """(test accuracy, seconds from the start callback to the last epoch callback)."""
    from cnnkit.training.loop import train

    marks: dict[str, Any] = {}

    def on_start(plan: Any) -> None:
        marks["start"] = time.perf_counter()
        marks["device"] = plan.config.device
        marks["precision"] = plan.config.precision

    def on_epoch(row: dict[str, Any], epochs: int) -> None:
        marks["end"], marks["acc"], marks["epoch"] = (
            time.perf_counter(),
            row["test_acc"],
            row["epoch"],
        )
        if recipe == "chapter" and row["test_acc"] >= TARGET:
            raise _Reached

    with contextlib.suppress(_Reached):
        train(
            recipe=recipe,
            seed=seed,
            device=args.device,
            threads=args.threads,
            data_dir=args.data_dir,
            out_dir=out,
            run_name=f"{recipe}-{seed}-{time.time_ns()}",
            report=False,
            progress=False,
            on_start=on_start,
            on_epoch=on_epoch,
        )
    cnnkit_run.last = marks  # type: ignore[attr-defined]
    return marks["acc"], marks["end"] - marks["start"]


def main() -> None:
    args = parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the cnnkit CLI does
    import torch

    from cnnkit.models.device import default_threads, resolve_device
    from cnnkit.training.dataset import load_train_data

    device = resolve_device(args.device)
    args.device = device
    if args.threads is None:
        args.threads = default_threads(device=device)
    torch.set_num_threads(args.threads)
    data = load_train_data("mnist", data_dir=args.data_dir)
    baseline = Baseline(device, data)
    out = tempfile.mkdtemp(prefix="cnnkit-tta-")
    sides: dict[str, Callable[[int], tuple[float, float]]] = {
        "baseline": baseline.run,
        "cnnkit fast": lambda s: cnnkit_run("fast", s, args, out),
        "chapter": lambda s: cnnkit_run("chapter", s, args, out),
    }
    print(f"torch {torch.__version__}, device {device}, {args.threads} threads, load {load()}")
    if device != "cpu":
        for name in ("baseline", "cnnkit fast"):
            acc, sec = sides[name](1000)
            print(f"warm-up (off the clock) {name}: {sec:.3f} s, acc {acc:.2%}")
    chapter_seeds = args.seeds if args.chapter_seeds is None else args.chapter_seeds
    results: dict[str, list[tuple[int, float, float, str]]] = {name: [] for name in sides}
    names = list(sides)
    for seed in range(args.seeds):
        order = names[seed % 3 :] + names[: seed % 3]
        for name in order:
            if name == "chapter" and seed >= chapter_seeds:
                continue
            before = load()
            acc, sec = sides[name](seed)
            results[name].append((seed, acc, sec, before))
            extra = ""
            if name != "baseline":
                m = cnnkit_run.last  # type: ignore[attr-defined]
                extra = f" ({m['device']}, {m['precision']}, {m['epoch']} epoch(s))"
            print(
                f"seed {seed} {name:12} acc {acc:.2%}  {sec:7.3f} s{extra}  load {before}",
                flush=True,
            )
    print(f"\nsummary (target {TARGET:.1%}), load now {load()}")
    print(f"{'':12} {'seeds':>5} {'mean acc':>9} {'min acc':>8} {'median s':>9}")
    medians = {}
    for name, rows in results.items():
        if not rows:
            continue
        accs, secs = [r[1] for r in rows], [r[2] for r in rows]
        medians[name] = statistics.median(secs)
        print(
            f"{name:12} {len(rows):5d} {statistics.mean(accs):9.2%} {min(accs):8.2%} "
            f"{medians[name]:9.3f}"
        )
    print(f"ratio cnnkit fast / baseline (median wall time): "
          f"{medians['cnnkit fast'] / medians['baseline']:.3f}")  # fmt: skip
    if "chapter" in medians:
        print(f"ratio cnnkit fast / chapter: {medians['cnnkit fast'] / medians['chapter']:.3f}")


if __name__ == "__main__":
    main()
