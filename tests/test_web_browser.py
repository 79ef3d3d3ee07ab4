"""The playground page (`cnnkit serve`) in a real browser: Debian's Chromium driven by Playwright.

A real `cnnkit serve` runs in a subprocess on 127.0.0.1 with the bundled model. In Chromium:

- a real MNIST test digit, traced as mouse strokes on the pad, is predicted as cnnkit itself
  predicts the pad's picture; the 28x28 view shows what `preprocess_digit` makes of it; every
  layer of `cnnkit.summary` renders its maps (one canvas per channel, not blank);
- a finger stroke (touch events) gets new probabilities while it moves; a tap adds a stroke,
  undo takes it back pixel for pixel, clear empties the pad;
- a clicked unit's drawn box is `cnnkit.rf_box` for that unit (read from the canvas pixels);
- the convolution explorer steps through the chapter's example: 0 at [0, 0] (not -13), each
  step's region, products and sum equal torch's convolution;
- a text file named `.png` shows the server's message and the page keeps working;
- the language follows Accept-Language, the toggle switches every string to the catalog's
  Japanese and is remembered;
- another registry model (custom-cnn, 3x32x32 colour) renders: colour input, its class
  names, every layer's maps, an exact box;
- no request leaves the loopback host, no script error, no CSP violation.

Screenshots of each view go to docs/images/playground-*.png (English, 1280x800).
Skipped, with the reason, only when /usr/bin/chromium or Playwright is missing (`.ci/run`
installs Chromium; `pip install -e '.[dev]'` installs Playwright).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from conftest import JAPANESE_OR_FULL_WIDTH as JAPANESE
from conftest import REPO
from PIL import Image

STATIC = REPO / "src" / "cnnkit" / "web" / "static"
DOCS_IMAGES = REPO / "docs" / "images"
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
GLOSSARY = [
    "畳み込み",
    "カーネル",
    "ストライド",
    "パディング",
    "特徴マップ",
    "受容野",
    "積和演算",
    "活性化関数",
]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

browser_missing = (
    "Playwright for Python is not installed (pip install -e '.[dev]')"
    if sync_playwright is None
    else f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)"
    if not CHROMIUM.exists()
    else None
)
needs_browser = pytest.mark.skipif(browser_missing is not None, reason=browser_missing or "")


def catalog() -> dict[str, dict[str, str]]:
    return json.loads((STATIC / "i18n.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the files alone


def used_keys() -> set[str]:
    """Every catalog key the page names: data-i18n attributes and t("...") calls."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    keys = set(re.findall(r'data-i18n="([^"]+)"', html))
    for attr in re.findall(r'data-i18n-attr="([^"]+)"', html):
        keys |= {pair.split(":")[1] for pair in attr.split(";")}
    for js in STATIC.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        keys |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_]+)"', text))
        keys |= set(re.findall(r'infoRow\(\w+, "([a-z_]+\.[a-z_]+)"', text))
    return keys


def test_catalog_has_every_string_in_both_languages():
    cat = catalog()
    assert set(cat) == {"en", "ja"}
    assert set(cat["en"]) == set(cat["ja"]), set(cat["en"]) ^ set(cat["ja"])
    assert all(v.strip() for lang in cat.values() for v in lang.values())
    missing = used_keys() - set(cat["en"])
    assert not missing, f"keys used by the page but not in i18n.json: {sorted(missing)}"
    # the layer kinds the API reports (web_api contract) all have a label
    for kind in ("conv", "relu", "pool", "linear", "flatten", "dropout", "other"):
        assert f"kind.{kind}" in cat["en"]
    ja = " ".join(cat["ja"].values())
    assert [w for w in GLOSSARY if w not in ja] == []
    # placeholders agree between the languages
    for key, en in cat["en"].items():
        assert set(re.findall(r"\{(\w+)\}", en)) == set(re.findall(r"\{(\w+)\}", cat["ja"][key]))


def test_page_files_are_self_contained_under_the_csp():
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], "inline script"
    assert " style=" not in html and "<style" not in html, "inline style"
    assert re.findall(r"\son[a-z]+=", html) == [], "inline event handler"
    for path in STATIC.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path.name
        if path.suffix == ".js":
            assert not re.search(r"\beval\(|new Function\(|innerHTML", text), path.name


# --------------------------------------------------------------------------- server, browser


def serve(args: list[str], cwd: Path):
    """Run `cnnkit serve ARGS --port 0` in `cwd` until the generator is closed; yields its URL."""
    # without conftest's CNNKIT_LANG=en: `serve` would fix the page's language with it, and
    # these tests check that the page follows the browser's Accept-Language
    env = {k: v for k, v in os.environ.items() if k != "CNNKIT_LANG"}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "cnnkit", "serve", *args, "--port", "0"]
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = None
    lines = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        proc.kill()
        pytest.fail("cnnkit serve printed no URL:\n" + "".join(lines))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`cnnkit serve` in an empty folder (no ./runs: the bundled model)."""
    yield from serve([], tmp_path_factory.mktemp("serve"))


CUSTOM_CLASSES = [f"class-{i}" for i in range(10)]


@pytest.fixture(scope="module")
def custom_checkpoint(tmp_path_factory) -> Path:
    """Another registry model: custom-cnn (3x32x32 colour input), seeded, untrained."""
    from conftest import make_checkpoint

    folder = tmp_path_factory.mktemp("custom")
    normalize = [[0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]]  # CIFAR-10's, per channel
    config = {"dataset": "cifar10", "normalize": normalize, "classes": CUSTOM_CLASSES}
    return make_checkpoint(folder / "custom.pt", model_name="custom-cnn", seed=1, config=config)


@pytest.fixture(scope="module")
def custom_server(custom_checkpoint):
    yield from serve([str(custom_checkpoint)], custom_checkpoint.parent)


@pytest.fixture(scope="module")
def browser():
    if browser_missing:
        pytest.skip(browser_missing)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def screenshot(tmp_path_factory):
    """`screenshot(page, name)` saves playground-NAME.png (palette PNG, small): into
    docs/images with `make screenshots` (CNNKIT_SCREENSHOTS=docs), else into a temporary
    folder, so that a test run leaves the work tree as it was."""
    folder = DOCS_IMAGES if os.environ.get("CNNKIT_SCREENSHOTS") == "docs" else None
    folder = folder or tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        png = page.screenshot()
        img = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=192, dither=0)
        assert len(np.unique(np.asarray(img))) > 8, f"the {name} view looks blank"
        path = folder / f"playground-{name}.png"
        img.save(path, optimize=True)
        return path

    return save


class Watched:
    """A page with every request, script error and CSP report recorded."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("console", self._console)

    def _console(self, msg) -> None:
        text = msg.text
        if "Content Security Policy" in text or msg.type == "error" and "status of 4" not in text:
            self.errors.append(f"console {msg.type}: {text}")

    def open(self, hash_: str = "") -> None:
        self.page.goto(self.url + hash_)
        self.page.wait_for_selector("body[data-ready=true]")

    def check(self) -> None:
        outside = [
            u for u in self.requests
            if not u.startswith(("data:", "blob:")) and urlparse(u).hostname not in LOOPBACK
        ]  # fmt: skip
        assert outside == [], f"requests that left the machine: {outside}"
        assert self.requests, "no request recorded"
        assert self.errors == []


@pytest.fixture
def watched(browser, server):
    """A fresh English page (own context, so localStorage starts empty)."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    w = Watched(context.new_page(), server)
    yield w
    w.check()
    context.close()


# --------------------------------------------------------------------------- helpers


def digit_path(label: int) -> Path:
    from cnnkit.imaging.digits import example_digits, example_label

    return next(p for p in example_digits() if example_label(p) == label)


def trace_digit(page, label: int) -> int:
    """Trace a bundled MNIST digit's ink pixels (> 128) as one mouse stroke per row run.

    Returns the number of strokes drawn.
    """
    ink = np.asarray(Image.open(digit_path(label)).convert("L")) > 128
    page.fill("#pen-width", "10")  # one 28x28 pixel on the 280-px pad
    page.locator("#pen-width").blur()
    box = page.locator("#pad").bounding_box()
    s = box["width"] / ink.shape[1]
    strokes = 0
    for y in range(ink.shape[0]):
        xs = np.flatnonzero(ink[y])
        for run in np.split(xs, np.flatnonzero(np.diff(xs) > 1) + 1) if len(xs) else []:
            cy = box["y"] + (y + 0.5) * s
            page.mouse.move(box["x"] + (run[0] + 0.5) * s, cy)
            page.mouse.down()
            page.mouse.move(box["x"] + (run[-1] + 0.5) * s, cy, steps=2)
            page.mouse.up()
            strokes += 1
    return strokes


def canvas_rgba(page, selector: str) -> np.ndarray:
    """A canvas's backing pixels, (H, W, 4) uint8 (through a PNG: fast for large canvases)."""
    url = page.eval_on_selector(selector, "c => c.toDataURL('image/png')")
    png = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def pad_png(page, path: Path) -> Path:
    url = page.eval_on_selector("#pad", "c => c.toDataURL('image/png')")
    path.write_bytes(base64.b64decode(url.split(",", 1)[1]))
    return path


def cnnkit_prediction(path: Path):
    from cnnkit.analysis.predict import predict
    from cnnkit.web.model import bundled_checkpoint

    return predict(bundled_checkpoint(), [path], top=10)[0]


def bundled_model():
    from cnnkit.models.checkpoint import load_checkpoint
    from cnnkit.web.model import bundled_checkpoint

    return load_checkpoint(bundled_checkpoint()).model.eval()


def draw_and_wait(page, label: int) -> None:
    strokes = trace_digit(page, label)
    page.wait_for_selector(f'#pad[data-shown="{strokes}"]', timeout=15_000)


# --------------------------------------------------------------------------- the tests


@needs_browser
def test_drawn_digit_is_predicted_as_cnnkit_predicts_it(watched, screenshot, tmp_path):
    from cnnkit.imaging.digits import load_digit

    page = watched.page
    watched.open()
    draw_and_wait(page, 3)
    expected = cnnkit_prediction(pad_png(page, tmp_path / "pad.png"))
    assert page.get_attribute("#predicted", "data-predicted") == str(expected.label)
    assert expected.label == 3  # the traced test digit is still a 3 for the model
    # every probability bar shows cnnkit's probability (one decimal)
    shown = {
        int(row.get_attribute("data-cls")): float(row.locator(".prob-pct").inner_text()[:-1])
        for row in page.locator(".prob-row").all()
    }
    assert sorted(shown) == list(range(10))
    for c in expected.top:
        assert abs(shown[c.label] - 100 * c.probability) <= 0.051, (c, shown[c.label])
    # the 28x28 view is cnnkit's preprocessing of the pad's picture
    seen = canvas_rgba(page, "#seen")[..., 0].astype(float)
    assert np.abs(seen - load_digit(tmp_path / "pad.png")).max() <= 1.0
    screenshot(page, "draw")


@needs_browser
def test_every_layer_renders_its_maps(watched, screenshot):
    import cnnkit

    page = watched.page
    watched.open()
    draw_and_wait(page, 7)
    page.click("#tab-inside")
    rows = cnnkit.summary(bundled_model(), (1, 28, 28)).rows
    page.wait_for_selector(f'.layer-block[data-index="{len(rows) - 1}"]')
    assert page.locator(".layer-block").count() == len(rows)
    assert page.locator("#summary-table tbody tr").count() == len(rows)
    for i, row in enumerate(rows):
        shape = tuple(row.output_shape[1:])
        block = f'.layer-block[data-index="{i}"]'
        maps = f"{block} canvas.fmap, {block} canvas.fvec"
        n = page.locator(maps).count()
        if len(shape) == 3:
            assert n == shape[0], (row.name, n, shape)
            sizes = page.eval_on_selector_all(
                f"{block} canvas.fmap", "cs => cs.map(c => [c.height, c.width])"
            )
            assert {tuple(s) for s in sizes} == {shape[1:]}
        else:
            assert n == 1, (row.name, n)
        # not blank: some canvas of the layer holds more than one colour
        spread = page.eval_on_selector_all(
            maps,
            "cs => Math.max(...cs.map(c => { const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let lo = 255, hi = 0;"
            " for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i] + d[i+1] + d[i+2]);"
            " hi = Math.max(hi, d[i] + d[i+1] + d[i+2]); } return hi - lo; }))",
        )
        assert spread > 30, (row.name, spread)
    # a summary row scrolls to and highlights its maps, and the other way round
    page.click('#summary-table tbody tr[data-index="3"]')
    assert "linked" in page.get_attribute('.layer-block[data-index="3"]', "class")
    page.click('.layer-block[data-index="1"] .layer-head')
    assert "linked" in page.get_attribute('#summary-table tr[data-index="1"]', "class")
    assert "linked" not in page.get_attribute('#summary-table tr[data-index="3"]', "class")


def click_unit(page, layer: int, channel: int, y: int, x: int, *, hover: bool = False) -> dict:
    canvas = page.locator(f'canvas.fmap[data-layer="{layer}"][data-channel="{channel}"]')
    canvas.scroll_into_view_if_needed()
    h = int(canvas.get_attribute("data-h"))
    w = int(canvas.get_attribute("data-w"))
    bb = canvas.bounding_box()
    at = (bb["x"] + (x + 0.5) * bb["width"] / w, bb["y"] + (y + 0.5) * bb["height"] / h)
    if hover:
        page.mouse.move(*at, steps=4)
    else:
        page.mouse.click(*at)
    page.wait_for_selector(f'#unit-info[data-state="ready"][data-unit="{layer}/{channel}/{y}/{x}"]')
    drawn = drawn_box(page)
    return {"drawn": drawn, "box": json.loads(page.get_attribute("#unit-info", "data-box"))}


def drawn_box(page) -> tuple[float, float, float, float]:
    """(top, bottom, left, right) in input pixels of the receptive-field box drawn on the pad."""
    box = canvas_rgba(page, "#unit-box")
    scale = int(page.get_attribute("#unit-box", "data-scale"))
    ys, xs = np.nonzero(box[..., 3])
    return (ys.min() / scale, (ys.max() + 1) / scale, xs.min() / scale, (xs.max() + 1) / scale)


def click_feature(page, layer: int, index: int) -> dict:
    """Click feature `index` of a vector layer's strip (or bars); the drawn box and the source."""
    canvas = page.locator(f'canvas.fvec[data-layer="{layer}"]')
    canvas.scroll_into_view_if_needed()
    mode, f = canvas.get_attribute("data-mode"), int(canvas.get_attribute("data-f"))
    cw, ch = (int(v) for v in canvas.evaluate("c => [c.width, c.height]"))
    bb = canvas.bounding_box()
    if mode == "bars":
        at = (bb["x"] + (index + 0.5) * bb["width"] / f, bb["y"] + bb["height"] / 2)
    else:  # a heat strip, cw features a row
        row, col = divmod(index, cw)
        at = (bb["x"] + (col + 0.5) * bb["width"] / cw, bb["y"] + (row + 0.5) * bb["height"] / ch)
    page.mouse.click(*at)
    page.wait_for_selector(f'#unit-info[data-state="ready"][data-unit="{layer}/{index}/0/0"]')
    drawn = drawn_box(page)
    source = page.get_attribute("#unit-info", "data-source")
    return {"drawn": drawn, "source": json.loads(source) if source else None}


@needs_browser
def test_clicked_unit_draws_its_rf_box(watched, screenshot):
    import cnnkit

    page = watched.page
    watched.open()
    draw_and_wait(page, 3)
    page.click("#tab-inside")
    model = bundled_model()
    rows = cnnkit.summary(model, (1, 28, 28)).rows
    # hovered: a relu unit; clicked: conv2 in the middle, a pool unit at the top edge (its box
    # is clipped), conv1 in a corner
    picks = [(2, 7, 4, 4), (3, 5, 6, 9), (4, 0, 0, 6), (0, 3, 27, 0)]
    for k, (layer, channel, y, x) in enumerate(picks):
        got = click_unit(page, layer, channel, y, x, hover=k == 0)
        ref = cnnkit.rf_box(model, rows[layer].name, (y, x), (1, 28, 28))
        top, bottom, left, right = ref.clipped  # inclusive
        assert got["drawn"] == (top, bottom + 1, left, right + 1), (rows[layer].name, got)
        assert got["box"] == {
            "top": ref.top, "bottom": ref.bottom + 1, "left": ref.left, "right": ref.right + 1
        }  # fmt: skip
        # the saliency view is painted (the unit depends on some input pixel)
        assert canvas_rgba(page, "#unit-saliency")[..., :3].std() > 0
    assert "pinned" in page.get_attribute(".unit-marker", "class")
    # a flattened feature is one unit of relu#2 (C order): that unit's box, said so on the page
    flat = next(i for i, r in enumerate(rows) if r.type == "flatten")
    _, c, h, w = rows[flat - 1].output_shape
    for f in (0, 9 * h * w + 3 * w + 5, c * h * w - 1):
        got = click_feature(page, flat, f)
        ch, y, x = (int(v) for v in np.unravel_index(f, (c, h, w)))
        assert got["source"] == {"layer": flat - 1, "channel": ch, "y": y, "x": x}
        ref = cnnkit.rf_box(model, rows[flat - 1].name, (y, x), (1, 28, 28))
        top, bottom, left, right = ref.clipped
        assert got["drawn"] == (top, bottom + 1, left, right + 1), (f, got)
        assert rows[flat - 1].name in page.inner_text("#unit-info")
    got = click_feature(page, flat + 1, 7)  # fc1 depends on the whole input: the whole image
    assert got["source"] is None and got["drawn"] == (0, 28, 0, 28)
    click_unit(page, 3, 5, 6, 9)
    page.mouse.move(0, 0)
    page.eval_on_selector(  # conv2's maps (the unit's marker) at the top of the maps column
        ".inside-maps",
        "m => { m.style.scrollBehavior = 'auto'; const b = document.getElementById('layer-3');"
        " m.scrollTop = b.offsetTop - m.offsetTop - 8; }",
    )
    screenshot(page, "inside")


@needs_browser
def test_conv_step_through_the_chapter_example(watched, screenshot):
    import torch
    import torch.nn.functional as F

    from cnnkit.analysis.chapter import EDGE_KERNEL, IMAGE_5X5

    page = watched.page
    watched.open("#conv")
    page.wait_for_selector("#conv-form[data-state=ready]")
    page.wait_for_selector("#step-sum[data-step='0']")

    def grid(host: str) -> np.ndarray:
        g = page.locator(f"{host} .grid")
        r, c = int(g.get_attribute("data-rows")), int(g.get_attribute("data-cols"))
        values = g.locator(".cell").evaluate_all("cs => cs.map(c => Number(c.dataset.value))")
        return np.array(values, dtype=float).reshape(r, c)

    image = np.array(IMAGE_5X5, dtype=float)
    kernel = np.array(EDGE_KERNEL, dtype=float)
    assert np.array_equal(grid("#step-padded"), image)  # padding 0: the input itself
    assert np.array_equal(grid("#step-kernel"), kernel)
    oracle = F.conv2d(torch.tensor(image)[None, None], torch.tensor(kernel)[None, None])[0, 0]
    assert np.array_equal(grid("#conv-output"), oracle.numpy())
    # [0, 0] is 0: the chapter prints -13 there
    assert page.inner_text("#step-sum") == "0"
    assert "-13" in page.inner_text("#step-note")
    seen = []
    for k in range(9):
        sum_ = page.locator("#step-sum")
        row, col = int(sum_.get_attribute("data-row")), int(sum_.get_attribute("data-col"))
        assert float(sum_.get_attribute("data-value")) == oracle[row, col].item()
        region = page.locator("#step-padded .cell.region").evaluate_all(
            "cs => cs.map(c => [Number(c.dataset.i), Number(c.dataset.j)])"
        )
        assert sorted(map(tuple, region)) == [
            (row + i, col + j) for i in range(3) for j in range(3)
        ]
        window = image[row : row + 3, col : col + 3]
        assert np.array_equal(grid("#step-products"), window * kernel)
        current = page.locator("#conv-output .cell.current")
        assert (current.get_attribute("data-i"), current.get_attribute("data-j")) == (
            str(row),
            str(col),
        )
        seen.append((row, col))
        if k == 4:
            screenshot(page, "conv")
        if k < 8:
            page.click("#step-next")
            page.wait_for_selector(f"#step-sum[data-step='{k + 1}']")
    assert seen == [(r, c) for r in range(3) for c in range(3)]
    # stride 2, padding 1: the formula's numbers and the output follow torch
    page.fill("#conv-stride", "2")
    page.fill("#conv-padding", "1")
    page.wait_for_function(
        "() => document.querySelector('#conv-output .grid').dataset.rows === '3'"
        " && document.querySelector('#conv-formula').textContent.includes('/2)')"
    )
    oracle2 = F.conv2d(
        torch.tensor(image)[None, None], torch.tensor(kernel)[None, None], stride=2, padding=1
    )[0, 0]
    assert np.array_equal(grid("#conv-output"), oracle2.numpy())
    assert "floor((5 + 2 - 1*(3-1) - 1)/2) + 1 = 3" in page.inner_text("#conv-formula")
    # stride 0 goes to the server as typed: its one-line refusal is shown, the page keeps working
    page.fill("#conv-stride", "0")
    page.wait_for_selector("#message:not([hidden])")
    text = page.inner_text("#message-text")
    assert "'stride'" in text and "Got 0" in text and "\n" not in text.strip(), text
    page.fill("#conv-stride", "1")
    page.wait_for_function(
        "() => document.querySelector('#conv-output .grid').dataset.rows === '5'"
        " && document.querySelector('#message').hidden"
    )
    oracle3 = F.conv2d(
        torch.tensor(image)[None, None], torch.tensor(kernel)[None, None], padding=1
    )[0, 0]
    assert np.array_equal(grid("#conv-output"), oracle3.numpy())


@needs_browser
def test_bad_upload_shows_the_message_and_the_page_keeps_working(watched, screenshot):
    page = watched.page
    watched.open()
    page.set_input_files(
        "#upload", files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}]
    )
    page.wait_for_selector("#message:not([hidden])")
    text = page.inner_text("#message-text")
    assert "notes.png" in text and len(text) > len("notes.png") + 10
    screenshot(page, "error")
    # the page still works: a real digit upload is predicted as cnnkit predicts it
    path = digit_path(7)
    page.set_input_files("#upload", str(path))
    page.wait_for_selector('#pad[data-shown="upload"]')
    assert page.get_attribute("#predicted", "data-predicted") == str(cnnkit_prediction(path).label)
    assert page.locator("#message").is_hidden()


@needs_browser
def test_language_follows_the_browser_and_the_toggle(browser, server, screenshot):
    cat = catalog()
    context = browser.new_context(viewport=VIEWPORT, locale="ja-JP")
    w = Watched(context.new_page(), server)
    page = w.page
    w.open("#rf")
    assert page.get_attribute("html", "lang") == "ja"

    def texts() -> list[tuple[str, str]]:
        return page.eval_on_selector_all(
            "[data-i18n]", "els => els.map(e => [e.dataset.i18n, e.textContent])"
        )

    assert all(text == cat["ja"][key] for key, text in texts())
    assert page.inner_text("#tab-conv") == "畳み込み"
    # Japanese in the font the server ships (same origin): glyphs, not boxes, on any machine
    loaded = page.evaluate(
        "async () => { await document.fonts.load('15px \"cnnkit IPAexGothic\"', '受容野');"
        " await document.fonts.ready; return [...document.fonts].filter(f =>"
        " f.family.includes('IPAexGothic')).map(f => f.status); }"
    )
    assert loaded == ["loaded"], loaded
    assert any(urlparse(u).path == "/fonts/ipaexg.ttf" for u in w.requests)
    page.wait_for_selector("#rf-table tbody tr")
    assert "受容野" in page.inner_text("#view-rf")
    page.mouse.move(0, 0)
    screenshot(page, "ja")
    # the table is cnnkit's receptive-field computation of the chapter's stack (and its
    # simplified formula), at the default input size of 224
    from cnnkit.calc.receptive_field import (
        chapter_receptive_fields,
        parse_layers,
        receptive_fields,
    )

    layers = parse_layers("vgg-like")
    rows = receptive_fields(layers, (224, 224))
    want = [
        [r.name, str(r.size[0]), str(r.jump[0]), f"{r.start[0]:g}", "×".join(map(str, r.output)),
         str(simple[0])]
        for r, simple in zip(rows, chapter_receptive_fields(layers), strict=True)
    ]  # fmt: skip
    got = page.eval_on_selector_all(
        "#rf-table tbody tr",
        "rs => rs.map(r => [...r.cells].map((c, i) =>"
        " (i === 0 ? c.querySelector('.layer-name') : c.firstChild).textContent.trim()))",
    )
    assert got == want
    page.click("#lang-toggle")
    assert page.get_attribute("html", "lang") == "en"
    assert all(text == cat["en"][key] for key, text in texts())
    page.wait_for_selector("#rf-table tbody tr.linked")
    page.mouse.move(0, 0)
    screenshot(page, "rf")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.get_attribute("html", "lang") == "en"  # the toggle is remembered
    page.click("#lang-toggle")
    assert page.inner_text("#tab-inside") == cat["ja"]["tabs.inside"]
    w.check()
    context.close()


@needs_browser
def test_touch_strokes_predict_while_drawing_then_undo_and_clear(browser, server, tmp_path):
    context = browser.new_context(viewport=VIEWPORT, has_touch=True)
    w = Watched(context.new_page(), server)
    page = w.page
    w.open()
    cdp = context.new_cdp_session(page)
    box = page.locator("#pad").bounding_box()

    def touch(kind: str, x: float, y: float) -> None:
        points = [] if kind == "touchEnd" else [{"x": box["x"] + x, "y": box["y"] + y}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    # a "1" drawn with a finger, without pausing: the probabilities update while it moves
    touch("touchStart", 150, 40)
    for k in range(1, 26):
        touch("touchMove", 150 - k / 2, 40 + 8 * k)
        page.wait_for_timeout(60)
    shown = int(page.get_attribute("#pad", "data-predictions") or 0)
    assert shown >= 2, f"{shown} predictions shown during a 1.5 s stroke"
    assert page.get_attribute("#pad", "data-strokes") == "0"  # still drawing
    touch("touchEnd", 0, 0)
    page.wait_for_selector('#pad[data-shown="1"]')
    want = cnnkit_prediction(pad_png(page, tmp_path / "one.png")).label
    assert page.get_attribute("#predicted", "data-predicted") == str(want)
    # a tap is a dot: a second stroke; undo takes it back, clear empties the pad
    page.touchscreen.tap(box["x"] + 60, box["y"] + 240)
    page.wait_for_selector('#pad[data-shown="2"]')
    page.click("#pad-undo")
    page.wait_for_selector('#pad[data-shown="1"]')
    assert np.array_equal(canvas_rgba(page, "#pad"), np.asarray(Image.open(tmp_path / "one.png")))
    page.click("#pad-clear")
    assert page.get_attribute("#pad", "data-strokes") == "0"
    assert page.get_attribute("#predicted", "data-predicted") == ""
    assert canvas_rgba(page, "#pad")[..., :3].max() == 0  # black again
    w.check()
    context.close()


@needs_browser
def test_another_registry_model_renders_in_colour(
    browser, custom_server, custom_checkpoint, tmp_path
):
    """custom-cnn (3x32x32): colour input view, its class names, every layer, an exact box."""
    import cnnkit
    from cnnkit.models.checkpoint import load_checkpoint

    context = browser.new_context(viewport=VIEWPORT)
    w = Watched(context.new_page(), custom_server)
    page = w.page
    w.open()
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "colour.png")
    page.set_input_files("#upload", str(tmp_path / "colour.png"))
    # what the server makes of that file (asked again, without layer outputs)
    request = urllib.request.Request(
        custom_server + "api/predict?layers=0",
        data=(tmp_path / "colour.png").read_bytes(),
        headers={"Content-Type": "image/png"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        body = json.load(reply)
    page.wait_for_selector('#pad[data-shown="upload"]')
    # the input view paints the model's (H, W, 3) input in colour, as the server sent it
    seen = canvas_rgba(page, "#seen")[..., :3].astype(float)
    assert seen.shape == (32, 32, 3)
    assert np.abs(seen - np.array(body["pixels"], dtype=float)).max() <= 1.0
    assert seen.std(axis=2).mean() > 5  # not gray
    names = page.locator(".prob-row .prob-name").all_inner_texts()
    assert names == CUSTOM_CLASSES
    assert page.get_attribute("#predicted", "data-predicted") == str(body["predicted"])
    page.click("#tab-inside")
    model = load_checkpoint(custom_checkpoint).model.eval()
    rows = cnnkit.summary(model, (3, 32, 32)).rows
    page.wait_for_selector(f'.layer-block[data-index="{len(rows) - 1}"]')
    for i, row in enumerate(rows):
        shape = tuple(row.output_shape[1:])
        block = f'.layer-block[data-index="{i}"]'
        n = page.locator(f"{block} canvas.fmap, {block} canvas.fvec").count()
        assert n == (shape[0] if len(shape) == 3 else 1), (row.name, n, shape)
    spatial = [i for i, r in enumerate(rows) if len(r.output_shape) == 4 and r.rf.status == "local"]
    layer = spatial[len(spatial) // 2]
    _, c, h, wd = rows[layer].output_shape
    y, x = h - 1, wd // 2
    got = click_unit(page, layer, c - 1, y, x)
    ref = cnnkit.rf_box(model, rows[layer].name, (y, x), (3, 32, 32))
    top, bottom, left, right = ref.clipped
    assert got["drawn"] == (top, bottom + 1, left, right + 1), (rows[layer].name, got)
    w.check()
    context.close()


# --------------------------------------------------------------------------- Japanese everywhere

# The text a person sees on the page: visible text nodes (an <option>'s while its select is
# visible) and the title / aria-label / placeholder / alt of visible elements; code is apart.
VISIBLE_TEXT_JS = r"""
() => {
  const out = [];
  const shown = (el) =>
    el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const visible = (el) => (el.closest("option") ? shown(el.closest("select")) : shown(el));
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const text = n.textContent.trim();
    if (text && !el.closest("code, pre") && visible(el)) out.push(text);
  }
  for (const el of document.body.querySelectorAll("[title], [aria-label], [placeholder], [alt]")) {
    if (!visible(el)) continue;
    for (const a of ["title", "aria-label", "placeholder", "alt"]) {
      const v = (el.getAttribute(a) || "").trim();
      if (v) out.push(v);
    }
  }
  out.push(document.title);
  return out;
}
"""
# names a Japanese reader sees as they are: the product, the dataset, file types, function and
# architecture names, keys; layer names and the rf notation (conv3/p1, pool2, relu#2, fc1)
ALLOWED_WORDS = {
    "cnnkit", "MNIST", "PNG", "JPEG", "ReLU", "MACs", "Sobel", "Prewitt", "Laplacian", "Gaussian",
    "SimpleCNN", "AlexNet", "ResNet", "VGG", "VGG16", "torchvision", "features", "stem", "Esc",
    "size", "simple-cnn",
}  # fmt: skip
ALLOWED_PATTERN = re.compile(
    r"(?:conv|pool|relu|fc|flatten|dropout|linear)[0-9a-z/*.:]*(?:#\d+)?|[0-9.,%×x+−-]+"
)


def english_left(texts: list[str], allowed: set[str]) -> list[str]:
    """Texts with English a Japanese reader would have to read: a word of 3+ letters (outside
    the allowed names) in a text without Japanese, or two English words in a row anywhere."""
    bad = []
    for text in texts:
        tokens = re.split(r"[\s·,、。:：;()（）\[\]「」→▶◀|]+", text)
        rest = " ".join(
            w for w in tokens if w and w not in allowed and not ALLOWED_PATTERN.fullmatch(w)
        )
        word = re.search(r"[A-Za-z]{3,}", rest)
        if word and not JAPANESE.search(text) or re.search(r"[A-Za-z]{3,} +[A-Za-z]{3,}", rest):
            bad.append(text)
    return bad


def test_the_english_scan_finds_english():
    texts = ["Draw a digit", "数字を描く", "conv3/p1, pool2", "0 · relu#2", "Sobel の x 方向微分",
             "入力 (the chapter's example)", "class 3: 96.3%", "simple-cnn", "Pause"]  # fmt: skip
    assert english_left(texts, ALLOWED_WORDS) == [
        "Draw a digit", "入力 (the chapter's example)", "class 3: 96.3%", "Pause",
    ]  # fmt: skip


@needs_browser
def test_every_view_in_japanese_has_no_english_left(browser, server):
    """Switched to Japanese, every view (with a drawn digit, a pinned unit, every input, kernel
    and preset, a stepped window and a client-side message) shows no English sentence, label,
    tooltip or aria-label: only names (layers, kernels, presets, architectures) stay."""
    from cnnkit.imaging.kernels import list_kernels
    from cnnkit.web.explore import RF_PRESETS

    allowed = ALLOWED_WORDS | {k.name for k in list_kernels()} | set(RF_PRESETS)
    context = browser.new_context(viewport=VIEWPORT, locale="ja-JP")
    w = Watched(context.new_page(), server)
    page = w.page
    w.open()
    if page.get_attribute("html", "lang") != "ja":
        page.click("#lang-toggle")
    assert page.get_attribute("html", "lang") == "ja"
    found: dict[str, str] = {}

    def scan(where: str) -> None:
        for text in english_left(page.evaluate(VISIBLE_TEXT_JS), allowed):
            found.setdefault(text, where)

    scan("draw, empty")
    page.click("#tab-conv")
    page.wait_for_selector("#conv-form[data-state=ready]")
    page.select_option("#conv-input", "drawn")  # nothing drawn yet: the page says so
    page.wait_for_selector("#message:not([hidden])")
    scan("conv, nothing drawn")
    page.click("#message-close")
    page.select_option("#conv-input", "chapter")
    page.click("#tab-draw")
    draw_and_wait(page, 3)
    scan("draw, predicted")
    page.click("#tab-inside")
    page.wait_for_selector(".layer-block")
    scan("inside")
    click_unit(page, 3, 5, 6, 9)
    scan("inside, a unit")
    flat = page.eval_on_selector("canvas.fvec", "c => Number(c.dataset.layer)")
    click_feature(page, flat, 10)
    scan("inside, a flattened feature")
    page.click("#tab-conv")
    page.wait_for_selector("#step-sum[data-step='0']")
    scan("conv, the chapter's example")  # the step note: the chapter prints -13 here
    page.click("#step-next")
    page.wait_for_selector("#step-sum[data-step='1']")
    page.click("#step-play")
    scan("conv, playing")
    page.click("#step-play")
    for choice in ("pattern", "digit", "drawn"):
        page.select_option("#conv-input", choice)
        page.wait_for_function(
            "() => document.querySelector('#conv-form').dataset.state === 'ready'"
        )
        scan(f"conv, input {choice}")
    for kernel in page.eval_on_selector_all("#conv-kernel option", "os => os.map(o => o.value)"):
        page.select_option("#conv-kernel", kernel)
        scan(f"conv, kernel {kernel}")
    page.select_option("#conv-padding-kind", "same")
    scan("conv, padding same")
    page.click("#tab-rf")
    page.wait_for_selector("#rf-table tbody tr")
    for preset in page.eval_on_selector_all("#rf-preset option", "os => os.map(o => o.value)"):
        page.select_option("#rf-preset", preset)
        page.wait_for_function(
            "() => document.querySelector('#rf-form').dataset.state !== 'loading'"
        )
        scan(f"rf, preset {preset or 'custom'}")
    assert found == {}, found
    # back in English: the server's own words, as before the page had Japanese for them
    page.select_option("#rf-preset", "vgg-like")
    page.click("#lang-toggle")
    assert page.inner_text("#rf-preset-desc") == RF_PRESETS["vgg-like"][1]
    assert page.get_attribute("#model-line", "title") == "bundled"
    w.check()
    context.close()
