"""`cnnkit export` and `cnnkit predict model.onnx`: ONNX checked by onnxruntime against torch,
and a deployment path that never imports torch (asserted in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import MNIST_ABSENT, REPO, SHARED_MNIST, make_checkpoint

from cnnkit.core.errors import CnnkitError
from cnnkit.models.onnx_export import OPSET, export_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

NORMALIZE = [0.1307, 0.3081]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder with a seeded simple-cnn checkpoint (untrained: the check is numeric)."""
    root = tmp_path_factory.mktemp("run")
    make_checkpoint(root / "checkpoint.pt", config={"normalize": NORMALIZE}, epoch=1)
    return root


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The real MNIST test set when the shared copy is there, else an empty folder."""
    if MNIST_ABSENT is None:
        return SHARED_MNIST
    return tmp_path_factory.mktemp("no-data")


@pytest.fixture(scope="module")
def exported(run_dir, data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    report = export_onnx(run_dir, path, data_dir=data_dir)
    return path, report


def test_export_report_meets_the_goals_on_256_images(exported):
    _, report = exported
    assert report.images == 256
    assert report.max_abs_diff <= 1e-4
    assert report.top1_agreement == 1.0
    if SHARED_MNIST.is_dir():
        assert report.image_source == "mnist test set"


def test_file_has_dynamic_batch_opset_and_metadata(exported):
    path, _ = exported
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "batch" and not batch.HasField("dim_value")
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["cnnkit.classes"]) == [str(i) for i in range(10)]
    assert json.loads(meta["cnnkit.normalize"]) == NORMALIZE
    assert json.loads(meta["cnnkit.input_shape"]) == [1, 28, 28]
    assert meta["cnnkit.model"] == "simple-cnn"


@pytest.mark.parametrize("batch", [1, 3, 17])
def test_onnxruntime_equals_torch_for_any_batch_size(exported, run_dir, batch):
    from cnnkit.models.checkpoint import load_checkpoint

    path, _ = exported
    model = load_checkpoint(run_dir).model
    x = torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(batch))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        ours = model(x).numpy()
    assert theirs.shape == (batch, 10)
    np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)


def test_cli_export_prints_the_check_and_writes_the_file(cli, run_dir, data_dir, tmp_path):
    r = cli("export", str(run_dir), "-o", "m.onnx", "--data-dir", str(data_dir), "--images", "64")
    assert r.returncode == 0, r.stderr
    assert "wrote m.onnx: simple-cnn, opset 17" in r.stdout
    line = next(x for x in r.stdout.splitlines() if "max |logit difference|" in x)
    diff = float(line.split("max |logit difference| ")[1].split()[0])
    assert diff <= 1e-4 and "top-1 agreement 100.00%" in line and "on 64 images" in line
    assert (tmp_path / "m.onnx").stat().st_size > 100_000  # the weights are in the file


def test_export_refuses_when_the_goal_is_missed_and_writes_nothing(run_dir, tmp_path):
    # A tolerance no real difference can meet (< 0): the refusal path, not a faked model.
    out = tmp_path / "refused.onnx"
    with pytest.raises(CnnkitError, match=r"refused to export simple-cnn.*nothing written"):
        export_onnx(run_dir, out, n_images=8, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("nowhere.pt", "-o", "m.onnx"), "no such checkpoint"),
        (("RUN", "-o", "m.txt"), "must end in .onnx"),
        (("RUN", "-o", "m.onnx", "--opset", "7"), "'opset'"),
    ],
)
def test_bad_export_arguments_are_one_line(cli, run_dir, args, needle):
    r = cli("export", *[str(run_dir) if a == "RUN" else a for a in args])
    assert r.returncode == 2, r.stdout
    assert needle in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# A fresh interpreter in which importing torch fails; it also checks sys.modules at the end.
NO_TORCH = """
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch imported on the ONNX path: " + name)
sys.meta_path.insert(0, NoTorch())
from cnnkit.cli.main import main
code = main(sys.argv[1:])
assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules), "torch loaded"
sys.exit(code)
"""


def test_predict_onnx_matches_the_checkpoint_without_importing_torch(exported, run_dir, cli):
    path, _ = exported
    r = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "predict", str(path), "--examples", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    via_onnx = json.loads(r.stdout)
    via_torch = json.loads(
        cli("predict", str(run_dir / "checkpoint.pt"), "--examples", "--json").stdout
    )
    assert len(via_onnx) == len(via_torch) == 10
    for a, b in zip(via_onnx, via_torch, strict=True):
        assert a["path"] == b["path"] and a["label"] == b["label"]
        assert [c["label"] for c in a["top"]] == [c["label"] for c in b["top"]]
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5)


def test_the_no_torch_guard_does_fire(exported, run_dir):
    # The guard itself must be able to fail: the checkpoint path imports torch.
    r = subprocess.run(
        [sys.executable, "-c", NO_TORCH, "predict", str(run_dir / "checkpoint.pt"), "--examples"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert r.returncode != 0
    assert "torch imported on the ONNX path" in r.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the legacy exporter's notice
def test_predict_refuses_an_onnx_file_without_cnnkit_metadata(tmp_path, cli):
    bare = tmp_path / "bare.onnx"
    torch.onnx.export(
        torch.nn.Linear(4, 2), (torch.zeros(1, 4),), str(bare), dynamo=False
    )  # no metadata
    r = cli("predict", "bare.onnx", "--examples")
    assert r.returncode == 2
    assert "no 'cnnkit.classes' in its metadata" in r.stderr
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    r = cli("predict", "junk.onnx", "--examples")
    assert r.returncode == 2 and "not a readable ONNX model" in r.stderr
