"""Image files without bpy or Pillow (Blender's Python has neither guaranteed): write an RGBA PNG,
read an image's size and EXIF orientation from its header. Pure, so it can be tested anywhere.

``write_png`` is how a Blender image datablock reaches the engine: its pixels go into a plain
8-bit PNG that the worker, in another process, can read. ``exif_orientation`` lets the sketch
overlay turn a photo the way the engine does (Pillow's ``exif_transpose``), since Blender shows
image files as stored.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_ORIENTATION_TAG = 0x0112


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(rgba: np.ndarray, level: int = 1) -> bytes:
    """An 8-bit RGBA PNG of ``rgba`` (H, W, 4) uint8, top row first.

    Compression level 1: the file lives for one job, and writing must not hold up Blender's
    main thread for a large image.
    """
    a = np.ascontiguousarray(rgba, dtype=np.uint8)
    if a.ndim != 3 or a.shape[2] != 4 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected an (H, W, 4) array, got shape {a.shape}")
    h, w = a.shape[:2]
    rows = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, w * 4)], axis=1)  # filter 0 per row
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return (PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + _chunk(b"IEND", b""))


def write_png(path: str | os.PathLike, rgba: np.ndarray) -> Path:
    """Write ``rgba`` (H, W, 4) uint8 as a PNG at ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(png_bytes(rgba))
    return path


def float_to_bytes(rgba: np.ndarray) -> np.ndarray:
    """Float RGBA in [0, 1] to uint8 with rounding (what an 8-bit file stores)."""
    return (np.clip(np.asarray(rgba, dtype=np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# -- EXIF orientation --------------------------------------------------------------------------
def _tiff_orientation(tiff: bytes) -> int:
    """Orientation tag of IFD0 in a TIFF-structured EXIF block (1 when absent or unreadable)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(e + "H", tiff[ifd : ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(tiff):
            break
        tag, kind, _n = struct.unpack(e + "HHI", tiff[at : at + 8])
        if tag == _EXIF_ORIENTATION_TAG and kind == 3:  # SHORT
            (value,) = struct.unpack(e + "H", tiff[at + 8 : at + 10])
            return value if 1 <= value <= 8 else 1
    return 1


def _exif_payload(data: bytes) -> bytes | None:
    """The TIFF-structured EXIF block of a JPEG, PNG or WebP file's first bytes, if any."""
    if data[:2] == b"\xff\xd8":  # JPEG: segments until the image data starts
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF:
            marker, (length,) = data[at + 1], struct.unpack(">H", data[at + 2 : at + 4])
            if marker == 0xE1 and data[at + 4 : at + 10] == b"Exif\x00\x00":
                return data[at + 10 : at + 2 + length]
            if marker in (0xDA, 0xD9):
                break
            at += 2 + length
        return None
    if data[:8] == PNG_SIGNATURE:
        at = 8
        while at + 8 <= len(data):
            (length,) = struct.unpack(">I", data[at : at + 4])
            kind = data[at + 4 : at + 8]
            if kind == b"eXIf":
                return data[at + 8 : at + 8 + length]
            if kind in (b"IDAT", b"IEND"):
                break
            at += 12 + length
        return None
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        at = 12
        while at + 8 <= len(data):
            kind, (length,) = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])
            if kind == b"EXIF":
                payload = data[at + 8 : at + 8 + length]
                return payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
            at += 8 + length + (length & 1)
    return None


def exif_orientation(path: str | os.PathLike, limit: int = 1 << 20) -> int:
    """The EXIF orientation (1-8) of a JPEG, PNG or WebP file; 1 when it has none or is unreadable.

    Only the first ``limit`` bytes are read: EXIF sits before the image data.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
    except OSError:
        return 1
    try:
        payload = _exif_payload(data)
        return _tiff_orientation(payload) if payload else 1
    except struct.error:  # a truncated header: treat as no orientation
        return 1
