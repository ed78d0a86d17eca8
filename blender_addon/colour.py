"""Colour management between the engine's canvas and Blender: pure numpy, no bpy.

The engine draws and composites in straight sRGB; Blender stores colours linear and composites
in linear light. Every colour the builders hand to Blender (Grease Pencil and curve materials,
render backgrounds) goes through here, so both outputs look like the engine's canvas.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear (the engine draws in sRGB, Blender mixes linear)."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear values in [0, 1] to sRGB encoding (material names, PNG pixels)."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def canvas_matched_colours(srgba: np.ndarray, background: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Linear colours and opacities that make each stroke look in Blender as on the engine's canvas.

    The engine composites straight sRGB values (``a*c + (1-a)*bg``); Blender composites in linear
    light, which would show a half-transparent black stroke on white at 74% grey instead of 50%.
    For each stroke this returns the linear colour x and the smallest opacity a' >= a (x within
    [0, 1]) such that Blender's ``a'*x + (1-a')*lin(bg)`` equals ``lin(a*c + (1-a)*bg)`` exactly over
    the canvas background. Opaque strokes keep their colour; overlaps are close, not exact.
    Returns ((N, 3) linear colours, (N,) opacities).
    """
    rgba = np.clip(np.asarray(srgba, dtype=np.float64).reshape(-1, 4), 0.0, 1.0)
    c, a = rgba[:, :3], rgba[:, 3:4]
    bg = np.clip(np.asarray(background, dtype=np.float64)[:3], 0.0, 1.0)
    target = srgb_to_linear(a * c + (1 - a) * bg)
    bg_lin = srgb_to_linear(bg)
    lower = a.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep_dark = np.where(bg_lin > 0, 1 - target / bg_lin, -np.inf)  # x >= 0
        keep_light = np.where(bg_lin < 1, (target - bg_lin) / (1 - bg_lin), -np.inf)  # x <= 1
    lower = np.maximum(lower, np.maximum(keep_dark, keep_light).max(axis=1, keepdims=True))
    opacity = np.clip(lower, 0.0, 1.0)
    safe = np.where(opacity > 0, opacity, 1.0)
    x = np.where(opacity > 0, (target - (1 - opacity) * bg_lin) / safe, srgb_to_linear(c))
    return np.clip(x, 0.0, 1.0), opacity[:, 0]


def engine_colours(colour: np.ndarray, alpha: np.ndarray, background: Sequence[float]) -> np.ndarray:
    """Blender's linear colours and opacities -> (N, 4) straight sRGB colours and alphas for the
    engine: the inverse of ``canvas_matched_colours`` (reading strokes back from Blender).

    Over the canvas background the result looks exactly as Blender shows the stroke. The alpha is
    Blender's opacity: ``canvas_matched_colours`` raises a translucent stroke's opacity, and how
    far it was raised is not recoverable, so the colour found is the one that, with this alpha,
    composites to the same pixel. ``canvas_matched_colours`` of the result gives back
    ``(colour, alpha)``; opaque strokes come back exactly.
    """
    x = np.clip(np.asarray(colour, dtype=np.float64).reshape(-1, 3), 0.0, 1.0)
    a = np.clip(np.asarray(alpha, dtype=np.float64).reshape(-1, 1), 0.0, 1.0)
    bg = np.clip(np.asarray(background, dtype=np.float64)[:3], 0.0, 1.0)
    shown = linear_to_srgb(a * x + (1 - a) * srgb_to_linear(bg))  # the pixel over the background
    safe = np.where(a > 0, a, 1.0)
    c = np.where(a > 0, (shown - (1 - a) * bg) / safe, linear_to_srgb(x))
    return np.concatenate([np.clip(c, 0.0, 1.0), a], axis=1)
