"""--device on visualize, summary, erf and serve, through the CLI (the CPU side; the CUDA side
runs where a GPU is, marked `gpu`, and is skipped, saying why, without one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.models.checkpoint import load_checkpoint

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
