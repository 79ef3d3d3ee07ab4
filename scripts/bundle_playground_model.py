"""Make the playground's bundled model (src/cnnkit/assets/playground/) from a cnnkit run.

The shipped model is trained by cnnkit itself:

    cnnkit train --model simple-cnn --epochs 3 --threads 1 --seed 0 \\
        --data-dir /path/to/mnist --out /tmp/pg --name playground --no-report
    python scripts/bundle_playground_model.py /tmp/pg/playground --data-dir /path/to/mnist

`--from CHECKPOINT` re-saves an existing checkpoint's weights instead of a run's (no training):
the bundled file was re-saved this way in the current checkpoint format (version 2, with its
SHA-256 digest) from the version-1 file trained by the commands above; the weights are
checked to be bit-for-bit those of the source, and the accuracy is measured again.

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
    parser.add_argument("run", type=Path, nargs="?", help="the run folder (or its checkpoint.pt)")
    parser.add_argument(
        "--from", dest="source", type=Path, default=None, metavar="CHECKPOINT",
        help="re-save this checkpoint's weights (e.g. the bundled file itself) instead of a run's",
    )  # fmt: skip
    parser.add_argument("--data-dir", required=True, help="MNIST folder, to measure accuracy")
    parser.add_argument("--out", type=Path, default=TARGET, help="the bundled file to write")
    args = parser.parse_args(argv)
    if (args.run is None) == (args.source is None):
        parser.error("give a run folder or --from CHECKPOINT (one of them)")

    import torch

    from cnnkit.analysis.evaluate import evaluate
    from cnnkit.models.checkpoint import VERSION, read_checkpoint, save_checkpoint

    if args.source is not None:
        source = args.source
    else:
        source = args.run / "checkpoint.pt" if args.run.is_dir() else args.run
    raw = read_checkpoint(source)
    previous = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8")) if (
        args.source is not None and args.out.with_suffix(".json").is_file()) else {}  # fmt: skip
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
    written = read_checkpoint(args.out)
    assert written["version"] == VERSION and "digest" in written, "not the current format"
    for name, tensor in raw["state_dict"].items():  # the same weights, bit for bit
        assert torch.equal(written["state_dict"][name], torch.as_tensor(tensor)), name
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
        "checkpoint_version": written["version"],
        "command": previous.get("command", COMMAND),
    }
    if args.source is not None:
        record["resaved"] = (
            f"weights re-saved unchanged from a version-{raw['version']} checkpoint as version "
            f"{written['version']}: python scripts/bundle_playground_model.py --from "
            f"{source.name} --data-dir MNIST_DIR"
        )
    meta = args.out.with_suffix(".json")
    meta.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"{args.out}: {record['bytes']:,} bytes, test accuracy {result.accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
