"""--device on visualize, summary, erf, serve, predict and evaluate, through the CLI (the CPU
side; the CUDA side runs where a GPU is, marked `gpu`, and is skipped, saying why, without
one)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import free_port, lines_until_url, needs_mnist, start_serve

from cnnkit.models.checkpoint import load_checkpoint
from cnnkit.models.registry import create_model

no_cuda = pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
needs_cuda = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def assert_refused(r) -> None:
    """Exit 2, one line naming the missing device, no traceback."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device is available" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


# --------------------------------------------------------------------------- visualize


def test_visualize_takes_a_device_and_states_it(cli, tmp_path, random_checkpoint):
    auto, cpu = tmp_path / "auto.png", tmp_path / "cpu.png"
    r = cli("visualize", str(random_checkpoint), "-o", str(auto))  # default: auto
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(auto)  # stdout stays the figure's path
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert r.stderr.splitlines()[0] == f"device: {expected} (auto)"
    r = cli("visualize", str(random_checkpoint), "-o", str(cpu), "--device", "cpu")
    assert r.returncode == 0 and r.stderr.splitlines()[0] == "device: cpu", r.stderr
    assert cpu.stat().st_size > 0


@no_cuda
def test_visualize_refuses_a_missing_device(cli, tmp_path, random_checkpoint):
    out = tmp_path / "v.png"
    assert_refused(cli("visualize", str(random_checkpoint), "-o", str(out), "--device", "cuda"))
    assert not out.exists()  # nothing half-written


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_feature_maps_on_a_device_match_plain_torch_and_come_back(random_checkpoint, device):
    import torch.nn.functional as F

    from cnnkit.analysis.feature_maps import conv_feature_maps

    model = load_checkpoint(random_checkpoint).model
    x = np.random.default_rng(1).normal(size=(3, 1, 28, 28)).astype(np.float32)
    maps = conv_feature_maps(model, x, device=device)
    assert next(model.parameters()).device.type == "cpu"  # the model's device is restored
    with torch.no_grad():
        a1 = F.relu(model.conv1(torch.from_numpy(x)))  # oracle: torch on the CPU
    for i in range(3):
        assert isinstance(maps[i][0].maps, np.ndarray)
        np.testing.assert_allclose(maps[i][0].maps, a1[i].numpy(), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- summary


def test_summary_takes_a_device_and_its_json_stays_clean(cli):
    default = cli("summary", "simple-cnn", "--json")
    on_cpu = cli("summary", "simple-cnn", "--json", "--device", "cpu")
    assert default.returncode == 0 and on_cpu.returncode == 0, default.stderr + on_cpu.stderr
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default.stderr.splitlines() == [f"device: {expected} (auto)"]
    assert on_cpu.stderr.splitlines() == ["device: cpu"]
    # stdout is only the JSON, the same wherever the model ran (shapes, parameters, MACs)
    assert json.loads(default.stdout) == json.loads(on_cpu.stdout)
    assert json.loads(on_cpu.stdout)["total_params"] == sum(
        p.numel() for p in create_model("simple-cnn").parameters()
    )  # oracle: torch's own parameter count


@no_cuda
def test_summary_refuses_a_missing_device(cli):
    assert_refused(cli("summary", "simple-cnn", "--json", "--device", "cuda"))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_summary_api_on_a_device_equals_the_cpu(device):
    from cnnkit.analysis.summary.core import summary

    model = create_model("simple-cnn")
    here = summary(model, (1, 28, 28))
    there = summary(model.to(device), (1, 28, 28), device=device)
    assert [(r.name, r.output_shape, r.trainable_params, r.macs) for r in there.rows] == [
        (r.name, r.output_shape, r.trainable_params, r.macs) for r in here.rows
    ]


# --------------------------------------------------------------------------- erf


@needs_mnist
def test_erf_takes_a_device_and_its_json_stays_clean(cli, tmp_path, mnist_data_dir,
                                                     random_checkpoint):  # fmt: skip
    args = ["erf", str(random_checkpoint), "--images", "8", "--data-dir", str(mnist_data_dir)]
    r = cli(*args, "-o", str(tmp_path / "a.png"), "--json", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["device: cpu"]
    data = json.loads(r.stdout)
    assert data["n_images"] == 8 and data["mass_inside"] == pytest.approx(1.0)
    r = cli(*args, "-o", str(tmp_path / "b.png"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert r.returncode == 0 and r.stderr.splitlines() == [f"device: {expected} (auto)"]
    if not torch.cuda.is_available():
        out = tmp_path / "c.png"
        assert_refused(cli(*args, "-o", str(out), "--device", "cuda"))
        assert not out.exists()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_erf_api_on_a_device_matches_the_cpu_and_restores_the_model(random_checkpoint, device):
    from cnnkit.analysis.summary.erf import effective_receptive_field

    model = load_checkpoint(random_checkpoint).model
    images = np.random.default_rng(2).normal(size=(5, 1, 28, 28)).astype(np.float32)
    there = effective_receptive_field(model, images, layer="conv2", device=device, batch_size=2)
    assert next(model.parameters()).device.type == "cpu"  # the model's device is restored
    # oracle: plain autograd on the CPU, the centre unit of conv2 over all the images
    x = torch.from_numpy(images).requires_grad_(True)
    model.eval()
    out = model.conv2(model.pool(torch.relu(model.conv1(x))))
    out[:, :, there.unit[0], there.unit[1]].sum().backward()
    assert x.grad is not None and there.unit == (7, 7)
    grad = x.grad.abs().sum(1).sum(0).double()
    np.testing.assert_allclose(there.grad, (grad / grad.max()).numpy(), rtol=1e-4, atol=1e-6)


# --------------------------------------------------------------------------- serve


@no_cuda
def test_serve_refuses_a_missing_device(cli):
    assert_refused(cli("serve", "--device", "cuda", "--port", "0"))


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_playground_on_a_device_gives_cpu_outputs_equal_to_the_cpu(random_checkpoint, device):
    from cnnkit.web.model import Playground

    here = Playground.load(random_checkpoint, replicas=1)
    there = Playground.load(random_checkpoint, replicas=1, device=device)
    assert there.device == device and here.device == "cpu"
    with there.replica() as model:
        assert next(model.parameters()).device.type == device
    pixels = np.random.default_rng(3).uniform(0, 255, size=(28, 28))
    a, b = here.forward(pixels), there.forward(pixels)
    assert b.logits.device.type == "cpu" and len(a.rows) == len(b.rows)
    for ra, rb in zip(a.rows, b.rows, strict=True):
        assert (ra is None) == (rb is None)
        if rb is not None:
            assert rb.device.type == "cpu"  # ready for encoding
            torch.testing.assert_close(rb, ra, rtol=1e-4, atol=1e-4)
    # saliency: the gradient reaches the CPU input through the copies to the device and back
    g = there.forward(pixels, grad=True)
    g.rows[0][0, 0, 14, 14].backward()
    ref = here.forward(pixels, grad=True)
    ref.rows[0][0, 0, 14, 14].backward()
    assert g.x.grad is not None and g.x.grad.device.type == "cpu"
    torch.testing.assert_close(g.x.grad, ref.x.grad, rtol=1e-4, atol=1e-5)
    kh, kw = load_checkpoint(random_checkpoint).model.conv1.kernel_size
    assert int((g.x.grad != 0).sum()) == kh * kw  # one conv1 unit sees its kernel's window


def test_serve_states_its_device(tmp_path):
    import signal

    proc = start_serve(tmp_path, "--port", str(free_port()), "--device", "cpu")
    try:
        lines = lines_until_url(proc)
        assert "device: cpu\n" in lines, lines
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


# --------------------------------------------------------------------------- predict, evaluate


def test_predict_states_its_device_on_stderr_and_keeps_stdout(cli, random_checkpoint):
    """predict says where the model ran, as visualize and summary do, on stderr: stdout is
    the predictions (or JSON), the same with --device auto and cpu on a machine without CUDA."""
    from cnnkit.imaging.digits import example_digits

    digit = str(example_digits()[0])
    auto = cli("predict", str(random_checkpoint), digit, "--json")
    cpu = cli("predict", str(random_checkpoint), digit, "--json", "--device", "cpu")
    assert auto.returncode == 0 and cpu.returncode == 0, (auto.stderr, cpu.stderr)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert auto.stderr.splitlines() == [f"device: {expected} (auto)"]
    assert cpu.stderr.splitlines() == ["device: cpu"]
    assert json.loads(cpu.stdout)[0]["path"] == digit
    if not torch.cuda.is_available():
        assert auto.stdout == cpu.stdout


@needs_mnist
def test_evaluate_states_its_device_on_stderr(cli, random_checkpoint):
    from conftest import SHARED_MNIST

    r = cli("evaluate", str(random_checkpoint), "--data-dir", str(SHARED_MNIST), "--json",
            "--device", "cpu")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == ["device: cpu"]
    assert json.loads(r.stdout)["num_images"] == 10000
