"""Canvas -> world mapping: pure numpy, no bpy, so that it can be tested anywhere.

A drawing lives on a canvas in pixels (origin top-left, y down). In Blender it lands on a
rectangle, the ``Plane``: the result object's transform is the plane's matrix (local X = canvas
right, local Y = canvas up, local Z = the plane's normal), and every point is written in local
coordinates on the object's XY plane. One scale factor (world units per pixel) maps both
positions and widths, so Grease Pencil and curves come out the same size and the aspect ratio
of the canvas is always kept. Colours are ``colour.py``'s business, Bezier shapes ``bezier.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .colour import canvas_matched_colours, linear_to_srgb
from .engine_path import import_engine

__all__ = [
    "Plane",
    "MappedStrokes",
    "front_plane",
    "beside",
    "camera_plane",
    "letterboxed_plane",
    "map_strokes",
    "canvas_points",
    "fit_canvas",
    "project_onto_plane",
    "empty_image_aspect",
    "OverlayPlacement",
    "overlay_placement",
]


@dataclass(frozen=True)
class Plane:
    """Where the canvas goes: a 4x4 object matrix and the canvas' size in world units.

    ``matrix`` columns are the world directions of canvas-right (u) and canvas-up (v), the
    normal (u x v) and the centre of the canvas; u and v are unit length.
    """

    matrix: np.ndarray  # (4, 4)
    width: float  # world units covered by the canvas width
    height: float  # world units covered by the canvas height

    def scale(self, canvas_w: int) -> float:
        """World units per canvas pixel (the same along x and y: aspect is kept)."""
        return self.width / float(canvas_w)

    def local_points(self, points_px: np.ndarray, canvas_w: int, canvas_h: int) -> np.ndarray:
        """(P, 2) canvas pixels -> (P, 3) object-local coordinates, y flipped, z = 0."""
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        s = self.scale(canvas_w)
        out = np.zeros((len(pts), 3))
        out[:, 0] = (pts[:, 0] - canvas_w / 2.0) * s
        out[:, 1] = (canvas_h / 2.0 - pts[:, 1]) * s
        return out

    def canvas_points(self, local: np.ndarray, canvas_w: int, canvas_h: int) -> np.ndarray:
        """(P, 2 or 3) object-local coordinates -> (P, 2) canvas pixels: the exact inverse of
        ``local_points`` (reading a result back); a local z off the plane is dropped."""
        return canvas_points(local, canvas_w, canvas_h, self.scale(canvas_w))

    def world_points(self, points_px: np.ndarray, canvas_w: int, canvas_h: int) -> np.ndarray:
        """(P, 2) canvas pixels -> (P, 3) world coordinates (what a test reads back)."""
        local = self.local_points(points_px, canvas_w, canvas_h)
        return local @ self.matrix[:3, :3].T + self.matrix[:3, 3]


def _basis_matrix(u: np.ndarray, v: np.ndarray, origin: np.ndarray) -> np.ndarray:
    u = u / np.linalg.norm(u)
    v = v - u * np.dot(u, v)  # re-orthogonalise against rounding
    v = v / np.linalg.norm(v)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = u, v, np.cross(u, v), origin
    return m


def front_plane(
    location: Sequence[float],
    rotation: np.ndarray | None,
    world_width: float,
    canvas_w: int,
    canvas_h: int,
) -> Plane:
    """The canvas centred on ``location`` (the 3D cursor) in the Front view's XZ plane.

    ``rotation`` (3x3, the cursor's rotation) turns the plane with the cursor; identity gives
    canvas-right = +X, canvas-up = +Z and a normal facing -Y, towards a Front-view viewer.
    """
    if world_width <= 0:
        raise ValueError(f"world_width must be positive, got {world_width}")
    rot = np.eye(3) if rotation is None else np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    u = rot @ np.array([1.0, 0.0, 0.0])
    v = rot @ np.array([0.0, 0.0, 1.0])
    height = world_width * canvas_h / float(canvas_w)
    return Plane(_basis_matrix(u, v, np.asarray(location, dtype=np.float64)), float(world_width), height)


def beside(plane: Plane, taken: Sequence[Sequence[float]], gap: float = 0.1, tries: int = 1000) -> Plane:
    """``plane``, moved along its canvas-right in steps of its width (plus ``gap`` of it) until its
    centre is clear of every point in ``taken`` (the centres of earlier results), so that new
    results at the same cursor sit side by side instead of on top of each other."""
    centres = np.asarray(taken, dtype=np.float64).reshape(-1, 3)
    step = plane.matrix[:3, 0] * plane.width * (1.0 + gap)
    near = 0.5 * plane.width
    m = plane.matrix.copy()
    for _ in range(tries):
        if not len(centres) or np.min(np.linalg.norm(centres - m[:3, 3], axis=1)) >= near:
            break
        m[:3, 3] += step
    return Plane(m, plane.width, plane.height)


def camera_plane(
    camera_matrix: np.ndarray,
    frame_corners: np.ndarray,
    orthographic: bool,
    distance: float,
    canvas_w: int,
    canvas_h: int,
) -> Plane:
    """The canvas fitted inside a camera's view at ``distance`` in front of it.

    ``frame_corners`` are the 4 corners of the camera frame in camera-local coordinates
    (Blender's ``Camera.view_frame``); the camera looks down its local -Z. The canvas keeps its
    aspect and touches the frame on two sides ("contain"), so a render of the camera shows the
    whole canvas; with the render aspect equal to the canvas aspect it fills the frame exactly.
    """
    if distance <= 0:
        raise ValueError(f"distance must be positive, got {distance}")
    c = np.asarray(frame_corners, dtype=np.float64).reshape(4, 3)
    if orthographic:
        c = c.copy()
        c[:, 2] = -distance
    else:
        depth = -c[:, 2:3]
        if np.any(depth <= 0):
            raise ValueError("camera frame corners must lie in front of the camera (negative z)")
        c = c * (distance / depth)
    lo, hi = c.min(axis=0), c.max(axis=0)
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, -distance, 1.0])
    m = np.asarray(camera_matrix, dtype=np.float64).reshape(4, 4)
    origin = (m @ centre)[:3]
    right = m[:3, :3] @ np.array([(hi[0] - lo[0]) / 2, 0.0, 0.0])  # world half-extent vectors
    up = m[:3, :3] @ np.array([0.0, (hi[1] - lo[1]) / 2, 0.0])
    frame_w, frame_h = 2 * np.linalg.norm(right), 2 * np.linalg.norm(up)
    s = min(frame_w / canvas_w, frame_h / canvas_h)
    return Plane(_basis_matrix(right, up, origin), canvas_w * s, canvas_h * s)


def letterboxed_plane(picture_plane: Plane, picture_w: int, picture_h: int, canvas: int) -> Plane:
    """The square canvas plane whose letterboxed picture lands exactly on ``picture_plane``.

    The engine letterboxes a ``picture_w`` x ``picture_h`` picture into its square canvas
    (``synth_core.letterbox``, imported here so the two cannot drift); a sketch of a camera's view
    must put that rectangle back on the camera frame (``picture_plane``, e.g. ``camera_plane`` for
    the picture's size). The result is ``canvas`` px square, one pixel of the picture's rectangle
    as large as one of the frame's, centred so that the rectangle's centre is the frame's (a 16:9
    picture: a square plane as wide as the frame, centred on it).
    """
    x0, y0, nw, nh = import_engine("letterbox").fit_square_rect(picture_w, picture_h, canvas)
    px = picture_plane.width / nw  # world units per canvas pixel
    dx = (x0 + nw / 2.0 - canvas / 2.0) * px  # the rectangle's centre from the canvas centre,
    dy = (canvas / 2.0 - (y0 + nh / 2.0)) * px  # along canvas-right and canvas-up
    m = np.asarray(picture_plane.matrix, dtype=np.float64).copy()
    m[:3, 3] -= m[:3, 0] * dx + m[:3, 1] * dy
    return Plane(m, canvas * px, canvas * px)


@dataclass(frozen=True)
class MappedStrokes:
    """A Drawing mapped onto a plane: what the builders write, in object-local units."""

    points: np.ndarray  # (P, 3) control points, local coordinates
    segments: np.ndarray  # (N,) cubic segments per stroke
    offsets: np.ndarray  # (N+1,) first control point of each stroke
    radius: np.ndarray  # (N,) half thickness in world units
    colour: np.ndarray  # (N, 3) linear RGB to give Blender (see canvas_matched_colours)
    alpha: np.ndarray  # (N,) opacity to give Blender
    srgba: np.ndarray  # (N, 4) the drawing's own straight sRGB colours and alpha

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def knots(self) -> int:
        """Bezier knots (GP v3 points, curve bezier points): S+1 per stroke."""
        return int(np.sum(self.segments + 1))

    @property
    def display_srgba(self) -> np.ndarray:
        """(N, 4) what Blender is given, as sRGB and alpha (names curve materials)."""
        return np.concatenate([linear_to_srgb(self.colour), self.alpha[:, None]], axis=1)


def map_strokes(drawing, plane: Plane) -> MappedStrokes:
    """Map a ``synth_core.drawing.Drawing`` (duck-typed: packed arrays) onto ``plane``."""
    s = plane.scale(drawing.width)
    rgba = np.clip(np.asarray(drawing.rgba, dtype=np.float64).reshape(-1, 4), 0.0, 1.0)
    colour, alpha = canvas_matched_colours(rgba, getattr(drawing, "background", (1.0, 1.0, 1.0, 1.0)))
    return MappedStrokes(
        points=plane.local_points(drawing.points, drawing.width, drawing.height),
        segments=np.asarray(drawing.segments, dtype=np.int64),
        offsets=np.asarray(drawing.offsets, dtype=np.int64),
        radius=np.asarray(drawing.widths, dtype=np.float64) * s / 2.0,
        colour=colour,
        alpha=alpha,
        srgba=rgba,
    )


# -- back from Blender: local coordinates -> canvas ------------------------------------------
def canvas_points(local: np.ndarray, canvas_w: int, canvas_h: int, scale: float,
                  centre: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
    """(P, 2 or 3) plane coordinates -> (P, 2) canvas pixels (y down), ``scale`` units per pixel.

    ``centre`` is where the canvas centre lies on the plane (0 for the add-on's own results,
    whose object origin is the canvas centre). Only x and y are used: points off the plane are
    projected straight onto it.
    """
    pts = np.asarray(local, dtype=np.float64)
    pts = pts.reshape(len(pts), -1) if pts.size else np.zeros((0, 2))
    out = np.empty((len(pts), 2))
    out[:, 0] = (pts[:, 0] - centre[0]) / scale + canvas_w / 2.0
    out[:, 1] = canvas_h / 2.0 - (pts[:, 1] - centre[1]) / scale
    return out


def fit_canvas(local: np.ndarray, canvas_w: int, canvas_h: int, margin: float = 0.05) -> tuple[float, np.ndarray]:
    """Scale (units per pixel) and centre that put the XY bounding box of ``local`` in the middle
    of the canvas, aspect kept, with ``margin`` (a fraction of each side) left free on every side.

    For strokes that carry no canvas of their own (drawn by hand): every control point lands
    inside the canvas. Empty or single-point input gets one unit across the canvas width.
    """
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    pts = np.asarray(local, dtype=np.float64)
    if pts.size == 0:
        return 1.0 / canvas_w, np.zeros(2)
    xy = pts.reshape(len(pts), -1)[:, :2]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    usable = np.array([canvas_w, canvas_h], dtype=np.float64) * (1.0 - 2.0 * margin)
    scale = float(np.max((hi - lo) / usable))
    if not scale > 0.0:
        scale = 1.0 / canvas_w
    return scale, (lo + hi) / 2.0


def project_onto_plane(world: np.ndarray, plane: Plane, eye: Sequence[float] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """World points -> (P, 3) coordinates in ``plane``'s frame (z = 0) and each point's size factor.

    Without ``eye`` the projection is orthographic along the plane's normal (factor 1); with
    ``eye`` (a perspective camera's position) each point moves along its ray from the eye onto
    the plane, and its factor (distance to the plane's hit over distance to the point) is what
    a stroke's width shrinks or grows by. Bezier handles projected in perspective are close to,
    not exactly, the projected curve.
    """
    m = np.asarray(plane.matrix, dtype=np.float64)
    pts = np.asarray(world, dtype=np.float64).reshape(-1, 3)
    factor = np.ones(len(pts))
    if eye is not None:
        e = np.asarray(eye, dtype=np.float64)
        normal, origin = m[:3, 2], m[:3, 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.dot(origin - e, normal) / ((pts - e) @ normal)
        if not np.all(np.isfinite(factor) & (factor > 0)):
            raise ValueError("every point must lie in front of the eye, on the plane's side of it")
        pts = e + (pts - e) * factor[:, None]
    local = (pts - m[:3, 3]) @ m[:3, :3]  # u, v, n are orthonormal: the inverse is the transpose
    local[:, 2] = 0.0
    return local, factor


# -- the source image under a sketch ---------------------------------------------------------
def empty_image_aspect(width: int, height: int, aspect_x: float = 1.0, aspect_y: float = 1.0) -> tuple[float, float]:
    """The fraction of ``empty_display_size`` an image empty spans along its local X and Y.

    Mirrors Blender's ``overlay_image_calc_aspect`` (draw/engines/overlay): the longer side spans
    the display size, the other one its share, with the Image's ``display_aspect`` applied.
    """
    sx = sy = 1.0
    if aspect_x > aspect_y:
        sy = aspect_y / aspect_x
    elif aspect_x < aspect_y:
        sx = aspect_x / aspect_y
    w, h = max(width, 1) * sx, max(height, 1) * sy
    return (1.0, h / w) if w > h else (w / h, 1.0)


@dataclass(frozen=True)
class OverlayPlacement:
    """An image empty that shows the source image exactly where the engine saw it on the canvas."""

    matrix: np.ndarray  # (4, 4) the empty's world matrix (may scale and mirror)
    display_size: float  # ``empty_display_size``
    rect: tuple[int, int, int, int]  # the image on the canvas: x0, y0, w, h in pixels (upright)


def overlay_placement(plane: Plane, canvas: int, width: int, height: int, aspect: Sequence[float] = (1.0, 1.0),
                      orientation: int = 1) -> OverlayPlacement:
    """The image empty for a ``width`` x ``height`` image (as Blender stores it) under a sketch.

    The engine reads the file upright (EXIF ``orientation``, ``synth_core.exif``) and letterboxes
    it onto the square canvas (``synth_core.letterbox``); both rules are imported from the engine,
    so the overlay follows them by construction. The empty sits on the drawing's plane, centred
    on that rectangle, with its longer side as display size and a per-axis scale that absorbs the
    engine's whole-pixel rounding, so every image pixel lands on the canvas pixel the engine
    used. Rotated or mirrored orientations turn the raw image as the engine turns its pixels.
    """
    exif = import_engine("exif")
    turn = exif.orientation_matrix(orientation)
    swapped = exif.swaps_axes(orientation)
    up_w, up_h = (height, width) if swapped else (width, height)
    x0, y0, nw, nh = import_engine("letterbox").fit_square_rect(up_w, up_h, canvas)
    px = plane.scale(canvas)
    ax, ay = empty_image_aspect(width, height, aspect[0], aspect[1])
    display = max(nw, nh) * px
    raw_w, raw_h = (nh, nw) if swapped else (nw, nh)  # wanted extent of the raw image's axes
    local = np.eye(4)
    local[:2, :2] = turn @ np.diag([raw_w * px / (display * ax), raw_h * px / (display * ay)])
    local[0, 3] = (x0 + nw / 2.0 - canvas / 2.0) * px
    local[1, 3] = (canvas / 2.0 - (y0 + nh / 2.0)) * px
    return OverlayPlacement(np.asarray(plane.matrix, dtype=np.float64) @ local, float(display), (x0, y0, nw, nh))
