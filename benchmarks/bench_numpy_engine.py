"""NumPy engine vs torch on CPU: each SimpleCNN layer (forward + backward) and training steps.

    python benchmarks/bench_numpy_engine.py [--threads N] [--steps S] [--repeats R]

Both libraries run in one process with the same number of threads: torch through
`torch.set_num_threads`, NumPy's BLAS through threadpoolctl when it is installed, else through
OPENBLAS/OMP/MKL_NUM_THREADS set before NumPy is imported. Layer timings are medians of
`--repeats` runs on the SimpleCNN shapes with batch 64; the training figure is `--steps`
optimizer steps (default: one MNIST epoch, 938 steps of 64) of `NumpyEngine` against
`cnnkit.training.engines.TorchEngine`, on the same random data (timing does not depend on the
values).
NumPy and torch take turns (run by run, 50 steps by 50 steps), so that a change in the
machine's load touches both alike.
Ratios are NumPy time / torch time (targets: conv ≤ 1.5, epoch ≤ 2).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--steps", type=int, default=938, help="training steps (938 = 1 epoch)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20, help="repeats per layer timing")
    parser.add_argument("--skip-training", action="store_true")
    return parser.parse_args()


ARGS = _parse()
# as `cnnkit train` does: idle OpenMP threads sleep rather than spin (torch only; same numbers)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:  # must run before NumPy loads its BLAS
    import threadpoolctl
except ImportError:
    threadpoolctl = None
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cnnkit.models.numpy_models import SimpleCNN  # noqa: E402
from cnnkit.models.registry import create_model  # noqa: E402
from cnnkit.nn.module import Module  # noqa: E402
from cnnkit.training.numpy_engine import NumpyEngine  # noqa: E402


@dataclass
class Row:
    name: str
    shape: str
    numpy_ms: float
    torch_ms: float

    @property
    def ratio(self) -> float:
        return self.numpy_ms / self.torch_ms


def median_ms(
    a: Callable[[], object], b: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median times of a and b in ms, measured alternately (a, b, a, b...) so that a change
    in the machine's load touches both alike."""
    a(), b()  # warm-up: allocations, BLAS and OpenMP thread start
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((a, times[0]), (b, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return float(np.median(times[0])) * 1e3, float(np.median(times[1])) * 1e3


def layer_rows(batch: int, repeats: int) -> list[Row]:
    """Forward + backward of each SimpleCNN layer at its place in the network."""
    torch.manual_seed(0)
    theirs = create_model("simple-cnn")
    ours = SimpleCNN(rng=np.random.default_rng(0))
    ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    # the inputs each layer sees in the network (pool before ReLU, as both models run it)
    inputs = {"conv1": x}
    h = ours.conv1.forward(x)
    inputs["pool1"] = h
    h = np.maximum(ours.pool1.forward(h), 0)
    inputs["conv2"] = h
    h = ours.conv2.forward(h)
    inputs["pool2"] = h
    h = np.maximum(ours.pool2.forward(h), 0).reshape(batch, -1)
    inputs["fc1"] = h
    inputs["fc2"] = np.maximum(ours.fc1.forward(h), 0)
    layers: list[tuple[str, Module, torch.nn.Module, bool]] = [
        ("conv1", ours.conv1, theirs.conv1, False),  # the first layer needs no input gradient
        ("pool1", ours.pool1, theirs.pool, True),
        ("conv2", ours.conv2, theirs.conv2, True),
        ("pool2", ours.pool2, theirs.pool, True),
        ("fc1", ours.fc1, theirs.fc1, True),
        ("fc2", ours.fc2, theirs.fc2, True),
    ]
    rows = []
    for name, mine, torch_layer, input_grad in layers:
        xin = inputs[name]
        grad = rng.standard_normal(mine.forward(xin).shape).astype(np.float32)
        xt = torch.from_numpy(xin).requires_grad_(input_grad)
        gt = torch.from_numpy(grad)

        def run_numpy(mine=mine, xin=xin, grad=grad):
            mine.zero_grad()
            mine.forward(xin)
            mine.backward(grad)

        def run_torch(torch_layer=torch_layer, xt=xt, gt=gt):
            torch_layer.zero_grad()
            torch_layer(xt).backward(gt)

        shape = "x".join(map(str, xin.shape))
        rows.append(Row(name, shape, *median_ms(run_numpy, run_torch, repeats)))
    return rows


def training_rows(steps: int, batch: int, chunk: int = 50) -> list[Row]:
    """`steps` optimizer steps of each engine over the same shuffled random data, timed in
    alternating chunks of `chunk` steps."""
    from cnnkit.training.engines import TorchEngine

    n = min(steps * batch, 60_000)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, n)
    order = np.concatenate([rng.permutation(n) for _ in range(steps * batch // n + 1)])

    engines = (NumpyEngine(seed=0), TorchEngine("simple-cnn", lr=1e-3, seed=0))
    totals = [0.0, 0.0]
    for engine in engines:
        engine.train_batch(images[:batch], labels[:batch])  # warm-up
    # alternate chunks of steps between the engines, so load changes touch both alike
    for first in range(0, steps, chunk):
        for k, engine in enumerate(engines):
            start = time.perf_counter()
            for i in range(first, min(first + chunk, steps)):
                idx = order[i * batch : (i + 1) * batch]
                engine.train_batch(images[idx], labels[idx])
            totals[k] += (time.perf_counter() - start) * 1e3
    numpy_ms, torch_ms = totals
    shape = f"{steps} steps of {batch}"
    return [Row("train", shape, numpy_ms, torch_ms)]


def format_rows(rows: list[Row]) -> str:
    lines = [f"{'layer':<8}{'input':>22}{'numpy ms':>12}{'torch ms':>12}{'numpy/torch':>13}"]
    for r in rows:
        lines.append(
            f"{r.name:<8}{r.shape:>22}{r.numpy_ms:>12.2f}{r.torch_ms:>12.2f}{r.ratio:>12.2f}x"
        )
    return "\n".join(lines)


def main() -> int:
    torch.set_num_threads(ARGS.threads)
    limiter = threadpoolctl.threadpool_limits(ARGS.threads) if threadpoolctl else None
    blas = "threadpoolctl" if limiter else "env vars"
    print(
        f"threads: {ARGS.threads} (torch {torch.get_num_threads()}, NumPy BLAS via {blas}); "
        f"numpy {np.__version__}, torch {torch.__version__}, batch {ARGS.batch_size}"
    )
    print("\nforward + backward per layer (median of", ARGS.repeats, "runs)")
    rows = layer_rows(ARGS.batch_size, ARGS.repeats)
    print(format_rows(rows))
    if not ARGS.skip_training:
        print("\ntraining (NumpyEngine vs cnnkit.training.engines.TorchEngine, Adam, same data)")
        train = training_rows(ARGS.steps, ARGS.batch_size)
        print(format_rows(train))
        rows += train
    by_name = {r.name: r.ratio for r in rows}
    print("\ntargets: conv1 and conv2 within 1.5x of torch, a training epoch within 2x")
    for name, target in (("conv1", 1.5), ("conv2", 1.5), ("train", 2.0)):
        if name in by_name:
            verdict = "met" if by_name[name] <= target else "missed"
            print(f"  {name}: {by_name[name]:.2f}x (target {target}x) {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
