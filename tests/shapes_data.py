"""A small generated image-folder dataset: drawn circles, squares and triangles.

Sizes vary around `size` (so the median is computed, not given), about half the files are PNG
and half JPEG, and `corrupt=True` adds one file that is not a decodable image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("circle", "square", "triangle")


def draw(cls: str, size: int, rng: np.random.Generator, colour: bool = False) -> object:
    from PIL import Image, ImageDraw

    mode = "RGB" if colour else "L"
    background = int(rng.integers(0, 60))
    img = Image.new(mode, (size, size), (background,) * 3 if colour else background)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.25, 0.4) * size
    cx, cy = size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2)
    ink: object = int(rng.integers(180, 256))
    if colour:
        ink = tuple(int(v) for v in rng.integers(120, 256, size=3))
    if cls == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=ink)
    elif cls == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=ink)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=ink)
    return img


def make_shapes(
    root: Path,
    *,
    per_class: int = 30,
    size: int = 28,
    seed: int = 0,
    corrupt: bool = True,
    colour: bool = False,
) -> Path:
    """ROOT/<class>/NNN.png|jpg; returns the corrupt file's path (or ROOT)."""
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            s = int(rng.integers(size - 4, size + 5))
            img = draw(cls, s, rng, colour)
            img.save(root / cls / f"{i:03d}{'.png' if i % 2 else '.jpg'}")  # type: ignore[attr-defined]
    if not corrupt:
        return root
    bad = root / "square" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 4)
    return bad
