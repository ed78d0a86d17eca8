"""The engine's cubic Bezier strokes in the two shapes Blender takes them: pure numpy, no bpy.

A stroke is packed as 3S+1 control points (S cubic segments sharing their ends). Curves and
Grease Pencil v3 take Bezier knots with left/right handles (``knot_handles``: exact, no
resampling); Grease Pencil v2 takes point lists (``sample_polylines``).
"""

from __future__ import annotations

import numpy as np


def knot_handles(points: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split packed cubic control points into Bezier knots and their left/right handles.

    Stroke i's control points c0..c(3S) give knots c0, c3, ..., c(3S); knot k's left handle is
    c(3k-1) and its right handle c(3k+1). The open ends get a handle on the knot itself (no
    influence), so the curve between knots is exactly the engine's cubic.
    Returns three (K, D) arrays, K = sum(S+1).
    """
    pts = np.asarray(points)
    seg = np.asarray(segments, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(3 * seg + 1)])
    knots_per = seg + 1
    stroke_of = np.repeat(np.arange(len(seg)), knots_per)
    first_knot = np.concatenate([[0], np.cumsum(knots_per)])[:-1]
    k = np.arange(int(knots_per.sum())) - np.repeat(first_knot, knots_per)  # knot number in its stroke
    idx = offsets[stroke_of] + 3 * k
    left = np.where(k == 0, idx, idx - 1)
    right = np.where(k == seg[stroke_of], idx, idx + 1)
    return pts[idx], pts[left], pts[right]


def sample_polylines(points: np.ndarray, segments: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample every stroke's cubic path at ``samples`` points per segment (ends shared).

    For outputs without Bezier strokes (Grease Pencil v2). Vectorised per segment count, so a
    256-stroke drawing costs a few numpy calls, not a Python loop over points.
    Returns (Q, D) points and (N,) point counts, stroke order kept.
    """
    if samples < 2:
        raise ValueError("samples per segment must be at least 2")
    pts = np.asarray(points, dtype=np.float64)
    seg = np.asarray(segments, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(3 * seg + 1)])
    t = np.linspace(0.0, 1.0, samples)
    basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], axis=1)  # (T, 4)
    counts = seg * (samples - 1) + 1
    out_offsets = np.concatenate([[0], np.cumsum(counts)])
    out = np.empty((int(counts.sum()), pts.shape[1]))
    for s in np.unique(seg):
        which = np.nonzero(seg == s)[0]
        ctrl = pts[offsets[which][:, None] + np.arange(3 * s + 1)]  # (n, 3s+1, D)
        segs = np.stack([ctrl[:, 3 * k : 3 * k + 4] for k in range(s)], axis=1)  # (n, s, 4, D)
        curve = np.einsum("tj,nsjd->nstd", basis, segs)  # (n, s, T, D)
        body = curve[:, :, :-1].reshape(len(which), -1, pts.shape[1])  # drop shared segment ends
        full = np.concatenate([body, curve[:, -1, -1:]], axis=1)
        rows = out_offsets[which][:, None] + np.arange(full.shape[1])
        out[rows] = full
    return out, counts
