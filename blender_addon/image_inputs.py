"""Image inputs (style image, source image) -> files the engine can read. Main thread only.

The engine runs in another thread or process and must never touch ``bpy.data``, so every image
is turned into a file before the job starts:

- a file path is passed as it is (made absolute); the engine reads and checks it, and refuses an
  unreadable or too small file with a ``bad_request`` error that the panel shows;
- an image datablock (loaded from a file, packed, generated, painted and not saved) has its
  current pixels written to a PNG in a folder that belongs to the job (``bridge.Job.own``), so
  what the engine sees is exactly what Blender shows, and the folder goes when the job is closed.

A datablock without pixels (a missing file, an empty Render Result) or one too small for the
engine is refused here, before anything starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from . import image_files
from .colour import linear_to_srgb

MIN_SIDE = 8  # the engine's limits (synth_core.images); the engine checks files again
MAX_PIXELS = 100_000_000
FOLDER_PREFIX = "clipdraw-job-"


class ImageInputError(ValueError):
    """The chosen image cannot be used; the message says which one and what to do."""


@dataclass(frozen=True)
class ResolvedImage:
    """One image input as plain values: the file for the engine and what to record about it."""

    path: str  # the file the engine reads (a temporary PNG for a datablock)
    label: str  # the datablock's name, or the file path as chosen: stored on the result
    source: str  # 'IMAGE' (a datablock) or 'FILE'
    image_name: str = ""  # the datablock the overlay shows ('' for a file: the overlay loads it)


class JobFolder:
    """A job's temporary folder for its input files, made only when a file must be written.

    The job takes it over (``bridge.Job.own``) and removes it when closed; ``remove`` is for a
    run that fails to start.
    """

    def __init__(self) -> None:
        self.path: Path | None = None

    def get(self) -> Path:
        if self.path is None:
            self.path = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        return self.path

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None


def resolve(choice, what: str, folder: JobFolder) -> ResolvedImage:
    """The file for one ``CLIPDRAW_PG_image_input``; ImageInputError if nothing usable is chosen.

    ``what`` names the input in messages ("style image", "source image").
    """
    if choice.source == "FILE":
        return _resolve_file(choice.filepath, what)
    image = choice.image
    if image is None:
        raise ImageInputError(f"no {what} chosen: pick a Blender image or switch the source to File")
    pixels = datablock_pixels(image, what)  # refuses before any file is made
    path = folder.get() / f"{what.replace(' ', '_')}.png"
    image_files.write_png(path, pixels)
    return ResolvedImage(str(path), image.name, "IMAGE", image.name)


def _resolve_file(filepath: str, what: str) -> ResolvedImage:
    raw = filepath.strip()
    if not raw:
        raise ImageInputError(f"no {what} chosen: pick an image file or switch the source to Blender Image")
    path = os.path.abspath(bpy.path.abspath(raw))
    if not os.path.isfile(path):
        raise ImageInputError(f"the {what} file {path!r} does not exist")
    return ResolvedImage(path, path, "FILE")


def datablock_pixels(image: bpy.types.Image, what: str = "image") -> np.ndarray:
    """The image's current pixels as (H, W, 4) uint8 sRGB, top row first, straight alpha.

    Byte images keep their stored values. Float images (EXR, HDR, float buffers) hold scene-linear
    values, which are encoded to sRGB as an 8-bit file would store them; Non-Color data is kept.
    An alpha mode of 'NONE' means the alpha channel is not transparency: it becomes opaque.
    """
    w, h = image.size[:]
    if w * h == 0 or not image.has_data:
        raise ImageInputError(f"the {what} '{image.name}' has no pixels: {_no_pixels_reason(image)}")
    if min(w, h) < MIN_SIDE:
        raise ImageInputError(f"the {what} '{image.name}' is {w}x{h} px: the engine needs at least {MIN_SIDE} px "
                              "a side")
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"the {what} '{image.name}' is {w}x{h}: over {MAX_PIXELS // 10**6} megapixels")
    flat = np.empty(w * h * image.channels, np.float32)
    image.pixels.foreach_get(flat)
    rgba = _as_rgba(flat.reshape(h, w, image.channels))[::-1]
    if image.is_float and not image.colorspace_settings.is_data:
        rgba[..., :3] = linear_to_srgb(rgba[..., :3])
    if image.alpha_mode == 'NONE':
        rgba[..., 3] = 1.0
    return image_files.float_to_bytes(rgba)


def _as_rgba(px: np.ndarray) -> np.ndarray:
    """(H, W, C) with 1-4 channels -> (H, W, 4) float32 (grey repeated, opaque when no alpha)."""
    c = px.shape[2]
    if c == 4:
        return px.astype(np.float32, copy=True)
    out = np.ones(px.shape[:2] + (4,), np.float32)
    out[..., :3] = px[..., :3] if c >= 3 else px[..., :1]
    if c == 2:
        out[..., 3] = px[..., 1]
    return out


def _no_pixels_reason(image: bpy.types.Image) -> str:
    if image.type in {'RENDER_RESULT', 'COMPOSITING'}:
        return "render first, or save the render and use that image"
    if image.source == 'FILE' and image.packed_file is None:
        path = bpy.path.abspath(image.filepath) if image.filepath else ""
        if not path:
            return "it has no file: save or pack it"
        if not os.path.isfile(path):
            return f"its file {path!r} is missing: reload it from its new place, or pack it"
        return f"Blender cannot read its file {path!r}"
    return "paint or generate it, or reload it from a file"
