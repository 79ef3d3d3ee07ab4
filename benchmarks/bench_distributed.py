"""Distributed training on one machine: 1 process x 2 threads against 2 processes x 1 thread.

    python benchmarks/bench_distributed.py [--limit N] [--repeats R] [--data-dir DIR]

Both sides are the real command, `cnnkit train` on the first N MNIST training images for one
epoch (test set limited to 1000 images), the chapter's recipe (global batch 64):

- A: `cnnkit train --threads 2`            (one process, torch on 2 threads)
- B: `cnnkit train --nproc 2 --threads 1`  (torchrun, 2 DDP processes on gloo, 1 thread each)

Images per second = training images / the epoch's seconds (metrics.jsonl; training pass plus
the 1000-image test pass, process start-up excluded). The sides alternate R times (A B A B
...) so both see the same background load; the load average is printed around every run,
since this 2-core machine is shared with other jobs. Printed: each run, the median images/s
of each side and their ratio B / A.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SIDES = {
    "1 proc x 2 threads": ["--threads", "2"],
    "2 procs x 1 thread": ["--nproc", "2", "--threads", "1"],
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=6400, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, alternating")
    parser.add_argument("--data-dir", default=None, help="cnnkit data dir (MNIST fetched there)")
    return parser.parse_args()


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run(side: list[str], out: Path, name: str, args: argparse.Namespace) -> float:
    """One epoch through the CLI; images per second of its epoch."""
    command = [
        sys.executable, "-m", "cnnkit", "train", "--epochs", "1", "--limit", str(args.limit),
        "--test-limit", "1000", "--out", str(out), "--name", name, "--no-progress",
        "--no-report", *side,
    ]  # fmt: skip
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    row = json.loads((out / name / "metrics.jsonl").read_text().splitlines()[0])
    return args.limit / row["seconds"]


def main() -> None:
    args = parse_args()
    env_note = os.environ.get("OMP_WAIT_POLICY", "PASSIVE (set by cnnkit)")
    print(
        f"one epoch of the chapter's recipe on {args.limit} MNIST images (batch 64), test 1000; "
        f"{os.cpu_count()} CPUs, OMP_WAIT_POLICY={env_note}"
    )
    speeds: dict[str, list[float]] = {s: [] for s in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for side, options in SIDES.items():
                before = load()
                ips = run(options, Path(tmp), f"{r}-{list(SIDES).index(side)}", args)
                speeds[side].append(ips)
                print(
                    f"  run {r + 1} {side:<20} {ips:8.1f} images/s   "
                    f"load average {before} -> {load()}"
                )
    a, b = (statistics.median(v) for v in speeds.values())
    names = list(SIDES)
    print(f"median: {names[0]} {a:.1f} images/s, {names[1]} {b:.1f} images/s")
    print(
        f"ratio (2 procs x 1 thread) / (1 proc x 2 threads): {b / a:.3f}   "
        f"load average now {load()}"
    )


if __name__ == "__main__":
    main()
