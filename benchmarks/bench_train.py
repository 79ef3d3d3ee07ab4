"""One epoch of the chapter's recipe: cnnkit's training loop against a plain PyTorch loop.

    python benchmarks/bench_train.py [--limit N] [--threads T] [--chunk B] [--data-dir DIR]

The baseline is the chapter's code as written: its SimpleCNN
(`cnnkit.models.chapter.ChapterSimpleCNN`: plain `nn.Conv2d` layers, the forward as printed),
`optim.Adam(lr=0.001)`, `nn.CrossEntropyLoss`, its `train_epoch` and `evaluate`, with the data
already in memory as tensors: batches are sliced with the same permutation, no DataLoader.
cnnkit's side is `cnnkit.training.engines.TorchEngine` driven the way
`cnnkit.training.loop.train` drives it (`engine.train_batch` per batch,
`cnnkit.training.loop.evaluate` on the test set).

Both run in this one process, on the same threads, from the same initial weights. Their
batches are interleaved in chunks of B (the first side alternating), so that both see the
same machine load; an epoch's time is the sum of its side's chunks. The test pass (batch
1000) is timed the same way, alternating R times. Printed: both epoch times, their ratio,
and both test accuracies.
"""

from __future__ import annotations

import argparse
import os
import platform
import time


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="first N training images")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (both sides)")
    parser.add_argument("--chunk", type=int, default=20, help="batches per interleaved chunk")
    parser.add_argument("--eval-repeats", type=int, default=3, help="timed test passes per side")
    parser.add_argument("--data-dir", default=None, help="cnnkit data dir (MNIST fetched there)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # As the cnnkit CLI does, before torch is imported; it applies to both sides alike.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.optim as optim

    from cnnkit.models.chapter import ChapterSimpleCNN  # the chapter's class, forward as printed
    from cnnkit.training.config import TEST_BATCH_SIZE
    from cnnkit.training.dataset import load_train_data
    from cnnkit.training.engines import TorchEngine
    from cnnkit.training.loop import evaluate

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    data = load_train_data("mnist", data_dir=args.data_dir, limit=args.limit)
    batch_size = 64
    n = len(data.train_y)
    order = np.random.default_rng(0).permutation(n)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]

    # --- the baseline: the chapter's loop over in-memory tensors
    train_x, train_y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    test_x, test_y = torch.from_numpy(data.test_x), torch.from_numpy(data.test_y)
    torch.manual_seed(0)
    model = ChapterSimpleCNN()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    base_stats = {"loss": 0.0, "correct": 0}

    def base_batch(idx: np.ndarray) -> None:
        model.train()
        index = torch.from_numpy(idx)
        data_, target = train_x[index], train_y[index]
        optimizer.zero_grad()
        output = model(data_)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()
        base_stats["loss"] += loss.item()
        _, predicted = output.max(1)
        base_stats["correct"] += predicted.eq(target).sum().item()

    def base_evaluate() -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(test_y), TEST_BATCH_SIZE):
                output = model(test_x[i : i + TEST_BATCH_SIZE])
                criterion(output, test_y[i : i + TEST_BATCH_SIZE]).item()
                pred = output.argmax(dim=1, keepdim=True)
                correct += pred.eq(test_y[i : i + TEST_BATCH_SIZE].view_as(pred)).sum().item()
        return correct / len(test_y)

    # --- cnnkit: the engine, driven as cnnkit.training.loop.train drives it
    engine = TorchEngine("simple-cnn", lr=1e-3, seed=0)
    ours_stats = {"loss": 0.0, "correct": 0}

    def ours_batch(idx: np.ndarray) -> None:
        loss, correct = engine.train_batch(data.train_x[idx], data.train_y[idx])
        ours_stats["loss"] += loss
        ours_stats["correct"] += correct

    def ours_evaluate() -> float:
        return evaluate(engine, data.test_x, data.test_y)[1]

    sides = {"baseline": base_batch, "cnnkit": ours_batch}
    for fn in sides.values():  # warm-up (oneDNN primitive creation), not timed or counted
        fn(batches[0])
    for stats in (base_stats, ours_stats):
        stats.update(loss=0.0, correct=0)
    train_seconds = dict.fromkeys(sides, 0.0)
    for c, start in enumerate(range(0, len(batches), args.chunk)):
        chunk = batches[start : start + args.chunk]
        names = list(sides) if c % 2 == 0 else list(sides)[::-1]
        for name in names:
            t0 = time.perf_counter()
            for idx in chunk:
                sides[name](idx)
            train_seconds[name] += time.perf_counter() - t0

    evaluators = {"baseline": base_evaluate, "cnnkit": ours_evaluate}
    eval_times: dict[str, list[float]] = {name: [] for name in evaluators}
    accuracy = {}
    for r in range(args.eval_repeats):
        names = list(evaluators) if r % 2 == 0 else list(evaluators)[::-1]
        for name in names:
            t0 = time.perf_counter()
            accuracy[name] = evaluators[name]()
            eval_times[name].append(time.perf_counter() - t0)
    eval_seconds = {name: min(t) for name, t in eval_times.items()}

    print(
        f"one epoch of the chapter's recipe: {n} training images, {len(batches)} batches of "
        f"{batch_size}, test set {len(test_y)} (batch {TEST_BATCH_SIZE})"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, {platform.processor() or 'cpu'}"
        f" ({os.cpu_count()} cores), interleaved in chunks of {args.chunk} batches"
    )
    print(f"{'':10} {'train s':>9} {'test s':>8} {'epoch s':>9} {'test acc':>9}")
    for name in sides:
        epoch = train_seconds[name] + eval_seconds[name]
        print(
            f"{name:10} {train_seconds[name]:9.2f} {eval_seconds[name]:8.2f} {epoch:9.2f} "
            f"{accuracy[name]:9.2%}"
        )
    ratio_train = train_seconds["cnnkit"] / train_seconds["baseline"]
    ratio_epoch = (train_seconds["cnnkit"] + eval_seconds["cnnkit"]) / (
        train_seconds["baseline"] + eval_seconds["baseline"]
    )
    print(f"ratio cnnkit / baseline: epoch {ratio_epoch:.3f}, training pass {ratio_train:.3f}")
    for name, stats in (("baseline", base_stats), ("cnnkit", ours_stats)):
        print(
            f"  {name}: mean train loss {stats['loss'] / len(batches):.4f}, "
            f"train acc {stats['correct'] / n:.2%}"
        )


if __name__ == "__main__":
    main()
