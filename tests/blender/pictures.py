"""Images for the image-input and overlay tests: files in many formats, and Blender datablocks.

Files are written with Pillow when it is there (the project's .venv has it; the bare 4.2 / 5.0
test venvs may not), else the tests that need odd formats are skipped.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from blender_addon import image_files


def decode_png(data: bytes) -> np.ndarray:
    """Decoder for ``image_files.png_bytes`` output (8-bit RGBA, filter 0), checking every CRC."""
    assert data[:8] == image_files.PNG_SIGNATURE
    at, idat, size = 8, b"", None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:10] == b"\x08\x06"  # 8-bit RGBA
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    w, h = size
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 4 * w)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, 4)


def disc_rgba(w: int = 96, h: int = 64, centre=(70, 32), radius: int = 12, transparent: bool = True) -> np.ndarray:
    """A black disc on a transparent (or white) background: a known feature off the image centre."""
    a = np.full((h, w, 4), 255, np.uint8)
    if transparent:
        a[..., 3] = 0
    ys, xs = np.mgrid[:h, :w]
    a[(xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 < radius**2] = (0, 0, 0, 255)
    return a


def write_rgba(path: Path, rgba: np.ndarray) -> Path:
    """An 8-bit RGBA PNG, without Pillow."""
    return image_files.write_png(path, rgba)


def pillow():
    return pytest.importorskip("PIL.Image", reason="Pillow writes the odd image formats")


def odd_file(tmp_path: Path, kind: str) -> Path:
    """An image file of a kind the engine must handle: corrupt, 1 px, grey, 16-bit, animated, PPM."""
    path = tmp_path / {"corrupt": "corrupt.png", "one_pixel": "one.png", "grey": "grey.png", "grey16": "grey16.png",
                       "gif": "anim.gif", "apng": "anim.png", "tiny": "tiny.png", "ppm": "photo.ppm"}[kind]
    if kind == "corrupt":
        path.write_bytes(image_files.PNG_SIGNATURE + b"this is not a PNG")
        return path
    if kind in ("one_pixel", "tiny"):
        side = 1 if kind == "one_pixel" else 4
        return write_rgba(path, np.zeros((side, side, 4), np.uint8) + 255)
    pil = pillow()
    grey = disc_rgba(transparent=False)[..., 0]
    if kind == "grey":
        pil.fromarray(grey, "L").save(path)
    elif kind == "grey16":
        pil.fromarray(grey.astype(np.int32) * 257, "I").convert("I;16").save(path)
    elif kind == "ppm":  # Pillow (the engine) reads it, Blender does not
        pil.fromarray(disc_rgba(transparent=False)[..., :3]).save(path)
    else:
        frames = [pil.fromarray(disc_rgba(transparent=False)[..., :3]), pil.new("RGB", (96, 64), "blue")]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    return path


def datablock(name: str, rgba: np.ndarray, float_buffer: bool = False):
    """A generated Blender image holding ``rgba`` (H, W, 4) uint8 (top row first)."""
    import bpy

    h, w = rgba.shape[:2]
    img = bpy.data.images.new(name, w, h, alpha=True, float_buffer=float_buffer)
    img.pixels.foreach_set((rgba[::-1].astype(np.float32) / 255.0).ravel())
    return img


def empty_image_point(obj, u: float, v: float) -> np.ndarray:
    """World position where an image empty draws the point (u, v) of its image (pixels, y down).

    Everything is read back from Blender: the object's matrix, display size, image offset, the
    image's size and pixel aspect, combined as Blender's overlay engine draws an image empty
    (overlay_image.cc: X and Y scaled by aspect * display_size / 2, the quad [-1, 1]^2 moved by
    offset * 2 + 1).
    """
    from blender_addon.placement import empty_image_aspect

    w, h = obj.data.size[:]
    ax, ay = empty_image_aspect(w, h, *obj.data.display_aspect[:])
    d = obj.empty_display_size
    ox, oy = obj.empty_image_offset[:]
    x = (ox * 2 + 1) * ax * d / 2 + (2 * u / w - 1) * ax * d / 2
    y = (oy * 2 + 1) * ay * d / 2 + (1 - 2 * v / h) * ay * d / 2
    m = np.array(obj.matrix_world)
    return (m @ np.array([x, y, 0.0, 1.0]))[:3]
