"""The GPU side of --device and --precision (marked `gpu`; skipped, saying why, without CUDA).

Run on a machine with a GPU by benchmarks/gpu_check.sh."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import needs_mnist

from cnnkit.models.checkpoint import load_checkpoint
from cnnkit.training.loop import train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_auto_picks_cuda_and_bf16_where_supported():
    from cnnkit.models.device import resolve_device, resolve_precision

    assert resolve_device("auto") == "cuda"
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert resolve_precision("auto", "cuda") == expected


@needs_mnist
def test_fast_recipe_on_cuda_reaches_99_and_its_checkpoint_loads_on_cpu(mnist_data_dir, tmp_path):
    result = train(recipe="fast", device="cuda", seed=0, data_dir=mnist_data_dir,
                   out_dir=tmp_path, report=False, progress=False)  # fmt: skip
    assert result.config["device"] == "cuda"
    assert result.history[-1]["test_acc"] >= 0.985, result.history
    loaded = load_checkpoint(result.checkpoint)
    model = loaded.model.eval()
    assert next(model.parameters()).device.type == "cpu"
    x = torch.randn(8, 1, 28, 28)
    with torch.inference_mode():
        cpu_logits = model(x)
        gpu_logits = model.to("cuda")(x.to("cuda")).cpu()
    torch.testing.assert_close(cpu_logits, gpu_logits, rtol=1e-3, atol=1e-3)


@needs_mnist
def test_chapter_recipe_on_cuda_resumes_and_matches_cpu_closely(mnist_data_dir, tmp_path):
    opts = dict(limit=2000, test_limit=1000, epochs=1, data_dir=mnist_data_dir,
                out_dir=tmp_path, report=False, progress=False)  # fmt: skip
    gpu = train(device="cuda", run_name="gpu", **opts)
    cpu = train(device="cpu", threads=1, run_name="cpu", **opts)
    assert gpu.config["precision"] == "fp32"
    assert abs(gpu.history[0]["test_acc"] - cpu.history[0]["test_acc"]) < 0.03
    resumed = train(resume=tmp_path / "gpu", epochs=2, data_dir=mnist_data_dir, progress=False)
    assert len(resumed.history) == 2 and np.isfinite(resumed.history[-1]["test_loss"])
