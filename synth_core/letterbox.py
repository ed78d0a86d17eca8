"""The letterbox rule: where an image lands on a square canvas. Standard library only.

The engine resizes a sketch's source image into this rectangle (``images.fit_square``), and the
Blender add-on, which has neither torch nor Pillow, places the source-image overlay on the same
rectangle. Both call this one function, so the overlay cannot drift from what the engine saw.
"""

from __future__ import annotations


def fit_square_rect(width: int, height: int, size: int, pad: float = 0.0) -> tuple[int, int, int, int]:
    """The ``width`` x ``height`` image on a ``size`` x ``size`` canvas: (x0, y0, w, h) in pixels.

    The image is scaled to fit inside the canvas less a ``pad`` margin on each side (a fraction of
    the side), with its aspect kept, rounded to whole pixels (at least 1) and centred with integer
    division; y grows downwards.
    """
    if width < 1 or height < 1 or size < 1:
        raise ValueError(f"image and canvas sizes must be positive, got {width}x{height} on {size}")
    if not 0.0 <= pad < 0.5:
        raise ValueError(f"pad must be in [0, 0.5), got {pad}")
    scale = size * (1.0 - 2 * pad) / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    return (size - w) // 2, (size - h) // 2, w, h
