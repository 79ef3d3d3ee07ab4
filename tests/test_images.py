"""cnnkit.imaging.images: reading, writing and display scaling, with Pillow and NumPy as oracles."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from cnnkit.core.errors import CnnkitError
from cnnkit.imaging.images import read_image, to_uint8, write_image

rng = np.random.default_rng(0)


def random_bytes(*shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=shape).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
@pytest.mark.parametrize("shape", [(7, 9), (7, 9, 3)])
def test_lossless_round_trip_is_exact(tmp_path, suffix, shape):
    data = random_bytes(*shape)
    path = write_image(tmp_path / f"img{suffix}", data)
    assert path == tmp_path / f"img{suffix}"
    back = read_image(path, mode="L" if len(shape) == 2 else "RGB")
    assert back.dtype == np.float64 and back.shape == shape
    np.testing.assert_array_equal(back, data)
    # and Pillow agrees on what was written
    np.testing.assert_array_equal(np.asarray(Image.open(path)), data)


def test_jpeg_round_trip_is_close(tmp_path):
    smooth = np.add.outer(np.linspace(0, 200, 32), np.linspace(0, 50, 40))  # (32, 40)
    write_image(tmp_path / "a.jpg", smooth)
    back = read_image(tmp_path / "a.jpg")
    assert back.shape == (32, 40)
    assert np.abs(back - smooth).mean() < 2.0


def test_rgb_file_read_as_gray_uses_pillows_luma(tmp_path):
    data = random_bytes(5, 6, 3)
    Image.fromarray(data).save(tmp_path / "c.png")
    expected = np.asarray(Image.fromarray(data).convert("L"), dtype=np.float64)
    np.testing.assert_array_equal(read_image(tmp_path / "c.png", mode="L"), expected)


def test_gray_file_read_as_rgb_repeats_the_channel(tmp_path):
    data = random_bytes(5, 6)
    Image.fromarray(data).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png", mode="RGB")
    assert rgb.shape == (5, 6, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[:, :, c], data)


def test_auto_mode_keeps_grayscale_files_two_dimensional(tmp_path):
    Image.fromarray(random_bytes(4, 5)).save(tmp_path / "g.png")
    Image.fromarray(random_bytes(4, 5, 3)).save(tmp_path / "c.png")
    assert read_image(tmp_path / "g.png", mode="auto").shape == (4, 5)
    assert read_image(tmp_path / "c.png", mode="auto").shape == (4, 5, 3)


def test_sixteen_bit_png_is_scaled_to_0_255(tmp_path):
    data = rng.integers(0, 65536, size=(6, 7)).astype(np.uint16)
    Image.fromarray(data).save(tmp_path / "deep.png")
    back = read_image(tmp_path / "deep.png")
    np.testing.assert_allclose(back, data.astype(np.float64) * 255 / 65535)


def test_transparent_pixels_are_composited_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red everywhere
    rgba[0, 0, 3] = 255  # only the top-left pixel opaque
    rgba[0, 1, 3] = 128  # half transparent
    Image.fromarray(rgba).save(tmp_path / "t.png")
    rgb = read_image(tmp_path / "t.png", mode="RGB")
    np.testing.assert_array_equal(rgb[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(rgb[1, 1], [255, 255, 255])
    assert 200 < rgb[0, 1, 0] < 255 and 120 < rgb[0, 1, 1] < 135


def test_exif_orientation_is_applied(tmp_path):
    data = np.zeros((10, 20, 3), dtype=np.uint8)
    img = Image.fromarray(data)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").shape == (20, 10)


def test_unknown_mode_is_refused(tmp_path):
    write_image(tmp_path / "a.png", np.zeros((2, 2)))
    with pytest.raises(CnnkitError, match="'mode'.*'L', 'RGB', 'auto'.*Got 'CMYK'"):
        read_image(tmp_path / "a.png", mode="CMYK")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(CnnkitError, match=r"cannot read image '.*nope\.png': no such file"):
        read_image(tmp_path / "nope.png")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(CnnkitError, match=r"cannot read image '.*x\.txt': not an image"):
        read_image(tmp_path / "x.txt")


def test_truncated_png_is_refused(tmp_path):
    write_image(tmp_path / "full.png", random_bytes(64, 64))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(CnnkitError, match=r"cannot read image '.*cut\.png'"):
        read_image(tmp_path / "cut.png")


def test_directory_is_refused(tmp_path):
    with pytest.raises(CnnkitError, match="is a directory"):
        read_image(tmp_path)


def test_unknown_suffix_is_refused_before_writing(tmp_path):
    with pytest.raises(CnnkitError, match=r"unknown image suffix '\.xyz'.*\.png"):
        write_image(tmp_path / "out.xyz", np.zeros((3, 3)))
    with pytest.raises(CnnkitError, match=r"unknown image suffix '\(none\)'"):
        write_image(tmp_path / "sub" / "noext", np.zeros((3, 3)))
    assert list(tmp_path.iterdir()) == []


def test_parent_that_is_a_file_is_reported(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(CnnkitError, match="'.*afile' is a file, not a folder"):
        write_image(tmp_path / "afile" / "sub" / "x.png", np.zeros((3, 3)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    write_image(target, np.full((2, 2), 7))

    def half_written_then_disk_full(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", half_written_then_disk_full)
    with pytest.raises(CnnkitError, match=r"cannot write image '.*x\.png': No space left"):
        write_image(target, np.zeros((2, 2)))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(target), np.full((2, 2), 7))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_wrong_shape_is_refused_before_writing(tmp_path):
    with pytest.raises(CnnkitError, match="expected an array of shape"):
        write_image(tmp_path / "x.png", np.zeros((2, 2, 4)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), (0, 4), (2, 2, 3, 1)])
def test_bad_shapes_are_refused(tmp_path, shape):
    with pytest.raises(CnnkitError, match=re.escape(f"Got shape {shape!r}")):
        write_image(tmp_path / "x.png", np.zeros(shape))


def test_single_channel_third_axis_is_written_as_gray(tmp_path):
    data = random_bytes(3, 4, 1)
    write_image(tmp_path / "x.png", data)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png", mode="auto"), data[:, :, 0])


def test_write_normalize_is_applied(tmp_path):
    write_image(tmp_path / "x.png", np.array([[-1.0, 0.0, 3.0]]), normalize="minmax")
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), [[0, 64, 255]])


# --- to_uint8 ----------------------------------------------------------------------------


def test_clip_rounds_and_clips():
    out = to_uint8(np.array([-5.0, 0.4, 0.6, 254.5, 300.0]), "clip")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.clip(np.rint([-5.0, 0.4, 0.6, 254.5, 300.0]), 0, 255))


def test_minmax_stretches_to_full_range():
    a = rng.normal(size=(5, 6)) * 40 - 7
    out = to_uint8(a, "minmax")
    assert out.min() == 0 and out.max() == 255
    np.testing.assert_array_equal(out, np.rint((a - a.min()) / (a.max() - a.min()) * 255))


def test_abs_scales_the_largest_magnitude_to_255():
    a = np.array([[-4.0, 0.0, 2.0], [1.0, -1.0, 0.5]])
    np.testing.assert_array_equal(to_uint8(a, "abs"), np.rint(np.abs(a) / 4 * 255))


@pytest.mark.parametrize("mode", ["clip", "minmax", "abs"])
def test_constant_zero_array_is_black(mode):
    np.testing.assert_array_equal(to_uint8(np.zeros((2, 3)), mode), np.zeros((2, 3)))


def test_colour_is_scaled_with_one_range_for_all_channels():
    a = np.zeros((1, 1, 3))
    a[..., 0], a[..., 1], a[..., 2] = 10.0, 20.0, 30.0
    a = np.concatenate([a, np.zeros((1, 1, 3))], axis=1)  # (1, 2, 3): a dark pixel too
    out = to_uint8(a, "minmax")
    np.testing.assert_array_equal(out[0, 0], np.rint(np.array([10, 20, 30]) / 30 * 255))


def test_non_finite_values_are_refused():
    with pytest.raises(CnnkitError, match="NaN or infinite"):
        to_uint8(np.array([1.0, np.nan]), "minmax")


def test_unknown_display_mode_is_refused():
    with pytest.raises(CnnkitError, match="'clip', 'minmax', 'abs'.*Got 'log'"):
        to_uint8(np.zeros(2), "log")
