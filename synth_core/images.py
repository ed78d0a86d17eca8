"""Reading user images (sketch targets, style images) into float tensors, with clear refusals.

Accepts what Pillow reads (PNG, JPEG, WebP, ...): RGBA is composited on white and its alpha kept
as an object mask, greyscale / palette / 16-bit images become RGB, an animated file uses its
first frame. Refused with a one-line reason: missing or unreadable files, anything that is not a
regular file (a pipe, a device), files over 1 GB, images smaller than 8 px on a side, and images
over 100 megapixels (decompression bombs). Images over ``MAX_SIDE`` px are shrunk as they are
decoded, before any float conversion: nothing downstream uses more than the canvas (at most 4096).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import exif, letterbox
from .errors import BadRequest
from .files import MB, FileRefused, open_regular

MIN_SIDE = 8
MAX_PIXELS = 100_000_000
MAX_SIDE = 4096  # the largest canvas; bigger images are reduced to this as soon as they are decoded
MAX_FILE_BYTES = 1024 * MB


@dataclass(frozen=True)
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) float32 in [0, 1], composited on white
    alpha: np.ndarray | None  # (H, W) float32 in [0, 1] when the file had transparency
    path: str

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def load_image(path: str | os.PathLike, what: str = "image") -> LoadedImage:
    from PIL import Image

    p = Path(path)
    try:
        f = open_regular(p, MAX_FILE_BYTES, what)
    except FileRefused as e:
        raise BadRequest(str(e)) from None
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bombs are refused below, damage is an error: one line
            with Image.open(f) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise BadRequest(f"{what} {p.name} is {im.width}x{im.height}: over {MAX_PIXELS // 10**6} "
                                     "megapixels")
                im.seek(0)  # animated: first frame
                im = _decoded_small(im)
                # turned upright as the add-on's overlay turns it
                rgba = exif.upright(_to_rgba(im), exif.read_orientation(p))
    except BadRequest:
        raise
    except Image.DecompressionBombError:
        raise BadRequest(f"{what} {p.name} is over {MAX_PIXELS // 10**6} megapixels") from None
    except MemoryError:
        raise BadRequest(f"{what} {p.name} is too large to decode in the memory available") from None
    except Exception as e:  # Pillow's plugins raise many types for damaged files (SyntaxError...)
        detail = " ".join(str(e).split())[:120]
        raise BadRequest(f"{what} {p.name} is not a readable image ({type(e).__name__}: {detail})") from None
    if min(rgba.shape[:2]) < MIN_SIDE:
        raise BadRequest(f"{what} {p.name} is {rgba.shape[1]}x{rgba.shape[0]} px: at least {MIN_SIDE} px a side")
    a = rgba[..., 3]
    rgb = rgba[..., :3] * a[..., None] + (1.0 - a[..., None])
    has_alpha = bool((a < 0.999).any())
    return LoadedImage(rgb.astype(np.float32), a.astype(np.float32) if has_alpha else None, str(p))


def _decoded_small(im):
    """The decoded image, at most ``MAX_SIDE`` px a side; smaller images come back untouched.

    JPEGs decode at a reduced scale directly (``draft``); other formats are decoded, then
    reduced with Pillow's fast integer ``reduce`` and an antialiased resize (``thumbnail``), so an
    81-megapixel photo costs a decode, not minutes of float arithmetic on every pixel.
    """
    from PIL import Image

    if max(im.size) <= MAX_SIDE:
        im.load()
        return im
    if im.format == "JPEG":
        im.draft(im.mode, (MAX_SIDE, MAX_SIDE))
    im.load()
    if im.mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGBA")
    elif im.mode.startswith("I;16"):
        im = im.convert("I")
    im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=1.0)
    return im


def _to_rgba(im) -> np.ndarray:
    """Any Pillow mode -> (H, W, 4) float32 in [0, 1] (16-bit greyscale keeps its precision)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        g = np.asarray(im, dtype=np.float32)
        g = np.clip(g / (65535.0 if g.max() > 255 else 255.0), 0, 1)
        return np.dstack([g, g, g, np.ones_like(g)])
    if im.mode == "F":
        g = np.clip(np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0), 0, 1)
        return np.dstack([g, g, g, np.ones_like(g)])
    return np.asarray(im.convert("RGBA"), dtype=np.float32) / 255.0


def fit_square(img: LoadedImage, size: int, pad: float = 0.0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The image letterboxed onto a white ``size`` x ``size`` square (aspect kept, centred).

    Returns RGB [1, 3, size, size] and the alpha mask [1, 1, size, size] (or None). ``pad`` adds a
    white margin as a fraction of the side (CLIPasso pads its targets so strokes fit).
    """
    from PIL import Image

    h, w = img.rgb.shape[:2]
    x0, y0, nw, nh = letterbox.fit_square_rect(w, h, size, pad)

    def resized(a: np.ndarray) -> np.ndarray:
        im = Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8))
        return np.asarray(im.resize((nw, nh), Image.BICUBIC), dtype=np.float32) / 255.0

    canvas = np.ones((size, size, 3), np.float32)
    canvas[y0 : y0 + nh, x0 : x0 + nw] = resized(img.rgb)
    rgb = torch.from_numpy(canvas).permute(2, 0, 1)[None]
    if img.alpha is None:
        return rgb, None
    mask = np.zeros((size, size), np.float32)
    mask[y0 : y0 + nh, x0 : x0 + nw] = resized(img.alpha)
    return rgb, torch.from_numpy(mask)[None, None]


def fit_long_edge(img: LoadedImage, size: int) -> torch.Tensor:
    """RGB [1, 3, h, w] resized (bicubic) so that its long edge is ``size`` (StyleCLIPDraw's style input)."""
    from PIL import Image

    h, w = img.rgb.shape[:2]
    s = size / max(h, w)
    im = Image.fromarray((np.clip(img.rgb, 0, 1) * 255 + 0.5).astype(np.uint8))
    im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
