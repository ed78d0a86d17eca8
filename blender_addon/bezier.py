"""The engine's cubic Bezier strokes in the two shapes Blender takes them: pure numpy, no bpy.

A stroke is packed as 3S+1 control points (S cubic segments sharing their ends). Curves and
Grease Pencil v3 take Bezier knots with left/right handles (``knot_handles``: exact, no
resampling); Grease Pencil v2 takes point lists (``sample_polylines``). Reading strokes back goes
the other way: knots and handles to control points (``bezier_controls``, exact), point lists
this add-on sampled back to their cubics (``sampled_controls``, exact), and point lists of
strokes drawn by hand to cubics (``catmull_rom_controls``).
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


def samples_fit(count: int, samples: int) -> bool:
    """Whether a point list of ``count`` points can be ``sample_polylines``' output at ``samples``
    points per segment (a whole number of segments, at least one)."""
    return count >= samples and (count - 1) % (samples - 1) == 0


def sampled_controls(points: np.ndarray, counts: np.ndarray, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Point lists written by ``sample_polylines`` -> the packed cubic control points: its inverse.

    Each segment's ends are its first and last sample (the curve passes through them); its two
    inner control points are the least-squares solution from the inner samples, which is exact
    for samples of a cubic (up to the points' own rounding). Every count must satisfy
    ``samples_fit``. Returns ((P, D) points, (N,) segments).
    """
    pts = np.asarray(points, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if not all(samples_fit(int(c), samples) for c in counts):
        raise ValueError(f"point counts must be k * {samples - 1} + 1 (k >= 1) to be sampled cubics")
    t = np.linspace(0.0, 1.0, samples)[1:-1]
    inner = np.stack([3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2], axis=1)  # (T-2, 2): weights of c1, c2
    ends = np.stack([(1 - t) ** 3, t**3], axis=1)  # (T-2, 2): weights of c0, c3
    solve = np.linalg.pinv(inner)  # (2, T-2)
    segments = (counts - 1) // (samples - 1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for i, s in enumerate(segments):
        q = pts[starts[i] : starts[i + 1]]
        seg = np.stack([q[k * (samples - 1) : (k + 1) * (samples - 1) + 1] for k in range(s)])  # (s, T, D)
        c0, c3 = seg[:, 0], seg[:, -1]
        rhs = seg[:, 1:-1] - np.einsum("tj,jsd->std", ends, np.stack([c0, c3]))
        c12 = np.einsum("jt,std->sjd", solve, rhs)  # (s, 2, D)
        rows = np.stack([c0, c12[:, 0], c12[:, 1]], axis=1).reshape(-1, pts.shape[1])
        out.append(np.concatenate([rows, c3[-1:]]))
    width = pts.shape[1] if pts.ndim == 2 else 2
    return (np.concatenate(out) if out else np.zeros((0, width))), segments


def bezier_controls(knots: np.ndarray, left: np.ndarray, right: np.ndarray, counts: np.ndarray,
                    cyclic: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bezier knots with left/right handles -> packed cubic control points: inverse of ``knot_handles``.

    Stroke i owns ``counts[i]`` consecutive knots; K knots give K-1 segments (knot, right handle,
    next knot's left handle, next knot). A ``cyclic`` stroke also gets its closing segment back to
    the first knot (the engine's strokes are open). A single knot becomes one segment of length 0
    (a dot), so every stroke keeps at least one segment. Returns ((P, D) points, (N,) segments).
    """
    knots, left, right = (np.asarray(a, dtype=np.float64) for a in (knots, left, right))
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    cyclic = np.zeros(len(counts), bool) if cyclic is None else np.asarray(cyclic, bool).reshape(-1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out, segments = [], []
    for i, k in enumerate(counts):
        idx = np.arange(starts[i], starts[i + 1])
        if k == 1:
            out.append(np.repeat(knots[idx], 4, axis=0))
            segments.append(1)
            continue
        if cyclic[i]:
            idx = np.append(idx, idx[0])
        rows = np.stack([knots[idx[:-1]], right[idx[:-1]], left[idx[1:]]], axis=1).reshape(-1, knots.shape[1])
        out.append(np.concatenate([rows, knots[idx[-1:]]]))
        segments.append(len(idx) - 1)
    width = knots.shape[1] if knots.ndim == 2 else 2
    return (np.concatenate(out) if out else np.zeros((0, width))), np.array(segments, dtype=np.int64)


def catmull_rom_controls(points: np.ndarray, counts: np.ndarray, cyclic: np.ndarray | None = None,
                         max_segments: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Point lists (hand-drawn polylines) -> cubic control points: a uniform Catmull-Rom spline
    through the points, written as Bezier segments (``b + (c - a) / 6``, ``c - (d - b) / 6``).

    The spline passes through every point and is smooth; two points give a straight segment.
    Open ends are extended by reflecting the neighbour (so the end tangent points at it); a
    ``cyclic`` stroke of 3+ points also closes. ``max_segments`` keeps at most that many segments
    per stroke by using evenly spaced points only (ends kept): tablet strokes have hundreds of
    points, far more segments than the engine needs. One point becomes a dot (one zero-length
    segment). Returns ((P, D) points, (N,) segments).
    """
    pts = np.asarray(points, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    cyclic = np.zeros(len(counts), bool) if cyclic is None else np.asarray(cyclic, bool).reshape(-1)
    starts = np.concatenate([[0], np.cumsum(counts)])
    out, segments = [], []
    for i in range(len(counts)):
        q = pts[starts[i] : starts[i + 1]]
        if max_segments is not None and len(q) - 1 > max_segments:
            q = q[np.unique(np.rint(np.linspace(0, len(q) - 1, max_segments + 1)).astype(np.int64))]
        if len(q) == 1:
            out.append(np.repeat(q, 4, axis=0))
            segments.append(1)
            continue
        if cyclic[i] and len(q) >= 3:
            ext = np.concatenate([q[-1:], q, q[:2]])
        else:
            ext = np.concatenate([2 * q[:1] - q[1:2], q, 2 * q[-1:] - q[-2:-1]])
        a, b, c, d = ext[:-3], ext[1:-2], ext[2:-1], ext[3:]
        rows = np.stack([b, b + (c - a) / 6.0, c - (d - b) / 6.0], axis=1).reshape(-1, pts.shape[1])
        out.append(np.concatenate([rows, c[-1:]]))
        segments.append(len(b))
    width = pts.shape[1] if pts.ndim == 2 else 2
    return (np.concatenate(out) if out else np.zeros((0, width))), np.array(segments, dtype=np.int64)
