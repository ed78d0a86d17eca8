"""Synthesised Drawings for builder tests (no engine needed): known points, widths and colours."""

from __future__ import annotations

import numpy as np

from synth_core.drawing import Drawing


def lines_drawing(n: int = 3, width: int = 200, height: int = 100, segments: int = 1, shift: float = 0.0,
                  stroke_width: float = 4.0) -> Drawing:
    """``n`` horizontal strokes of ``segments`` cubic segments, stroke i at y = 10 + 20 i (+ shift)."""
    pts = []
    for i in range(n):
        y = 10.0 + 20.0 * i + shift
        xs = np.linspace(10.0, width - 10.0, 3 * segments + 1)
        pts.append(np.stack([xs, np.full_like(xs, y)], axis=1))
    rgba = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 0.5], [0.2, 0.8, 0.2, 1.0]] * n)[:n]
    return Drawing(width, height, np.concatenate(pts), np.full(n, segments), np.full(n, stroke_width) + np.arange(n),
                   rgba, meta={"prompt": "lines"})


def random_drawing(n: int, seed: int, width: int = 224, height: int = 224, segments: int = 3) -> Drawing:
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, [width, height], size=(n * (3 * segments + 1), 2))
    return Drawing(width, height, pts, np.full(n, segments), rng.uniform(1, 6, n), rng.uniform(0, 1, (n, 4)))


def cubic_points(ctrl: np.ndarray, samples: int) -> np.ndarray:
    """Reference sampling of one stroke's cubic segments at ``samples`` values of t in [0, 1]
    (shared segment ends once): the plain formula the builders' vectorised sampling is checked against."""
    ctrl = np.asarray(ctrl, dtype=np.float64)
    t = np.linspace(0.0, 1.0, samples)
    basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], axis=1)
    pts = [basis @ ctrl[3 * k : 3 * k + 4] for k in range((len(ctrl) - 1) // 3)]
    return np.concatenate([pts[0]] + [p[1:] for p in pts[1:]])
