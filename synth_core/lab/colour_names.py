"""What a person calls a colour: the five colours the built-in model knows, or "other".

One rule shared by the person-like judge (``eye``), which names the ink of a drawing, and by the
generator (``shapes``), whose strict teacher pays only for ink in the caption's colour, so that
both mean the same thing by "red".
"""

from __future__ import annotations

import numpy as np

from ..builtin.vocabulary import COLOURS

COLOUR_CLASSES = (*COLOURS, "other")
OTHER = len(COLOURS)


def classify(rgb: np.ndarray) -> np.ndarray:
    """Colour class index (COLOUR_CLASSES) of each colour [..., 3], as a person names it.

    Hue boundaries (degrees): red 340-22, orange 22-40, yellow 40-68, green 68-165, cyan
    165-195, blue 195-262, purple/pink 262-340; everything but red, yellow, green, blue and black
    is "other". Black is dark ink (value < 0.25, or < 0.42 when greyish); mid and light grey are
    other. A pale red (saturation < 0.35) is pink; a dark orange-red is brown; a dark yellow is
    olive: all other. Light green, light blue and light yellow keep their names (as in English)."""
    rgb = np.asarray(rgb, np.float64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = rgb.max(-1)
    c = v - rgb.min(-1)
    s = np.where(v > 1e-6, c / np.maximum(v, 1e-6), 0.0)
    safe = np.maximum(c, 1e-6)
    h = np.where(v == r, ((g - b) / safe) % 6.0, np.where(v == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    black = (v < 0.25) | ((v < 0.42) & (s < 0.4))
    chroma = ~black & (s >= 0.15)
    red = chroma & ((h >= 340) | (h < 22)) & (s >= 0.35) & ~((h >= 10) & (v < 0.7))
    yellow = chroma & (h >= 40) & (h < 68) & (v >= 0.6)
    green = chroma & (h >= 68) & (h < 165)
    blue = chroma & (h >= 195) & (h < 262)
    out = np.full(v.shape, OTHER, np.int64)
    for i, m in enumerate((red, green, blue, yellow, black)):  # the order of COLOURS
        out[m] = i
    return out


def name_of(rgb) -> str:
    """The class name of one colour, e.g. ``name_of((0.9, 0.1, 0.1)) == "red"``."""
    return COLOUR_CLASSES[int(classify(np.asarray(rgb, np.float64)))]
