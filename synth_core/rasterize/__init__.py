"""Differentiable rasterization of open cubic Bezier strokes (round caps, alpha-over in order).

Public API:
- ``rasterize(strokes, height, width, backend="fast") -> [B, 4, H, W]`` premultiplied RGBA layer
  over transparent black; ``over_background`` puts it on a canvas colour.
- backends: ``"fast"`` (default; sparse, plain PyTorch, CPU/CUDA), ``"reference"`` (dense,
  slow, the one the fast path is tested against), ``"diffvg"`` (only if pydiffvg imports).
- ``render_drawing(drawing, scale)`` for PNG export of any Drawing.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ..drawing import Drawing
from ..strokes import StrokeTensors, from_drawing
from .diffvg_backend import has_diffvg, rasterize_diffvg
from .fast import rasterize_fast
from .geometry import DEFAULT_TOLERANCE, coverage, over_background
from .reference import rasterize_reference, render_supersampled

Backend = Literal["fast", "reference", "diffvg"]

__all__ = [
    "Backend", "rasterize", "over_background", "render_drawing", "render_supersampled",
    "rasterize_fast", "rasterize_reference", "rasterize_diffvg", "has_diffvg", "coverage",
]


def _check(strokes: StrokeTensors, height: int, width: int) -> None:
    p, w, c, topo = strokes.points, strokes.half_widths, strokes.colors, strokes.topology
    if p.ndim != 3 or p.shape[-1] != 2 or p.shape[1] != topo.num_points:
        raise ValueError(f"points must be [B, {topo.num_points}, 2], got {list(p.shape)}")
    B, N = p.shape[0], topo.num_strokes
    if tuple(w.shape) != (B, N):
        raise ValueError(f"half_widths must be [{B}, {N}], got {list(w.shape)}")
    if tuple(c.shape) != (B, N, 4):
        raise ValueError(f"colors must be [{B}, {N}, 4], got {list(c.shape)}")
    if not (p.device == w.device == c.device):
        raise ValueError("points, half_widths and colors must be on one device")
    if height < 1 or width < 1:
        raise ValueError(f"canvas must be at least 1x1, got {width}x{height}")


def rasterize(
    strokes: StrokeTensors, height: int, width: int, backend: Backend = "fast",
    tolerance: float = DEFAULT_TOLERANCE,
) -> torch.Tensor:
    """Premultiplied RGBA layer [B, 4, H, W] of ``strokes``, differentiable w.r.t. all tensors."""
    _check(strokes, height, width)
    if backend == "fast":
        return rasterize_fast(strokes, height, width, tolerance)
    if backend == "reference":
        return rasterize_reference(strokes, height, width, tolerance)
    if backend == "diffvg":
        if not has_diffvg():
            raise RuntimeError("backend 'diffvg' needs pydiffvg, which is not importable here; use 'fast'")
        return rasterize_diffvg(strokes, height, width)
    raise ValueError(f"unknown backend {backend!r}: use 'fast', 'reference' or 'diffvg'")


@torch.no_grad()
def render_drawing(drawing: Drawing, scale: float = 1.0, device: str | torch.device = "cpu") -> np.ndarray:
    """Straight-alpha RGBA uint8 image (H, W, 4) of a Drawing, ``scale`` x its canvas size."""
    d = drawing.scaled(scale) if scale != 1.0 else drawing
    layer = rasterize(from_drawing(d, device), d.height, d.width)
    img = over_background(layer, d.background)[0]  # premultiplied
    a = img[3:4].clamp_min(1e-8)
    rgba = torch.cat([(img[:3] / a).clamp(0, 1), img[3:4].clamp(0, 1)], 0)
    rgba = torch.where(img[3:4] > 0, rgba, torch.zeros_like(rgba))
    return (rgba.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
