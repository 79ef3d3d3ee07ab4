"""The playground's API (`cnnkit serve`), every number against an independent oracle.

- predictions: `cnnkit.analysis.predict` on the same file; layer maps: a plain torch forward
  with hooks on the modules (lone ops recomputed with torch); boxes: `cnnkit.rf_box`;
  saliency: torch autograd on the module outputs and `gradient_receptive_field`;
  convolutions: `torch.nn.functional.conv2d` and `scipy.signal.correlate2d`; receptive
  fields: `cnnkit rf --json`.
- bad requests (413, 415, 422, 404, 405, a decompression-bomb header): the right code, a
  readable `{"error"}`, and the server answers the next request.
- a real `cnnkit serve` in a subprocess: URL printed, requests answered, SIGINT -> exit 0.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import JAPANESE, SHARED_MNIST, free_port, lines_until_url, start_serve
from PIL import Image
from scipy import signal as sps

import cnnkit
from cnnkit.analysis.predict import predict as cnnkit_predict
from cnnkit.analysis.summary import gradient_receptive_field
from cnnkit.imaging.digits import example_digits, example_label, load_digit
from cnnkit.models.checkpoint import load_checkpoint, save_checkpoint
from cnnkit.models.registry import create_model
from cnnkit.web import api
from cnnkit.web.app import CSP, create_app
from cnnkit.web.model import Playground, bundled_checkpoint, find_checkpoint

with warnings.catch_warnings():  # starlette 1.x asks for "httpx2"; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BUNDLED = bundled_checkpoint()
CIFAR_NORMALIZE = ([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616])


# --------------------------------------------------------------------------- fixtures


def _custom_cnn_checkpoint(folder: Path) -> Path:
    """A second registry model (3x32x32 input, other layers), random weights, seeded."""
    torch.manual_seed(1)
    model = create_model("custom-cnn")
    return save_checkpoint(
        folder / "custom.pt",
        model_name="custom-cnn",
        model_args={},
        state_dict=model.state_dict(),
        config={
            "dataset": "cifar10",
            "normalize": CIFAR_NORMALIZE,
            "classes": [f"c{i}" for i in range(10)],
        },  # fmt: skip
        optimizer_state={},
        epoch=0,
        rng_state={},
        history=[],
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        "simple-cnn": BUNDLED,
        "custom-cnn": _custom_cnn_checkpoint(tmp_path_factory.mktemp("ck")),
    }


@pytest.fixture(scope="module")
def clients(checkpoints: dict[str, Path]) -> dict[str, TestClient]:
    return {name: TestClient(create_app(path)) for name, path in checkpoints.items()}


@pytest.fixture(scope="module")
def client(clients: dict[str, TestClient]) -> TestClient:
    return clients["simple-cnn"]


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _stroke_png(size: int = 280) -> bytes:
    """A canvas-like drawing: a dark '7' stroke on a transparent RGBA background."""
    a = np.zeros((size, size, 4), dtype=np.uint8)
    s = size // 10
    a[2 * s : 3 * s, 2 * s : 8 * s] = (0, 0, 0, 255)
    for i in range(2 * s, 9 * s):
        x = 8 * s - (i - 2 * s) * 4 // 7
        a[i, x - s // 2 : x + s // 2] = (0, 0, 0, 255)
    return _png(a)


def decode(m: dict) -> np.ndarray:
    """A u8 map back to floats (the contract's decoding)."""
    data = np.frombuffer(base64.b64decode(m["data"]), dtype=np.uint8).reshape(m["shape"])
    return m["min"] + data / 255.0 * (m["max"] - m["min"])


def _predict(client: TestClient, body: bytes, ctype: str = "image/png", layers: bool = True):
    url = "/api/predict" + ("" if layers else "?layers=0")
    return client.post(url, content=body, headers={"content-type": ctype})


def _image_for(name: str) -> bytes:
    if name == "simple-cnn":
        return example_digits()[3].read_bytes()
    rng = np.random.default_rng(0)
    return _png(rng.integers(0, 256, (40, 50, 3)))


# --------------------------------------------------------------------------- model and predict


@pytest.mark.parametrize("name", ["simple-cnn", "custom-cnn"])
def test_model_rows_are_the_summary_rows(clients, checkpoints, name):
    info = clients[name].get("/api/model").json()
    ckpt = load_checkpoint(checkpoints[name])
    shape = tuple(info["input_shape"])
    s = cnnkit.summary(ckpt.model, shape)
    assert info["name"] == name
    assert [r["name"] for r in info["layers"]] == [r.name for r in s.rows]
    for got, row in zip(info["layers"], s.rows, strict=True):
        assert got["output_shape"] == list(row.output_shape[1:])
        assert (got["params"], got["macs"]) == (row.params, row.macs)
        assert got["spatial"] == (len(row.output_shape) == 4)
        if row.rf.status == "local":
            assert got["rf"] == {"size": list(row.rf.size), "jump": list(row.rf.jump),
                                 "start": list(row.rf.start)}  # fmt: skip
        else:
            assert got["rf"] is None
    # the parameter total against the tensors themselves
    assert info["totals"]["params"] == sum(p.numel() for p in ckpt.model.parameters())
    assert info["totals"]["macs"] == sum(r["macs"] for r in info["layers"])


def test_bundled_model_reports_its_recorded_accuracy(client):
    recorded = json.loads(BUNDLED.with_suffix(".json").read_text())["accuracy"]
    info = client.get("/api/model").json()
    assert info["accuracy"] == recorded and recorded > 0.97
    assert info["classes"] == [str(i) for i in range(10)]


def test_bundled_model_is_small_and_stripped():
    assert BUNDLED.stat().st_size < 3_000_000
    raw = torch.load(BUNDLED, map_location="cpu", weights_only=True)
    assert raw["optimizer_state"] == {} and "data_dir" not in raw["config"]
    assert raw["version"] == 2 and re.fullmatch(r"[0-9a-f]{64}", raw["digest"])  # SHA-256


@pytest.mark.parametrize("path", example_digits(), ids=lambda p: p.name)
def test_predict_equals_cnnkit_predict(client, path):
    r = _predict(client, path.read_bytes())
    assert r.status_code == 200, r.text
    got = r.json()
    (oracle,) = cnnkit_predict(BUNDLED, [path], top=10)
    probs = {c.label: c.probability for c in oracle.top}
    np.testing.assert_allclose(got["probabilities"], [probs[k] for k in range(10)], atol=1e-6)
    assert got["predicted"] == oracle.label
    np.testing.assert_array_equal(np.array(got["pixels"]), load_digit(path))
    np.testing.assert_allclose(decode(got["input"]), load_digit(path), atol=0.5 + 1e-9)


def test_bundled_model_reads_the_bundled_digits(client):
    right = sum(
        _predict(client, p.read_bytes(), layers=False).json()["predicted"] == example_label(p)
        for p in example_digits()
    )
    assert right >= 9  # 10 real MNIST test digits; the model has 99% test accuracy


def test_predict_a_drawing_and_a_jpeg(client, tmp_path):
    drawing = _stroke_png()
    (tmp_path / "d.png").write_bytes(drawing)
    got = _predict(client, drawing).json()
    (oracle,) = cnnkit_predict(BUNDLED, [tmp_path / "d.png"], top=10)
    assert got["predicted"] == oracle.label == 7
    jpeg = io.BytesIO()
    Image.open(example_digits()[5]).convert("L").save(jpeg, format="JPEG", quality=95)
    (tmp_path / "d.jpg").write_bytes(jpeg.getvalue())
    got = _predict(client, jpeg.getvalue(), "image/jpeg").json()
    (oracle,) = cnnkit_predict(BUNDLED, [tmp_path / "d.jpg"], top=10)
    assert got["predicted"] == oracle.label
    np.testing.assert_allclose(got["probabilities"][oracle.label], oracle.probability, atol=1e-6)


def _oracle_rows(model, x: torch.Tensor, rows: list[dict]) -> list[np.ndarray]:
    """Each summary row's output from a plain torch forward with hooks (cloned at hook time);
    rows without a module (functional relu, flatten) recomputed from the row before."""
    modules = dict(model.named_modules())
    seen: dict[str, list[torch.Tensor]] = {}
    handles = [
        m.register_forward_hook(
            lambda mod, inp, out, n=n: seen.setdefault(n, []).append(out.detach().clone())
        )
        for n, m in modules.items()
        if n and not list(m.children())
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    out: list[np.ndarray] = []
    for row in rows:
        base, _, k = row["name"].partition("#")
        if base in modules:
            t = seen[base][int(k or 1) - 1]
        elif row["type"] == "relu":
            t = torch.relu(torch.from_numpy(out[-1]))[None]
        elif row["type"] == "flatten":
            t = torch.from_numpy(out[-1]).flatten()[None]
        else:
            raise AssertionError(f"no oracle for row {row}")
        out.append(t[0].numpy())
    return out


@pytest.mark.parametrize("name", ["simple-cnn", "custom-cnn"])
def test_layer_maps_equal_a_torch_forward_with_hooks(clients, checkpoints, name):
    c = clients[name]
    info = c.get("/api/model").json()
    got = _predict(c, _image_for(name)).json()
    assert [m["index"] for m in got["layers"]] == list(range(len(info["layers"])))
    pg = c.app.state.playground
    x = torch.from_numpy(pg.normalized(np.array(got["pixels"])))
    oracle = _oracle_rows(load_checkpoint(checkpoints[name]).model, x, info["layers"])
    for layer, want in zip(got["layers"], oracle, strict=True):
        m = layer["maps"]
        assert m["shape"] == list(want.shape), layer["name"]
        assert m["min"] == pytest.approx(want.min(), abs=1e-5)
        assert m["max"] == pytest.approx(want.max(), abs=1e-5)
        step = (m["max"] - m["min"]) / 255
        np.testing.assert_allclose(decode(m), want, atol=step / 2 + 1e-5, err_msg=layer["name"])
    # the logits row gives the probabilities
    logits = torch.from_numpy(oracle[-1]).double()
    np.testing.assert_allclose(got["probabilities"], torch.softmax(logits, 0).numpy(), atol=1e-6)


def test_predict_without_layers(client):
    got = _predict(client, example_digits()[0].read_bytes(), layers=False).json()
    assert "layers" not in got and len(got["probabilities"]) == 10


# --------------------------------------------------------------------------- one unit


def _units(info: dict) -> list[tuple[int, int, int, int]]:
    """(layer, channel, y, x) for every row: corners, edges and the centre of spatial rows."""
    out = []
    for row in info["layers"]:
        shape = row["output_shape"]
        if len(shape) == 3:
            c, h, w = shape
            for y, x in ((0, 0), (h - 1, w - 1), (h // 2, w // 2), (0, w - 1)):
                out.append((row["index"], c - 1, y, x))
        else:
            out.append((row["index"], shape[0] - 1, 0, 0))
    return out


@pytest.mark.parametrize("name", ["simple-cnn", "custom-cnn"])
def test_unit_box_equals_rf_box(clients, checkpoints, name):
    c = clients[name]
    info = c.get("/api/model").json()
    pixels = _predict(c, _image_for(name), layers=False).json()["pixels"]
    model = load_checkpoint(checkpoints[name]).model
    shape = tuple(info["input_shape"])
    for layer, ch, y, x in _units(info):
        got = c.post("/api/unit", json={"pixels": pixels, "layer": layer, "channel": ch,
                                        "y": y, "x": x}).json()  # fmt: skip
        name = info["layers"][layer]["name"]
        if "flatten_of" in info["layers"][layer]:  # a flattened feature: its upstream unit
            src = got["source"]
            name, y, x = info["layers"][src["layer"]]["name"], src["y"], src["x"]
        box = cnnkit.rf_box(model, name, (y, x), shape)
        assert got["box"] == {"top": box.top, "left": box.left, "bottom": box.bottom + 1,
                              "right": box.right + 1}  # fmt: skip
        t, b, left, r = box.clipped
        assert got["clipped"] == {"top": t, "left": left, "bottom": b + 1, "right": r + 1}


def _support(a: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(a)
    return int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())


def test_saliency_lies_inside_the_receptive_field(client):
    pg: Playground = client.app.state.playground
    info = client.get("/api/model").json()
    pixels = np.array(_predict(client, _image_for("simple-cnn"), layers=False).json()["pixels"])
    for layer, ch, y, x in _units(info):
        name = info["layers"][layer]["name"]
        value, box, sal = api.unit_arrays(pg, pixels, layer, ch, y, x)
        if not sal.any():
            continue  # a dead unit (ReLU at 0) has no gradient
        top, bottom, left, right = _support(sal)
        t, b, lo, r = box.clipped
        assert t <= top and bottom <= b and lo <= left and right <= r, name
        g = gradient_receptive_field(pg.checkpoint.model, name, (y, x), (1, 28, 28))
        assert g.top <= top and bottom <= g.bottom and g.left <= left and right <= g.right
        if layer == 0:  # conv1 sees its input through all 9 non-zero weights: the whole box
            assert (top, bottom, left, right) == (g.top, g.bottom, g.left, g.right) == box.clipped
    body = {"pixels": pixels.tolist(), "layer": 3, "channel": 5, "y": 6, "x": 7}
    decoded = decode(client.post("/api/unit", json=body).json()["saliency"])
    assert decoded.shape == (28, 28) and decoded.min() >= 0


@pytest.mark.parametrize("name", ["simple-cnn", "custom-cnn"])
def test_flattened_feature_has_its_upstream_units_field(clients, checkpoints, name):
    """Feature f of a flatten row is unit unravel_index(f, (C, H, W)) of the spatial row it
    flattens: its box is that unit's `cnnkit.rf_box`, its saliency lies inside it (and inside
    `gradient_receptive_field` of that unit); the linear layers after it keep the whole input."""
    c = clients[name]
    info = c.get("/api/model").json()
    rows = info["layers"]
    flat = next(r for r in rows if r["kind"] == "flatten")
    up = rows[flat["flatten_of"]]
    assert up["index"] == flat["index"] - 1 and up["spatial"]  # relu#2 in both models
    cu, hu, wu = up["output_shape"]
    assert flat["output_shape"] == [cu * hu * wu]
    pixels = _predict(c, _image_for(name), layers=False).json()["pixels"]
    maps = decode(_predict(c, _image_for(name)).json()["layers"][up["index"]]["maps"])
    model = load_checkpoint(checkpoints[name]).model
    shape = tuple(info["input_shape"])
    features = [0, cu * hu * wu - 1, (cu // 2) * hu * wu + (hu // 2) * wu + 1, 5 * hu * wu + wu]
    features += [int(np.argmax(maps.reshape(-1)))]  # a live unit: a non-zero saliency
    live = 0
    for f in features:
        body = {"pixels": pixels, "layer": flat["index"], "channel": f}
        got = c.post("/api/unit", json=body).json()
        ch, y, x = np.unravel_index(f, (cu, hu, wu))
        assert got["source"] == {"layer": up["index"], "channel": int(ch), "y": int(y), "x": int(x)}
        box = cnnkit.rf_box(model, up["name"], (int(y), int(x)), shape)
        assert got["box"] == {"top": box.top, "left": box.left, "bottom": box.bottom + 1,
                              "right": box.right + 1}  # fmt: skip
        t, b, lo, r = box.clipped
        assert got["clipped"] == {"top": t, "left": lo, "bottom": b + 1, "right": r + 1}
        assert got["rf_status"] == "local"
        upstream = c.post("/api/unit", json={**body, "layer": up["index"], "channel": int(ch),
                                             "y": int(y), "x": int(x)}).json()  # fmt: skip
        assert got["value"] == pytest.approx(upstream["value"], rel=1e-6, abs=1e-6)
        sal = decode(got["saliency"])  # (H, W)
        live += bool(sal.any())
        if sal.any():
            st, sb, sl, sr = _support(sal)
            assert t <= st and sb <= b and lo <= sl and sr <= r
            g = gradient_receptive_field(model, up["name"], (int(y), int(x)), shape)
            assert g.top <= st and sb <= g.bottom and g.left <= sl and sr <= g.right
            assert (t, b, lo, r) == (g.top, g.bottom, g.left, g.right)
    assert live >= 1
    for row in rows[flat["index"] + 1 :]:  # linear layers depend on the whole input
        got = c.post("/api/unit", json={"pixels": pixels, "layer": row["index"],
                                        "channel": 0}).json()  # fmt: skip
        assert "source" not in got and got["rf_status"] == "whole-input"
        h, w = shape[1:]
        assert got["box"] == got["clipped"] == {"top": 0, "left": 0, "bottom": h, "right": w}


@pytest.mark.parametrize("module,layer,unit", [("conv1", 0, (3, 4, 5)), ("conv2", 3, (9, 6, 7)),
                                                ("fc2", 10, (3, 0, 0))])  # fmt: skip
def test_unit_value_and_saliency_equal_torch_autograd(client, module, layer, unit):
    pg: Playground = client.app.state.playground
    pixels = np.array(
        _predict(client, example_digits()[8].read_bytes(), layers=False).json()["pixels"]
    )
    model = load_checkpoint(BUNDLED).model.eval()
    p = torch.tensor(pixels, dtype=torch.float32, requires_grad=True)
    x = ((p / 255.0 - 0.1307) / 0.3081)[None, None]  # the chapter's normalisation, by hand
    outputs = []
    handle = dict(model.named_modules())[module].register_forward_hook(
        lambda m, i, o: outputs.append(o)
    )
    try:
        model(x)
    finally:
        handle.remove()
    ch, y, xx = unit
    v = outputs[0][0, ch, y, xx] if outputs[0].dim() == 4 else outputs[0][0, ch]
    v.backward()
    got = client.post("/api/unit", json={"pixels": pixels.tolist(), "layer": layer,
                                         "channel": ch, "y": y, "x": xx}).json()  # fmt: skip
    assert got["value"] == pytest.approx(float(v.detach()), rel=1e-4, abs=1e-4)
    _, _, sal = api.unit_arrays(pg, pixels, layer, ch, y, xx)
    want = p.grad.abs().double().numpy()
    np.testing.assert_allclose(sal, want, rtol=1e-3, atol=1e-6 * want.max())
    np.testing.assert_allclose(
        decode(got["saliency"]), want, atol=want.max() / 255 / 2 * 1.01 + 1e-9
    )


# --------------------------------------------------------------------------- conv explorer


def _dilated(kernel: np.ndarray, d: tuple[int, int]) -> np.ndarray:
    kh, kw = kernel.shape
    out = np.zeros((d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1))
    out[:: d[0], :: d[1]] = kernel
    return out


def _scipy_conv(image, kernel, stride, pads, dilation, mode):
    np_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
               "circular": "wrap", "symmetric": "symmetric"}[mode]  # fmt: skip
    padded = np.pad(image, pads, mode=np_mode)
    full = sps.correlate2d(padded, _dilated(kernel, dilation), mode="valid")
    return full[:: stride[0], :: stride[1]]


def _torch_conv(image, kernel, stride, pads, dilation, mode):
    x = torch.tensor(image, dtype=torch.float64)[None, None]
    (t, b), (lo, r) = pads
    if mode == "zeros":
        x = F.pad(x, (lo, r, t, b))
    elif mode != "symmetric":
        x = F.pad(x, (lo, r, t, b), mode=mode)
    else:
        x = torch.from_numpy(np.pad(image, pads, mode="symmetric"))[None, None]
    w = torch.tensor(kernel, dtype=torch.float64)[None, None]
    return F.conv2d(x, w, stride=stride, dilation=dilation)[0, 0].numpy()


CONV_CASES = [
    ("chapter", "chapter", 1, 0, 1, "zeros"),
    ("pattern", "sobel-x", 1, "same", 1, "zeros"),
    ("pattern", "box", 2, 1, 1, "reflect"),
    ("digit", "gaussian:5,1.4", [2, 3], [2, 1], 1, "replicate"),
    ("digit:3", "laplacian", 1, "full", [2, 1], "zeros"),
    ("chapter", "edge", 1, [1, 2, 0, 1], 1, "circular"),
    ("pattern", [[1, 2], [3, 4], [5, 6]], [1, 2], "valid", [1, 2], "symmetric"),
    ([[0.5, -1, 2, 3], [1, 1, 0, -2], [4, 0, 1, 1]], [[1, -1], [2, 0]], 1, 1, 1, "symmetric"),
]


@pytest.mark.parametrize("inp,kernel,stride,padding,dilation,mode", CONV_CASES)
def test_conv_explorer_equals_torch_and_scipy(client, inp, kernel, stride, padding, dilation, mode):
    from cnnkit.calc.arithmetic import conv_output_size, pair

    body = {"input": inp, "kernel": kernel, "stride": stride, "padding": padding,
            "dilation": dilation, "padding_mode": mode}  # fmt: skip
    r = client.post("/api/conv", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    image, k = np.array(got["input"], dtype=float), np.array(got["kernel"], dtype=float)
    pads = tuple(tuple(p) for p in got["pads"])
    s, d = pair(stride, "stride"), pair(dilation, "dilation")
    out = np.array(got["output"])
    np.testing.assert_allclose(out, _torch_conv(image, k, s, pads, d, mode), atol=1e-9)
    np.testing.assert_allclose(out, _scipy_conv(image, k, s, pads, d, mode), atol=1e-9)
    # steps: one per output position, row-major, each sum = the output value
    assert not got["steps_truncated"] and len(got["steps"]) == out.size
    padded = np.array(got["padded"])
    for step in got["steps"]:
        region = np.array(step["region"])
        t, lo = step["top"], step["left"]
        np.testing.assert_array_equal(
            region, padded[t : t + d[0] * (k.shape[0] - 1) + 1 : d[0],
                           lo : lo + d[1] * (k.shape[1] - 1) + 1 : d[1]])  # fmt: skip
        np.testing.assert_allclose(step["products"], region * k)
        assert step["sum"] == pytest.approx(out[step["row"], step["col"]], abs=1e-9)
    # the formula: cnnkit's arithmetic, torch's shape, and the filled-in numbers evaluate to it
    for a, axis in enumerate(("height", "width")):
        want = conv_output_size(image.shape[a], k.shape[a], s[a], pads[a], d[a])
        assert got["output_size"][a] == want == out.shape[a]
        left, _, right = got["formula"][axis].partition(" = ")
        assert int(right) == want
        assert eval(left, {"floor": math.floor, "__builtins__": {}}) == want


def test_conv_explorer_chapter_example_is_zero_at_the_origin(client):
    got = client.post("/api/conv", json={"input": "chapter"}).json()
    assert got["kernel"] == [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]
    assert got["output"][0][0] == 0 == got["steps"][0]["sum"]
    assert got["chapter"]["printed_sum_at_0_0"] == -13
    assert got["formula"]["height"] == "floor((5 + 0 - 1*(3-1) - 1)/1) + 1 = 3"


def test_conv_explorer_truncates_steps(client):
    got = client.post("/api/conv", json={"input": np.ones((70, 70)).tolist(),
                                         "kernel": "box", "padding": 1}).json()  # fmt: skip
    assert got["steps_truncated"] and len(got["steps"]) == 4096
    assert np.array(got["output"]).shape == (70, 70)


def test_kernels_are_cnnkits(client):
    from cnnkit.imaging.kernels import get_kernel, list_kernels

    got = client.get("/api/kernels").json()["kernels"]
    assert [k["name"] for k in got] == [k.name for k in list_kernels()]
    for k in got:
        np.testing.assert_array_equal(k["values"], get_kernel(k["name"]))


# --------------------------------------------------------------------------- rf explorer


@pytest.mark.parametrize("request_body,cli_args", [
    ({"preset": "chapter"}, ["vgg-like"]),
    ({"preset": "alexnet", "input_size": 224}, ["alexnet", "--input", "224"]),
    ({"preset": "vgg16", "input_size": [224, 200]}, ["<vgg16>", "--input", "224x200"]),
    ({"layers": "conv3/s2/p1,conv1x7/p0x3,pool3/s2/c,conv3/d2*2"}, ["<spec>"]),
])  # fmt: skip
def test_rf_explorer_equals_cnnkit_rf_json(client, capsys, request_body, cli_args):
    from cnnkit.cli.main import main
    from cnnkit.web.explore import RF_PRESETS

    got = client.post("/api/rf", json=request_body).json()
    spec = {"<vgg16>": RF_PRESETS["vgg16"][0], "<spec>": request_body.get("layers")}
    args = [spec.get(a, a) for a in cli_args]
    capsys.readouterr()
    assert main(["rf", *args, "--json", "--chapter"]) == 0
    want = json.loads(capsys.readouterr().out)
    assert got["spec"] == want["spec"]
    assert len(got["layers"]) == len(want["layers"])
    for g, w, chapter in zip(got["layers"], want["layers"], want["chapter_formula"], strict=True):
        assert (g["name"], g["notation"]) == (w["name"], w["notation"])
        assert (g["size"], g["jump"], g["start"], g["output"]) == (
            w["size"], w["jump"], w["start"], w["output"])  # fmt: skip
        assert g["simplified_hw"] == chapter
    assert set(got["presets"]) >= {"vgg-like", "alexnet", "vgg16"}


def test_rf_explorer_shows_where_the_chapter_formula_is_wrong(client):
    got = client.post("/api/rf", json={"preset": "vgg-like"}).json()
    sizes = [layer["size"][0] for layer in got["layers"]]
    simplified = [layer["simplified"] for layer in got["layers"]]
    assert sizes[-1] == 16 and simplified[-1] == 11  # the chapter's 11×11 vs the real 16×16
    assert client.get("/api/rf").json()["presets"] == got["presets"]


# --------------------------------------------------------------------------- bad requests


def _bomb_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)  # the start of an all-black image: tiny, expands hugely
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _chunks(total: int, size: int = 64 * 1024):
    for _ in range(total // size):
        yield b"\0" * size


BAD = [
    ("big content-length", "POST", "/api/predict", {"content": b"\0" * (5 * 1024 * 1024)}, 413),
    ("streamed, no length", "POST", "/api/predict", {"content": "STREAM"}, 413),
    ("text named png", "POST", "/api/predict", {"content": b"hello, not an image\n"}, 415),
    ("wrong type", "POST", "/api/predict",
     {"content": b"x", "headers": {"content-type": "text/plain"}}, 415),
    ("gif", "POST", "/api/predict", {"content": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"}, 415),
    ("truncated png", "POST", "/api/predict", {"content": "TRUNCATED"}, 422),
    ("bomb header", "POST", "/api/predict", {"content": "BOMB"}, 422),
    ("5000 px side", "POST", "/api/predict", {"content": "WIDE"}, 422),
    ("empty body", "POST", "/api/predict", {"content": b""}, 422),
    ("blank image", "POST", "/api/predict", {"content": "BLANK"}, 422),
    ("unit not json", "POST", "/api/unit", {"content": b"{nope"}, 422),
    ("unit bad layer", "POST", "/api/unit", {"json": "LAYER"}, 422),
    ("unit bad pixels", "POST", "/api/unit",
     {"json": {"pixels": [[1, 2]], "layer": 0, "channel": 0, "y": 0, "x": 0}}, 422),
    ("unit not object", "POST", "/api/unit", {"json": [1, 2]}, 422),
    ("json nested too deeply", "POST", "/api/conv", {"content": b"[" * 200_000}, 422),
    ("conv bad stride", "POST", "/api/conv", {"json": {"input": "chapter", "stride": 0}}, 422),
    ("conv bad mode", "POST", "/api/conv", {"json": {"input": "chapter", "padding": 1,
                                                      "padding_mode": "mirror"}}, 422),
    ("conv kernel too big", "POST", "/api/conv", {"json": {"input": "chapter", "kernel": "box:7"}},
     422),
    ("conv huge padding", "POST", "/api/conv", {"json": {"input": "chapter", "padding": 10**9}},
     422),
    ("conv file name", "POST", "/api/conv", {"json": {"input": "/etc/passwd"}}, 422),
    ("rf bad spec", "POST", "/api/rf", {"json": {"layers": "conv0"}}, 422),
    ("rf both", "POST", "/api/rf", {"json": {"layers": "conv3", "preset": "alexnet"}}, 422),
    ("rf unknown preset", "POST", "/api/rf", {"json": {"preset": "resnet152"}}, 422),
    ("unknown route", "GET", "/api/nothing", {}, 404),
    ("path traversal", "GET", "/static/../app.py", {}, 404),
    ("encoded traversal", "GET", "/static/%2e%2e/app.py", {}, 404),
    ("get predict", "GET", "/api/predict", {}, 405),
    ("delete model", "DELETE", "/api/model", {}, 405),
]  # fmt: skip


def _materialise(kwargs: dict, client: TestClient) -> dict:
    kwargs = dict(kwargs)
    special = {
        "STREAM": lambda: _chunks(6 * 1024 * 1024),
        "TRUNCATED": lambda: _png(np.full((60, 60), 200))[:80],
        "BOMB": lambda: _bomb_png(100_000, 100_000),
        "WIDE": lambda: _bomb_png(5000, 20),
        "BLANK": lambda: _png(np.full((30, 30), 255)),
    }
    if isinstance(kwargs.get("content"), str):
        kwargs["content"] = special[kwargs["content"]]()
    if kwargs.get("json") == "LAYER":
        pixels = np.zeros((28, 28)).tolist()
        kwargs["json"] = {"pixels": pixels, "layer": 99, "channel": 0, "y": 0, "x": 0}
    kwargs.setdefault("headers", {"content-type": "image/png"} if "content" in kwargs else {})
    return kwargs


@pytest.mark.parametrize("what,method,url,kwargs,status", BAD, ids=[b[0] for b in BAD])
def test_bad_request_is_answered_and_the_server_keeps_serving(
    client, what, method, url, kwargs, status
):
    t = time.perf_counter()
    r = client.request(method, url, **_materialise(kwargs, client))
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert (
        isinstance(message, str) and message and "\n" not in message and "Traceback" not in message
    )
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert time.perf_counter() - t < 5  # a bomb is refused from its header, not decoded
    assert client.get("/api/model").status_code == 200


@pytest.mark.parametrize("what,method,url,kwargs,status", BAD, ids=[b[0] for b in BAD])
def test_bad_request_message_is_in_the_asked_language_and_error_stays_english(
    client, what, method, url, kwargs, status
):
    """`error` is the same English line whatever Accept-Language says (scripts read it);
    `message`, which the page shows, is Japanese when the page asks for Japanese."""
    answers = {}
    for lang in ("en", "ja"):
        kw = _materialise(kwargs, client)
        kw["headers"] = {**kw.get("headers", {}), "accept-language": lang}
        r = client.request(method, url, **kw)
        assert r.status_code == status, r.text
        answers[lang] = r.json()
    assert answers["ja"]["error"] == answers["en"]["error"]
    assert answers["en"]["message"] == answers["en"]["error"]
    assert JAPANESE.search(answers["ja"]["message"]), answers["ja"]
    assert "\n" not in answers["ja"]["message"]


def test_the_japanese_font_is_served_from_the_installed_package(client):
    from cnnkit.render.fonts import bundled_font_path

    font = bundled_font_path()
    r = client.get("/fonts/ipaexg.ttf")
    if font is None:
        assert r.status_code == 404 and "font" in r.json()["error"]
        return
    assert r.status_code == 200 and r.headers["content-type"] == "font/ttf"
    assert r.content == font.read_bytes() and r.content[:4] == b"\x00\x01\x00\x00"  # TrueType
    assert r.headers["content-security-policy"] == CSP


def test_every_response_has_the_security_headers(client):
    for r in (client.get("/"), client.get("/api/model"), client.get("/static/index.html"),
              _predict(client, example_digits()[0].read_bytes(), layers=False)):  # fmt: skip
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-content-type-options"] == "nosniff"


LANGS = [("ja,en;q=0.8", "ja"), ("en-US,ja;q=0.5", "en"), ("fr-FR,ja;q=0.9,en;q=0.8", "ja"),
         (None, "en")]  # fmt: skip


@pytest.mark.parametrize("header,lang", LANGS)
def test_index_language_from_accept_language(client, header, lang):
    r = client.get("/", headers={"accept-language": header} if header else {})
    assert re.search(r"<html[^>]*\blang=\"([a-z]+)\"", r.text).group(1) == lang


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_language_given_to_the_server_wins_over_accept_language(checkpoints, language):
    """`cnnkit serve --lang ja` serves the page in Japanese to an English browser (and --lang en
    in English to a Japanese one); errors still follow each request's Accept-Language."""
    other = "en" if language == "ja" else "ja"
    with TestClient(create_app(checkpoints["simple-cnn"], language=language)) as told:
        r = told.get("/", headers={"accept-language": other})
        assert re.search(r"<html[^>]*\blang=\"([a-z]+)\"", r.text).group(1) == language
        r = told.get("/api/nothing", headers={"accept-language": "ja"})
        assert JAPANESE.search(r.json()["message"]) and not JAPANESE.search(r.json()["error"])


def test_serve_passes_lang_to_the_page(monkeypatch):
    """The command line: --lang ja (or CNNKIT_LANG=ja) reaches create_app; the locale alone
    (LANG=ja_JP.UTF-8) does not, so the browser's language decides then."""
    import cnnkit.web.app as web_app
    import cnnkit.web.server as web_server
    from cnnkit.cli.main import main
    from cnnkit.core import i18n

    seen = []
    real = web_app.create_app

    def spy(*args, **kwargs):
        seen.append(kwargs.get("language"))
        return real(*args, **kwargs)

    monkeypatch.setattr(web_app, "create_app", spy)
    monkeypatch.setattr(web_server, "serve", lambda app, **kw: 0)
    monkeypatch.delenv("CNNKIT_LANG", raising=False)
    try:
        assert main(["serve", "--port", "0", "--lang", "ja"]) == 0
        monkeypatch.setenv("LANG", "ja_JP.UTF-8")
        assert main(["serve", "--port", "0"]) == 0
        monkeypatch.setenv("CNNKIT_LANG", "ja")
        assert main(["serve", "--port", "0"]) == 0
    finally:
        i18n.set_language("en")
    assert seen == ["ja", None, "ja"]


def test_concurrent_requests_give_the_same_answers(client):
    digits = [p.read_bytes() for p in example_digits()]
    sequential = [_predict(client, d).json() for d in digits]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda d: _predict(client, d).json(), digits * 3))
    for i, got in enumerate(parallel):
        want = sequential[i % len(digits)]
        assert got["probabilities"] == want["probabilities"]
        assert [m["maps"] for m in got["layers"]] == [m["maps"] for m in want["layers"]]


# --------------------------------------------------------------------------- serve


def test_find_checkpoint_newest_run_else_bundled(tmp_path):
    assert find_checkpoint(None, tmp_path / "runs") == (BUNDLED, "bundled")
    for i, name in enumerate(["b-old", "a-new"]):
        (tmp_path / "runs" / name).mkdir(parents=True)
        f = tmp_path / "runs" / name / "checkpoint.pt"
        f.write_bytes(b"x")
        os.utime(f, (1_000_000 + i * 10, 1_000_000 + i * 10))
    path, source = find_checkpoint(None, tmp_path / "runs")
    assert path == tmp_path / "runs" / "a-new" / "checkpoint.pt" and source == str(path)
    assert find_checkpoint(tmp_path / "runs" / "b-old")[0].parent.name == "b-old"
    with pytest.raises(cnnkit.CnnkitError, match="no such"):
        find_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(cnnkit.CnnkitError, match="without checkpoint.pt"):
        find_checkpoint(tmp_path / "empty")


def test_real_server_answers_and_stops_cleanly_on_sigint(tmp_path):
    import httpx

    port = free_port()
    proc = start_serve(tmp_path, "--port", str(port))  # no ./runs here: the bundled model
    try:
        lines = lines_until_url(proc)
        url = f"http://127.0.0.1:{port}/"
        assert any(url in line for line in lines), (
            lines,
            proc.stderr.read() if proc.poll() else "",
        )
        assert "bundled" in "".join(lines)
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
            assert http.get("api/model").json()["source"] == "bundled"
            digit = example_digits()[7]
            got = http.post("api/predict", content=digit.read_bytes(),
                            headers={"content-type": "image/png"}).json()  # fmt: skip
            assert got["predicted"] == example_label(digit)
            assert http.get("").headers["content-security-policy"] == CSP
            with ThreadPoolExecutor(8) as pool:
                codes = list(pool.map(
                    lambda _: http.post("api/conv", json={"input": "pattern"}).status_code,
                    range(16)))  # fmt: skip
            assert codes == [200] * 16
            # port in use: one clear line, exit 2
            busy = subprocess.run(
                [sys.executable, "-m", "cnnkit", "serve", "--port", str(port)], cwd=tmp_path,
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert busy.returncode == 2
            assert busy.stderr.count("\n") == 1 and "already in use" in busy.stderr
            assert http.get("api/model").status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in out and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_real_server_with_two_workers(tmp_path):
    import httpx

    port = free_port()
    proc = start_serve(tmp_path, str(BUNDLED), "--port", str(port), "--workers", "2")
    try:
        assert proc.stdout is not None
        while "http://" not in (line := proc.stdout.readline()):
            assert line, proc.stderr.read() if proc.stderr else ""
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/", timeout=60, trust_env=False) as c:
            digits = example_digits()
            png = {"content-type": "image/png"}
            with ThreadPoolExecutor(4) as pool:
                got = list(pool.map(
                    lambda p: c.post("api/predict", content=p.read_bytes(), headers=png).json(),
                    digits))  # fmt: skip
        right = [g["predicted"] == example_label(p) for g, p in zip(got, digits, strict=True)]
        assert sum(right) >= 9
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and "stopped" in out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_refuses_a_missing_checkpoint(cli):
    r = cli("serve", "nowhere.pt", "--port", "0")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no such checkpoint" in r.stderr


def test_loopback_and_urls():
    from cnnkit.web.server import is_loopback, url_for

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    assert url_for("::1", 8000) == "http://[::1]:8000/"
    assert url_for("0.0.0.0", 80) == "http://127.0.0.1:80/"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST copy not present")
def test_bundled_model_reaches_recorded_accuracy():
    from cnnkit.analysis.evaluate import evaluate
    from cnnkit.models.checkpoint import VERSION, tensor_digest

    recorded = json.loads(BUNDLED.with_suffix(".json").read_text())
    raw = torch.load(BUNDLED, map_location="cpu", weights_only=True)  # the current format:
    assert raw["version"] == VERSION == recorded["checkpoint_version"] == 2  # with its digest
    assert raw["digest"] == tensor_digest({k: v for k, v in raw.items() if k != "digest"})
    result = evaluate(BUNDLED, data_dir=SHARED_MNIST)
    assert result.num_images == recorded["num_images"] == 10_000
    assert result.accuracy == pytest.approx(recorded["accuracy"], abs=5e-4)


def test_fast_path_equals_the_tracer(client):
    """The counted forward pass (cnnkit.web.capture) gives the tracer's rows exactly."""
    pg: Playground = client.app.state.playground
    assert pg.plan is not None
    pixels = np.array(_predict(client, _image_for("simple-cnn"), layers=False).json()["pixels"])
    x = torch.from_numpy(pg.normalized(pixels))
    fast = pg._forward_counted(x, pg.plan, grad=False)
    slow = pg._forward_traced(x, grad=False)
    assert fast is not None
    for a, b in zip(fast.rows, slow.rows, strict=True):
        assert torch.equal(a, b)


class _Branchy(torch.nn.Module):
    """Data-dependent control flow: an extra op when the input's mean is positive."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 26 * 26, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if x.mean() > 0:
            y = y * 2
        return self.fc(torch.relu(y).flatten(1))


def test_a_pass_off_the_plan_falls_back_to_the_tracer():
    from cnnkit.models.checkpoint import LoadedCheckpoint

    model = _Branchy().eval()
    ckpt = LoadedCheckpoint(model, "branchy", {}, {"normalize": (0.0, 1.0)}, 0, [], {}, Path("x"))
    from cnnkit.analysis.summary import summary

    pg = Playground(name="branchy", source="test", input_shape=(1, 28, 28),
                    classes=list("0123456789"), normalize=(0.0, 1.0), accuracy=None,
                    summary=summary(model, (1, 28, 28)), checkpoint=ckpt)  # fmt: skip
    pg._pool.put(model)
    pg.plan = pg._make_plan()  # traced on noise in [0, 1): mean > 0, the branch taken
    assert pg.plan is not None
    dark = np.zeros((28, 28))  # normalised mean 0: the branch is not taken, one call less
    x = torch.from_numpy(pg.normalized(dark))
    assert pg._forward_counted(x, pg.plan, grad=False) is None
    with pytest.raises(cnnkit.CnnkitError, match="different layers"):
        pg.forward(dark)  # the tracer sees other rows than the summary's: refused, not wrong
    bright = np.full((28, 28), 200.0)
    fwd = pg.forward(bright)
    want = model(torch.from_numpy(pg.normalized(bright)))
    torch.testing.assert_close(fwd.logits, want)
