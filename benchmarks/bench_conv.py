"""Speed of cnnkit.ops (NumPy) against the loop reference and torch CPU, measured in one run.

    python benchmarks/bench_conv.py [--threads N] [--repeats R]

NumPy's BLAS and torch use the same number of threads (the BLAS through the usual environment
variables, set before NumPy is imported; torch through `torch.set_num_threads`). Each timing is
the median of R repeats; the NumPy and torch runs of a case alternate so that both see the same
machine load. Float32 throughout, the dtype a training step uses.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from statistics import median


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per case")
    parser.add_argument(
        "--reference-repeats", type=int, default=3, help="timed runs of the slow loop reference"
    )
    return parser.parse_args()


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the functions interleaved, after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: median(t) for name, t in times.items()}


def main() -> None:
    args = parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np  # after the thread variables, which the BLAS reads once
    import torch
    import torch.nn.functional as F

    from cnnkit.ops import (
        conv2d,
        conv2d_backward,
        conv2d_forward,
        conv2d_reference,
        max_pool2d,
        max_pool2d_backward,
    )

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    def array(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    # (case, cnnkit seconds, baseline seconds, target); the baseline is the loop reference in
    # the first row (ratio = reference / cnnkit, goal: at least the target) and torch after it
    # (ratio = cnnkit / torch, goal: at most the target).
    rows: list[tuple[str, float, float, float]] = []

    # (1) fast vs loop reference
    x, w = array(8, 3, 64, 64), array(16, 3, 3, 3)
    fast = timed({"fast": lambda: conv2d(x, w)}, args.repeats)["fast"]
    ref = timed({"ref": lambda: conv2d_reference(x, w)}, args.reference_repeats)["ref"]
    rows.append(("conv2d forward x(8,3,64,64) w(16,3,3,3) vs loop reference", fast, ref, 100))

    # (2) forward vs torch
    x, w, b = array(64, 32, 14, 14), array(64, 32, 3, 3), array(64)
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))
    t = timed(
        {
            "ours": lambda: conv2d(x, w, b, padding=1),
            "torch": lambda: F.conv2d(xt, wt, bt, padding=1),
        },
        args.repeats,
    )
    rows.append(("conv2d forward x(64,32,14,14) w(64,32,3,3) pad 1", t["ours"], t["torch"], 3))

    # (3) forward + backward of SimpleCNN's layers
    def conv_case(x_shape: tuple[int, ...], w_shape: tuple[int, ...], input_grad: bool) -> None:
        x, w, b = array(*x_shape), array(*w_shape), array(w_shape[0])
        g = array(x_shape[0], w_shape[0], *x_shape[2:])  # padding 1 keeps H, W
        xt = torch.from_numpy(x).requires_grad_(input_grad)
        wt, bt = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
        gt = torch.from_numpy(g)

        def ours() -> None:
            _, cache = conv2d_forward(x, w, b, padding=1)
            conv2d_backward(g, x, w, padding=1, needs_input_grad=input_grad, cache=cache)

        def theirs() -> None:
            F.conv2d(xt, wt, bt, padding=1).backward(gt)

        t = timed({"ours": ours, "torch": theirs}, args.repeats)
        name = f"conv2d fwd+bwd x{x_shape} w{w_shape} pad 1" + ("" if input_grad else " (no dx)")
        rows.append((name, t["ours"], t["torch"], 1.5))

    def pool_case(x_shape: tuple[int, ...]) -> None:
        x = array(*x_shape)
        g = array(*x_shape[:2], x_shape[2] // 2, x_shape[3] // 2)
        xt, gt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(g)

        def ours() -> None:  # as a training step does it (and torch's autograd)
            _, indices = max_pool2d(x, 2, return_indices=True)
            max_pool2d_backward(g, x, 2, indices=indices)

        def ours_recompute() -> None:  # backward without indices: searches the maxima again
            max_pool2d(x, 2)
            max_pool2d_backward(g, x, 2)

        def theirs() -> None:
            F.max_pool2d(xt, 2).backward(gt)

        t = timed({"ours": ours, "recompute": ours_recompute, "torch": theirs}, args.repeats)
        rows.append((f"max_pool2d 2x2 fwd+bwd x{x_shape}", t["ours"], t["torch"], 1.5))
        rows.append(("  the same, backward without indices", t["recompute"], t["torch"], 1.5))

    conv_case((64, 1, 28, 28), (32, 1, 3, 3), input_grad=False)
    conv_case((64, 32, 14, 14), (64, 32, 3, 3), input_grad=True)
    pool_case((64, 32, 28, 28))
    pool_case((64, 64, 14, 14))

    print(f"threads: {args.threads} (torch and NumPy's BLAS), median of {args.repeats} repeats")
    print(f"{'case':<70} {'cnnkit ms':>10} {'base ms':>10} {'ratio':>8}  goal")
    for i, (name, ours_s, base_s, target) in enumerate(rows):
        if i == 0:
            ratio, ok, goal = base_s / ours_s, base_s / ours_s >= target, f">= {target:g}x faster"
        else:
            ratio, ok, goal = ours_s / base_s, ours_s / base_s <= target, f"<= {target:g}x torch"
        print(
            f"{name:<70} {ours_s * 1e3:>10.2f} {base_s * 1e3:>10.2f} {ratio:>7.2f}x  "
            f"{goal} {'met' if ok else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
