"""EXIF orientation without Pillow (synth_core.exif) checked against Pillow itself.

The engine turns decoded pixels with ``exif.upright`` and the Blender add-on turns its overlay with
``exif.orientation_matrix``; both must do exactly what Pillow's ``exif_transpose`` does, for
all eight orientations, and read the tag from the same files Pillow reads it from.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

from synth_core import exif

ORIENTATIONS = range(1, 9)


def tags(orientation: int) -> bytes:
    """An EXIF block (as Pillow writes it into files) holding just the orientation."""
    block = Image.Exif()
    block[exif.ORIENTATION_TAG] = orientation
    return block.tobytes()


def with_orientation(im: Image.Image, orientation: int) -> Image.Image:
    im.getexif()[exif.ORIENTATION_TAG] = orientation  # what exif_transpose reads
    return im


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("mode, shape", [("RGB", (5, 7, 3)), ("RGBA", (6, 4, 4)), ("L", (3, 8))])
def test_upright_gives_pillows_exif_transpose_pixels(orientation, mode, shape):
    raw = np.random.default_rng(orientation).integers(0, 256, shape, dtype=np.uint8)
    expected = np.asarray(ImageOps.exif_transpose(with_orientation(Image.fromarray(raw, mode), orientation)))
    got = exif.upright(raw, orientation)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_the_overlays_matrix_moves_each_pixel_where_upright_puts_it(orientation):
    """The add-on turns an image empty by the matrix; the engine turns pixels with ``upright``."""
    h, w = 5, 8
    raw = np.arange(h * w).reshape(h, w)
    up = exif.upright(raw, orientation)
    m = exif.orientation_matrix(orientation)
    assert exif.swaps_axes(orientation) == (up.shape != raw.shape)
    for v in range(h):
        for u in range(w):
            x, y = u + 0.5 - w / 2, h / 2 - (v + 0.5)  # pixel centre, centred, y up
            x2, y2 = m @ (x, y)
            col, row = x2 + up.shape[1] / 2 - 0.5, up.shape[0] / 2 - y2 - 0.5
            assert up[int(round(row)), int(round(col))] == raw[v, u]


def test_unknown_orientations_leave_pixels_as_they_are():
    raw = np.arange(6).reshape(2, 3)
    for odd in (0, 9, 300):
        np.testing.assert_array_equal(exif.upright(raw, odd), raw)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_the_tag_is_read_from_files_as_pillow_reads_it(tmp_path, fmt):
    for orientation in ORIENTATIONS:
        path = tmp_path / f"o{orientation}.{fmt.lower()}"
        Image.new("RGB", (12, 8), "red").save(path, fmt, exif=tags(orientation))
        with Image.open(path) as im:
            assert im.getexif().get(exif.ORIENTATION_TAG) == orientation
        assert exif.read_orientation(path) == orientation
        assert exif.orientation_from_bytes(path.read_bytes()) == orientation
    plain = tmp_path / f"plain.{fmt.lower()}"
    Image.new("RGB", (12, 8)).save(plain, fmt)
    assert exif.read_orientation(plain) == 1


def test_tiff_tags_after_the_pixels_are_found(tmp_path):
    """TIFF writers may put the first IFD after a large strip of pixels."""
    pixels = bytes(3 * 600 * 600)
    entries = [(256, 3, 1, 600), (257, 3, 1, 600), (274, 3, 1, 8)]  # width, height, orientation
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHIHH", t, k, n, v, 0) for t, k, n, v in entries)
    path = tmp_path / "late.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels + ifd + b"\0\0\0\0")
    assert exif.read_orientation(path) == 8


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_png_exif_after_the_image_data_is_found_like_pillow(tmp_path):
    Image.new("RGB", (12, 8), "red").save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    iend = data.rindex(b"IEND") - 4
    moved = data[:iend] + png_chunk(b"eXIf", tags(6).removeprefix(b"Exif\x00\x00")) + data[iend:]
    (tmp_path / "late.png").write_bytes(moved)
    with Image.open(tmp_path / "late.png") as im:
        assert ImageOps.exif_transpose(im).size == (8, 12)  # Pillow finds it there and turns the image
    assert exif.read_orientation(tmp_path / "late.png") == 6


@pytest.mark.parametrize("data", [b"", b"\xff\xd8", b"\xff\xd8\xff\xe1\x00\x40Exif\x00\x00MM\x00*",
                                  b"\xff\xd8\xff\xe1\x00\x01", b"\x89PNG\r\n\x1a\n\x00\x00", b"II*\x00\xff\xff\xff\x7f",
                                  b"RIFF\x00\x00\x00\x00WEBPEXIF"])
def test_truncated_or_odd_headers_mean_no_orientation(data):
    assert exif.orientation_from_bytes(data) == 1


def test_missing_files_have_no_orientation(tmp_path):
    assert exif.read_orientation(tmp_path / "missing.jpg") == 1


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_load_image_turns_photos_as_pillow_does(tmp_path, orientation):
    pytest.importorskip("torch")
    from synth_core.images import load_image

    raw = np.random.default_rng(orientation).integers(0, 256, (10, 16, 3), dtype=np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(raw).save(path, exif=tags(orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), np.float32) / 255.0
    np.testing.assert_array_equal(load_image(path).rgb, expected)
