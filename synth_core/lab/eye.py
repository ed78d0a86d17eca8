"""A person-like judge with no learned weights: is this drawing "a {colour} {shape}"?

The learned judge (judge.py) is a network, and networks can be fooled the way the optimiser
fools the model: it accepts multicoloured tangles as "a red circle". This eye answers the way a
person would, with rules and geometry only, so that tests and benchmarks have a check that no
optimiser can have learned to please (it is never used by the optimiser):

- colour purity: the share of the ink (each pixel weighted by how far it is from the
  background) whose colour a person would name as the prompt's colour. Pixels are named with
  hue/saturation/value rules in six classes: the five colours and "other" (orange, pink,
  purple, cyan, brown, grey, ...). A stroke's antialiased rim is named by its core, so that
  a thin opaque red line is red, while a uniformly pale red is pink.
- shape: the outline of each of the six shapes (a star as a ten-point outline or as a
  pentagram) is posed (centre, scale, rotation; aspect ratio for circle, square and cross) to lie
  on the prompt-coloured ink with the lowest symmetric chamfer distance (root mean square, so
  that a hook or a stray stroke counts), over the size of the fit; "none" when even the best fit
  is poor (NONE_ABOVE, from ``calibrate``) or smaller than a dash (MIN_RADIUS). The ink is
  compared by its centre line (skeleton) and, for the closed shapes, also by the outer boundary
  of the hole-filled ink, so that a filled shape counts as its outline; the centre line of a
  filled blob is not taken for a line or a cross (THIN).
- verdict: passed when purity >= 0.6 and the best-fitting shape is the prompt's.

numpy only; well under a second for a 224 px image on one core (shapes are matched at about
WORK_SIDE px).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .colour_names import COLOUR_CLASSES, OTHER, classify
from .shapes import COLOURS, SHAPES, Style, render_scribble, render_shape

SHAPE_ANSWERS = (*SHAPES, "none")
PURITY_PASS = 0.6  # share of the ink in the prompt's colour for a pass
NONE_ABOVE = 0.08  # best normalised chamfer distance above which no shape is seen (see calibrate())
WORK_SIDE = 112  # shapes are matched at about this resolution (images are box-downsampled to it)
MIN_ALPHA = 0.04  # ink fainter than this is paper noise, not ink
MASK_ABOVE = 0.2  # coverage above which a working pixel is prompt-coloured ink
MAX_POINTS = 160  # ink points kept for the chamfer fit (evenly subsampled)
THIN = 0.4  # strokes are at most this half-width per unit of the fitted radius (else a filled blob)
MIN_RADIUS = 0.1  # a shape smaller than this (circumradius, share of the canvas side) is a dot or a dash


@dataclass(frozen=True)
class EyeVerdict:
    """What the person-like judge sees. ``shape_score`` is the best fit's chamfer distance over
    its size (lower is better; above ``NONE_ABOVE`` the shape is "none")."""

    colour: str  # the prompt's colour
    shape: str  # the prompt's shape
    purity: float  # share of the ink in the prompt's colour
    dominant: str  # colour class with the most ink (may be "other")
    seen_shape: str  # best-fitting shape of the prompt-coloured ink, or "none"
    shape_score: float
    passed: bool


# ---------------------------------------------------------------------------------------------
# Colour
def as_rgb(image: np.ndarray) -> np.ndarray:
    """HxWx3 float in [0, 1] from uint8 or float, HxWx3 or 3xHxW."""
    a = np.asarray(image)
    if a.ndim != 3:
        raise ValueError(f"the eye takes one RGB image, got shape {a.shape}")
    if a.shape[-1] != 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    if a.shape[-1] != 3:
        raise ValueError(f"the eye takes RGB images, got shape {a.shape}")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def unmix(rgb: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, ink): the least opaque ink that, laid over the background, gives each pixel.

    Alpha is the pixel's distance from the background (the ink weight); the ink colour is the
    pixel's colour with the paper taken out, so a stroke's faint rim has its core's hue."""
    bg = np.asarray(background, np.float32)
    up = np.where(rgb > bg, (rgb - bg) / np.maximum(1.0 - bg, 1e-6), 0.0)
    down = np.where(rgb < bg, (bg - rgb) / np.maximum(bg, 1e-6), 0.0)
    alpha = np.clip(np.maximum(up, down).max(-1), 0.0, 1.0)
    ink = bg + (rgb - bg) / np.maximum(alpha, 1e-6)[..., None]
    return alpha, np.clip(ink, 0.0, 1.0)


def _max_filter(a: np.ndarray, r: int) -> np.ndarray:
    """Maximum over a (2r+1)^2 square window (separable)."""
    if r <= 0:
        return a
    out = a.copy()
    p = np.pad(a, ((r, r), (0, 0)))
    for d in range(2 * r + 1):
        np.maximum(out, p[d : d + a.shape[0]], out=out)
    p = np.pad(out, ((0, 0), (r, r)))
    res = out.copy()
    for d in range(2 * r + 1):
        np.maximum(res, p[:, d : d + a.shape[1]], out=res)
    return res


def colour_map(rgb: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class index, ink weight) per pixel; the paper (weight 0) is class "other".

    A pixel is named by the colour it would have at the opacity of the stroke it belongs to
    (the most opaque pixel of the same hue family nearby): antialiasing does not make a red
    line pink, but a red laid on thinly everywhere is pink."""
    alpha, ink = unmix(rgb, background)
    inked = alpha >= MIN_ALPHA
    family = np.full(alpha.shape, -1, np.int64)
    family[inked] = classify(ink[inked])
    radius = max(1, round(max(rgb.shape[:2]) / WORK_SIDE))
    core = np.zeros_like(alpha)
    for k in np.unique(family[inked]):
        m = family == k
        core[m] = _max_filter(np.where(m, alpha, 0.0), radius)[m]
    bg = np.asarray(background, np.float32)
    classes = np.full(alpha.shape, OTHER, np.int64)
    classes[inked] = classify(bg + core[inked][:, None] * (ink[inked] - bg))
    return classes, np.where(inked, alpha, 0.0)


def colour_shares(classes: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Share of the ink in each of COLOUR_CLASSES (zeros for a blank page)."""
    tot = np.bincount(classes.ravel(), weights=weight.ravel(), minlength=len(COLOUR_CLASSES))
    return tot / tot.sum() if tot.sum() > 0 else tot


# ---------------------------------------------------------------------------------------------
# Binary morphology on boolean masks
def _shift_or(m: np.ndarray, cross: bool) -> np.ndarray:
    p = np.pad(m, 1)
    out = m | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    if not cross:
        out |= p[:-2, :-2] | p[:-2, 2:] | p[2:, :-2] | p[2:, 2:]
    return out


def dilate(m: np.ndarray, r: int = 1) -> np.ndarray:
    for _ in range(r):
        m = _shift_or(m, cross=False)
    return m


def erode(m: np.ndarray, r: int = 1) -> np.ndarray:
    return ~dilate(~m, r)


def fill_holes(m: np.ndarray) -> np.ndarray:
    """The mask with every background region that does not reach the border filled."""
    free = ~m
    outside = np.zeros_like(m)
    outside[[0, -1], :] = free[[0, -1], :]
    outside[:, [0, -1]] |= free[:, [0, -1]]
    while True:
        grown = outside
        for _ in range(8):
            grown = _shift_or(grown, cross=True) & free
        if np.array_equal(grown, outside):
            return ~outside
        outside = grown


def skeleton(m: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: the one-pixel centre line of strokes, so that thick and thin
    strokes are compared alike."""
    img = np.pad(m, 1).astype(np.uint8)
    while True:
        changed = False
        for first in (True, False):
            p = [img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:], img[2:, 2:],  # N, NE, E, SE
                 img[2:, 1:-1], img[2:, :-2], img[1:-1, :-2], img[:-2, :-2]]  # S, SW, W, NW
            n = sum(q.astype(np.int32) for q in p)
            a = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
            if first:
                side = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                side = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            drop = (img[1:-1, 1:-1] == 1) & (n >= 2) & (n <= 6) & (a == 1) & side
            if drop.any():
                img[1:-1, 1:-1][drop] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


# ---------------------------------------------------------------------------------------------
# Outline templates: polylines of circumradius 1 around the origin
@dataclass(frozen=True)
class Template:
    shape: str
    period: float  # rotation symmetry
    aspect: float  # largest axis stretch searched (1 = none)
    closed: bool  # also matched against the outer boundary of the filled ink
    samples: np.ndarray  # [m, 2] points evenly along the outline
    grid: np.ndarray  # distance to the outline on GRID_N x GRID_N points over [-GRID_R, GRID_R]^2


GRID_R, GRID_N, TEMPLATE_SAMPLES = 1.6, 257, 72


def _ring(angles_deg: np.ndarray, radii: np.ndarray | float = 1.0) -> np.ndarray:
    a = np.deg2rad(angles_deg)
    p = np.stack([np.cos(a), np.sin(a)], 1) * np.asarray(radii, float)[..., None]
    return np.concatenate([p, p[:1]])


def _outlines() -> dict[str, tuple[list[np.ndarray], float, float, bool]]:
    """Polylines, rotation period, aspect search and closedness of each outline template."""
    tips = -90 + 72 * np.arange(5)
    star_r = np.where(np.arange(10) % 2 == 0, 1.0, 0.43)
    bar, upright = np.array([[-1.0, 0.0], [1.0, 0.0]]), np.array([[0.0, -1.0], [0.0, 1.0]])
    return {
        "circle": ([_ring(np.linspace(0, 360, 64, endpoint=False))], math.pi, 1.3, True),
        "square": ([_ring(np.array([45.0, 135.0, 225.0, 315.0]))], math.pi / 2, 1.2, True),
        "triangle": ([_ring(np.array([-90.0, 30.0, 150.0]))], 2 * math.pi / 3, 1.0, True),
        "star": ([_ring(-90 + 36 * np.arange(10), star_r)], 2 * math.pi / 5, 1.0, True),
        "pentagram": ([_ring(tips[[0, 2, 4, 1, 3]])], 2 * math.pi / 5, 1.0, True),
        "cross": ([bar, upright], math.pi / 2, 1.15, False),
        "line": ([bar], math.pi, 1.0, False),
    }


def _even_samples(polys: list[np.ndarray], m: int) -> np.ndarray:
    segs = [(p[i], p[i + 1]) for p in polys for i in range(len(p) - 1)]
    lengths = np.array([np.linalg.norm(b - a) for a, b in segs])
    t = (np.arange(m) + 0.5) / m * lengths.sum()
    edges = np.concatenate([[0.0], np.cumsum(lengths)])
    k = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(segs) - 1)
    f = (t - edges[k]) / np.maximum(lengths[k], 1e-9)
    a = np.array([s[0] for s in segs])[k]
    b = np.array([s[1] for s in segs])[k]
    return a + (b - a) * f[:, None]


def _distance_to_polys(points: np.ndarray, polys: list[np.ndarray]) -> np.ndarray:
    best = np.full(len(points), np.inf)
    for p in polys:
        for a, b in itertools.pairwise(p):
            ab = b - a
            t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
            best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * ab), axis=1))
    return best


@lru_cache(maxsize=1)
def templates() -> tuple[Template, ...]:
    """The outline templates with their distance grids (made once)."""
    axis = np.linspace(-GRID_R, GRID_R, GRID_N)
    gx, gy = np.meshgrid(axis, axis)
    grid_pts = np.stack([gx.ravel(), gy.ravel()], 1)
    out = []
    for name, (polys, period, aspect, closed) in _outlines().items():
        grid = _distance_to_polys(grid_pts, polys).reshape(GRID_N, GRID_N).astype(np.float32)
        out.append(Template(name, period, aspect, closed, _even_samples(polys, TEMPLATE_SAMPLES), grid))
    return tuple(out)


@lru_cache(maxsize=1)
def _template_bank() -> np.ndarray:
    """All template grids in one flat array, so that one lookup serves a batch of fits."""
    return np.concatenate([t.grid.ravel() for t in templates()])


def _outside(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cx, cy = np.minimum(np.maximum(x, lo), hi), np.minimum(np.maximum(y, lo), hi)
    return cx, cy, np.abs(x - cx) + np.abs(y - cy)


def _nearest(flat: np.ndarray, offset: np.ndarray, n: int, lo: float, hi: float, x: np.ndarray,
             y: np.ndarray) -> np.ndarray:
    """Nearest sample of n x n distance grids over [lo, hi]^2 (stored flat from ``offset``), plus
    how far the point lies outside the grid."""
    cx, cy, over = _outside(x, y, lo, hi)
    scale = (n - 1) / (hi - lo)
    i = ((cx - lo) * scale + 0.5).astype(np.int64)
    j = ((cy - lo) * scale + 0.5).astype(np.int64)
    return flat[offset + j * n + i] + over


def _bilinear(flat: np.ndarray, offset: np.ndarray, n: int, lo: float, hi: float, x: np.ndarray,
              y: np.ndarray) -> np.ndarray:
    """Bilinear sample of n x n distance grids over [lo, hi]^2 (stored flat from ``offset``); a
    point beyond the grid takes the value at the nearest edge (what lies beyond is unseen)."""
    cx, cy = np.minimum(np.maximum(x, lo), hi), np.minimum(np.maximum(y, lo), hi)
    u, v = (cx - lo) * ((n - 1) / (hi - lo)), (cy - lo) * ((n - 1) / (hi - lo))
    i0, j0 = np.minimum(u.astype(np.int64), n - 2), np.minimum(v.astype(np.int64), n - 2)
    fu, fv = u - i0, v - j0
    k = offset + j0 * n + i0
    top = flat[k] * (1 - fu) + flat[k + 1] * fu
    bottom = flat[k + n] * (1 - fu) + flat[k + n + 1] * fu
    return top * (1 - fv) + bottom * fv


# ---------------------------------------------------------------------------------------------
# Chamfer fits of templates to ink points (canvas units: [0, 1] across the image side)
def edt(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance (pixels) from every pixel to the nearest True pixel: the
    separable minimum over columns then rows, by broadcasting (fine at the working size)."""
    n = np.arange(mask.shape[0], dtype=np.float32)
    d2 = (n[:, None] - n[None]) ** 2  # [y, y']
    col = np.where(mask[None], d2[:, :, None], np.inf).min(1)  # [y, x]: to the nearest ink in the column
    m = np.arange(mask.shape[1], dtype=np.float32)
    e2 = (m[:, None] - m[None]) ** 2  # [x, x']
    return np.sqrt((col[:, None, :] + e2[None]).min(2))


@dataclass(frozen=True)
class Ink:
    points: np.ndarray  # [MAX_POINTS, 2], evenly chosen (repeated when there are fewer)
    grid: np.ndarray  # distance to the nearest inked pixel at every pixel centre of the square mask
    extent: float  # how far the ink reaches from its centroid (98th percentile), canvas units


def ink_from_mask(mask: np.ndarray) -> Ink:
    """The ink points (canvas units), their distance map and extent, from a square boolean mask."""
    points = _points(mask)
    points = points[np.linspace(0, len(points) - 1, MAX_POINTS).round().astype(int)]
    extent = float(np.percentile(np.linalg.norm(points - points.mean(0), axis=1), 98))
    return Ink(points.astype(np.float32), (edt(mask) / mask.shape[0]).astype(np.float32), extent)


@dataclass(frozen=True)
class Problems:
    """Fits of P (template, ink) pairs, solved together: one numpy pass per search step."""

    samples: np.ndarray  # [P, m, 2] template outline samples
    t_offset: np.ndarray  # [P, 1, 1] start of each template's grid in _template_bank()
    points: np.ndarray  # [P, n, 2] ink points
    ink_flat: np.ndarray  # the ink grids, flat
    i_offset: np.ndarray  # [P, 1, 1]
    ink_side: int
    period: np.ndarray  # [P] rotation symmetry
    log_aspect: np.ndarray  # [P] largest |log aspect| searched


def problems(pairs: list[tuple[int, int]], inks: list[Ink]) -> Problems:
    """The batch for (template index, ink index) pairs."""
    ts, side = templates(), len(inks[0].grid)
    return Problems(
        samples=np.stack([ts[t].samples for t, _ in pairs]).astype(np.float32),
        t_offset=np.array([t * GRID_N * GRID_N for t, _ in pairs])[:, None, None],
        points=np.stack([inks[i].points for _, i in pairs]),
        ink_flat=np.concatenate([ink.grid.ravel() for ink in inks]),
        i_offset=np.array([i * side * side for _, i in pairs])[:, None, None],
        ink_side=side,
        period=np.array([ts[t].period for t, _ in pairs]),
        log_aspect=np.log([ts[t].aspect for t, _ in pairs]),
    )


def _costs(pr: Problems, poses: np.ndarray) -> np.ndarray:
    """Symmetric chamfer distance (root mean square, canvas units) for poses [P, K, 5] =
    (cx, cy, log s, angle, log a) -> [P, K]."""
    q = poses.astype(np.float32)[..., None]  # [P, K, 5, 1]
    cx, cy, s, th, a = q[:, :, 0], q[:, :, 1], np.exp(q[:, :, 2]), q[:, :, 3], np.exp(q[:, :, 4])
    cos, sin = np.cos(th), np.sin(th)
    # template -> ink: outline samples placed on the canvas, looked up in the ink's distance map (a
    # sample beyond the canvas edge, of a shape that the edge cuts, costs its edge point's distance)
    tx, ty = pr.samples[:, None, :, 0] * a, pr.samples[:, None, :, 1] / a
    px, py = cx + s * (cos * tx - sin * ty), cy + s * (sin * tx + cos * ty)
    half = 0.5 / pr.ink_side
    to_ink = np.square(_bilinear(pr.ink_flat, pr.i_offset, pr.ink_side, half, 1 - half, px, py)).mean(-1)
    # ink -> template: ink points taken into the template's frame, looked up in its distance grid
    dx, dy = pr.points[:, None, :, 0] - cx, pr.points[:, None, :, 1] - cy
    ux, uy = (cos * dx + sin * dy) / (s * a), (-sin * dx + cos * dy) * a / s
    near = _nearest(_template_bank(), pr.t_offset, GRID_N, -GRID_R, GRID_R, ux, uy)
    to_template = np.square(near * s).mean(-1)
    return np.sqrt(0.5 * (to_ink + to_template))


def _coarse_units() -> tuple[np.ndarray, np.ndarray]:
    """Coarse search grids of (scale factor, share of the rotation period, aspect sign), 108
    poses each: with an aspect search, and without (where rotation is searched finer instead)."""
    scales = np.log([0.85, 1.0, 1.18])
    with_aspect = np.array(np.meshgrid(scales, np.arange(12) / 12, [-1.0, 0.0, 1.0], indexing="ij"))
    without = np.array(np.meshgrid(scales, np.arange(36) / 36, [0.0], indexing="ij"))
    return with_aspect.reshape(3, -1).T, without.reshape(3, -1).T


def fit_all(pr: Problems, starts: int = 2, iterations: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(chamfer distance in canvas units [P], pose [P, 5]) of every pair: a coarse search over
    rotation, scale and aspect from the ink's centroid and spread, then a compass search from the
    best ``starts`` poses (steps halve when no neighbour is better)."""
    centre = pr.points.mean(1)
    spread = np.sqrt(((pr.points - centre[:, None]) ** 2).sum(-1).mean(1))
    rms = np.sqrt((pr.samples**2).sum(-1).mean(1))
    s0 = np.log(np.maximum(spread, 1e-3) / rms)
    with_aspect, without = _coarse_units()
    units = np.where((pr.log_aspect > 0)[:, None, None], with_aspect[None], without[None])  # [P, K, 3]
    scale = s0[:, None] + units[..., 0]
    angle = units[..., 1] * pr.period[:, None]
    aspect = units[..., 2] * pr.log_aspect[:, None]
    centres = np.broadcast_to(centre[:, None], (len(s0), units.shape[1], 2))
    poses = np.concatenate([centres, scale[..., None], angle[..., None], aspect[..., None]], -1)
    order = np.argsort(_costs(pr, poses), 1)[:, :starts]
    pose = np.take_along_axis(poses, order[..., None], 1)  # [P, C, 5]
    return _refine(pr, pose, iterations)


def _refine(pr: Problems, pose: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    p, c = pose.shape[:2]
    s = np.exp(pose[..., 2])
    steps = np.stack([0.06 * s, 0.06 * s, np.full((p, c), 0.1), np.repeat(pr.period[:, None] / 24, c, 1),
                      np.repeat(np.where(pr.log_aspect > 0, 0.06, 0.0)[:, None], c, 1)], -1)
    dirs = np.concatenate([np.eye(5), -np.eye(5)])
    cost = _costs(pr, pose)
    limit = pr.log_aspect[:, None, None]
    for _ in range(iterations):
        cand = pose[:, :, None] + dirs * steps[:, :, None]  # [P, C, 10, 5]
        cand[..., 4] = np.clip(cand[..., 4], -limit, limit)
        cc = _costs(pr, cand.reshape(p, -1, 5)).reshape(p, c, len(dirs))
        k = cc.argmin(-1)
        best = np.take_along_axis(cc, k[..., None], -1)[..., 0]
        better = best < cost - 1e-9
        pose = np.where(better[..., None], np.take_along_axis(cand, k[..., None, None], 2)[:, :, 0], pose)
        cost = np.where(better, best, cost)
        steps = np.where(better[..., None], steps, steps * 0.5)
        if (steps[..., 2] < 0.1 / 16).all():  # every start has converged (scale to 0.6 %)
            break
    i = cost.argmin(1)
    return cost[np.arange(p), i], pose[np.arange(p), i]


# ---------------------------------------------------------------------------------------------
# Shape
def _downsample(a: np.ndarray) -> np.ndarray:
    k = max(1, max(a.shape) // WORK_SIDE)
    h, w = a.shape[0] // k * k, a.shape[1] // k * k
    return a[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3))


def _points(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.stack([(xs + 0.5), (ys + 0.5)], 1) / max(mask.shape)


def ink_sets(coverage: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(centre line, outer boundary, median stroke half-width in canvas units) of the ink whose
    working-resolution coverage passes MASK_ABOVE; small gaps between strokes are closed first."""
    mask = erode(dilate(coverage > MASK_ABOVE, 1), 1)
    filled = fill_holes(erode(dilate(mask, 2), 2))
    centre = skeleton(mask)
    half_width = float(np.median(edt(~mask)[centre])) / max(mask.shape) if centre.any() else 0.0
    return centre, filled & ~erode(filled, 1), half_width


def _square(a: np.ndarray) -> np.ndarray:
    n = max(a.shape)
    return np.pad(a, ((0, n - a.shape[0]), (0, n - a.shape[1])))


@dataclass(frozen=True)
class Fit:
    score: float  # symmetric chamfer distance over the size
    radius: float  # size: the fitted circumradius, at most the ink's extent (canvas units)


def shape_fits(coverage: np.ndarray) -> dict[str, Fit]:
    """The best fit of each shape to the inked region (score inf when nothing is inked).

    A fit's size is the smaller of its circumradius and the ink's extent, so that a huge outline
    that runs off the canvas gains nothing by its size. Fits to the centre line count only for
    strokes (a half-width under THIN times the size): the centre line of a filled blob is no
    drawing of a line or a cross."""
    centre_line, boundary, half_width = ink_sets(_square(coverage))
    fits = {s: Fit(math.inf, 0.0) for s in SHAPES}
    if boundary.sum() < 3:  # a blank page (a filled blob may thin to a single centre pixel)
        return fits
    # (thinning may leave nothing of a filled blob: then only the boundary is matched)
    inks = [ink_from_mask(centre_line if centre_line.sum() >= 3 else boundary), ink_from_mask(boundary)]
    ts = templates()
    pairs = [(t, i) for t in range(len(ts)) for i in range(2) if (i == 0 and centre_line.sum() >= 3) or
             (i == 1 and ts[t].closed)]
    scores, poses = fit_all(problems(pairs, inks))
    for (t, i), cost, pose in zip(pairs, scores, poses):
        name = "star" if ts[t].shape == "pentagram" else ts[t].shape
        size = max(min(float(math.exp(pose[2])), inks[i].extent), 1e-6)
        if i == 0 and half_width > THIN * size:
            continue
        if cost / size < fits[name].score:
            fits[name] = Fit(float(cost / size), size)
    return fits


def name_shape(fits: dict[str, Fit], none_above: float = NONE_ABOVE) -> tuple[str, float]:
    """The best-fitting shape of a drawing's size and its score; "none" when it fits poorly.
    Fits smaller than MIN_RADIUS are dots and dashes, not drawings of anything."""
    sized = {k: f for k, f in fits.items() if f.radius >= MIN_RADIUS}
    if not sized:
        return "none", min(f.score for f in fits.values())
    best = min(sized, key=lambda k: sized[k].score)
    return (best if sized[best].score <= none_above else "none"), sized[best].score


# ---------------------------------------------------------------------------------------------
# The verdict
def look(image: np.ndarray, colour: str, shape: str, background=(1.0, 1.0, 1.0),
         none_above: float = NONE_ABOVE) -> EyeVerdict:
    """Is ``image`` (HxWx3 uint8 or float in [0, 1]) "a {colour} {shape}" to a person?"""
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; known: {', '.join(COLOURS)}")
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    classes, weight = colour_map(as_rgb(image), np.asarray(background, np.float32))
    shares = colour_shares(classes, weight)
    purity = float(shares[COLOURS.index(colour)])
    dominant = COLOUR_CLASSES[int(shares.argmax())] if shares.sum() > 0 else "other"
    coverage = _downsample(np.where(classes == COLOURS.index(colour), weight, 0.0))
    seen, score = name_shape(shape_fits(coverage), none_above)
    return EyeVerdict(colour, shape, purity, dominant, seen, score, purity >= PURITY_PASS and seen == shape)


# ---------------------------------------------------------------------------------------------
# Calibration on the generator's drawings
# "Clean": what a person would name without hesitation. The generator's geometry (as in
# MODEL_STYLE) with no clutter, no outlines assembled from short strokes of mixed shades, every
# piece in the pen's colour (the plain Style, not MODEL_STYLE, which may mix in other colours),
# and opaque enough that a black stroke is black, not grey.
CLEAN_STYLE = Style(clutter_prob=0.0, assembled_prob=0.0, alpha=(0.8, 1.0))


@dataclass(frozen=True)
class Calibration:
    n: int
    shapes_named: float  # clean shapes whose best fit is the right shape
    shapes_passed: float  # clean shapes passed (right shape and purity >= PURITY_PASS)
    scribbles_none: float  # scribbles (wandering strokes, blobs, broken shapes) seen as no shape
    shape_scores: tuple[float, ...]  # best fit scores, for choosing NONE_ABOVE
    scribble_scores: tuple[float, ...]


def calibrate(n: int = 60, seed: int = 0, size: int = 224, style: Style = CLEAN_STYLE,
              none_above: float = NONE_ABOVE) -> Calibration:
    """Rates on ``n`` clean shapes (all six shapes and five colours in turn) and ``n`` scribbles."""
    rng = np.random.default_rng(seed)
    named = passed = nothing = 0
    shape_scores_, scribble_scores = [], []
    for i in range(n):
        shape, colour = SHAPES[i % len(SHAPES)], COLOURS[(i // len(SHAPES) + i) % len(COLOURS)]
        v = look(render_shape(shape, colour, size, rng, clutter=False, style=style), colour, shape,
                 none_above=none_above)
        named += v.seen_shape == shape
        passed += v.passed
        shape_scores_.append(v.shape_score)
        scribble = render_scribble(colour, size, rng, clutter=False, style=style)
        s = look(scribble, colour, shape, none_above=none_above)
        nothing += s.seen_shape == "none"
        scribble_scores.append(s.shape_score)
    return Calibration(n, named / n, passed / n, nothing / n, tuple(shape_scores_), tuple(scribble_scores))
