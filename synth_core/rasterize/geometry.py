"""Shared geometry of every torch backend: cubic segments -> line pieces -> pixel coverage.

Both the reference and the fast rasterizer flatten curves with the same rule and use the same
coverage profile, so they must agree to rounding; they differ only in which (piece, pixel)
pairs they visit and how they composite.
"""

from __future__ import annotations

import math

import torch

# Coverage of a pixel whose centre is at distance d from a stroke of half-width h: the exact
# box-filtered (pixel-area) coverage of a straight band [-h, h] whose edges run across the
# pixel at their true angle (any h, including h < 0.5). A pixel's box reaches at most sqrt(1/2)
# from its centre (along a diagonal), so nothing farther than h + AA_RADIUS is covered.
AA_RADIUS = math.sqrt(0.5)
# Max distance (px) between a curve and its flattening. 0.1 px keeps the CLIPDraw init scene at
# 224x224 within 0.4/255 of a 16x16-supersampled render (0.2 px cost no less, measured earlier).
DEFAULT_TOLERANCE = 0.1


def _edge_shape(n: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Where the profile of an edge with unit normal ``n`` bends: (a, t1, t2, 2ab)."""
    return _edge_shape_xy(n[..., 0], n[..., 1])


def _edge_shape_xy(nx: torch.Tensor, ny: torch.Tensor) -> tuple[torch.Tensor, ...]:
    ax, ay = nx.abs(), ny.abs()
    a, b = torch.maximum(ax, ay), torch.minimum(ax, ay)  # a >= sqrt(1/2), b in [0, a]
    return a, 0.5 * (a - b), 0.5 * (a + b), (2.0 * a * b).clamp_min(1e-12)


def _edge_area(
    t: torch.Tensor, a: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, two_ab: torch.Tensor,
) -> torch.Tensor:
    # linear for |t| <= t1, a corner triangle (quadratic) out to |t| = t2, flat past it; the
    # branches not taken stay finite, so their zeroed gradients cannot turn into NaN
    corner_in = (t + t2).clamp_min(0.0) ** 2 / two_ab
    corner_out = 1.0 - (t2 - t).clamp_min(0.0) ** 2 / two_ab
    return torch.where(t > t1, corner_out, torch.where(t < -t1, corner_in, 0.5 + t / a))


def edge_area(t: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Area of the unit pixel (centred at 0) on the side n . x <= t of a straight edge.

    ``n`` [..., 2] is the edge's unit normal. Linear in t for axis-aligned edges, piecewise
    quadratic otherwise. The 1-D profile clamp(t + 1/2, 0, 1) used for every angle made the
    width gradients of diagonal edges and round caps wrong (cosine 0.79 with finite differences
    of a supersampled loss on CLIPasso strokes; 0.98 with this profile).
    """
    return _edge_area(t, *_edge_shape(n))


def coverage(d: torch.Tensor, n: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Box-filtered coverage of the band [-h, h] at distance ``d`` along the unit normal ``n``."""
    return coverage_xy(d, n[..., 0], n[..., 1], h)


def coverage_xy(d: torch.Tensor, nx: torch.Tensor, ny: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """``coverage`` with the normal's components apart (the fast path keeps x and y in separate
    contiguous arrays: reductions over a last dimension of 2 cost more than the arithmetic)."""
    shape = _edge_shape_xy(nx, ny)
    near = _edge_area(h - d, *shape)
    if not bool((torch.as_tensor(h) < AA_RADIUS).any()):
        return near  # the far edge lies beyond every pixel's reach: it would subtract exact zeros
    return (near - _edge_area(-h - d, *shape)).clamp(0.0, 1.0)


def bezier(ctrl: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points of cubic segments ``ctrl`` [K, 4, 2] at parameters ``t`` [K] -> [K, 2]."""
    s = 1.0 - t
    w0, w1, w2, w3 = (x[..., None] for x in (s * s * s, 3 * s * s * t, 3 * s * t * t, t * t * t))
    return w0 * ctrl[..., 0, :] + w1 * ctrl[..., 1, :] + w2 * ctrl[..., 2, :] + w3 * ctrl[..., 3, :]


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
    k = torch.arange(len(seg), device=ctrl.device) - first.index_select(0, seg)
    nf = n.index_select(0, seg).to(ctrl.dtype)
    t0 = k.to(ctrl.dtype) / nf
    t1 = (k + 1).to(ctrl.dtype) / nf
    c = ctrl.index_select(0, seg)
    return bezier(c, t0), bezier(c, t1), seg


def point_segment_distance(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from points ``p`` to segments ``a``-``b`` (broadcasting, [..., 2]).

    The small epsilons keep gradients finite at zero distance and for zero-length pieces.
    """
    return segment_distance_xy(p[..., 0], p[..., 1], a[..., 0], a[..., 1], b[..., 0], b[..., 1])


def distance_and_normal(
    p: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distance from points ``p`` to segments ``a``-``b``, and the unit normal of the stroke's edge there.

    The normal is the direction from the nearest point to ``p``: the segment's normal where the
    nearest point is inside it (the edge runs parallel), radial where it is an end point (a round
    cap or join), continuous between the two. On the centre line itself, where that direction is
    undefined, the segment's own normal is used.
    """
    d, nx, ny = distance_and_normal_xy(p[..., 0], p[..., 1], a[..., 0], a[..., 1], b[..., 0], b[..., 1])
    return d, torch.stack([nx, ny], -1)


def distance_and_normal_xy(
    px: torch.Tensor, py: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``distance_and_normal`` on separate x and y arrays -> (d, nx, ny); the fast path keeps x and y
    in contiguous 1-D arrays, and the vector form is this with the components stacked."""
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    len2 = abx * abx + aby * aby
    t = ((apx * abx + apy * aby) / len2.clamp_min(1e-12)).clamp(0.0, 1.0)
    qx, qy = apx - t * abx, apy - t * aby
    q2 = qx * qx + qy * qy
    d = torch.sqrt(q2 + 1e-12)
    inv_len = 1.0 / torch.sqrt(len2.clamp_min(1e-24))
    short = len2 < 1e-12  # a zero-length segment: the fallback normal (0, 1)
    side_x = torch.where(short, torch.zeros_like(abx), -aby * inv_len)
    side_y = torch.where(short, torch.ones_like(abx), abx * inv_len)
    off_line = q2 > 1e-10
    return d, torch.where(off_line, qx / d, side_x), torch.where(off_line, qy / d, side_y)


def segment_distance_xy(
    px: torch.Tensor, py: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, bx: torch.Tensor, by: torch.Tensor,
) -> torch.Tensor:
    """``point_segment_distance`` on separate x and y arrays (the no-gradient candidate search needs
    only the distance)."""
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    t = ((apx * abx + apy * aby) / (abx * abx + aby * aby).clamp_min(1e-12)).clamp(0.0, 1.0)
    qx, qy = apx - t * abx, apy - t * aby
    return torch.sqrt(qx * qx + qy * qy + 1e-12)


def over_background(layer: torch.Tensor, background: torch.Tensor | tuple[float, ...]) -> torch.Tensor:
    """Premultiplied RGBA layer [B, 4, H, W] over a straight RGBA colour -> premultiplied RGBA.

    With an opaque background (what the optimiser uses) channels 0-2 are plain RGB.
    """
    bg = torch.as_tensor(background, dtype=layer.dtype, device=layer.device).reshape(1, 4, 1, 1)
    bg = torch.cat([bg[:, :3] * bg[:, 3:4], bg[:, 3:4]], 1)
    return layer + bg * (1.0 - layer[:, 3:4])
