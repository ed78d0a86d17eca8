"""EXIF orientation: read it from an image file's bytes and turn pixels upright. No Pillow, no torch.

A photo is often stored sideways with an EXIF tag (1-8) saying how to turn it. The engine turns
the pixels it decodes upright with ``upright``; the Blender add-on (no Pillow there) shows the
raw file as an image empty and turns the empty with ``orientation_matrix``. Both read the tag
with ``read_orientation`` and derive their turn from the same table, so a sketch's overlay
agrees with what the engine saw by construction. The table is Pillow's ``exif_transpose``.
"""

from __future__ import annotations

import io
import os
import struct
from typing import BinaryIO

import numpy as np

ORIENTATION_TAG = 0x0112
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Orientation -> the 2x2 map from the stored image's centred coordinates (x right, y up) to the
# upright image's: 2 mirrors, 3 turns half way, 6 needs a quarter turn clockwise, ...
ORIENTATIONS: dict[int, tuple[tuple[int, int], tuple[int, int]]] = {
    1: ((1, 0), (0, 1)), 2: ((-1, 0), (0, 1)), 3: ((-1, 0), (0, -1)), 4: ((1, 0), (0, -1)),
    5: ((0, -1), (-1, 0)), 6: ((0, 1), (-1, 0)), 7: ((0, 1), (1, 0)), 8: ((0, -1), (1, 0)),
}


def orientation_matrix(orientation: int) -> np.ndarray:
    """2x2 stored -> upright map of an orientation (unknown values: identity, as Pillow)."""
    return np.array(ORIENTATIONS.get(int(orientation), ORIENTATIONS[1]), dtype=np.float64)


def swaps_axes(orientation: int) -> bool:
    """Whether the upright image is the stored one turned a quarter (width and height swap)."""
    return orientation_matrix(orientation)[0, 0] == 0


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """An (H, W, ...) array turned upright for ``orientation``, derived from ``orientation_matrix``.

    Rows run down (-y) and columns right (+x). A quarter turn first swaps rows and columns, after
    which the array's right is the stored image's down and its up the stored image's left; each
    axis the matrix then sends the wrong way is flipped.
    """
    m = orientation_matrix(orientation)
    a = np.asarray(pixels)
    if m[0, 0] == 0:  # x' = m01 * y, y' = m10 * x; after the swap right = -y and up = -x
        a = np.swapaxes(a, 0, 1)
        flip_x, flip_y = m[0, 1] > 0, m[1, 0] > 0
    else:
        flip_x, flip_y = m[0, 0] < 0, m[1, 1] < 0
    if flip_x:
        a = a[:, ::-1]
    if flip_y:
        a = a[::-1]
    return a


# -- reading the tag -------------------------------------------------------------------------
def read_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation (1-8) of a JPEG, PNG, WebP or TIFF file; 1 when none or unreadable.

    Walks the file's chunk headers and seeks over the pixel data, so it reads a few kilobytes
    even of a large photo, wherever its EXIF block sits.
    """
    try:
        with open(path, "rb") as f:
            return _orientation(f)
    except OSError:
        return 1


def orientation_from_bytes(data: bytes) -> int:
    """The EXIF orientation (1-8) of an image file held in memory; 1 when none or unreadable."""
    return _orientation(io.BytesIO(data))


def _orientation(f: BinaryIO) -> int:
    try:
        payload = _exif_payload(f)
        return _tiff_orientation(payload) if payload else 1
    except struct.error:  # a truncated header: no orientation
        return 1


def _exif_payload(f: BinaryIO) -> bytes | None:
    """The TIFF-structured EXIF block of a JPEG, PNG, WebP or TIFF file, if any."""
    head = f.read(12)
    if head[:2] == b"\xff\xd8":
        return _jpeg_exif(f)
    if head[:8] == PNG_SIGNATURE:
        return _png_exif(f)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_exif(f)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_first_ifd(f, head)
    return None


def _jpeg_exif(f: BinaryIO) -> bytes | None:
    """The APP1 'Exif' segment's body; segments are walked until the image data starts."""
    f.seek(2)
    while True:
        seg = f.read(4)
        if len(seg) < 4 or seg[0] != 0xFF or seg[1] in (0xDA, 0xD9):
            return None
        (length,) = struct.unpack(">H", seg[2:4])
        if length < 2:
            return None
        if seg[1] == 0xE1:
            body = f.read(length - 2)
            if body[:6] == b"Exif\x00\x00":
                return body[6:]
        else:
            f.seek(length - 2, io.SEEK_CUR)


def _png_exif(f: BinaryIO) -> bytes | None:
    """The eXIf chunk, before or after the image data (Pillow reads it in both places)."""
    f.seek(8)
    while True:
        header = f.read(8)
        if len(header) < 8 or header[4:8] == b"IEND":
            return None
        (length,) = struct.unpack(">I", header[:4])
        if header[4:8] == b"eXIf":
            return f.read(length)
        f.seek(length + 4, io.SEEK_CUR)  # data and CRC


def _webp_exif(f: BinaryIO) -> bytes | None:
    """The EXIF chunk of a RIFF WebP file (with or without the 'Exif' prefix some writers add)."""
    f.seek(12)
    while True:
        header = f.read(8)
        if len(header) < 8:
            return None
        (length,) = struct.unpack("<I", header[4:8])
        if header[:4] == b"EXIF":
            payload = f.read(length)
            return payload[6:] if payload.startswith(b"Exif\x00\x00") else payload
        f.seek(length + (length & 1), io.SEEK_CUR)


def _tiff_first_ifd(f: BinaryIO, head: bytes) -> bytes:
    """A TIFF file's header and first IFD as a small TIFF structure (the IFD may follow the pixels).

    The orientation is a SHORT, stored inside its IFD entry, so the entries are all it takes.
    """
    e = "<" if head[:2] == b"II" else ">"
    (ifd,) = struct.unpack(e + "I", head[4:8])
    f.seek(ifd)
    count = f.read(2)
    entries = f.read(12 * struct.unpack(e + "H", count)[0])
    return head[:4] + struct.pack(e + "I", 8) + count + entries


def _tiff_orientation(tiff: bytes) -> int:
    """The orientation tag of IFD0 in a TIFF structure (1 when absent or out of range)."""
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
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT
            (value,) = struct.unpack(e + "H", tiff[at + 8 : at + 10])
            return value if 1 <= value <= 8 else 1
    return 1
