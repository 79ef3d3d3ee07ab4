"""Reading and writing images as NumPy arrays (Pillow inside).

- `read_image(path, mode="L")` -> float64 in [0, 255]: (H, W) for "L", (H, W, 3) for "RGB",
  either for "auto" (grayscale files stay (H, W)). Any format Pillow reads; JPEG EXIF rotation
  is applied; 16-bit images are scaled to [0, 255]; transparent pixels are composited over
  white (as a viewer shows them); animated files give their first frame.
- `write_image(path, array, normalize="clip")` writes atomically, in the format named by the
  suffix; an unknown suffix is refused before anything is written.
- `to_uint8(array, mode)` maps any real array (a filter response, say) to displayable bytes.

Every failure is a `CnnkitError` that names the file.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.core.errors import CnnkitError
from cnnkit.core.files import atomic_path
from cnnkit.core.i18n import Message

__all__ = [
    "DISPLAY_MODES",
    "MAX_IMAGE_PIXELS",
    "READ_MODES",
    "image_format",
    "output_file",
    "read_image",
    "real_array",
    "to_uint8",
    "write_image",
]

READ_MODES = ("L", "RGB", "auto")
# Larger images are refused from their header, before decoding (Pillow's own warning threshold:
# about 9,500 x 9,500, 0.7 GB as float64 gray).
MAX_IMAGE_PIXELS = 89_478_485
DISPLAY_MODES = ("clip", "minmax", "abs")


def read_image(path: str | os.PathLike[str], mode: str = "L") -> np.ndarray:
    """Read an image file as float64 in [0, 255]: (H, W) for mode "L", (H, W, 3) for "RGB".

    mode "auto" keeps grayscale files (H, W) and gives everything else (H, W, 3).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if mode not in READ_MODES:
        raise CnnkitError.from_template(
            ("The 'mode' parameter of read_image must be one of {items}. Got {mode!r} instead."),
            items=", ".join(map(repr, READ_MODES)),
            mode=mode,
        )
    if not isinstance(path, str | os.PathLike):
        raise CnnkitError.from_template(
            (
                "The 'path' parameter of read_image must be a path (str or os.PathLike). "
                "Got {path!r} instead."
            ),
            path=path,
        )
    try:
        with warnings.catch_warnings():
            # our own bound, checked from the header before decoding, replaces Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise CnnkitError.from_template(
                        (
                            "cannot read image {path!r}: {width}x{height} = {width_height:,} "
                            "pixels, "
                            "more than the {max_image_pixels:,} cnnkit reads"
                        ),
                        path=str(path),
                        width=width,
                        height=height,
                        width_height=width * height,
                        max_image_pixels=MAX_IMAGE_PIXELS,
                    )
                img.load()  # decode now: truncated or corrupt data fails here, in the try
                array = _to_float_array(ImageOps.exif_transpose(img), mode)
    except CnnkitError:
        raise
    except FileNotFoundError:
        raise CnnkitError.from_template(
            "cannot read image {path!r}: no such file", path=str(path)
        ) from None
    except IsADirectoryError:
        raise CnnkitError.from_template(
            "cannot read image {path!r}: it is a directory", path=str(path)
        ) from None
    except UnidentifiedImageError:
        raise CnnkitError.from_template(
            "cannot read image {path!r}: not an image format Pillow recognises", path=str(path)
        ) from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        # truncated or corrupt data, unsupported variants, permission denied, huge images
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise CnnkitError.from_template(
            "cannot read image {path!r}: {reason}", path=str(path), reason=reason
        ) from e
    return array


def _to_float_array(img: Any, mode: str) -> np.ndarray:
    """A loaded Pillow image -> float64 (H, W) or (H, W, 3) in [0, 255]."""
    from PIL import Image

    grayscale = img.mode in ("1", "L", "LA", "I", "F") or img.mode.startswith("I;16")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        # 16- and 32-bit integer or float samples: one band; PNG 16-bit data is 0..65535
        data = np.asarray(img, dtype=np.float64)
        if img.mode != "F" or data.max(initial=0) > 255:
            data = data * (255.0 / 65535.0)
        gray = np.clip(data, 0, 255)
        if mode == "RGB":
            return np.repeat(gray[:, :, None], 3, axis=2)  # (H, W, 3)
        return gray
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    target = "L" if mode == "L" or (mode == "auto" and grayscale) else "RGB"
    return np.asarray(img.convert(target), dtype=np.float64)


def to_uint8(array: Any, mode: str = "clip") -> np.ndarray:
    """Map a real array to uint8 for display or saving.

    - "clip": round and clip to [0, 255] (values already on the pixel scale);
    - "minmax": stretch [min, max] to [0, 255] (a constant array gives 0);
    - "abs": |x| scaled so that max |x| is 255 (signed responses such as edges; all zero
      stays 0).

    Colour arrays are scaled with one min/max over all channels, so the colour balance stays.
    """
    a = real_array(array, "array", "to_uint8")
    if mode not in DISPLAY_MODES:
        raise CnnkitError.from_template(
            ("The 'mode' parameter of to_uint8 must be one of {items}. Got {mode!r} instead."),
            items=", ".join(map(repr, DISPLAY_MODES)),
            mode=mode,
        )
    if a.size and not np.isfinite(a).all():
        raise CnnkitError("cannot display an array with NaN or infinite values")
    if mode == "minmax" and a.size:
        low, high = a.min(), a.max()
        a = (a - low) * (255.0 / (high - low)) if high > low else np.zeros_like(a)
    elif mode == "abs" and a.size:
        a = np.abs(a)
        peak = a.max()
        a = a * (255.0 / peak) if peak > 0 else a
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def real_array(value: Any, name: str, func: str) -> np.ndarray:
    """`value` as a float64 array; strings, objects and complex numbers are refused."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise CnnkitError.from_template(
            (
                "The {name!r} parameter of {func} must be an array of real numbers. Got "
                "an array of dtype {dtype} instead."
            ),
            name=name,
            func=func,
            dtype=a.dtype,
        )
    return a.astype(np.float64, copy=False)


def image_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format that writes files with this suffix ("PNG", "JPEG", ...)."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(suffix)
    if fmt is None or fmt not in Image.SAVE:
        known = sorted(ext for ext, f in Image.registered_extensions().items() if f in Image.SAVE)
        common = [e for e in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".webp") if e in known]
        raise CnnkitError.from_template(
            (
                "cannot write image {path!r}: unknown image suffix {suffix!r}; "
                "use one of {common} (or another suffix Pillow writes)"
            ),
            path=str(path),
            suffix=suffix or Message("(none)"),
            common=", ".join(common),
        )
    return fmt


def write_image(path: str | os.PathLike[str], array: Any, *, normalize: str = "clip") -> Path:
    """Write a (H, W), (H, W, 1) or (H, W, 3) array as an image; returns the path.

    Values go through `to_uint8(array, normalize)`. The file appears complete or not at all.
    """
    from PIL import Image

    fmt = image_format(path)
    a = real_array(array, "array", "write_image")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]  # (H, W)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)) or 0 in a.shape:
        raise CnnkitError.from_template(
            (
                "cannot write image {path!r}: expected an array of shape (H, W) or (H, "
                "W, 3). Got shape {shape} instead."
            ),
            path=str(path),
            shape=a.shape,
        )
    img = Image.fromarray(to_uint8(a, normalize))  # uint8 (H, W) -> "L", (H, W, 3) -> "RGB"
    with output_file(path, Message("image")) as tmp:
        img.save(tmp, format=fmt)
    return Path(path)


@contextlib.contextmanager
def output_file(path: str | os.PathLike[str], what: str = "file") -> Iterator[Path]:
    """`cnnkit.core.files.atomic_path`, with OS errors turned into a CnnkitError naming the file."""
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except (FileExistsError, NotADirectoryError) as e:  # from creating the parent folders
        in_the_way = next(
            (p for p in reversed(Path(path).parents) if p.exists() and not p.is_dir()), None
        )
        reason = (
            Message("{path!r} is a file, not a folder", path=str(in_the_way))
            if in_the_way
            else e.strerror
        )
        raise CnnkitError.from_template(
            "cannot write {what} {path!r}: {reason}", what=what, path=str(path), reason=reason
        ) from e
    except OSError as e:
        reason = e.strerror or str(e)
        raise CnnkitError.from_template(
            "cannot write {what} {path!r}: {reason}", what=what, path=str(path), reason=reason
        ) from e
