"""Writing image files without bpy or Pillow (Blender's Python has no Pillow). Pure, so it can be
tested anywhere.

``write_png`` is how a Blender image datablock reaches the engine: its pixels go into a plain
8-bit PNG that the worker, in another process, can read. (A file's EXIF orientation is read by
the engine's ``synth_core.exif``, which the overlay uses too, so both turn a photo alike.)
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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
