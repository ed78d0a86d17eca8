"""Shared geometry of every torch backend: cubic segments -> line pieces -> pixel coverage.

Both the reference and the fast rasterizer flatten curves with the same rule and use the same
coverage profile, so they must agree to rounding; they differ only in which (piece, pixel)
pairs they visit and how they composite.
"""

from __future__ import annotations

import torch

# Coverage of a pixel whose centre is at distance d from a stroke of half-width h: the 1-D
# box-filtered profile of the band [-h, h] (exact for straight edges, any h, including h < 0.5).
AA_RADIUS = 0.5
# Max distance (px) between a curve and its flattening. 0.1 px keeps the CLIPDraw scene within
# ~0.6/255 of a 16x16-supersampled render at no measurable cost over 0.2 px (~0.8/255).
DEFAULT_TOLERANCE = 0.1


def coverage(d: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    upper = torch.minimum(h, d + AA_RADIUS)
    lower = torch.maximum(-h, d - AA_RADIUS)
    return (upper - lower).clamp(0.0, 1.0)


def bezier(ctrl: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points of cubic segments ``ctrl`` [K, 4, 2] at parameters ``t`` [K] -> [K, 2]."""
    s = 1.0 - t
    w = torch.stack([s * s * s, 3 * s * s * t, 3 * s * t * t, t * t * t], dim=-1)  # [K, 4]
    return (w[..., None] * ctrl).sum(dim=-2)


@torch.no_grad()
def pieces_per_segment(ctrl: torch.Tensor, tolerance: float, max_pieces: int = 64) -> torch.Tensor:
    """How many line pieces each cubic needs to stay within ``tolerance`` px of the curve.

    Wang's bound for a cubic: n = ceil(sqrt(3/4 * max|P_i - 2P_{i+1} + P_{i+2}| / tol)).
    Straight strokes get one piece; tight curves get up to ``max_pieces``.
    """
    dd = torch.stack([ctrl[:, 0] - 2 * ctrl[:, 1] + ctrl[:, 2], ctrl[:, 1] - 2 * ctrl[:, 2] + ctrl[:, 3]], 1)
    m = dd.norm(dim=-1).amax(dim=1)
    n = torch.ceil(torch.sqrt(0.75 * m / tolerance))
    return n.clamp(1, max_pieces).to(torch.long)


def flatten(ctrl: torch.Tensor, tolerance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split segments ``ctrl`` [M, 4, 2] into line pieces.

    Returns (a [K, 2], b [K, 2], segment [K]): piece end points (differentiable w.r.t. ``ctrl``)
    and the segment each piece belongs to. The split itself is chosen without gradient.
    """
    n = pieces_per_segment(ctrl.detach(), tolerance)
    seg = torch.repeat_interleave(torch.arange(len(n), device=ctrl.device), n)
    first = torch.cumsum(n, 0) - n
    k = torch.arange(len(seg), device=ctrl.device) - first[seg]
    nf = n[seg].to(ctrl.dtype)
    t0 = k.to(ctrl.dtype) / nf
    t1 = (k + 1).to(ctrl.dtype) / nf
    c = ctrl[seg]
    return bezier(c, t0), bezier(c, t1), seg


def point_segment_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from points ``p`` to segments ``a``-``b`` (broadcasting, [..., 2]).

    The small epsilons keep gradients finite at zero distance and for zero-length pieces.
    """
    ab = b - a
    ap = p - a
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0.0, 1.0)
    q = ap - t[..., None] * ab
    return torch.sqrt((q * q).sum(-1) + 1e-12)


def over_background(layer: torch.Tensor, background: torch.Tensor | tuple[float, ...]) -> torch.Tensor:
    """Premultiplied RGBA layer [B, 4, H, W] over a straight RGBA colour -> premultiplied RGBA.

    With an opaque background (what the optimiser uses) channels 0-2 are plain RGB.
    """
    bg = torch.as_tensor(background, dtype=layer.dtype, device=layer.device).reshape(1, 4, 1, 1)
    bg = torch.cat([bg[:, :3] * bg[:, 3:4], bg[:, 3:4]], 1)
    return layer + bg * (1.0 - layer[:, 3:4])
