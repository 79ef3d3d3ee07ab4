"""Bad inputs, as a hostile tester types them: every command and the public Python API.

The promise (issue 9): one line on stderr that names the parameter, exit code 2, no traceback,
no file left behind; in the API, a typed `CnnkitError`. The CLI cases run in-process
(`cnnkit.cli.main.main`) for speed; a few run the real command in a subprocess.

Each CLI case is `(argv, fragment)`: the one stderr line must contain `fragment`, which names
the parameter (or the value) at fault. Placeholders in argv: `{ckpt}` a real checkpoint,
`{nan_ckpt}` / `{std0_ckpt}` / `{damaged_ckpt}` broken ones, `{mnist}` the shared MNIST copy,
`{ro}` a folder nothing can be written into, `{digit}` a bundled MNIST digit.
A case that waits for a fix elsewhere is marked `pytest.mark.xfail(strict=True)`; none is now.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import JAPANESE, SHARED_MNIST, run_cli

from cnnkit.cli.main import main
from cnnkit.core.errors import CnnkitError, DataError, ShapeError

needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST copy absent")
FIVE_THOUSAND_NINES = "9" * 5000


def case(name: str, argv: list[str], fragment: str, *marks: Any) -> Any:
    return pytest.param(argv, fragment, id=name, marks=marks)


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real (untrained, seeded) SimpleCNN checkpoint and three broken copies."""
    import torch

    from cnnkit.models.checkpoint import save_checkpoint
    from cnnkit.models.registry import create_model

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    state = create_model("simple-cnn").state_dict()

    def save(name: str, state_dict: dict[str, Any], normalize: list[float]) -> Path:
        return save_checkpoint(
            folder / name / "checkpoint.pt",
            model_name="simple-cnn",
            model_args={},
            state_dict=state_dict,
            config={"dataset": "mnist", "normalize": normalize},
            optimizer_state={},
            epoch=1,
            rng_state={},
            history=[],
        )

    good = save("good", state, [0.1307, 0.3081])
    nan_state = {k: v.clone() for k, v in state.items()}
    nan_state["conv1.weight"][0, 0, 0, 0] = float("nan")
    damaged = folder / "damaged" / "checkpoint.pt"
    damaged.parent.mkdir()
    data = bytearray(good.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # zeroed weight bytes, same size
    damaged.write_bytes(bytes(data))
    return {
        "ckpt": good,
        "nan_ckpt": save("nan", nan_state, [0.1307, 0.3081]),
        "std0_ckpt": save("std0", state, [0.1307, 0.0]),
        "damaged_ckpt": damaged,
    }


@pytest.fixture
def read_only(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A folder nothing can be written into: mode 0o555, or /sys where root ignores modes."""
    if os.geteuid() != 0:
        folder = tmp_path_factory.mktemp("ro")
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
    elif Path("/sys").is_dir():
        yield Path("/sys")  # sysfs: even root can create nothing there
    else:
        pytest.skip("running as root without /sys: no folder is read-only")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory of a case: a text file, a photo-like image, a 5x5 image."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "notes.txt").write_text("not an image\n")
    Image.fromarray((rng.random((40, 50, 3)) * 255).astype(np.uint8)).save(tmp_path / "x.png")
    Image.fromarray((rng.random((5, 5)) * 255).astype(np.uint8)).save(tmp_path / "tiny.png")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path / "no-data"))  # never the user's cache
    return tmp_path


def files_in(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(folder.rglob("*"))
    }


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's errors leave through parser.exit
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, fragment: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, (code, out[-500:], err[-2000:])
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("cnnkit"), lines[0]
    assert fragment in lines[0], (fragment, lines[0])
    assert len(lines[0]) < 600, lines[0]  # long values are shortened, not echoed whole
    return lines[0]


# ------------------------------------------------------------------------------- CLI table

CLI_CASES = [
    # argparse: one line plus "see --help", never the usage block
    case("size-option-without-value", ["size", "28", "--kernel"], "--kernel"),
    case("size-unknown-option", ["size", "28", "--bogus"], "--bogus"),
    case("params-missing-required", ["params", "--in", "3"], "--out"),
    case("filter-missing-everything", ["filter"], "--kernel"),
    case("rf-missing-spec", ["rf"], "SPEC"),
    case(
        "filter-display-choice",
        ["filter", "x.png", "-k", "box", "-o", "y.png", "--display", "wat"],
        "--display",
    ),
    case("evaluate-split-choice", ["evaluate", "{ckpt}", "--split", "wat"], "--split"),
    case("predict-top-zero", ["predict", "{ckpt}", "{digit}", "--top", "0"], "--top"),
    case("predict-top-5000-digits", ["predict", "{ckpt}", "{digit}", "--top", "x" * 5000], "--top"),
    case("predict-top-not-int", ["predict", "{ckpt}", "{digit}", "--top", "2.5"], "--top"),
    case("predict-no-image", ["predict", "{ckpt}"], "IMAGE"),
    case(
        "predict-top-past-the-classes",
        ["predict", "{ckpt}", "{digit}", "--top", "11"],
        "at most 10",
    ),
    case(
        "predict-top-10-to-the-20",
        ["predict", "{ckpt}", "{digit}", "--top", "1" + "0" * 20],
        "--top",
    ),
    case("plot-unknown-option", ["plot", "activations", "-o", "a.png", "--bogus"], "--bogus"),
    case("plot-without-name", ["plot"], "activations"),
    case("data-without-action", ["data"], "fetch"),
    case("rf-format-choice", ["rf", "conv3", "--format", "wat"], "--format"),
    case("erf-images-zero", ["erf", "{ckpt}", "--images", "0"], "--images"),
    case("erf-images-negative", ["erf", "{ckpt}", "--images", "-1"], "--images"),
    case(
        "erf-images-over-the-test-set",
        ["erf", "{ckpt}", "--images", "99999999999", "--data-dir", "{mnist}"],
        "at most the 10,000 mnist test images",
    ),
    case("serve-port-negative", ["serve", "--port", "-1"], "--port"),
    case("serve-port-too-big", ["serve", "--port", "99999"], "--port"),
    # size / params / compare
    case("size-no-input", ["size"], "input"),
    case("size-kernel-zero", ["size", "28", "--kernel", "0"], "kernel_size"),
    case("size-kernel-negative", ["size", "28", "--kernel", "-3"], "kernel_size"),
    case("size-kernel-float", ["size", "28", "--kernel", "3.5"], "kernel"),
    case("size-kernel-larger-than-input", ["size", "2", "--kernel", "5"], "Kernel size 5"),
    case("size-stride-zero", ["size", "28", "--stride", "0"], "stride"),
    case("size-padding-negative", ["size", "28", "--padding", "-1"], "padding"),
    case("size-padding-word", ["size", "28", "--padding", "foo"], "padding"),
    case("size-dilation-zero", ["size", "28", "--dilation", "0"], "dilation"),
    case("size-two-inputs", ["size", "28", "--input", "30"], "--input"),
    case("size-pool-and-transposed", ["size", "28", "--pool", "--transposed"], "--transposed"),
    case("size-5000-digits", ["size", FIVE_THOUSAND_NINES], "'input'"),
    case("params-in-zero", ["params", "--in", "0", "--out", "3"], "in_channels"),
    case("params-out-negative", ["params", "--in", "3", "--out", "-1"], "out_channels"),
    case(
        "params-groups-not-dividing",
        ["params", "--in", "3", "--out", "3", "--groups", "2"],
        "groups",
    ),
    case(
        "params-kernel-zero", ["params", "--in", "3", "--out", "3", "--kernel", "0"], "kernel_size"
    ),
    case(
        "params-groups-200-digits",
        ["params", "--in", "3", "--out", "3", "--groups", "9" * 200],
        "'groups'",
    ),
    case(
        "compare-kernel-larger-than-input",
        ["compare", "--input", "28x28x1", "--kernel", "29"],
        "kernel_size",
    ),
    case("compare-input-two-dims", ["compare", "--input", "28x28"], "input"),
    case("compare-input-zero", ["compare", "--input", "0x28x1"], "input_shape"),
    case("compare-hidden-zero", ["compare", "--hidden", "0"], "hidden"),
    case("compare-conv-zero", ["compare", "--conv", "0"], "out_channels"),
    case("compare-conv-empty", ["compare", "--conv", ""], "conv"),
    case("chapter-unknown-section", ["chapter", "9.9"], "section"),
    # rf: the notation and its bounds
    case("rf-repeat-99999999999", ["rf", "conv3*99999999999"], "repeat count"),
    case("rf-a-million-layers-json", ["rf", "conv3*1000000", "--json"], "1,000 layers"),
    case("rf-1001-layers-in-two-tokens", ["rf", "conv3*500,conv3*501"], "1,000 layers"),
    case("rf-repeat-5000-digits", ["rf", "conv3*" + FIVE_THOUSAND_NINES], "repeat count"),
    case("rf-repeat-zero", ["rf", "conv3*0"], "repeat count"),
    case("rf-kernel-zero", ["rf", "conv0"], "kernel_size"),
    case("rf-kernel-huge", ["rf", "conv99999999999999999999"], "100,000"),
    case("rf-stride-zero", ["rf", "conv3/s0"], "stride"),
    case("rf-stride-over-bound", ["rf", "conv3/s100001"], "100,000"),
    case("rf-jump-past-2-53", ["rf", "conv3/s100000*1000"], "2**53"),
    case("rf-unknown-option", ["rf", "conv3/q1"], "q1"),
    case("rf-empty", ["rf", ""], "empty"),
    case("rf-two-commas", ["rf", "conv3,,conv3"], "Empty layer"),
    case("rf-pool-padding", ["rf", "pool3/p5"], "padding"),
    case("rf-input-zero", ["rf", "conv3", "--input", "0"], "input_size"),
    case("rf-input-too-small", ["rf", "conv3", "--input", "2"], "Kernel size 3"),
    case("rf-input-word", ["rf", "conv3", "--input", "foo"], "--input"),
    # models
    case("models-unknown-name", ["models", "nosuch"], "PATTERN"),
    case("models-pattern-matching-nothing", ["models", "zzz*"], "PATTERN"),
    # filter / kernels
    case(
        "filter-output-is-the-input", ["filter", "x.png", "-k", "box", "-o", "x.png"], "-o/--output"
    ),
    case(
        "filter-parameter-twice",
        ["filter", "x.png", "-k", "box:size=3,size=4", "-o", "y.png"],
        "'size'",
    ),
    case(
        "filter-parameter-positional-and-named",
        ["filter", "x.png", "-k", "box:3,size=5", "-o", "y.png"],
        "'size'",
    ),
    case("filter-size-zero", ["filter", "x.png", "-k", "box:0", "-o", "y.png"], "'size'"),
    case("filter-size-negative", ["filter", "x.png", "-k", "box:-1", "-o", "y.png"], "'size'"),
    case("filter-size-float", ["filter", "x.png", "-k", "box:2.5", "-o", "y.png"], "'size'"),
    case("filter-size-over-bound", ["filter", "x.png", "-k", "box:1000", "-o", "y.png"], "999"),
    case(
        "filter-size-5000-digits",
        ["filter", "x.png", "-k", "box:" + FIVE_THOUSAND_NINES, "-o", "y.png"],
        "'size'",
    ),
    case("filter-identity-even", ["filter", "x.png", "-k", "identity:4", "-o", "y.png"], "'size'"),
    case("filter-sigma-nan", ["filter", "x.png", "-k", "gaussian:5,nan", "-o", "y.png"], "sigma"),
    case("filter-sigma-inf", ["filter", "x.png", "-k", "gaussian:5,inf", "-o", "y.png"], "sigma"),
    case("filter-sigma-zero", ["filter", "x.png", "-k", "gaussian:5,0", "-o", "y.png"], "sigma"),
    case("filter-sigma-word", ["filter", "x.png", "-k", "gaussian:5,big", "-o", "y.png"], "sigma"),
    case("filter-unknown-kernel", ["filter", "x.png", "-k", "nosuch", "-o", "y.png"], "nosuch"),
    case("filter-too-many-values", ["filter", "x.png", "-k", "box:1,2", "-o", "y.png"], "box"),
    case("filter-unknown-parameter", ["filter", "x.png", "-k", "box:q=2", "-o", "y.png"], "'q'"),
    case(
        "filter-parameter-on-fixed-kernel",
        ["filter", "x.png", "-k", "sobel-x:3", "-o", "y.png"],
        "sobel-x",
    ),
    case("filter-unknown-suffix", ["filter", "x.png", "-k", "box", "-o", "y.txt"], "y.txt"),
    case(
        "filter-output-under-a-file",
        ["filter", "x.png", "-k", "box", "-o", "notes.txt/y.png"],
        "notes.txt",
    ),
    case("filter-output-read-only", ["filter", "x.png", "-k", "box", "-o", "{ro}/y.png"], "y.png"),
    case("filter-output-no-suffix", ["filter", "x.png", "-k", "box", "-o", "."], "'.'"),
    case(
        "filter-missing-image", ["filter", "nosuch.png", "-k", "box", "-o", "y.png"], "nosuch.png"
    ),
    case("filter-text-as-image", ["filter", "notes.txt", "-k", "box", "-o", "y.png"], "notes.txt"),
    case("filter-folder-as-image", ["filter", ".", "-k", "box", "-o", "y.png"], "directory"),
    case(
        "filter-kernel-larger-than-image",
        ["filter", "tiny.png", "-k", "box:7", "-o", "y.png"],
        "7x7",
    ),
    case(
        "filter-unknown-boundary",
        ["filter", "x.png", "-k", "box", "--boundary", "wat", "-o", "y.png"],
        "boundary",
    ),
    case("kernels-list-with-output", ["kernels", "--list", "-o", "k.png"], "-o/--output"),
    case(
        "kernels-list-json-with-output",
        ["kernels", "--list", "--json", "-o", "k.png"],
        "-o/--output",
    ),
    case("kernels-list-with-image", ["kernels", "x.png", "--list"], "IMAGE"),
    case("kernels-list-with-kernels", ["kernels", "--list", "--kernels", "box"], "--kernels"),
    case("kernels-no-output", ["kernels"], "-o/--output"),
    case("kernels-json-without-list", ["kernels", "--json", "-o", "k.png"], "--json"),
    case("kernels-output-is-the-input", ["kernels", "x.png", "-o", "x.png"], "-o/--output"),
    case("kernels-unknown-kernel", ["kernels", "-o", "k.png", "--kernels", "nosuch"], "nosuch"),
    case("kernels-no-kernel", ["kernels", "-o", "k.png", "--kernels", ";;"], "--kernels"),
    case(
        "kernels-kernel-larger-than-pattern",
        ["kernels", "-o", "k.png", "--kernels", "box:7"],
        "7x7",
    ),
    case("kernels-unknown-suffix", ["kernels", "-o", "k.txt"], "k.txt"),
    case("kernels-output-under-a-file", ["kernels", "-o", "notes.txt/k.png"], "notes.txt"),
    case(
        "kernels-300-panels",
        ["kernels", "-o", "k.png", "--kernels", ",".join(["box"] * 300)],
        "at most 48",
    ),
    # plot
    case(
        "plot-one-activation-300-times",
        ["plot", "activations", "-o", "a.png", "--only", ",".join(["relu"] * 300)],
        "'--only'",
    ),
    case("plot-empty-activation", ["plot", "activations", "-o", "a.png", "--only", "relu,"], "''"),
    case(
        "plot-range-overflowing",
        ["plot", "activations", "-o", "a.png", "--range", "-1e308", "1e308"],
        "--range",
    ),
    case(
        "plot-range-inf", ["plot", "activations", "-o", "a.png", "--range", "1", "inf"], "--range"
    ),
    case(
        "plot-range-nan", ["plot", "activations", "-o", "a.png", "--range", "nan", "1"], "--range"
    ),
    case(
        "plot-range-empty", ["plot", "activations", "-o", "a.png", "--range", "0", "0"], "--range"
    ),
    case(
        "plot-unknown-activation", ["plot", "activations", "-o", "a.png", "--only", "nope"], "nope"
    ),
    case("plot-output-read-only", ["plot", "activations", "-o", "{ro}/a.png"], "a.png"),
    case("plot-output-under-a-file", ["plot", "activations", "-o", "notes.txt/a.png"], "notes.txt"),
    # data
    case("data-fetch-unknown", ["data", "fetch", "nosuch"], "nosuch"),
    case(
        "data-fetch-into-a-file", ["data", "fetch", "mnist", "--data-dir", "notes.txt"], "data_dir"
    ),
    case(
        "data-fetch-under-a-file",
        ["data", "fetch", "mnist", "--data-dir", "notes.txt/sub"],
        "data_dir",
    ),
    case("data-fetch-read-only", ["data", "fetch", "mnist", "--data-dir", "{ro}/data"], "data"),
    case(
        "data-fetch-from-missing",
        ["data", "fetch", "mnist", "--from", "nowhere", "--data-dir", "d"],
        "--from",
    ),
    case(
        "data-fetch-from-a-file",
        ["data", "fetch", "mnist", "--from", "notes.txt", "--data-dir", "d/e"],
        "--from",
    ),
    case("data-info-unknown", ["data", "info", "nosuch"], "nosuch"),
    case("data-info-a-file", ["data", "info", "--data-dir", "notes.txt"], "data_dir"),
    # evaluate / predict / visualize / export / erf on checkpoints
    case("evaluate-missing-checkpoint", ["evaluate", "nosuch.pt"], "nosuch.pt"),
    case("evaluate-text-as-checkpoint", ["evaluate", "notes.txt"], "notes.txt"),
    case(
        "evaluate-data-dir-a-file", ["evaluate", "{ckpt}", "--data-dir", "notes.txt"], "notes.txt"
    ),
    case("predict-missing-image", ["predict", "{ckpt}", "nosuch.png"], "nosuch.png"),
    case("predict-text-as-image", ["predict", "{ckpt}", "notes.txt"], "notes.txt"),
    case("predict-missing-checkpoint", ["predict", "nosuch.pt", "{digit}"], "nosuch.pt"),
    case("predict-nan-weights", ["predict", "{nan_ckpt}", "{digit}"], "checkpoint.pt"),
    case("predict-std-zero", ["predict", "{std0_ckpt}", "{digit}"], "checkpoint.pt"),
    case("predict-damaged-weights", ["predict", "{damaged_ckpt}", "{digit}"], "checkpoint.pt"),
    case(
        "visualize-output-is-the-image",
        ["visualize", "{ckpt}", "--image", "{digit_copy}", "-o", "{digit_copy}"],
        "-o/--output",
    ),
    case("visualize-unknown-suffix", ["visualize", "{ckpt}", "-o", "v.txt"], "v.txt"),
    case(
        "visualize-output-under-a-file",
        ["visualize", "{ckpt}", "-o", "notes.txt/v.png"],
        "notes.txt",
    ),
    case("visualize-output-read-only", ["visualize", "{ckpt}", "-o", "{ro}/v.png"], "v.png"),
    case("visualize-missing-image", ["visualize", "{ckpt}", "--image", "nosuch.png"], "nosuch.png"),
    case("erf-missing-checkpoint", ["erf", "nosuch.pt"], "nosuch.pt"),
    case("export-unknown-suffix", ["export", "{ckpt}", "-o", "m.txt"], "m.txt"),
    case("export-opset", ["export", "{ckpt}", "-o", "m.onnx", "--opset", "99"], "opset"),
    case(
        "export-output-under-a-file",
        ["export", "{ckpt}", "-o", "notes.txt/m.onnx"],
        "(-o) 'notes.txt/m.onnx' cannot be written: its parent 'notes.txt' is a file",
    ),
    # summary
    case("summary-unknown-model", ["summary", "nosuch"], "nosuch"),
    case("summary-layer-without-boxes", ["summary", "simple-cnn", "--layer", "conv1"], "--layer"),
    case("summary-unit-without-boxes", ["summary", "simple-cnn", "--unit", "1,1"], "--unit"),
    case("summary-output-without-boxes", ["summary", "simple-cnn", "-o", "s.png"], "-o"),
    case(
        "summary-boxes-over-their-image",
        ["summary", "simple-cnn", "--boxes", "x.png", "-o", "x.png"],
        "-o/--output",
    ),
    case(
        "summary-boxes-unknown-layer",
        ["summary", "simple-cnn", "--boxes", "x.png", "--layer", "nosuch"],
        "nosuch",
    ),
    case(
        "summary-boxes-unit-outside",
        ["summary", "simple-cnn", "--boxes", "x.png", "--unit", "-1,0"],
        "unit",
    ),
    case("summary-input-zero", ["summary", "simple-cnn", "--input", "0x28x28"], "input_size"),
    case("summary-input-word", ["summary", "simple-cnn", "--input", "nan"], "--input"),
    case("summary-input-dtype", ["summary", "simple-cnn", "--input", "1x28x28:wat"], "dtype"),
    case(
        "summary-input-huge",
        ["summary", "simple-cnn", "--input", "1x100000x100000"],
        "input_size",
    ),
    case("summary-depth-negative", ["summary", "simple-cnn", "--depth", "-1"], "depth"),
    # train / demo (the training code's own checks)
    case(
        "train-seed-2-32",
        ["train", "--seed", "4294967296", "--dry-run", "--data-dir", "{mnist}"],
        "seed",
    ),
    case("train-seed-negative", ["train", "--seed", "-1", "--dry-run"], "--seed"),
    case("train-lr-nan", ["train", "--lr", "nan", "--dry-run"], "--lr"),
    case("train-lr-inf", ["train", "--lr", "inf", "--dry-run"], "--lr"),
    case("train-epochs-zero", ["train", "--epochs", "0", "--dry-run"], "--epochs"),
    case("train-batch-size-zero", ["train", "--batch-size", "0", "--dry-run"], "--batch-size"),
    case(
        "train-threads-1000",
        ["train", "--threads", "1000", "--dry-run", "--data-dir", "{mnist}"],
        "threads",
    ),
    case(
        "train-unknown-model",
        ["train", "--model", "nosuch", "--dry-run", "--data-dir", "{mnist}"],
        "model",
    ),
    case("train-data-dir-a-file", ["train", "--data-dir", "notes.txt", "--dry-run"], "data_dir"),
    case("train-resume-missing", ["train", "--resume", "nosuchrun"], "nosuchrun"),
    case("train-resume-a-text-file", ["train", "--resume", "notes.txt"], "notes.txt"),
    case(
        "train-out-a-file",
        ["train", "--out", "notes.txt", "--dry-run", "--data-dir", "{mnist}"],
        "--out",
    ),
    case(
        "train-epochs-99999999999",
        ["train", "--epochs", "99999999999", "--dry-run", "--data-dir", "{mnist}"],
        "epochs",
    ),
    case(
        "train-batch-size-99999999999",
        ["train", "--batch-size", "99999999999", "--dry-run", "--data-dir", "{mnist}"],
        "from 1 to 1048576",
    ),
    case(
        "train-name-escaping-out",
        ["train", "--name", "../x", "--dry-run", "--data-dir", "{mnist}"],
        "name",
    ),
    case(
        "train-name-empty",
        ["train", "--name", "", "--dry-run", "--data-dir", "{mnist}"],
        "name",
    ),
    case("demo-out-a-file", ["demo", "--out", "notes.txt", "--data-dir", "{mnist}"], "notes.txt"),
    case(
        "demo-out-under-a-file",
        ["demo", "--out", "notes.txt/sub", "--data-dir", "{mnist}"],
        "notes.txt",
    ),
    case("demo-out-read-only", ["demo", "--out", "{ro}/runs", "--data-dir", "{mnist}"], "runs"),
    case("demo-threads-zero", ["demo", "--threads", "0"], "--threads"),
    case("demo-data-dir-a-file", ["demo", "--data-dir", "notes.txt"], "data_dir"),
]


def fill(argv: list[str], values: dict[str, str]) -> list[str]:
    out = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace("{" + key + "}", value)
        out.append(arg)
    return out


@pytest.mark.parametrize("argv,fragment", CLI_CASES)
def test_cli_bad_input_is_one_line_exit_2_and_leaves_no_file(
    argv, fragment, workspace, checkpoints, read_only, capsys
):
    from cnnkit.imaging.digits import example_digits

    if "{mnist}" in " ".join(argv) and not SHARED_MNIST.is_dir():
        pytest.skip("shared MNIST copy absent")
    digit = example_digits()[3]
    shutil.copy(digit, workspace / "digit.png")
    values = {k: str(v) for k, v in checkpoints.items()}
    values |= {"ro": str(read_only), "mnist": str(SHARED_MNIST), "digit": str(digit)}
    values["digit_copy"] = "digit.png"
    before = files_in(workspace)
    code, out, err = run_in_process(fill(argv, values), capsys)
    assert_one_line_error(code, out, err, fill([fragment], values)[0])
    assert files_in(workspace) == before  # nothing written, nothing replaced, nothing removed


ENGLISH_RUN = re.compile(r"\b[A-Za-z]{2,}(?: [A-Za-z]{2,}){3,}\b")  # four English words in a row


@pytest.mark.parametrize("argv,fragment", CLI_CASES)
def test_cli_bad_input_is_worded_in_japanese_with_lang_ja(
    argv, fragment, workspace, checkpoints, read_only, capsys
):
    """The same table with --lang ja: still one line and exit 2, and the reason itself (after
    "cnnkit CMD: エラー: ") is Japanese, not the English line with a translated prefix."""
    from cnnkit.core import i18n
    from cnnkit.imaging.digits import example_digits

    if "{mnist}" in " ".join(argv) and not SHARED_MNIST.is_dir():
        pytest.skip("shared MNIST copy absent")
    shutil.copy(example_digits()[3], workspace / "digit.png")
    values = {k: str(v) for k, v in checkpoints.items()}
    values |= {"ro": str(read_only), "mnist": str(SHARED_MNIST)}
    values |= {"digit": str(example_digits()[3]), "digit_copy": "digit.png"}
    try:
        code, out, err = run_in_process([*fill(argv, values), "--lang", "ja"], capsys)
    finally:
        i18n.set_language("en")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    prefix, sep, reason = lines[0].partition(": エラー: ")
    assert sep and prefix.startswith("cnnkit"), lines[0]
    assert JAPANESE.search(reason.split(" (`")[0]), lines[0]
    # no English sentence left inside it (quoted values, `code`, options and paths aside)
    prose = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`|--?[\w-]+|\S*/\S*", " ", reason)
    assert not ENGLISH_RUN.search(prose), lines[0]


def test_the_table_covers_every_command_and_has_at_least_80_cases():
    from cnnkit.cli.main import build_parser

    commands = {p.values[0][0] for p in CLI_CASES}
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) <= commands  # type: ignore[attr-defined]
    assert len(CLI_CASES) + len(API_CASES) >= 80 and len(CLI_CASES) >= 80


# ------------------------------------------------------------------------------- API table


def api(name: str, call: Callable[[], Any], error: type[Exception], fragment: str) -> Any:
    return pytest.param(call, error, fragment, id=name)


def _x() -> np.ndarray:
    return np.ones((1, 1, 5, 5))


def _w() -> np.ndarray:
    return np.ones((1, 1, 3, 3))


def _conv2d(**kw: Any) -> Any:
    import cnnkit

    return lambda: cnnkit.conv2d(kw.pop("input", _x()), kw.pop("weight", _w()), **kw)


def _calc(func: str, *args: Any, **kw: Any) -> Any:
    def call() -> Any:
        import cnnkit.calc.arithmetic as arithmetic
        import cnnkit.calc.params as params

        module = params if hasattr(params, func) else arithmetic
        return getattr(module, func)(*args, **kw)

    return call


def _rf(func: str, *args: Any, **kw: Any) -> Any:
    def call() -> Any:
        import cnnkit.calc.receptive_field as rf

        target: Any = rf
        for part in func.split("."):
            target = getattr(target, part)
        return target(*args, **kw)

    return call


def _kernels(func: str, *args: Any, **kw: Any) -> Any:
    def call() -> Any:
        import cnnkit.imaging.kernels as kernels

        return getattr(kernels, func)(*args, **kw)

    return call


def _images(func: str, *args: Any, **kw: Any) -> Any:
    def call() -> Any:
        import cnnkit.imaging.images as images

        return getattr(images, func)(*args, **kw)

    return call


def _data(func: str, *args: Any, **kw: Any) -> Any:
    def call() -> Any:
        import cnnkit.data as data

        return getattr(data, func)(*args, **kw)

    return call


def _digits(image: np.ndarray) -> Any:
    def call() -> Any:
        from cnnkit.imaging.digits import preprocess_digit

        return preprocess_digit(image)

    return call


def _summary(model: Any, size: Any, **kw: Any) -> Any:
    def call() -> Any:
        import torch

        import cnnkit

        m = torch.nn.Conv2d(1, 1, 3) if model == "conv" else model
        return cnnkit.summary(m, size, **kw)

    return call


NAN = float("nan")
API_CASES = [
    api("conv2d-stride-bool", _conv2d(stride=True), CnnkitError, "'stride'"),
    api("conv2d-stride-float", _conv2d(stride=1.0), CnnkitError, "'stride'"),
    api("conv2d-stride-nan", _conv2d(stride=NAN), CnnkitError, "'stride'"),
    api("conv2d-stride-zero", _conv2d(stride=0), CnnkitError, "'stride'"),
    api("conv2d-padding-negative", _conv2d(padding=-1), CnnkitError, "'padding'"),
    api("conv2d-padding-word", _conv2d(padding="foo"), CnnkitError, "'padding'"),
    api("conv2d-groups-zero", _conv2d(groups=0), CnnkitError, "'groups'"),
    api("conv2d-groups-mismatch", _conv2d(groups=2), ShapeError, "groups"),
    api("conv2d-dilation-huge", _conv2d(dilation=10**12), ShapeError, "dilation"),
    api("conv2d-weight-1d", _conv2d(weight=np.ones(3)), ShapeError, "weight shape (3,)"),
    api("conv2d-input-string", _conv2d(input="abc"), CnnkitError, "input"),
    api("conv2d-padding-mode", _conv2d(padding=1, padding_mode="wat"), CnnkitError, "padding_mode"),
    api(
        "conv2d-padding-huge", _conv2d(padding=10**5), CnnkitError, "'padding' parameter of conv2d"
    ),
    api(
        "max-pool-padding-huge",
        lambda: __import__("cnnkit").max_pool2d(_x(), 200001, padding=10**5),
        CnnkitError,
        "'padding' parameter of max_pool2d",
    ),
    api(
        "avg-pool-padding-huge",
        lambda: __import__("cnnkit").avg_pool2d(_x(), 200001, padding=10**5),
        CnnkitError,
        "'padding' parameter of avg_pool2d",
    ),
    api(
        "pad2d-pads-huge",
        lambda: __import__("cnnkit.ops").ops.pad2d(_x(), ((10**5, 10**5), (10**5, 10**5))),
        CnnkitError,
        "'pads' parameter of pad2d",
    ),
    api(
        "max-pool-kernel-zero",
        lambda: __import__("cnnkit").max_pool2d(_x(), 0),
        CnnkitError,
        "'kernel_size'",
    ),
    api(
        "max-pool-kernel-bool",
        lambda: __import__("cnnkit").max_pool2d(_x(), True),
        CnnkitError,
        "'kernel_size'",
    ),
    api(
        "max-pool-kernel-too-big",
        lambda: __import__("cnnkit").max_pool2d(_x(), 9),
        ShapeError,
        "Kernel size 9",
    ),
    api(
        "avg-pool-stride-zero",
        lambda: __import__("cnnkit").avg_pool2d(_x(), 2, stride=0),
        CnnkitError,
        "'stride'",
    ),
    api("conv2d-params-bias-no", _calc("conv2d_params", 3, 4, 3, bias="no"), CnnkitError, "'bias'"),
    api("conv2d-params-in-bool", _calc("conv2d_params", True, 4, 3), CnnkitError, "in_channels"),
    api("conv2d-params-in-float", _calc("conv2d_params", 3.0, 4, 3), CnnkitError, "in_channels"),
    api(
        "conv2d-params-groups-zero",
        _calc("conv2d_params", 3, 3, 3, groups=0),
        CnnkitError,
        "groups",
    ),
    api("linear-params-bias-no", _calc("linear_params", 3, 4, bias="no"), CnnkitError, "'bias'"),
    api("conv-output-size-nan", _calc("conv_output_size", NAN, 3), CnnkitError, "'size'"),
    api("conv-output-size-stride-zero", _calc("conv_output_size", 28, 3, 0), CnnkitError, "stride"),
    api(
        "compare-kernel-larger-than-input",
        _calc("compare_fc_conv", (28, 28, 1), hidden=10, conv_channels=(4,), kernel_size=29),
        ShapeError,
        "kernel_size",
    ),
    api(
        "compare-no-conv",
        _calc("compare_fc_conv", (28, 28, 1), hidden=10, conv_channels=()),
        CnnkitError,
        "conv_channels",
    ),
    api(
        "compare-bias-no",
        _calc("compare_fc_conv", (28, 28, 1), hidden=10, bias="no"),
        CnnkitError,
        "'bias'",
    ),
    api(
        "parse-layers-repeat-1e11",
        _rf("parse_layers", "conv3*99999999999"),
        CnnkitError,
        "repeat count",
    ),
    api(
        "parse-layers-a-million", _rf("parse_layers", "conv3*1000000"), CnnkitError, "1,000 layers"
    ),
    api(
        "parse-layers-kernel-5000-digits",
        _rf("parse_layers", "conv" + FIVE_THOUSAND_NINES),
        CnnkitError,
        "100,000",
    ),
    api("parse-layers-not-a-string", _rf("parse_layers", None), CnnkitError, "string"),
    api("layerspec-kernel-bool", _rf("LayerSpec.conv", True), CnnkitError, "kernel_size"),
    api(
        "layerspec-pool-padding-word",
        _rf("LayerSpec.pool", 2, padding="same"),
        CnnkitError,
        "padding",
    ),
    api("receptive-fields-not-layers", _rf("receptive_fields", [1]), CnnkitError, "LayerSpec"),
    api(
        "receptive-fields-jump-past-2-53",
        lambda: _rf("receptive_fields", _rf("parse_layers", "conv3/s100000*4")())(),
        CnnkitError,
        "2**53",
    ),
    api("get-kernel-size-bool", _kernels("get_kernel", "box", size=True), CnnkitError, "'size'"),
    api("get-kernel-size-float", _kernels("get_kernel", "box", size=3.0), CnnkitError, "'size'"),
    api("get-kernel-size-over-bound", _kernels("get_kernel", "box", size=1000), CnnkitError, "999"),
    api(
        "get-kernel-sigma-negative",
        _kernels("get_kernel", "gaussian", sigma=-1),
        CnnkitError,
        "sigma",
    ),
    api(
        "get-kernel-sigma-string",
        _kernels("get_kernel", "gaussian", sigma="1"),
        CnnkitError,
        "sigma",
    ),
    api(
        "get-kernel-sigma-nan", _kernels("get_kernel", "gaussian", sigma=NAN), CnnkitError, "sigma"
    ),
    api("get-kernel-unknown", _kernels("get_kernel", "nosuch"), CnnkitError, "nosuch"),
    api("get-kernel-unhashable-name", _kernels("get_kernel", []), CnnkitError, "kernel"),
    api("get-kernel-unknown-parameter", _kernels("get_kernel", "box", q=2), CnnkitError, "'q'"),
    api(
        "kernel-spec-parameter-twice",
        _kernels("kernel_from_spec", "box:size=3,size=4"),
        CnnkitError,
        "'size'",
    ),
    api("kernel-spec-not-a-string", _kernels("kernel_from_spec", None), CnnkitError, "'spec'"),
    api(
        "filter-image-nan",
        _kernels("filter_image", np.full((5, 5), NAN), np.ones((3, 3))),
        CnnkitError,
        "'image'",
    ),
    api(
        "filter-image-nan-kernel",
        _kernels("filter_image", np.ones((5, 5)), np.full((3, 3), NAN)),
        CnnkitError,
        "'kernel'",
    ),
    api(
        "filter-image-string",
        _kernels("filter_image", "img", np.ones((3, 3))),
        CnnkitError,
        "'image'",
    ),
    api(
        "filter-image-4d",
        _kernels("filter_image", np.ones((2, 5, 5, 3)), np.ones((3, 3))),
        ShapeError,
        "(H, W)",
    ),
    api(
        "filter-image-kernel-too-big",
        _kernels("filter_image", np.ones((5, 5)), np.ones((7, 7))),
        ShapeError,
        "7x7",
    ),
    api(
        "filter-image-boundary",
        _kernels("filter_image", np.ones((5, 5)), np.ones((3, 3)), boundary="wat"),
        CnnkitError,
        "boundary",
    ),
    api(
        "filter-image-boundary-list",
        _kernels("filter_image", np.ones((5, 5)), np.ones((3, 3)), boundary=[]),
        CnnkitError,
        "boundary",
    ),
    api(
        "filter-image-too-much-work",
        _kernels("filter_image", np.broadcast_to(0.0, (20000, 20000)), np.ones((7, 7))),
        ShapeError,
        "19,600,000,000 multiply-adds per channel, more than the 17,179,869,184 (2**34)",
    ),
    api(
        "kernel-responses-a-string",
        _kernels("kernel_responses", np.ones((5, 5)), "box"),
        CnnkitError,
        "specs",
    ),
    api("read-image-none", _images("read_image", None), CnnkitError, "'path'"),
    api("read-image-missing", _images("read_image", "/nonexistent/x.png"), CnnkitError, "x.png"),
    api("read-image-mode", _images("read_image", "x.png", mode="CMYK"), CnnkitError, "'mode'"),
    api(
        "write-image-suffix", _images("write_image", "y.txt", np.ones((3, 3))), CnnkitError, "y.txt"
    ),
    api(
        "write-image-shape",
        _images("write_image", "y.png", np.ones((3, 3, 2))),
        CnnkitError,
        "(3, 3, 2)",
    ),
    api(
        "write-image-strings",
        _images("write_image", "y.png", np.array([["a"]])),
        CnnkitError,
        "'array'",
    ),
    api(
        "write-image-normalize",
        _images("write_image", "y.png", np.ones((3, 3)), normalize="wat"),
        CnnkitError,
        "'mode'",
    ),
    api("to-uint8-inf", _images("to_uint8", np.array([np.inf])), CnnkitError, "infinite"),
    api("to-uint8-complex", _images("to_uint8", np.ones(2) * 1j), CnnkitError, "complex"),
    api(
        "preprocess-digit-1x1",
        _digits(np.ones((1, 1))),
        CnnkitError,
        "at least 2x2 pixels, got 1x1",
    ),
    api("preprocess-digit-nan", _digits(np.full((5, 5), NAN)), CnnkitError, "NaN"),
    api("preprocess-digit-strings", _digits(np.array([["a"]])), CnnkitError, "'image'"),
    api(
        "preprocess-digit-noise-is-not-uniform",
        _digits(np.random.default_rng(0).random((40, 50)) * 255),
        CnnkitError,
        "nothing stands out from the background",
    ),
    api("load-dataset-unknown", _data("load_dataset", "nosuch"), DataError, "nosuch"),
    api("load-dataset-split", _data("load_dataset", "mnist", "wat"), DataError, "'split'"),
    api(
        "load-dataset-data-dir-a-file",
        _data("load_dataset", "mnist", data_dir="notes.txt"),
        DataError,
        "data_dir",
    ),
    api(
        "load-dataset-data-dir-int",
        _data("load_dataset", "mnist", data_dir=5),
        DataError,
        "data_dir",
    ),
    api(
        "load-dataset-download-no",
        _data("load_dataset", "mnist", data_dir="d", download="no"),
        CnnkitError,
        "'download'",
    ),
    api(
        "fetch-data-dir-a-file",
        _data("fetch", "mnist", data_dir="notes.txt"),
        DataError,
        "data_dir",
    ),
    api(
        "fetch-source-missing",
        _data("fetch", "mnist", data_dir="d", source_dir="nowhere"),
        DataError,
        "source_dir",
    ),
    api("dataset-info-unknown", _data("dataset_info", "nosuch"), DataError, "nosuch"),
    api("summary-not-a-module", _summary("abc", (1, 28, 28)), CnnkitError, "nn.Module"),
    api("summary-input-nan", _summary("conv", (1, 1, NAN, 8)), CnnkitError, "input_size"),
    api("summary-input-huge", _summary("conv", (1, 100000, 100000)), CnnkitError, "2**26"),
    api("summary-depth-bool", _summary("conv", (1, 1, 8, 8), depth=True), CnnkitError, "depth"),
    api(
        "create-model-unknown",
        lambda: __import__("cnnkit.models.registry").models.registry.create_model("nosuch"),
        CnnkitError,
        "nosuch",
    ),
    api(
        "predict-checkpoint-none",
        lambda: __import__("cnnkit.analysis.predict").analysis.predict.predict(None, []),
        CnnkitError,
        "'checkpoint' parameter",
    ),
    api(
        "resolve-checkpoint-an-int",
        lambda: __import__("cnnkit.models.checkpoint").models.checkpoint.resolve_checkpoint(5),
        CnnkitError,
        "Got int 5",
    ),
    api(
        "list-models-pattern-an-int",
        lambda: __import__("cnnkit.models.registry").models.registry.list_models(5),
        CnnkitError,
        "'pattern' parameter of list_models",
    ),
    api(
        "train-config-batch-size-huge",
        lambda: __import__("cnnkit.training.config").training.config.TrainConfig(
            batch_size=2**20 + 1
        ),
        CnnkitError,
        "'batch_size'",
    ),
    api(
        "activation-unknown",
        lambda: __import__("cnnkit.ops.activations").ops.activations.get_activation("nosuch"),
        CnnkitError,
        "nosuch",
    ),
]


@pytest.mark.parametrize("call,error,fragment", API_CASES)
def test_api_bad_input_raises_a_typed_error_naming_the_parameter(call, error, fragment, workspace):
    before = files_in(workspace)
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert fragment in message, message
    assert "\n" not in message and len(message) < 600, message
    assert files_in(workspace) == before


def test_predict_refuses_top_zero_and_a_missing_checkpoint(checkpoints, workspace):
    from cnnkit.analysis.predict import predict
    from cnnkit.imaging.digits import example_digits

    digit = example_digits()[0]
    with pytest.raises(CnnkitError, match="'top'"):
        predict(checkpoints["ckpt"], [digit], top=0)
    with pytest.raises(CnnkitError, match="nosuch.pt"):
        predict("nosuch.pt", [digit])


# ------------------------------------------------------------------------------- subprocess


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["size", "28", "--bogus"], "unrecognized arguments: --bogus (see `cnnkit size --help`)"),
        (["rf", "conv3*99999999999"], "repeat count"),
        (["filter", "x.png", "-k", "box", "-o", "x.png"], "must not be the input image"),
    ],
)
def test_the_real_command_prints_one_line_and_exits_2(argv, fragment, workspace):
    r = run_cli(*argv, cwd=workspace, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, r.stderr
    assert r.stdout == ""


# ------------------------------------------------------------------------------- regressions
# one per example of issue 9, named after it, checking more than the table does


def test_rf_conv3_times_99999999999_is_refused_at_once_not_a_memory_error(capsys):
    start = time.perf_counter()
    code, _, err = run_in_process(["rf", "conv3*99999999999"], capsys)
    assert code == 2 and "must be an int from 1 to 1,000" in err
    assert time.perf_counter() - start < 5


def test_rf_conv3_times_a_million_as_json_is_refused_at_once(capsys):
    start = time.perf_counter()
    code, out, err = run_in_process(["rf", "conv3*1000000", "--json"], capsys)
    assert code == 2 and out == "" and "at most 1,000 layers" in err
    assert time.perf_counter() - start < 5


def test_rf_exactly_1000_layers_still_work_and_match_the_recurrence(capsys):
    from cnnkit.calc.receptive_field import MAX_LAYERS

    code, out, _ = run_in_process(["rf", f"conv3*{MAX_LAYERS}", "--json"], capsys)
    import json

    rows = json.loads(out)["layers"]
    assert code == 0 and len(rows) == MAX_LAYERS
    assert rows[-1]["size"] == [1 + 2 * MAX_LAYERS] * 2  # r_l = r_{l-1} + 2, jump 1


def test_conv2d_params_bias_no_is_refused_not_counted():
    from cnnkit.calc.params import conv2d_params

    with pytest.raises(CnnkitError, match="'bias'"):
        conv2d_params(3, 4, 3, bias="no")
    assert conv2d_params(3, 4, 3, bias=False).bias == 0


def test_kernels_list_with_output_is_refused_and_writes_nothing(workspace, capsys):
    code, out, err = run_in_process(["kernels", "--list", "-o", "k.png"], capsys)
    assert code == 2 and out == "" and "-o/--output" in err
    assert not (workspace / "k.png").exists()
    code, out, _ = run_in_process(["kernels", "--list"], capsys)
    assert code == 0 and "sobel-x" in out  # the list itself still works


def test_filter_x_jpg_to_x_jpg_keeps_the_photo(workspace, capsys):
    from PIL import Image

    photo = workspace / "x.jpg"
    Image.open(workspace / "x.png").save(photo)
    link = workspace / "link.jpg"
    link.symlink_to(photo)
    original = photo.read_bytes()
    for output in ("x.jpg", "./x.jpg", str(photo), "link.jpg"):
        code, _, err = run_in_process(["filter", "x.jpg", "-k", "box", "-o", output], capsys)
        assert code == 2 and "must not be the input image" in err, err
    assert photo.read_bytes() == original
    code, out, _ = run_in_process(["filter", "x.jpg", "-k", "box", "-o", "y.jpg"], capsys)
    assert code == 0 and (workspace / "y.jpg").is_file()


def test_kernel_box_size_3_size_4_is_refused_not_last_one_wins():
    from cnnkit.imaging.kernels import kernel_from_spec, parse_kernel_spec

    for spec in ("box:size=3,size=4", "box:3,size=4", "gaussian:5,1,sigma=2"):
        with pytest.raises(CnnkitError, match="twice"):
            parse_kernel_spec(spec)
    assert kernel_from_spec("gaussian:size=5,sigma=2").shape == (5, 5)


def test_compare_with_a_kernel_larger_than_the_input_is_refused_like_size(capsys):
    code_size, _, err_size = run_in_process(["size", "28", "--kernel", "29"], capsys)
    code_cmp, _, err_cmp = run_in_process(
        ["compare", "--input", "28x28x1", "--kernel", "29"], capsys
    )
    assert code_size == code_cmp == 2
    assert "29" in err_size and "kernel 29x29 is larger than the input 28x28" in err_cmp
    code, out, _ = run_in_process(["compare", "--input", "28x28x1", "--kernel", "28"], capsys)
    assert code == 0 and "conv1 1 → 64, 28×28" in out  # a kernel as large as the input fits


def test_summary_layer_without_boxes_is_refused(capsys):
    code, out, err = run_in_process(["summary", "simple-cnn", "--layer", "conv1"], capsys)
    assert code == 2 and out == "" and "--layer only goes with --boxes" in err


def test_argparse_errors_are_one_line_with_see_help(capsys):
    code, out, err = run_in_process(["filter", "x.png"], capsys)
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "cnnkit filter: error: the following arguments are required: --kernel/-k, -o/--output "
        "(see `cnnkit filter --help`)"
    ]


def test_negative_numbers_are_option_values(workspace, capsys):
    code, out, err = run_in_process(
        ["plot", "activations", "-o", "a.png", "--range", "-1e1", "-.5"], capsys
    )
    assert code == 0 and (workspace / "a.png").is_file(), err
    code, _, err = run_in_process(["size", "28", "--padding", "-1,0,0,0"], capsys)
    assert code == 2 and "'padding'" in err and "expected one argument" not in err


def test_plot_range_must_be_finite_and_its_width_too(capsys):
    for lo, hi in (("-1e308", "1e308"), ("1", "inf"), ("-inf", "0"), ("nan", "1")):
        code, _, err = run_in_process(
            ["plot", "activations", "-o", "a.png", "--range", lo, hi], capsys
        )
        assert code == 2 and "'--range'" in err and "finite" in err, (lo, hi, err)


def test_data_fetch_into_a_file_or_an_unwritable_folder_is_one_line(workspace, read_only, capsys):
    for data in ("notes.txt", "notes.txt/sub", f"{read_only}/data"):
        code, _, err = run_in_process(["data", "fetch", "mnist", "--data-dir", data], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@needs_mnist
def test_a_read_only_dataset_folder_is_a_data_error(tmp_path):
    from cnnkit.data import fetch

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    folder.chmod(0o555)
    try:
        with pytest.raises(DataError, match="cannot fetch MNIST into"):
            fetch("mnist", data_dir=tmp_path / "data", source_dir=SHARED_MNIST, progress=False)
    finally:
        folder.chmod(0o755)


def test_a_failed_fetch_leaves_no_data_dir_behind(tmp_path):
    from cnnkit.data import fetch

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="does not have"):
        fetch("mnist", data_dir=tmp_path / "a" / "b", source_dir=empty, progress=False)
    assert not (tmp_path / "a").exists()
    with pytest.raises(DataError, match="source_dir"):
        fetch("mnist", data_dir=tmp_path / "c", source_dir=tmp_path / "nowhere")
    assert not (tmp_path / "c").exists()


def test_gaussian_with_a_tiny_sigma_is_the_identity_not_nan():
    from cnnkit.imaging.kernels import get_kernel

    with np.errstate(all="raise"):  # no warning either
        for sigma in (1e-300, 1e-200, 1e-5):
            np.testing.assert_array_equal(
                get_kernel("gaussian", size=5, sigma=sigma), get_kernel("identity", size=5)
            )
    # the formula is unchanged elsewhere: compare with the separable definition
    offsets = np.arange(5) - 2.0
    g = np.exp(-(offsets**2) / (2 * 1.4**2))
    np.testing.assert_allclose(
        get_kernel("gaussian", size=5, sigma=1.4), np.outer(g, g) / g.sum() ** 2, rtol=1e-12
    )


def test_an_image_over_the_pixel_bound_is_refused_from_its_header(workspace, monkeypatch):
    import cnnkit.imaging.images as images

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 40 * 50 - 1)
    with pytest.raises(CnnkitError, match=r"50x40 = 2,000 pixels, more than the 1,999"):
        images.read_image("x.png")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 40 * 50)
    assert images.read_image("x.png").shape == (40, 50)


def test_filter_image_one_channel_at_a_time_matches_scipy():
    scipy_signal = pytest.importorskip("scipy.signal")
    from cnnkit.imaging.kernels import filter_image

    rng = np.random.default_rng(1)
    image = rng.random((9, 11, 3))
    kernel = rng.random((3, 3))
    got = filter_image(image, kernel, boundary="symmetric")
    for c in range(3):
        want = scipy_signal.correlate2d(image[:, :, c], kernel, mode="same", boundary="symm")
        np.testing.assert_allclose(got[:, :, c], want, rtol=1e-12)


@pytest.mark.parametrize("boundary", ["symmetric", "zeros", "reflect", "replicate", "circular"])
def test_filter_image_in_strips_equals_one_padded_convolution(boundary, monkeypatch):
    """The strips that bound filter_image's memory give conv2d(padding="same")'s result."""
    import cnnkit.imaging.kernels as kernels
    from cnnkit.ops import conv2d

    rng = np.random.default_rng(2)
    image = rng.random((13, 11))
    for shape in ((3, 3), (4, 2), (1, 5), (6, 6)):
        kernel = rng.random(shape)
        want = conv2d(image[None, None], kernel[None, None], padding="same",
                      padding_mode=boundary)[0, 0]  # fmt: skip
        for strip_values in (1, 200, 10**9):  # one output row per strip, a few, all at once
            monkeypatch.setattr(kernels, "MAX_FILTER_STRIP_VALUES", strip_values)
            got = kernels.filter_image(image, kernel, boundary=boundary)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_an_os_error_or_memory_error_in_a_command_is_one_line(monkeypatch, capsys):
    import cnnkit.cli.commands.chapter as chapter

    def fail(error: BaseException) -> Callable[[Any], int]:
        def handler(args: Any) -> int:
            raise error

        return handler

    for error, words in (
        (PermissionError(13, "Permission denied", "/some/out.png"), "/some/out.png: Permission"),
        (OSError(28, "No space left on device"), "No space left on device"),
        (MemoryError("Unable to allocate 298. GiB"), "not enough memory"),
        (
            RuntimeError(  # torch's CPU allocator, e.g. `summary simple-cnn --input 1x1e5x1e5`
                "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                "allocate memory: you tried to allocate 40000000000 bytes."
            ),
            "not enough memory for this request: 37.3 GiB asked",
        ),
    ):
        monkeypatch.setattr(chapter, "_chapter", fail(error))
        code, _, err = run_in_process(["chapter"], capsys)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setattr(chapter, "_chapter", fail(RuntimeError("a bug, not a user error")))
    with pytest.raises(RuntimeError, match="a bug"):  # other errors are not hidden
        main(["chapter"])


def test_long_values_are_shortened_in_messages(capsys):
    code, _, err = run_in_process(["rf", "conv3*" + FIVE_THOUSAND_NINES], capsys)
    assert code == 2 and "(5,006 characters)" in err and len(err) < 600


def test_data_info_and_load_dataset_read_the_gz_files_as_distributed(tmp_path, capsys):
    if not SHARED_MNIST.is_dir():
        pytest.skip("shared MNIST copy absent")
    from cnnkit.data import load_dataset

    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for gz in SHARED_MNIST.glob("*.gz"):
        shutil.copy(gz, folder / gz.name)
    code, out, _ = run_in_process(
        ["data", "info", "mnist", "--data-dir", str(tmp_path / "data")], capsys
    )
    assert code == 0 and "mnist (MNIST): verified, 4/4 files" in out, out
    test = load_dataset("mnist", "test", data_dir=tmp_path / "data")
    assert test.images.shape == (10000, 28, 28)
    # one damaged .gz is named, not read as data
    damaged = folder / "t10k-labels-idx1-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:-100])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", "test", data_dir=tmp_path / "data")


def test_a_gzip_bomb_is_refused_after_reading_the_bound(tmp_path):
    import gzip

    from cnnkit.data.idx import read_decompressed

    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(bytes(10_000)))  # 10 kB of zeros in ~40 bytes
    with pytest.raises(DataError, match="more than 9,999 bytes"):
        read_decompressed(bomb, max_bytes=9_999)
    assert len(read_decompressed(bomb, max_bytes=10_000)) == 10_000


def test_a_wide_but_finite_range_still_plots(workspace, capsys):
    code, _, err = run_in_process(
        ["plot", "activations", "-o", "b.png", "--range", "-1e307", "1e307"], capsys
    )
    assert code == 0 and (workspace / "b.png").is_file() and err == "", err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def _parsers(parser: Any, name: str = "cnnkit") -> Any:
    import argparse

    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_help_shows_no_python_values():
    import argparse

    from cnnkit.cli.main import build_parser

    for name, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest}: no help text"
        for line in parser.format_help().splitlines():
            assert "None" not in line and "default: (" not in line, f"{name}: {line}"
