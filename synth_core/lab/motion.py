"""A moving, turning outline as a frame sequence: the test bed for sketch animation (issue 12).

Each frame is an RGBA picture of a black star (or cross) outline on white whose alpha is the
object's silhouette (what a camera render with an object mask gives), and the exact outline
points of every frame, so that the object's own edge motion between frames is known exactly:
a sketch's motion can be compared with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 4


@dataclass(frozen=True)
class Motion:
    """Where the object is over the shot: centre and turn go linearly from start to end."""

    frames: int = 24
    start: tuple[float, float] = (0.36, 0.42)  # centre, fractions of the canvas
    end: tuple[float, float] = (0.62, 0.58)
    turn: float = 60.0  # degrees over the shot
    radius: float = 0.3  # outer radius, fraction of the canvas
    line: float = 0.014  # outline thickness, fraction of the canvas
    pulse: float = 0.0  # the star's inner corners move in and out by this fraction (a shape that deforms)

    def pose(self, i: int) -> tuple[np.ndarray, float]:
        """Centre (fractions) and angle (radians) at frame ``i`` (0-based)."""
        t = i / max(1, self.frames - 1)
        centre = np.array(self.start) + t * (np.array(self.end) - np.array(self.start))
        return centre, math.radians(self.turn * t)


def outline(shape: str, inner: float = 0.42) -> list[np.ndarray]:
    """Closed polygons of a unit-radius ``shape`` (star: ten corners, the inner ones at ``inner``; cross: a plus)."""
    if shape == "star":
        a = np.deg2rad(-90 + 36 * np.arange(10))
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return [np.stack([np.cos(a) * r, np.sin(a) * r], 1)]
    if shape == "cross":
        w = 0.3
        pts = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
        return [np.array(pts, dtype=float)]
    raise ValueError(f"unknown shape {shape!r}: star or cross")


def placed(shape: str, motion: Motion, i: int, size: int) -> list[np.ndarray]:
    """The outline polygons of frame ``i`` in canvas pixels."""
    centre, angle = motion.pose(i)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    inner = 0.42 * (1 + motion.pulse * math.sin(2 * math.pi * i / max(1, motion.frames - 1)))
    return [(p @ rot.T) * motion.radius * size + centre * size for p in outline(shape, inner)]


def carry(points: np.ndarray, motion: Motion, i: int, j: int, size: int) -> np.ndarray:
    """Canvas points (N, 2) that sit on the object at frame ``i``, moved with it to frame ``j``
    (a rotation and a translation: exact for Bezier control points)."""
    (ci, ai), (cj, aj) = motion.pose(i), motion.pose(j)
    turn = aj - ai
    c, s = math.cos(turn), math.sin(turn)
    rot = np.array([[c, -s], [s, c]])
    return (points - ci * size) @ rot.T + cj * size


def dense(poly: np.ndarray, per_edge: int = 32) -> np.ndarray:
    """``per_edge`` evenly spaced points along each edge of a closed polygon: the same material points
    in every frame, so that they can be followed."""
    ring = np.concatenate([poly, poly[:1]])
    t = np.arange(per_edge)[:, None] / per_edge
    return np.concatenate([a + (b - a) * t for a, b in zip(ring[:-1], ring[1:])])


def render(shape: str, motion: Motion, i: int, size: int) -> np.ndarray:
    """RGBA uint8 (size, size, 4): black outline on white; alpha = the silhouette, grown by the line."""
    big = size * SUPERSAMPLE
    polys = [p * SUPERSAMPLE for p in placed(shape, motion, i, size)]
    ink = Image.new("L", (big, big), 255)
    sil = Image.new("L", (big, big), 0)
    di, ds = ImageDraw.Draw(ink), ImageDraw.Draw(sil)
    width = max(1, round(motion.line * big))
    for p in polys:
        xy = [tuple(q) for q in np.concatenate([p, p[:1]])]
        ds.polygon(xy, fill=255)
        ds.line(xy, fill=255, width=width * 2, joint="curve")
        di.line(xy, fill=0, width=width, joint="curve")
    ink = ink.resize((size, size), Image.BOX)
    sil = sil.resize((size, size), Image.BOX).filter(ImageFilter.MaxFilter(3))
    grey = np.asarray(ink)
    return np.dstack([grey, grey, grey, np.asarray(sil)]).astype(np.uint8)


def edge_motion(shape: str, motion: Motion, i: int, size: int) -> float:
    """Mean distance (px) the object's outline points travel from frame ``i - 1`` to frame ``i``."""
    a = np.concatenate([dense(p) for p in placed(shape, motion, i - 1, size)])
    b = np.concatenate([dense(p) for p in placed(shape, motion, i, size)])
    return float(np.linalg.norm(b - a, axis=1).mean())


def write_frames(folder, shape: str = "star", motion: Motion = Motion(), size: int = 224,
                 first: int = 1) -> list[str]:
    """frame-0001.png ... in ``folder`` (created); returns their paths in order."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(motion.frames):
        path = out / f"frame-{first + i:04d}.png"
        Image.fromarray(render(shape, motion, i, size), "RGBA").save(path)
        paths.append(str(path))
    return paths
