"""Bezier knots, handles and sampled polylines from the engine's packed cubics: no Blender needed."""

from __future__ import annotations

import numpy as np
from drawings import cubic_points

from blender_addon import bezier

NEEDS_BPY = False


def test_knot_handles_split_the_control_points():
    pts = np.arange(14 * 2, dtype=float).reshape(14, 2)  # stroke A: 2 segments (7 pts); B: 2 segments
    knots, left, right = bezier.knot_handles(pts, np.array([2, 2]))
    np.testing.assert_array_equal(knots[:, 0], pts[[0, 3, 6, 7, 10, 13], 0])
    np.testing.assert_array_equal(left[:, 0], pts[[0, 2, 5, 7, 9, 12], 0])  # open start: handle on the knot
    np.testing.assert_array_equal(right[:, 0], pts[[1, 4, 6, 8, 11, 13], 0])  # open end: handle on the knot


def test_sample_polylines_matches_the_reference_cubic_sampling():
    rng = np.random.default_rng(1)
    segs = np.array([1, 3, 2, 3])
    pts = rng.uniform(0, 100, (int(np.sum(3 * segs + 1)), 2))
    out, counts = bezier.sample_polylines(pts, segs, 6)
    offsets = np.concatenate([[0], np.cumsum(3 * segs + 1)])
    start = 0
    for i, s in enumerate(segs):
        expected = cubic_points(pts[offsets[i] : offsets[i + 1]], 6)
        assert counts[i] == len(expected) == s * 5 + 1
        np.testing.assert_allclose(out[start : start + counts[i]], expected, atol=1e-9)
        start += counts[i]
