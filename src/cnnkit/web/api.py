"""The playground's JSON API as pure functions: plain data in, JSON-ready dicts out, no HTTP.

Every number comes from cnnkit itself: layer rows from `cnnkit.summary`, receptive-field boxes
from the summary rows through `cnnkit.analysis.summary.core.box_of` (what `cnnkit.rf_box`
returns), digits from `cnnkit.imaging.digits.preprocess_digit`, the network's input from
`cnnkit.data.transforms.normalize_images`, probabilities as `cnnkit.analysis.predict` computes
them. The convolution and receptive-field explorers live in `cnnkit.web.explore`.

Arrays travel as "u8 maps" (`u8_map`): `{"shape", "min", "max", "data"}` with `data` the
base64 of round(255·(A − min)/(max − min)) as uint8, C order (all zeros when max == min).

Errors: `CnnkitError` (422), `UnsupportedMedia` (415) and `BodyTooLarge` (413) carry one
readable line; `cnnkit.web.app` answers them as `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.i18n import Message

if TYPE_CHECKING:
    from cnnkit.web.model import Playground

__all__ = [
    "MAX_IMAGE_SIDE",
    "Base64",
    "BodyTooLarge",
    "UnsupportedMedia",
    "decode_image",
    "flatten_source",
    "layer_kind",
    "model_info",
    "predict",
    "predict_pixels",
    "prepare_input",
    "to_json",
    "u8_map",
    "unit",
    "unit_arrays",
]

MAX_IMAGE_SIDE = 4096  # larger images are refused from their header, before decoding
IMAGE_FORMATS = ("PNG", "JPEG")


class UnsupportedMedia(CnnkitError):
    """The body is not an image the playground reads (HTTP 415)."""


class BodyTooLarge(CnnkitError):
    """The request body is larger than the server's limit (HTTP 413)."""


# --------------------------------------------------------------------------- encoding


class Base64(str):
    """A base64 text (a u8 map's `data`): `to_json` writes it without escaping it, since
    base64's letters need none (`json.dumps` costs ~12 ns a character on long strings)."""

    __slots__ = ()


def u8_map(array: Any, lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """A float array as a u8 map (module docstring); `lo`/`hi` fix the range (values clipped).

    Non-finite values count as 0. Rounding is half up (floor(v + 0.5)), within the map's
    quantisation step either way.
    """
    a = np.asarray(array, dtype=np.float32)
    if a.size == 0:
        return {"shape": list(a.shape), "min": 0.0, "max": 0.0, "data": Base64("")}
    a_lo, a_hi = a.min(), a.max()  # NaN or inf show up here: no separate isfinite pass
    if not (np.isfinite(a_lo) and np.isfinite(a_hi)):
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        a_lo, a_hi = a.min(), a.max()
    lo = float(a_lo) if lo is None else float(lo)
    hi = float(a_hi) if hi is None else float(hi)
    if hi > lo:
        scaled = np.subtract(a, np.float32(lo))  # one new array, then in place
        if lo > a_lo or hi < a_hi:  # a fixed range narrower than the values: clip
            np.clip(scaled, np.float32(0.0), np.float32(hi - lo), out=scaled)
        scaled *= np.float32(255.0 / (hi - lo))
        scaled += np.float32(0.5)
        data = scaled.astype(np.uint8)  # (same shape), C order
    else:
        data = np.zeros(a.shape, dtype=np.uint8)
    return {
        "shape": list(a.shape),
        "min": lo,
        "max": hi,
        "data": Base64(base64.b64encode(data.tobytes()).decode("ascii")),
    }


_NONCE = secrets.token_hex(8)  # per process: no request can guess a placeholder
_TOKEN = f"\x00{_NONCE}:"  # json.dumps writes it as \u0000NONCE:N
_TOKEN_RE = re.compile(rf'"\\u0000{_NONCE}:(\d+)"')


def to_json(obj: Any) -> bytes:
    """`obj` as compact UTF-8 JSON (no NaN), its `Base64` texts copied in unescaped.

    Equal to `json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))`:
    each Base64 becomes a placeholder string (a NUL, which JSON escapes, then its number;
    the placeholder holds a per-process random nonce, and its escaped form is matched whole).
    """
    blobs: list[str] = []

    def swap(o: Any) -> Any:
        if isinstance(o, Base64):
            blobs.append(o)
            return f"{_TOKEN}{len(blobs) - 1}"
        if isinstance(o, dict):
            return {k: swap(v) for k, v in o.items()}
        if isinstance(o, list | tuple) and o:
            first = o[0][0] if isinstance(o[0], list) and o[0] else o[0]
            if not isinstance(first, int | float):  # numbers, 1-D or 2-D (pixels): as they are
                return [swap(v) for v in o]
        return o

    text = json.dumps(swap(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if blobs:
        text = _TOKEN_RE.sub(lambda m: f'"{blobs[int(m.group(1))]}"', text)
    return text.encode("utf-8")


_KINDS = (
    ("conv", ("conv",)),
    ("pool", ("pool",)),
    ("relu", ("relu", "relu6", "leakyrelu", "leaky_relu", "prelu", "rrelu")),
    ("linear", ("linear",)),
    ("flatten", ("flatten", "view", "reshape", "unflatten")),
    ("dropout", ("dropout",)),
)


def layer_kind(type_name: str) -> str:
    """A summary row's type (`Conv2d`, `relu`, `MaxPool2d`, ...) -> the page's layer kind."""
    t = type_name.lower()
    for kind, words in _KINDS:
        if kind in ("relu", "flatten"):
            if t in words:
                return kind
        elif any(w in t for w in words):
            return kind
    return "other"


def model_info(pg: Playground) -> dict[str, Any]:
    """GET /api/model: the model, its summary rows (index = row index everywhere) and totals."""
    layers = []
    for i, row in enumerate(pg.summary.rows):
        rf = row.rf
        spatial = len(row.output_shape) == 4
        local = rf.status == "local" and rf.size and rf.jump and rf.start
        layers.append(
            {
                "index": i,
                "name": row.name,
                "type": row.type,
                "kind": layer_kind(row.type),
                "output_shape": list(row.output_shape[1:]),
                "params": row.params,
                "macs": row.macs,
                "spatial": spatial,
                "rf": {"size": list(rf.size), "jump": list(rf.jump), "start": list(rf.start)}
                if local and rf.size and rf.jump and rf.start
                else None,
                "rf_status": rf.status,
                "rf_approximate": rf.approximate,
            }
        )
        if i in pg.flatten_sources:
            layers[-1]["flatten_of"] = pg.flatten_sources[i]
    return {
        "name": pg.name,
        "source": pg.source,
        "input_shape": list(pg.input_shape),
        "classes": pg.classes,
        "accuracy": pg.accuracy,
        "layers": layers,
        "totals": {"params": pg.summary.total_params, "macs": pg.summary.total_macs},
        "notes": list(pg.summary.notes),
    }


# --------------------------------------------------------------------------- images


def decode_image(body: bytes, max_side: int = MAX_IMAGE_SIDE) -> Any:
    """PNG/JPEG bytes -> a loaded Pillow image; the size is checked from the header first.

    Not an image (or another format) -> `UnsupportedMedia`; larger than `max_side` on a side,
    truncated or corrupt -> `CnnkitError`. Pillow's own decompression-bomb guard stays on.
    """
    from PIL import Image, UnidentifiedImageError

    if not body:
        raise CnnkitError("the request body is empty: send a PNG or JPEG image")
    try:
        img = Image.open(io.BytesIO(body), formats=list(IMAGE_FORMATS))  # reads the header only
    except UnidentifiedImageError:
        raise UnsupportedMedia.from_template(
            ("the file is not a PNG or JPEG image ({n_body} bytes; starts with {body!r})"),
            n_body=len(body),
            body=body[:8],
        ) from None
    except Image.DecompressionBombError as e:  # Pillow's own header check (> 2x its limit)
        raise CnnkitError.from_template("the image is too large: {e}", e=e) from None
    except (OSError, ValueError, SyntaxError) as e:
        raise CnnkitError.from_template("cannot read the image: {e}", e=e) from None
    width, height = img.size
    if width > max_side or height > max_side or width < 1 or height < 1:
        img.close()
        raise CnnkitError.from_template(
            (
                "the image is {width}×{height} pixels; the playground takes at most "
                "{max_side}×{max_side}"
            ),
            width=width,
            height=height,
            max_side=max_side,
        )
    try:
        img.load()  # decode now: truncated or corrupt data fails here
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise CnnkitError.from_template(
            "cannot decode the {format} image ({width}×{height}): {e}",
            format=img.format,
            width=width,
            height=height,
            e=e,
        ) from None
    return img


def prepare_input(pg: Playground, body: bytes) -> np.ndarray:
    """An uploaded image -> what the model sees, in pixels [0, 255]: (H, W) or (H, W, C).

    A run trained on an image folder gets the image as its training images were read
    (`cnnkit.data.folder.read_for_model`: resized to the run's size, its channels); else a
    (1, 28, 28) model gets cnnkit's MNIST-style digit (`preprocess_digit`); any other model
    gets the image resized to its (H, W) (bilinear), grayscale or RGB as its channels ask.
    """
    from cnnkit.analysis.predict import folder_input_shape
    from cnnkit.imaging.digits import FIELD, preprocess_digit

    img = decode_image(body)
    c, h, w = pg.input_shape
    folder = folder_input_shape(pg.checkpoint)
    if folder is not None:
        from cnnkit.data.folder import read_for_model

        size, channels = folder
        read = _read_as_file(body, lambda name: read_for_model(name, size, channels))
        return read.astype(np.float64)
    if (c, h, w) == (1, FIELD, FIELD):
        return preprocess_digit(_read_as_file(body))
    from PIL import Image

    converted = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
    pixels = np.asarray(converted, dtype=np.float64)  # (H, W) or (H, W, 3)
    if c not in (1, 3):
        raise CnnkitError.from_template(
            "the playground feeds 1- or 3-channel models; this one takes {c}", c=c
        )
    return pixels


def _read_as_file(body: bytes, read: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
    """Checked image bytes -> (H, W) gray [0, 255] by `cnnkit.imaging.images.read_image`, as
    `cnnkit predict` reads files (EXIF rotation, transparency over white), through a private
    file (read_image takes paths only; no name from the request is used): an anonymous
    in-memory file where the system has them (Linux memfd, no disk), else a temporary file.
    `read` (a path -> array) replaces read_image's grayscale read."""
    from cnnkit.imaging.images import read_image

    if read is None:
        read = lambda name: read_image(name, mode="L")  # noqa: E731

    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("cnnkit-upload", getattr(os, "MFD_CLOEXEC", 0))
        name = f"/proc/self/fd/{fd}"
        try:
            os.write(fd, body)  # a memfd takes the whole buffer in one write
            return read(name)
        except CnnkitError as e:
            raise _without(e, name) from None
        finally:
            os.close(fd)
    import tempfile

    fd, name = tempfile.mkstemp(prefix="cnnkit-upload-", suffix=".img")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        return read(name)
    except CnnkitError as e:
        raise _without(e, name) from None
    finally:
        os.unlink(name)


def _without(e: CnnkitError, name: str) -> CnnkitError:
    """The error about the private file, saying "the upload" instead of its name."""
    upload = Message("the upload")
    if e.template is None or e.fields is None:
        return CnnkitError(str(e).replace(repr(name), upload).replace(name, upload))
    fields = {k: upload if v == name else v for k, v in e.fields.items()}
    return type(e).from_template(e.template, **fields)


def check_pixels(pg: Playground, pixels: Any) -> np.ndarray:
    """`pixels` from a request (nested lists) -> float64 array of the model's input shape."""
    c, h, w = pg.input_shape
    shape = (h, w) if c == 1 else (h, w, c)
    try:
        a = np.asarray(pixels, dtype=np.float64)
    except (TypeError, ValueError):
        raise CnnkitError.from_template(
            "'pixels' must be a {items} array of numbers", items="×".join(map(str, shape))
        ) from None
    if a.shape != shape:
        raise CnnkitError.from_template(
            "'pixels' must have shape {shape}. Got {shape2} instead.",
            shape=list(shape),
            shape2=list(a.shape),
        )
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 255:
        raise CnnkitError("'pixels' must hold finite numbers from 0 to 255")
    return a


# --------------------------------------------------------------------------- predict


def _probabilities(logits: Any) -> np.ndarray:
    """As `cnnkit.analysis.predict.predict_arrays`: exp(log_softmax(float64 logits))."""
    from cnnkit.nn.functional import log_softmax

    z = logits.detach().float().numpy().astype(np.float64)  # (1, num_classes)
    return np.exp(log_softmax(z, axis=1))[0]


def predict_pixels(pg: Playground, pixels: np.ndarray, *, layers: bool = True) -> dict[str, Any]:
    """Probabilities and (unless `layers` is False) every summary row's output for `pixels`."""
    fwd = pg.forward(pixels)
    probs = _probabilities(fwd.logits)
    out: dict[str, Any] = {
        "input": u8_map(pixels, 0.0, 255.0),
        "pixels": pixels.tolist(),
        "probabilities": probs.tolist(),
        "predicted": int(np.argmax(probs)),
    }
    if layers:
        maps = []
        for i, (row, tensor) in enumerate(zip(pg.summary.rows, fwd.rows, strict=True)):
            if tensor is None:
                continue
            maps.append(
                {
                    "index": i,
                    "name": row.name,
                    "kind": layer_kind(row.type),
                    "maps": u8_map(tensor.detach()[0].float().numpy()),  # (C, H, W) or (F,)
                }
            )
        out["layers"] = maps
    return out


def predict(pg: Playground, body: bytes, *, layers: bool = True) -> dict[str, Any]:
    """POST /api/predict: image bytes -> the preprocessed input, probabilities, layer maps."""
    return predict_pixels(pg, prepare_input(pg, body), layers=layers)


# --------------------------------------------------------------------------- one unit


def _index(value: Any, name: str, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CnnkitError.from_template(
            "'{name}' must be an int. Got {value!r} instead.", name=name, value=value
        )
    if not 0 <= value < size:
        raise CnnkitError.from_template(
            "'{name}' must be from 0 to {size_1} ({what}). Got {value}.",
            name=name,
            size_1=size - 1,
            what=what,
            value=value,
        )
    return value


def unit_arrays(
    pg: Playground, pixels: np.ndarray, layer: int, channel: int, y: int, x: int
) -> tuple[float, Any, np.ndarray]:
    """(value, cnnkit Box or None, saliency (H, W)) of one unit; `pixels` already checked.

    The saliency is Σ_c |∂ value / ∂ pixel_c| by autograd through the model, with the pixels
    in [0, 255] (the normalisation's 1/(255·std) chain factor included).
    """
    from cnnkit.analysis.summary.core import box_of

    rows = pg.summary.rows
    layer = _index(layer, "layer", len(rows), Message("{n} layers", n=len(rows)))
    row = rows[layer]
    shape = row.output_shape
    if len(shape) == 4:
        channel = _index(
            channel,
            "channel",
            shape[1],
            Message("{layer} has {n} channels", layer=row.name, n=shape[1]),
        )
        y = _index(y, "y", shape[2], Message("{layer} is {n} high", layer=row.name, n=shape[2]))
        x = _index(x, "x", shape[3], Message("{layer} is {n} wide", layer=row.name, n=shape[3]))
    elif len(shape) == 2:
        channel = _index(
            channel,
            "channel",
            shape[1],
            Message("{layer} has {n} features", layer=row.name, n=shape[1]),
        )
        if y != 0 or x != 0:
            raise CnnkitError.from_template(
                "{row_name!r} has no spatial axes: 'y' and 'x' must be 0", row_name=row.name
            )
    else:
        raise CnnkitError.from_template(
            "layer {row_name!r} has output shape {shape}: no units to pick",
            row_name=row.name,
            shape=shape,
        )
    fwd = pg.forward(pixels, grad=True)
    out = fwd.rows[layer]
    if out is None or not out.requires_grad:
        raise CnnkitError.from_template(
            "layer {row_name!r} does not depend on the input", row_name=row.name
        )
    v = out[0, channel, y, x] if len(shape) == 4 else out[0, channel]
    v.backward()
    assert fwd.x.grad is not None
    std = np.asarray(pg.normalize[1], dtype=np.float64).reshape(-1, 1, 1)  # (C, 1, 1)
    grad = fwd.x.grad[0].double().numpy() / (255.0 * std)  # (C, H, W) d value / d pixel
    saliency = np.abs(grad).sum(axis=0)  # (H, W)
    src = flatten_source(pg, layer, channel)
    rf, at, name = (row.rf, (y, x), row.name) if src is None else (
        rows[src["layer"]].rf, (src["y"], src["x"]), rows[src["layer"]].name)  # fmt: skip
    try:
        box = box_of(rf, at, pg.input_shape[1:], name)
    except CnnkitError:
        box = None  # not one box: unknown or misaligned paths (the model info says why)
    return float(v.detach()), box, saliency


def flatten_source(pg: Playground, layer: int, feature: int) -> dict[str, int] | None:
    """Feature `feature` of a flatten row -> the unit of the spatial row it copies:
    {"layer", "channel", "y", "x"} (C order); None for any other row."""
    src = pg.flatten_sources.get(layer)
    if src is None:
        return None
    _, c, h, w = pg.summary.rows[src].output_shape
    ch, y, x = np.unravel_index(feature, (c, h, w))
    return {"layer": src, "channel": int(ch), "y": int(y), "x": int(x)}


def _box_json(top: int, bottom: int, left: int, right: int) -> dict[str, int]:
    """cnnkit's inclusive Box edges -> the API's inclusive-exclusive box."""
    return {"top": top, "left": left, "bottom": bottom + 1, "right": right + 1}


def unit(pg: Playground, request: Any) -> dict[str, Any]:
    """POST /api/unit: value, receptive-field box and gradient saliency of one unit."""
    if not isinstance(request, dict):
        raise CnnkitError("the body must be a JSON object with pixels, layer, channel, y, x")
    missing = [k for k in ("pixels", "layer", "channel") if k not in request]
    if missing:
        raise CnnkitError.from_template(
            "the body lacks {items}", items=", ".join(map(repr, missing))
        )
    pixels = check_pixels(pg, request["pixels"])
    value, box, saliency = unit_arrays(
        pg, pixels, request["layer"], request["channel"], request.get("y", 0), request.get("x", 0)
    )
    row = pg.summary.rows[request["layer"]]
    source = flatten_source(pg, request["layer"], request["channel"])
    out: dict[str, Any] = {
        "value": value if math.isfinite(value) else None,
        "box": None,
        "clipped": None,
        # a flattened feature is one unit of the row before: that unit's (local) field
        "rf_status": row.rf.status
        if source is None
        else pg.summary.rows[source["layer"]].rf.status,
        "saliency": u8_map(saliency),
    }
    if source is not None:
        out["source"] = source
    if box is not None:
        out["box"] = _box_json(box.top, box.bottom, box.left, box.right)
        out["clipped"] = _box_json(*box.clipped)
    return out
