"""Preprocessing of hand-drawn digits, `predict` and the `cnnkit predict` / `visualize` CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_checkpoint
from PIL import Image, ImageDraw

from cnnkit.core.errors import CnnkitError
from cnnkit.imaging.digits import example_digits, example_label, preprocess_digit

# ---------------------------------------------------------------- digits drawn with Pillow

# Strokes on a 100x100 design grid (scaled to any canvas): polylines and ellipse arcs.
STROKES: dict[int, list[tuple]] = {
    0: [("ellipse", (28, 8, 72, 92))],
    1: [("line", [(54, 8), (46, 92)])],
    2: [
        ("arc", (25, 8, 75, 52), 180, 30),
        ("line", [(71, 40), (25, 92), (78, 92)]),
    ],
    3: [("arc", (28, 8, 72, 50), 200, 90), ("arc", (24, 48, 76, 92), 270, 160)],
    4: [("line", [(60, 8), (22, 64), (80, 64)]), ("line", [(62, 36), (62, 92)])],
    5: [("line", [(72, 10), (34, 10), (30, 46)]), ("arc", (24, 38, 74, 92), 210, 150)],
    6: [("arc", (25, 8, 95, 110), 190, 270), ("ellipse", (26, 50, 72, 92))],
    7: [("line", [(24, 10), (76, 10), (40, 92)])],
    8: [("ellipse", (32, 8, 68, 48)), ("ellipse", (28, 48, 72, 92))],
    9: [("ellipse", (30, 8, 72, 50)), ("line", [(71, 30), (64, 92)])],
}


def draw_digit(
    digit: int,
    *,
    canvas: tuple[int, int] = (200, 200),
    box: tuple[int, int, int, int] | None = None,
    dark_on_light: bool = True,
    width: float = 0.12,
) -> np.ndarray:
    """A digit drawn with Pillow into `box` (left, top, right, bottom) of a canvas (W, H).

    Returns the image as float64 (H, W) in [0, 255]; stroke width is a fraction of the box.
    """
    w_canvas, h_canvas = canvas
    left, top, right, bottom = box or (0, 0, w_canvas, h_canvas)
    sx, sy = (right - left) / 100, (bottom - top) / 100
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    img = Image.new("L", canvas, paper)
    pen = ImageDraw.Draw(img)
    stroke = max(1, round(width * min(right - left, bottom - top)))

    def xy(x: float, y: float) -> tuple[float, float]:
        return left + x * sx, top + y * sy

    for kind, shape, *angles in STROKES[digit]:
        if kind == "line":
            pen.line([xy(*p) for p in shape], fill=ink, width=stroke, joint="curve")
        else:
            corners = [*xy(*shape[:2]), *xy(*shape[2:])]
            if kind == "ellipse":
                pen.ellipse(corners, outline=ink, width=stroke)
            else:
                pen.arc(corners, angles[0], angles[1], fill=ink, width=stroke)
    return np.asarray(img, dtype=np.float64)


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    total = a.sum()
    rows, cols = np.indices(a.shape)
    return float((rows * a).sum() / total), float((cols * a).sum() / total)


def bounding_box(a: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


CASES = [
    # (canvas (W, H), box (left, top, right, bottom)): centred, off-centre, small, wide, tall
    ((200, 200), (30, 20, 170, 180)),
    ((300, 200), (5, 90, 95, 195)),
    ((40, 40), (20, 2, 38, 30)),
    ((640, 480), (400, 40, 520, 400)),
    ((120, 300), (10, 10, 110, 120)),
]


@pytest.mark.parametrize("digit", range(10))
@pytest.mark.parametrize("canvas,box", CASES)
@pytest.mark.parametrize("dark_on_light", [True, False])
def test_preprocessed_digit_is_centred_by_mass_with_a_20_px_longer_side(
    digit, canvas, box, dark_on_light
):
    drawing = draw_digit(digit, canvas=canvas, box=box, dark_on_light=dark_on_light)
    out = preprocess_digit(drawing)
    assert out.shape == (28, 28)
    assert out.min() == 0.0 and out.max() == pytest.approx(255.0)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 + 1e-9 and abs(cx - 14) <= 0.5 + 1e-9, (cy, cx)
    h, w = bounding_box(out)
    assert max(h, w) == 20
    ink = drawing if not dark_on_light else 255 - drawing
    h0, w0 = bounding_box(ink > 0)
    assert min(h, w) == pytest.approx(20 * min(h0, w0) / max(h0, w0), abs=1.0)
    assert (out[0] == 0).all() and (out[:, 0] == 0).all()  # background is exactly 0


@pytest.mark.parametrize("digit", [0, 4, 7])
def test_polarity_and_position_do_not_change_the_result(digit):
    reference = preprocess_digit(draw_digit(digit, box=(20, 20, 120, 140), dark_on_light=False))
    inverted = preprocess_digit(draw_digit(digit, box=(20, 20, 120, 140), dark_on_light=True))
    shifted = draw_digit(digit, canvas=(260, 230), box=(150, 80, 250, 200), dark_on_light=False)
    np.testing.assert_array_equal(inverted, reference)
    np.testing.assert_array_equal(preprocess_digit(shifted), reference)


def test_colour_input_is_converted_to_luminance():
    gray = draw_digit(3, box=(30, 10, 150, 190))
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full_like(gray, 255)[:, :, None]], axis=2)
    np.testing.assert_allclose(preprocess_digit(rgb), preprocess_digit(gray), atol=1e-9)
    np.testing.assert_allclose(preprocess_digit(rgba), preprocess_digit(gray), atol=1e-9)


def test_noisy_paper_background_is_removed():
    rng = np.random.default_rng(0)
    clean = draw_digit(2, canvas=(240, 240), box=(60, 40, 180, 220))
    noisy = np.clip(clean + rng.normal(0, 4, clean.shape) - 20, 0, 255)  # grey, noisy paper
    out = preprocess_digit(noisy)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert max(bounding_box(out)) == 20
    assert bounding_box(out) == bounding_box(preprocess_digit(clean))


def test_real_mnist_digits_are_left_unchanged():
    # MNIST was made this way, so re-processing its own digits must be the identity: this
    # pins the conventions (bounding box to 20 px, centre of mass at pixel (14, 14)).
    for path in example_digits():
        digit = np.asarray(Image.open(path), dtype=np.float64)
        np.testing.assert_array_equal(preprocess_digit(digit), digit, err_msg=path.name)


def test_bundled_examples_are_one_real_test_digit_per_class():
    paths = example_digits()
    assert sorted(example_label(p) for p in paths) == list(range(10))
    for path in paths:
        with Image.open(path) as img:
            assert img.mode == "L" and img.size == (28, 28)


@pytest.mark.parametrize(
    "image,message",
    [
        (np.full((30, 30), 255.0), "no digit found"),
        (np.zeros((30, 30)), "no digit found"),
        (np.zeros((30,)), "shape"),
        (np.zeros((30, 30, 2)), "shape"),
    ],
)
def test_images_without_a_digit_are_refused(image, message):
    with pytest.raises(CnnkitError, match=message):
        preprocess_digit(image)


# ---------------------------------------------------------------- predict on a checkpoint


# `random_checkpoint` (conftest.py): an untrained SimpleCNN, torch seed 0, as a real checkpoint.


def test_predict_probabilities_match_the_model_softmax(random_checkpoint):
    import torch

    from cnnkit.analysis.predict import predict
    from cnnkit.models.checkpoint import load_checkpoint

    paths = example_digits()
    results = predict(random_checkpoint, paths, top=10)
    model = load_checkpoint(random_checkpoint).model
    # oracle: the raw MNIST digits (preprocessing is the identity on them), normalised by hand
    raw = np.stack([np.asarray(Image.open(p), dtype=np.float32) for p in paths])
    x = torch.from_numpy((raw[:, None] / 255 - 0.1307) / 0.3081)
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1).numpy()
    for r, p in zip(results, probs, strict=True):
        assert [c.label for c in r.top] == list(np.argsort(-p, kind="stable"))
        np.testing.assert_allclose([c.probability for c in r.top], np.sort(p)[::-1], rtol=1e-5)
        assert r.label == r.top[0].label and r.name == str(r.label)
    assert len(predict(random_checkpoint, paths[:2], top=3)[0].top) == 3


def test_predict_cli_prints_top_classes_for_each_file(cli, tmp_path, random_checkpoint):
    image = tmp_path / "seven.png"
    Image.fromarray(draw_digit(7).astype(np.uint8)).save(image)
    r = cli("predict", str(random_checkpoint), str(image), "--examples", "--top", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 11 and lines[0].startswith(str(image))
    assert all(line.count("%") == 2 for line in lines)
    assert "(true 7)" in r.stdout


def test_predict_cli_json(cli, random_checkpoint):
    import json

    r = cli("predict", str(random_checkpoint), "--examples", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out) == 10 and all(len(p["top"]) == 3 for p in out)
    assert all(p["top"][0]["probability"] >= p["top"][1]["probability"] for p in out)


@pytest.mark.parametrize("kind", ["missing", "text", "corrupt", "blank"])
def test_predict_cli_bad_image_is_one_line_naming_the_file(cli, tmp_path, random_checkpoint, kind):
    bad = tmp_path / f"{kind}.png"
    if kind == "text":
        bad.write_text("not an image")
    elif kind == "corrupt":
        good = tmp_path / "good.png"
        Image.fromarray(draw_digit(1).astype(np.uint8)).save(good)
        bad.write_bytes(good.read_bytes()[:60])
    elif kind == "blank":
        Image.new("L", (50, 50), 255).save(bad)
    ok = example_digits()[0]
    r = cli("predict", str(random_checkpoint), str(ok), str(bad))
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and str(bad) in r.stderr
    assert "Traceback" not in r.stderr


def test_predict_cli_needs_an_image(cli, random_checkpoint):
    r = cli("predict", str(random_checkpoint))
    assert r.returncode == 2 and "--examples" in r.stderr


def test_predict_cli_bad_checkpoint(cli, tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"garbage")
    r = cli("predict", str(bad), "--examples")
    assert r.returncode == 2 and str(bad) in r.stderr and "Traceback" not in r.stderr


def test_colour_models_are_refused(tmp_path):

    from cnnkit.analysis.predict import predict

    config = {"dataset": "cifar10", "normalize": [[0.5] * 3, [0.25] * 3]}
    path = make_checkpoint(tmp_path / "checkpoint.pt", model_name="custom-cnn", config=config)
    with pytest.raises(CnnkitError, match=r"28x28 grayscale .* \(3, 32, 32\)"):
        predict(path, example_digits()[:1])


def test_visualize_cli_writes_every_conv_layer(cli, tmp_path, random_checkpoint):
    out = tmp_path / "maps.png"
    r = cli("visualize", str(random_checkpoint), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size[0] > 2 * img.size[1]
    r = cli("visualize", str(random_checkpoint), "-o", str(tmp_path / "maps.nope"))
    assert r.returncode == 2 and "unknown suffix" in r.stderr
    assert not (tmp_path / "maps.nope").exists()


def test_conv_feature_maps_are_the_relu_of_each_conv_and_hooks_are_removed(random_checkpoint):
    import torch
    import torch.nn.functional as F

    from cnnkit.analysis.feature_maps import conv_feature_maps
    from cnnkit.models.checkpoint import load_checkpoint

    model = load_checkpoint(random_checkpoint).model
    model.train()
    x = np.random.default_rng(0).normal(size=(2, 1, 28, 28)).astype(np.float32)
    maps = conv_feature_maps(model, x)
    assert model.training  # mode restored
    assert all(not m._forward_hooks for m in model.modules())
    with torch.no_grad():
        t = torch.from_numpy(x)
        a1 = F.relu(model.conv1(t))
        a2 = F.relu(model.conv2(model.pool(a1)))
    assert [lm.name for lm in maps[0]] == ["conv1", "conv2"]
    for i in range(2):
        np.testing.assert_allclose(maps[i][0].maps, a1[i].numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(maps[i][1].maps, a2[i].numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- end to end, real MNIST

E2E_LIMIT = 12000  # training images: one quick epoch, ~97% test accuracy


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist_data_dir):
    """A SimpleCNN trained for one epoch on the first 12,000 real MNIST training images."""
    from cnnkit.cli.commands.train import write_report
    from cnnkit.training.loop import train

    root = tmp_path_factory.mktemp("e2e")
    result = train(
        epochs=1,
        limit=E2E_LIMIT,
        seed=0,
        data_dir=mnist_data_dir,
        out_dir=root / "runs",
        run_name="e2e",
        progress=False,
    )
    write_report(result)  # as `cnnkit train` does (training does not render)
    return result


# Where the digits are drawn on a 300x300 canvas: large and centred, small and off-centre,
# medium in a corner (square boxes: the design grid already has MNIST-like proportions).
DRAWN_BOXES = [(40, 40, 240, 240), (150, 170, 270, 290), (30, 10, 200, 180)]
# A floor, not one run's outcome: the fixture's model scores about 96-97% on the MNIST test
# set, and MNIST-style preprocessing makes clean drawings at least as easy as test digits; a
# broken preprocessing (polarity, centring, scale) lands near chance (10%).
DRAWN_FLOOR = 0.9


@pytest.mark.slow
def test_trained_model_recognises_hand_drawn_digits(trained_run, tmp_path):
    import torch

    from cnnkit.analysis.predict import predict
    from cnnkit.imaging.digits import preprocess_digit
    from cnnkit.models.checkpoint import load_checkpoint

    paths, truth, drawings = [], [], []
    for digit in range(10):
        for i, box in enumerate(DRAWN_BOXES):
            path = tmp_path / f"drawn_{digit}_{i}.png"
            drawing = draw_digit(digit, canvas=(300, 300), box=box, dark_on_light=i % 2 == 0)
            Image.fromarray(drawing.astype(np.uint8)).save(path)
            paths.append(path)
            truth.append(digit)
            drawings.append(preprocess_digit(drawing.astype(np.uint8).astype(np.float64)))
    got = [r.label for r in predict(trained_run.checkpoint, paths)]
    # the oracle for predict's pipeline: the torch model on the preprocessed drawings
    model = load_checkpoint(trained_run.checkpoint).model
    mean, std = trained_run.config["normalize"]
    x = (torch.from_numpy(np.stack(drawings)).float() / 255 - mean) / std
    with torch.no_grad():
        expected = model(x.unsqueeze(1)).argmax(1).tolist()
    assert got == expected
    right = sum(g == t for g, t in zip(got, truth, strict=True))
    assert right >= DRAWN_FLOOR * len(truth), list(zip(truth, got, strict=True))


@pytest.mark.slow
def test_trained_model_recognises_the_bundled_real_digits(trained_run, cli, mnist_data_dir):
    """The bundled digits are MNIST test images (`digit_<label>_<index>.png`): `cnnkit predict`
    on the PNG must give what the model gives on that test image read from the dataset."""
    import json

    import torch

    from cnnkit.data import load_dataset
    from cnnkit.models.checkpoint import load_checkpoint

    r = cli("predict", str(trained_run.checkpoint), "--examples", "--json")
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert len(results) == 10
    test = load_dataset("mnist", "test", data_dir=mnist_data_dir)
    index = [int(Path(p["path"]).stem.split("_")[2]) for p in results]
    assert [example_label(p["path"]) for p in results] == test.labels[index].tolist()
    mean, std = trained_run.config["normalize"]
    x = (torch.from_numpy(test.images[index]).float() / 255 - mean) / std
    with torch.no_grad():
        expected = load_checkpoint(trained_run.checkpoint).model(x.unsqueeze(1)).argmax(1)
    assert [p["label"] for p in results] == expected.tolist()


@pytest.mark.slow
def test_evaluate_cli_reproduces_the_training_test_accuracy(trained_run, cli):
    import json

    r = cli("evaluate", str(trained_run.checkpoint), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    last = trained_run.history[-1]
    assert result["num_images"] == 10000
    assert result["accuracy"] == pytest.approx(last["test_acc"], abs=1e-12)
    assert result["loss"] == pytest.approx(last["test_loss"], rel=1e-4)
    table = cli("evaluate", str(trained_run.checkpoint))
    assert f"accuracy {last['test_acc']:.2%}" in table.stdout


@pytest.mark.slow
def test_training_report_has_every_picture_and_the_run_history(trained_run):
    import base64

    report = trained_run.run_dir / "report.html"
    page = report.read_text()
    for name in ("curves", "confusion", "misclassified", "filters", "feature_maps_0"):
        picture = trained_run.run_dir / f"{name}.png"
        assert base64.b64encode(picture.read_bytes()).decode() in page, name
    last = trained_run.history[-1]
    assert f"<th>final test accuracy</th><td>{last['test_acc']:.2%}</td>" in page
    assert f"<td>{last['train_loss']:.4f}</td><td>{last['train_acc']:.2%}</td>" in page
