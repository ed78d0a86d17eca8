"""Procedural stroke drawings of simple shapes, with labels: the world the built-in model knows.

Six shapes (circle, square, triangle, star, cross, line) in five colours, drawn the way a person
or an optimiser draws them: each outline is a few overlapping, wobbly strokes of varied
thickness and opacity, outlined or filled, anywhere on the canvas, often among faint strokes of
random colours (what is left of CLIPDraw's random initialisation). Scribbles, blobs and broken
pieces of shapes are the negatives ("scribble"): a model that only learns colour, or that credits
half a circle as a circle, is what the optimiser exploits.

Deterministic given a numpy Generator. Strokes are rasterised with PIL at ``supersample`` times
the size and box-filtered down (antialiasing); each stroke is composited with its own opacity,
like one path in diffvg. Two ``Style``s with different settings feed the model and its judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

from ..builtin.vocabulary import COLOURS, NO_COLOUR, NONE, SCRIBBLE, SHAPES, caption  # noqa: F401  (re-exported)
from .colour_names import classify

CLOSED = ("circle", "square", "triangle", "star")  # shapes that can be drawn broken or filled
PALETTE = {
    "red": (0.88, 0.12, 0.10),
    "green": (0.12, 0.62, 0.18),
    "blue": (0.12, 0.25, 0.90),
    "yellow": (0.97, 0.84, 0.08),
    "black": (0.06, 0.06, 0.06),
}


@dataclass(frozen=True)
class Style:
    """Generator settings. Lengths are fractions of the canvas side unless said otherwise."""

    size: int = 64
    supersample: int = 4
    extent: tuple[float, float] = (0.3, 0.85)  # shape diameter
    thickness: tuple[float, float] = (0.008, 0.09)  # full stroke thickness
    wobble: float = 0.035  # low-frequency hand wobble, fraction of the shape radius
    tremor: float = 0.003  # per-vertex noise
    pieces: tuple[int, int] = (1, 4)  # strokes an outline is broken into (they overlap a little)
    passes: tuple[int, int] = (1, 2)  # times the outline is drawn over
    alpha: tuple[float, float] = (0.5, 1.0)
    colour_jitter: float = 0.08
    fill_prob: float = 0.3  # closed shapes: filled (flat or with thick strokes)
    pentagram_prob: float = 0.3  # stars drawn as five crossing lines
    assembled_prob: float = 0.4  # outline put together from many short strokes, as CLIPDraw's drawings are
    assembled_pieces: tuple[int, int] = (5, 14)
    assembled_shift: float = 0.06  # misplacement of each short stroke, fraction of the shape radius
    assembled_hue: float = 0.35  # each short stroke's colour is mixed with a random colour up to this much
    clutter_prob: float = 0.7
    clutter_strokes: tuple[int, int] = (1, 24)
    clutter_alpha: tuple[float, float] = (0.05, 0.6)
    clutter_thickness: tuple[float, float] = (0.005, 0.035)
    clutter_reach: float = 0.12  # random-walk step of clutter control points
    clutter_palette_prob: float = 0.3  # clutter in the five colours rather than any colour
    clutter_penalty: float = 0.0  # label weight taken from the shape per unit of clutter share of the ink
    opacity_penalty: float = 0.0  # label weight taken from the shape per unit of transparency of its strokes
    mess_prob: float = 0.0  # scribbles that are only a mess of random strokes of any colour (no colour label)
    colour_penalty: float = 0.0  # label weight taken from the shape per unit of ink not in the caption's colour
    multicolour_prob: float = 0.0  # outlines whose pieces are partly drawn in other colours
    multicolour_share: tuple[float, float] = (0.3, 0.9)  # share of such an outline's pieces in other colours
    complete_from: tuple[float, float] = (0.55, 0.92)  # a broken outline's label: 0 up to the first share, 1 from the second
    stray_prob: float = 0.0  # shapes with strokes of the pen's colour off the outline (inside, across, a second loop)
    stray_strokes: tuple[int, int] = (1, 4)
    stray_penalty: float = 0.0  # label weight taken from the shape per unit of the pen's ink that is off the outline
    asterisk_prob: float = 0.0  # scribbles that are asterisks: 3-4 lines through one point (not a star)


# The model is a strict teacher: clutter costs it part of the shape label, so that the optimiser
# is paid for cleaning up (fading or recruiting unused strokes), and each short stroke of an
# assembled outline keeps close to the colour (a permissive model lets drawings stay messy).
# With STRICT_COLOUR it is strict on colour too: the label weight falls in proportion to the ink
# that a person would not call the caption's colour (``colour_names``), and outlines drawn partly
# in other colours are shown to it, so that a multicoloured outline is not "a red circle".
MODEL_STYLE = Style(assembled_prob=0.3, assembled_hue=0.1, clutter_penalty=0.6, opacity_penalty=0.5)
# The strict-colour settings (issue 8), and the teacher the shipped model was trained by:
# MODEL_STYLE with them (scripts/train_builtin.py; --lenient-colour gives the earlier teacher).
STRICT_COLOUR = {"colour_penalty": 1.0, "multicolour_prob": 0.25}
TEACHER_STYLE = replace(MODEL_STYLE, **STRICT_COLOUR)
# A teacher strict on shape too (issue 8, an experiment: scripts/train_builtin.py --strict-shape): an
# outline a person sees as broken (a "C" for a circle, three quarters of it) earns nothing.
STRICT_SHAPE = {"complete_from": (0.75, 0.97)}
# A graded teacher (issue 8, an experiment: scripts/train_builtin.py --graded-shape): a broken
# outline's label weight rises linearly over the whole range the generator draws (0 at 40 % of the
# outline, the least it draws) and reaches 1 only at a complete outline, so that every piece of an
# outline pays, the last ones too (the shipped teacher pays all from 92 %, a "C" nearly as an "O").
GRADED_SHAPE = {"complete_from": (0.4, 1.0)}
# A teacher strict on a clean outline (issue 8, an experiment: scripts/train_builtin.py --clean-outline):
# strokes of the shape's own colour that are not on its outline (inside it, across it, a second
# offset loop: what the optimiser leaves in its drawings) take label weight in proportion to their
# share of the pen's ink, so that an outline is only "a red circle" when it is the only red thing.
CLEAN_OUTLINE = {"stray_prob": 0.3, "stray_penalty": 1.5}
# A teacher that knows an asterisk from a star (issue 8, an experiment: scripts/train_builtin.py
# --asterisks): CLIPDraw's failed stars and crosses are strokes radiating from one point, which the
# generator never showed as anything, so the teacher could pay for them as stars; here a share of
# the scribbles are such asterisks, so that only an outline (or a pentagram) is a star.
ASTERISKS = {"asterisk_prob": 0.35}
# The judge's images come from other settings (and another seed stream) so that it is not a copy
# of the model: wider ranges, more wobble, more and denser clutter.
JUDGE_STYLE = Style(
    extent=(0.25, 0.9), thickness=(0.007, 0.11), wobble=0.05, tremor=0.004, pieces=(1, 5), passes=(1, 3),
    alpha=(0.45, 1.0), colour_jitter=0.1, fill_prob=0.35, pentagram_prob=0.35, assembled_prob=0.45,
    assembled_pieces=(4, 16), assembled_shift=0.08, assembled_hue=0.4, clutter_prob=0.8,
    clutter_strokes=(1, 32), clutter_alpha=(0.04, 0.65), clutter_thickness=(0.004, 0.045), clutter_reach=0.15,
    clutter_palette_prob=0.4, mess_prob=0.35,
)


# ---------------------------------------------------------------------------------------------
# Geometry, in unit coordinates: a shape of radius ~1 around the origin.
def _rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _closed(poly: np.ndarray) -> np.ndarray:
    return np.concatenate([poly, poly[:1]])


def outline(shape: str, rng: np.random.Generator, style: Style = MODEL_STYLE) -> list[np.ndarray]:
    """Polylines of ``shape`` (closed ones end where they start), rotated, before any wobble."""
    if shape == "circle":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        ax = rng.uniform(0.82, 1.18)
        polys, turn = [_closed(np.stack([np.cos(t) * ax, np.sin(t) / ax], 1))], rng.uniform(0, math.pi)
    elif shape == "square":
        ax = rng.uniform(0.88, 1.12)
        c = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float) * 0.78 * np.array([ax, 1 / ax])
        polys, turn = [_closed(c)], rng.uniform(-0.5, 0.5)
    elif shape == "triangle":
        a = np.deg2rad(np.array([-90.0, 30.0, 150.0]) + rng.uniform(-14, 14, 3))
        polys, turn = [_closed(np.stack([np.cos(a), np.sin(a)], 1))], rng.uniform(-math.pi, math.pi)
    elif shape == "star":
        if rng.random() < style.pentagram_prob:  # five crossing lines through the tips, in one go
            a = np.deg2rad(-90 + 72 * np.array([0, 2, 4, 1, 3, 0]))
            polys = [np.stack([np.cos(a), np.sin(a)], 1)]
        else:
            a = np.deg2rad(-90 + 36 * np.arange(10))
            r = np.where(np.arange(10) % 2 == 0, 1.0, rng.uniform(0.36, 0.5))
            polys = [_closed(np.stack([np.cos(a) * r, np.sin(a) * r], 1))]
        turn = rng.uniform(-0.6, 0.6)
    elif shape == "cross":
        half = rng.uniform(0.8, 1.0, 2)
        off = rng.uniform(-0.15, 0.15, 2)
        bend = math.radians(rng.uniform(-12, 12))
        bar1 = np.array([[-half[0], off[0]], [half[0], off[0]]])
        bar2 = np.array([[off[1], -half[1]], [off[1], half[1]]]) @ _rot(bend).T
        polys, turn = [bar1, bar2], rng.uniform(0, math.pi)
    elif shape == "line":
        polys, turn = [np.array([[-1.0, 0.0], [1.0, 0.0]]) * rng.uniform(0.85, 1.0)], rng.uniform(0, math.pi)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    r = _rot(turn)
    return [p @ r.T for p in polys]


def _densify(poly: np.ndarray, step: float = 0.06) -> np.ndarray:
    """Points every ``step`` along the polyline, so that wobble bends edges, not only corners."""
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(math.ceil(s[-1] / step)) + 1)
    t = np.linspace(0.0, s[-1], n)
    # keep the corners: merge them into the samples
    t = np.unique(np.concatenate([t, s]))
    return np.stack([np.interp(t, s, poly[:, 0]), np.interp(t, s, poly[:, 1])], 1)


def _wobble(poly: np.ndarray, amount: float, rng: np.random.Generator, closed: bool) -> np.ndarray:
    """Smooth, low-frequency displacement along the stroke (a hand, not noise)."""
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    s = s / max(s[-1], 1e-9)
    out = poly.copy()
    for k in range(1, 4):
        freq = k if closed else k * 0.5 + rng.uniform(0, 0.5)
        amp, phase = rng.normal(0, amount / k, 2), rng.uniform(0, 2 * math.pi, 2)
        out += amp * np.sin(2 * math.pi * freq * s[:, None] + phase)
    return out


def _bezier_walk(rng: np.random.Generator, start: np.ndarray, segments: int, reach: float) -> np.ndarray:
    """A random-walk cubic Bezier path sampled as a polyline (CLIPDraw's initial stroke shape)."""
    ctrl = start + np.cumsum(np.concatenate([[np.zeros(2)], rng.normal(0, reach, (3 * segments, 2))]), 0)
    t = np.linspace(0, 1, 12)[:, None]
    parts = []
    for k in range(segments):
        p0, p1, p2, p3 = ctrl[3 * k : 3 * k + 4]
        parts.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3)
    return np.concatenate(parts)


# ---------------------------------------------------------------------------------------------
# Rasterising
class _Canvas:
    """A float RGB canvas at supersampled resolution; strokes composite with their own opacity."""

    def __init__(self, size: int, supersample: int) -> None:
        self.size, self.ss = size, supersample
        self.big = size * supersample
        self.px = np.ones((self.big, self.big, 3), np.float32)
        self.clutter = False  # strokes painted now count as clutter ink
        self.ink = {False: 0.0, True: 0.0}  # coverage x opacity of the drawing / of the clutter
        self.caption_class: int | None = None  # colour class of the caption, when purity is measured
        self.in_colour = 0.0  # coverage x opacity of the ink in the caption's colour

    def _paint(self, pts: np.ndarray, pad: float, rgb, alpha: float, draw) -> None:
        lo = np.floor(pts.min(0) - pad - 1).astype(int).clip(0, self.big)
        hi = np.ceil(pts.max(0) + pad + 2).astype(int).clip(0, self.big)
        if np.any(hi - lo <= 0):
            return
        mask = Image.new("L", tuple(int(v) for v in hi - lo), 0)
        draw(ImageDraw.Draw(mask), pts - lo)
        m = np.asarray(mask, np.float32)[..., None] * (alpha / 255.0)
        amount = float(m.sum())
        self.ink[self.clutter] += amount
        if self.caption_class is not None and int(classify(np.asarray(rgb, np.float64))) == self.caption_class:
            self.in_colour += amount
        region = self.px[lo[1] : hi[1], lo[0] : hi[0]]
        region *= 1.0 - m
        region += m * np.asarray(rgb, np.float32)

    def stroke(self, pts: np.ndarray, width: float, rgb, alpha: float) -> None:
        """An open polyline (canvas fractions) with round caps and joins."""
        p = pts * self.big
        w = max(1, int(round(width * self.big)))

        def draw(d: ImageDraw.ImageDraw, q: np.ndarray) -> None:
            # round joins cost a pie slice per vertex: only where a thick stroke would show corners
            d.line(q.ravel().tolist(), fill=255, width=w, joint="curve" if w >= 8 else None)
            r = w / 2
            for end in (q[0], q[-1]):
                d.ellipse([end[0] - r, end[1] - r, end[0] + r, end[1] + r], fill=255)

        self._paint(p, w / 2, rgb, alpha, draw)

    def fill(self, poly: np.ndarray, rgb, alpha: float) -> None:
        self._paint(poly * self.big, 0, rgb, alpha, lambda d, q: d.polygon([tuple(v) for v in q], fill=255))

    def purity(self) -> float:
        """Share of all ink (clutter included) in the caption's colour; 1 for a blank page."""
        total = self.ink[True] + self.ink[False]
        return self.in_colour / total if total > 0 else 1.0

    def image(self) -> np.ndarray:
        s, k = self.size, self.ss
        rows = self.px.reshape(s * k, s, k, 3).mean(axis=2)
        return rows.reshape(s, k, s, 3).mean(axis=1)


def _colour(name: str, rng: np.random.Generator, jitter: float) -> np.ndarray:
    return np.clip(np.array(PALETTE[name]) + rng.uniform(-jitter, jitter, 3), 0, 1)


def _clutter(canvas: _Canvas, rng: np.random.Generator, st: Style) -> None:
    """Faint random strokes of any colour, like the leftovers of CLIPDraw's random init."""
    canvas.clutter = True
    for _ in range(int(rng.integers(st.clutter_strokes[0], st.clutter_strokes[1] + 1))):
        if rng.random() < st.clutter_palette_prob:
            rgb = _colour(COLOURS[int(rng.integers(len(COLOURS)))], rng, st.colour_jitter)
        else:
            rgb = rng.random(3)
        pts = _bezier_walk(rng, rng.uniform(0, 1, 2), int(rng.integers(1, 4)), st.clutter_reach * rng.uniform(0.3, 1))
        canvas.stroke(pts, rng.uniform(*st.clutter_thickness), rgb, rng.uniform(*st.clutter_alpha))
    canvas.clutter = False


def _pieces(poly: np.ndarray, k: int, rng: np.random.Generator, closed: bool) -> list[np.ndarray]:
    """Cut a polyline into ``k`` strokes that overlap (or leave tiny gaps), as drawn by hand."""
    n = len(poly)
    if k <= 1 or n < 4 * k:
        return [poly]
    if closed:  # start anywhere on the loop
        shift = int(rng.integers(n - 1))
        poly = np.concatenate([poly[shift:-1], poly[: shift + 1]])
    cuts = np.sort(rng.choice(np.arange(2, n - 2), k - 1, replace=False))
    bounds = np.concatenate([[0], cuts, [n - 1]])
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        ext = int(rng.integers(-1, 3))  # a little overlap, sometimes a one-point gap
        out.append(poly[max(0, a - max(ext, 0)) : min(n, b + 1 + ext)])
    return [p for p in out if len(p) >= 2]


# ---------------------------------------------------------------------------------------------
# Drawings
@dataclass(frozen=True)
class _Pen:
    rgb: np.ndarray
    alpha: float
    width: float  # fraction of the canvas
    mix: float = 0.0  # share of the pieces drawn in some other colour (a multicoloured outline)

    def piece_rgb(self, rng: np.random.Generator) -> np.ndarray:
        """The colour of the next piece (draws from ``rng`` only for a multicoloured outline)."""
        if self.mix <= 0 or rng.random() >= self.mix:
            return self.rgb
        if rng.random() < 0.5:
            return _colour(COLOURS[int(rng.integers(len(COLOURS)))], rng, 0.08)
        return rng.random(3)


def _draw_polys(canvas: _Canvas, polys: list[np.ndarray], closed: list[bool], pen: _Pen, rng: np.random.Generator,
                st: Style, scale: float) -> None:
    """Every polyline as a few wobbly overlapping strokes, drawn ``passes`` times."""
    for _ in range(int(rng.integers(st.passes[0], st.passes[1] + 1))):
        for poly, c in zip(polys, closed):
            k = int(rng.integers(st.pieces[0], st.pieces[1] + 1))
            for piece in _pieces(poly, k, rng, c):
                q = _wobble(piece, st.wobble * scale * 0.5, rng, closed=False)
                q = q + rng.normal(0, st.tremor, q.shape)
                canvas.stroke(q, pen.width * rng.uniform(0.8, 1.2), pen.piece_rgb(rng),
                              min(1.0, pen.alpha * rng.uniform(0.85, 1.1)))


def _draw_assembled(canvas: _Canvas, polys: list[np.ndarray], closed: list[bool], pen: _Pen,
                    rng: np.random.Generator, st: Style, radius: float) -> None:
    """The outline as many short, slightly misplaced strokes of varied shade, width and opacity."""
    total = sum(float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) for p in polys)
    k_all = int(rng.integers(st.assembled_pieces[0], st.assembled_pieces[1] + 1))
    for poly, c in zip(polys, closed):
        share = float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum()) / max(total, 1e-9)
        for piece in _pieces(poly, max(1, round(k_all * share)), rng, c):
            q = _wobble(piece, st.wobble * radius, rng, closed=False) + rng.normal(0, st.assembled_shift * radius, 2)
            q = q + rng.normal(0, st.tremor, q.shape)
            base = pen.piece_rgb(rng)
            rgb = base + rng.uniform(0, st.assembled_hue) * (rng.random(3) - base)
            alpha = float(np.clip(pen.alpha * rng.uniform(0.6, 1.2), 0.3, 1.0))
            canvas.stroke(q, pen.width * rng.uniform(0.5, 1.6), rgb, alpha)


def _place(rng: np.random.Generator, st: Style, width: float) -> tuple[float, np.ndarray]:
    """Radius and centre (canvas fractions) so that the shape stays on the canvas."""
    radius = 0.5 * rng.uniform(*st.extent)
    margin = radius + width / 2 + 0.01
    centre = rng.uniform(margin, 1 - margin, 2) if margin < 0.5 else np.full(2, 0.5)
    return radius, centre


def _pen(colour: str, rng: np.random.Generator, st: Style, radius: float | None = None) -> _Pen:
    width = rng.uniform(*st.thickness)
    if radius is not None:
        width = min(width, 0.45 * radius)  # thicker would make a blob, not an outline
    return _Pen(_colour(colour, rng, st.colour_jitter), float(rng.uniform(*st.alpha)), float(width))


def render_shape(shape: str, colour: str, size: int | None = None, rng: np.random.Generator | None = None, *,
                 filled: bool | None = None, clutter: bool | None = None, completeness: float = 1.0,
                 style: Style = MODEL_STYLE) -> np.ndarray:
    """A drawing of ``shape`` in ``colour``: HxWx3 float32 in [0, 1] on white.

    ``filled``/``clutter`` None means random (the style's odds). ``completeness`` < 1 draws only
    that fraction of a closed shape's outline (a broken shape, unfilled).
    """
    return _render_shape(shape, colour, size, rng, filled, clutter, completeness, style)[0]


def _render_shape(shape: str, colour: str, size: int | None, rng: np.random.Generator | None, filled: bool | None,
                  clutter: bool | None, completeness: float,
                  style: Style) -> tuple[np.ndarray, float, float, float, float]:
    """The drawing, the share of its ink that is clutter, the opacity of its pen, the share of its
    ink in the caption's colour, and the share of the pen's ink that is off the outline (strays)."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    if colour not in PALETTE:
        raise ValueError(f"unknown colour {colour!r}; known: {', '.join(COLOURS)}")
    st = replace(style, size=size) if size else style
    rng = rng if rng is not None else np.random.default_rng()
    canvas = _Canvas(st.size, st.supersample)
    canvas.caption_class = COLOURS.index(colour)
    if clutter if clutter is not None else rng.random() < st.clutter_prob:
        _clutter(canvas, rng, st)
    pen = _pen(colour, rng, st)
    if st.multicolour_prob > 0 and rng.random() < st.multicolour_prob:
        pen = replace(pen, mix=float(rng.uniform(*st.multicolour_share)))
    radius, centre = _place(rng, st, pen.width)
    pen = replace(pen, width=min(pen.width, 0.45 * radius))
    polys = [_densify(p) for p in outline(shape, rng, st)]
    polys = [_wobble(p, st.wobble, rng, closed=shape in CLOSED) for p in polys]
    closed = [shape in CLOSED and np.allclose(p[0], p[-1]) for p in polys]
    if completeness < 1.0 and shape in CLOSED:
        polys, closed = [_fraction(polys[0], completeness, rng)], [False]
        filled = False
    if filled is None:
        filled = shape in CLOSED and rng.random() < st.fill_prob
    pts = [p * radius + centre for p in polys]
    if filled and shape in CLOSED:
        _fill(canvas, pts[0], pen, rng, radius)
    if rng.random() < st.assembled_prob:
        _draw_assembled(canvas, pts, closed, pen, rng, st, radius)
    else:
        _draw_polys(canvas, pts, closed, pen, rng, st, radius)
    outline_ink = canvas.ink[False]
    if st.stray_prob > 0 and not filled and rng.random() < st.stray_prob:  # off: no draw, other teachers unchanged
        _draw_strays(canvas, pts, pen, rng, st, radius, centre)
    stray_share = (canvas.ink[False] - outline_ink) / max(canvas.ink[False], 1e-9)
    clutter_share = canvas.ink[True] / max(canvas.ink[True] + canvas.ink[False], 1e-9)
    return canvas.image(), clutter_share, pen.alpha, canvas.purity(), stray_share


def _draw_strays(canvas: _Canvas, pts: list[np.ndarray], pen: _Pen, rng: np.random.Generator, st: Style,
                 radius: float, centre: np.ndarray) -> None:
    """Strokes of the pen's colour that are not the outline: random walks inside or across the
    shape, or a second, shifted and rescaled copy of part of the outline (a doubled loop)."""
    for _ in range(int(rng.integers(st.stray_strokes[0], st.stray_strokes[1] + 1))):
        if rng.random() < 0.35:
            poly = pts[int(rng.integers(len(pts)))]
            part = _fraction(poly, float(rng.uniform(0.3, 0.9)), rng) if len(poly) > 3 else poly
            scale = rng.uniform(0.55, 1.35)
            q = (part - centre) * scale + centre + rng.normal(0, 0.12 * radius, 2)
        else:
            start = centre + radius * rng.uniform(-0.8, 0.8, 2)
            q = _bezier_walk(rng, start, int(rng.integers(1, 3)), radius * rng.uniform(0.15, 0.45))
        canvas.stroke(np.clip(q, 0.0, 1.0), pen.width * rng.uniform(0.7, 1.2), pen.rgb,
                      min(1.0, pen.alpha * rng.uniform(0.85, 1.1)))


def _fraction(poly: np.ndarray, f: float, rng: np.random.Generator) -> np.ndarray:
    n = len(poly) - 1
    span = max(2, int(round(n * f)))
    start = int(rng.integers(n))
    idx = (start + np.arange(span + 1)) % n
    return poly[idx]


def _fill(canvas: _Canvas, poly: np.ndarray, pen: _Pen, rng: np.random.Generator, radius: float) -> None:
    """Flat fill, or the inside scrubbed with thick strokes (as an optimiser fills an area)."""
    if rng.random() < 0.6:
        canvas.fill(poly, pen.rgb, pen.alpha * rng.uniform(0.6, 1.0))
        return
    centre = poly.mean(0)
    for s in (0.65, 0.3):
        inner = centre + (poly - centre) * s
        canvas.stroke(inner, radius * rng.uniform(0.45, 0.7), pen.rgb, pen.alpha * rng.uniform(0.6, 1.0))


def render_scribble(colour: str, size: int | None = None, rng: np.random.Generator | None = None, *,
                    clutter: bool | None = None, style: Style = MODEL_STYLE) -> np.ndarray:
    """A drawing in ``colour`` that shows none of the shapes (random walks, blobs, broken shapes)."""
    st = replace(style, size=size) if size else style
    rng = rng if rng is not None else np.random.default_rng()
    if st.asterisk_prob and rng.random() < st.asterisk_prob:  # (no draw from rng when off)
        return _render_asterisk(colour, rng, st, clutter)
    kind = rng.random()
    if kind < 0.35:  # a broken piece of a closed shape: clearly not the whole shape
        shape = CLOSED[int(rng.integers(len(CLOSED)))]
        return render_shape(shape, colour, st.size, rng, clutter=clutter, completeness=rng.uniform(0.15, 0.5), style=st)
    canvas = _Canvas(st.size, st.supersample)
    if clutter if clutter is not None else rng.random() < st.clutter_prob:
        _clutter(canvas, rng, st)
    pen = _pen(colour, rng, st)
    if kind < 0.75:  # wandering strokes
        for _ in range(int(rng.integers(1, 4))):
            pts = _bezier_walk(rng, rng.uniform(0.2, 0.8, 2), int(rng.integers(1, 4)), rng.uniform(0.08, 0.2))
            canvas.stroke(np.clip(pts, 0.02, 0.98), pen.width * rng.uniform(0.7, 1.3), pen.rgb, pen.alpha)
    else:  # a shapeless blob of thick short strokes, or colour smeared all over
        spread = rng.uniform(0.05, 0.35)
        c = rng.uniform(0.3, 0.7, 2)
        for _ in range(int(rng.integers(2, 8))):
            pts = _bezier_walk(rng, c + rng.normal(0, spread, 2), 1, spread * 0.6)
            canvas.stroke(np.clip(pts, 0, 1), rng.uniform(0.04, 0.2), pen.rgb, pen.alpha * rng.uniform(0.5, 1))
    return canvas.image()


def _render_asterisk(colour: str, rng: np.random.Generator, st: Style, clutter: bool | None) -> np.ndarray:
    """Three or four strokes through about one point at spread angles: an asterisk, which is no star (its
    arms have no outline between them) and no cross (more than two bars)."""
    canvas = _Canvas(st.size, st.supersample)
    if clutter if clutter is not None else rng.random() < st.clutter_prob:
        _clutter(canvas, rng, st)
    radius = 0.5 * rng.uniform(*st.extent)
    pen = _pen(colour, rng, st, radius)
    centre = rng.uniform(radius + 0.02, 1 - radius - 0.02, 2) if radius < 0.47 else np.full(2, 0.5)
    k = int(rng.integers(3, 5))
    angles = rng.uniform(0, math.pi) + math.pi * np.arange(k) / k + rng.normal(0, 0.12, k)
    for a in angles:
        arm = radius * rng.uniform(0.7, 1.0, 2)
        d = np.array([math.cos(a), math.sin(a)])
        c = centre + rng.normal(0, 0.03 * radius, 2)
        line = np.stack([c - arm[0] * d, c + arm[1] * d])
        pts = _wobble(_densify(line, 0.02), st.wobble * radius, rng, closed=False)
        canvas.stroke(np.clip(pts, 0.01, 0.99), pen.width, pen.rgb, pen.alpha)
    return canvas.image()


def render_mess(size: int | None = None, rng: np.random.Generator | None = None, *,
                style: Style = JUDGE_STYLE) -> np.ndarray:
    """Many random strokes of random colours and opacities and nothing else: what a drawing
    looks like when the optimiser made no shape (it has no colour either)."""
    st = replace(style, size=size) if size else style
    rng = rng if rng is not None else np.random.default_rng()
    canvas = _Canvas(st.size, st.supersample)
    _clutter(canvas, rng, replace(st, clutter_strokes=(10, 40), clutter_alpha=(0.05, 0.85),
                                  clutter_thickness=(0.005, 0.06), clutter_reach=st.clutter_reach * 1.3))
    return canvas.image()


# ---------------------------------------------------------------------------------------------
# Data sets
class Batch(NamedTuple):
    """Drawings with labels. ``shape`` == NONE marks a scribble; ``weight`` is how much of the
    drawing's shape label is the shape (1) rather than "scribble" (0): broken shapes get a
    partial weight so that completing a shape is rewarded step by step."""

    images: np.ndarray  # [n, 3, S, S] uint8
    colour: np.ndarray  # [n] int64, NO_COLOUR for a mess of random colours
    shape: np.ndarray  # [n] int64
    weight: np.ndarray  # [n] float32


def completeness_weight(f: float, ramp: tuple[float, float] = (0.55, 0.92)) -> float:
    """Label weight of a closed shape drawn to fraction ``f``: 0 up to ``ramp[0]``, 1 from ``ramp[1]``."""
    return float(np.clip((f - ramp[0]) / (ramp[1] - ramp[0]), 0.0, 1.0))


def sample(rng: np.random.Generator, style: Style = MODEL_STYLE, scribble_frac: float = 0.15,
           broken_frac: float = 0.1) -> tuple[np.ndarray, int, int, float]:
    """One random labelled drawing: (HxWx3 float32, colour index, shape index, shape weight).

    The weight is how much of the label is the shape rather than "scribble": less for a broken
    shape (``completeness_weight``) and, with the style's penalties, for clutter, for faint
    strokes, for ink in other colours and for the pen's strokes off the outline (a strict teacher
    pays the optimiser for clean, opaque shapes in the caption's colour)."""
    colour = int(rng.integers(len(COLOURS)))
    u = rng.random()
    if u < scribble_frac:
        if rng.random() < style.mess_prob:
            return render_mess(rng=rng, style=style), NO_COLOUR, NONE, 1.0
        return render_scribble(COLOURS[colour], rng=rng, style=style), colour, NONE, 1.0
    shape = int(rng.integers(len(SHAPES)))
    broken = u < scribble_frac + broken_frac and SHAPES[shape] in CLOSED
    f = float(rng.uniform(0.4, 1.0)) if broken else 1.0
    img, clutter, alpha, purity, stray = _render_shape(SHAPES[shape], COLOURS[colour], None, rng, None, None, f, style)
    weight = (completeness_weight(f, style.complete_from) * (1.0 - style.clutter_penalty * clutter) * (1.0 - style.opacity_penalty * (1 - alpha))
              * max(0.0, 1.0 - style.colour_penalty * (1.0 - purity)) * max(0.0, 1.0 - style.stray_penalty * stray))
    return img, colour, shape, weight


def make_batch(n: int, seed: int | tuple[int, ...], style: Style = MODEL_STYLE, scribble_frac: float = 0.15,
               broken_frac: float = 0.1) -> Batch:
    """``n`` labelled drawings from one seed (same seed, same drawings)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, style.size, style.size), np.uint8)
    colour, shape, weight = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32)
    for i in range(n):
        img, colour[i], shape[i], weight[i] = sample(rng, style, scribble_frac, broken_frac)
        images[i] = (img.transpose(2, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Batch(images, colour, shape, weight)


def make_dataset(n: int, seed: int, style: Style = MODEL_STYLE, scribble_frac: float = 0.15,
                 broken_frac: float = 0.1, chunk: int = 500, workers: int = 1) -> Batch:
    """A larger set in independent chunks (seeded (seed, chunk index)), so it is the same whether
    it is made by one process or by ``workers`` processes."""
    jobs = [(min(chunk, n - i), (seed, i // chunk), style, scribble_frac, broken_frac) for i in range(0, n, chunk)]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.starmap(make_batch, jobs)
    else:
        parts = [make_batch(*j) for j in jobs]
    return Batch(*(np.concatenate(p) for p in zip(*parts)))


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [n, 3, S, S] -> float32 in [0, 1]."""
    return images.astype(np.float32) / 255.0
