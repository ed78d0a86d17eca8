"""Bezier knots, handles and sampled polylines from the engine's packed cubics: no Blender needed."""

from __future__ import annotations

import numpy as np
import pytest
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


def test_sampled_controls_invert_sample_polylines():
    rng = np.random.default_rng(3)
    segs = np.array([1, 3, 2, 5])
    pts = rng.uniform(0, 100, (int(np.sum(3 * segs + 1)), 3))
    out, counts = bezier.sample_polylines(pts, segs, 8)
    back, back_segs = bezier.sampled_controls(out, counts, 8)
    np.testing.assert_array_equal(back_segs, segs)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # float32 points (what Blender stores) come back within float32 rounding of the canvas
    back32, _ = bezier.sampled_controls(out.astype(np.float32), counts, 8)
    np.testing.assert_allclose(back32, pts, atol=1e-4)
    assert bezier.samples_fit(15, 8) and not bezier.samples_fit(14, 8) and not bezier.samples_fit(1, 8)
    with pytest.raises(ValueError, match="k \\* 7 \\+ 1"):
        bezier.sampled_controls(out[:14], [14], 8)


def test_bezier_controls_invert_knot_handles_and_close_cyclic_strokes():
    rng = np.random.default_rng(2)
    segs = np.array([1, 3, 2, 5])
    pts = rng.uniform(0, 100, (int(np.sum(3 * segs + 1)), 3))
    knots, left, right = bezier.knot_handles(pts, segs)
    back, back_segs = bezier.bezier_controls(knots, left, right, segs + 1)
    np.testing.assert_array_equal(back_segs, segs)
    np.testing.assert_array_equal(back, pts)
    # a closed stroke gets its closing segment: last knot, its right handle, the first's left, the first knot
    k = np.array([[0.0, 0], [10, 0], [10, 10]])
    left, right = k + [[-1, -1]], k + [[1, 1]]
    ctrl, s = bezier.bezier_controls(k, left, right, [3], [True])
    assert s.tolist() == [3]
    np.testing.assert_array_equal(ctrl[-4:], [k[2], right[2], left[0], k[0]])
    dot, s = bezier.bezier_controls(k[:1], left[:1], right[:1], [1])  # a single knot is a dot
    assert s.tolist() == [1] and np.all(dot == k[0])


def test_catmull_rom_controls_pass_through_every_point_smoothly():
    q = np.array([[0.0, 0], [10, 5], [20, 0], [30, 8], [35, 20]])
    ctrl, segs = bezier.catmull_rom_controls(np.concatenate([q, q[:2] + 100, q[:1]]), [5, 2, 1])
    assert segs.tolist() == [4, 1, 1]
    a = ctrl[:13]
    np.testing.assert_allclose(a[::3], q)  # the knots are the points
    incoming, outgoing = a[3::3][:-1] - a[2::3][:-1], a[4::3] - a[3::3][:-1]
    np.testing.assert_allclose(incoming, outgoing)  # C1 at every inner point
    np.testing.assert_allclose(incoming[0], (q[2] - q[0]) / 6)  # the Catmull-Rom tangent
    np.testing.assert_allclose(ctrl[13:17], np.linspace(q[0] + 100, q[1] + 100, 4))  # two points: straight
    np.testing.assert_array_equal(ctrl[17:], np.repeat(q[:1], 4, axis=0))  # one point: a dot
    closed, segs = bezier.catmull_rom_controls(q[:4], [4], [True])
    assert segs.tolist() == [4] and np.allclose(closed[-1], q[0])
    thin, segs = bezier.catmull_rom_controls(np.linspace([0, 0], [100, 50], 301), [301], max_segments=10)
    assert segs.tolist() == [10]
    np.testing.assert_allclose(thin[[0, -1]], [[0, 0], [100, 50]])
