"""Make the playground's bundled model (src/cnnkit/assets/playground/) from a cnnkit run.

The shipped model is trained by cnnkit itself:

    cnnkit train --model simple-cnn --epochs 3 --threads 1 --seed 0 \\
        --data-dir /path/to/mnist --out /tmp/pg --name playground --no-report
    python scripts/bundle_playground_model.py /tmp/pg/playground --data-dir /path/to/mnist

A run's checkpoint also holds Adam's two moment buffers per parameter and the RNG states
(for resuming): about 4x the weights. This script keeps what the playground and
`cnnkit predict` need — model name and arguments, weights, config, history — writes it with
`cnnkit.models.checkpoint.save_checkpoint` (atomic), then measures the written file's test
accuracy with `cnnkit.analysis.evaluate` and records it in simple-cnn.json beside it (the
slow test `tests/test_web_api.py::test_bundled_model_reaches_recorded_accuracy` checks it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "cnnkit" / "assets" / "playground" / "simple-cnn.pt"
COMMAND = (
    "cnnkit train --model simple-cnn --epochs 3 --threads 1 --seed 0 --data-dir MNIST_DIR "
    "--out /tmp/pg --name playground --no-report && "
    "python scripts/bundle_playground_model.py /tmp/pg/playground --data-dir MNIST_DIR"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="the run folder (or its checkpoint.pt)")
    parser.add_argument("--data-dir", required=True, help="MNIST folder, to measure accuracy")
    parser.add_argument("--out", type=Path, default=TARGET, help="the bundled file to write")
    args = parser.parse_args(argv)

    from cnnkit.analysis.evaluate import evaluate
    from cnnkit.models.checkpoint import read_checkpoint, save_checkpoint

    source = args.run / "checkpoint.pt" if args.run.is_dir() else args.run
    raw = read_checkpoint(source)
    config = {k: v for k, v in raw["config"].items() if k != "data_dir"}  # no local paths
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        args.out,
        model_name=raw["model_name"],
        model_args=raw["model_args"],
        state_dict=raw["state_dict"],
        config=config,
        optimizer_state={},  # not resumable: the playground only runs the model
        epoch=raw["epoch"],
        rng_state={},
        history=raw["history"],
        initial_conv1_weight=None,
    )
    result = evaluate(args.out, data_dir=args.data_dir)
    record = {
        "model": raw["model_name"],
        "dataset": result.dataset,
        "split": result.split,
        "num_images": result.num_images,
        "accuracy": result.accuracy,
        "loss": result.loss,
        "epochs": raw["epoch"],
        "seed": config.get("seed"),
        "torch_version": config.get("torch_version"),
        "bytes": args.out.stat().st_size,
        "command": COMMAND,
    }
    meta = args.out.with_suffix(".json")
    meta.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{args.out}: {record['bytes']:,} bytes, test accuracy {result.accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
