"""Blender -> Drawing: the strokes of a Grease Pencil (v3) or curve object back on a canvas.

The inverse of what ``results.ResultWriter`` writes, so that a drawing can be taken up again
(Continue from Active). Three ways to find the canvas, in this order:

- ``"stored"``: a result of this add-on keeps its canvas size, the canvas' size in local units and
  the background (``results.record_canvas``). Its points are local coordinates on its XY plane,
  so ``Plane.canvas_points`` maps them back exactly, wherever the object was moved or scaled since.
- ``"plane"``: with a ``plane`` (e.g. ``placement.camera_plane`` of the active camera, or a
  ``front_plane``), world positions are projected onto it (along its normal, or from ``eye`` for
  a perspective camera) and mapped with its scale: the strokes land where that placement would
  have put them.
- ``"fitted"``: anything else (drawn by hand, or a result older than the stored canvas): the
  object's local XY plane is assumed to be the drawing plane (z is dropped), and the strokes'
  bounding box is centred on the canvas with a margin.

Colours come from the materials (Grease Pencil stroke colour, curve base colour), turned from
Blender's linear, canvas-matched colours back to the engine's straight sRGB
(``colour.engine_colours``); the add-on's own strokes also carry the drawing's exact colours,
used while their material still shows that colour. Widths are the mean point radius per stroke.
Only the strokes are read: modifiers, layer parents and curve tapers are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import bpy
import numpy as np

from . import animation, curves, grease_pencil, materials, results
from .bezier import bezier_controls, catmull_rom_controls, sampled_controls, samples_fit
from .colour import canvas_matched_colours, engine_colours, linear_to_srgb
from .engine_path import import_engine
from .placement import Plane, canvas_points, fit_canvas, project_onto_plane

__all__ = ["DEFAULT_CANVAS", "LayerInfo", "ReadBack", "drawing_from_object", "read_object"]

DEFAULT_CANVAS = (224, 224)  # canvas for fitted strokes when none is asked for
DEFAULT_MARGIN = 0.05  # fraction of each canvas side kept free around fitted strokes
DEFAULT_WIDTH_PX = 2.0  # curves without a bevel have no thickness of their own
MIN_WIDTH_PX = 1e-3  # the Drawing needs widths above 0 (a Grease Pencil radius may be 0)
NO_MATERIAL = (0.0, 0.0, 0.0, 1.0)  # linear RGBA of a stroke whose material slot is empty
GP_DEFAULT_RADIUS = 0.01  # Grease Pencil v3's radius when a drawing has no 'radius' attribute
_BEZIER = 2  # v3 'curve_type' value; a missing attribute means Catmull-Rom (0)


@dataclass(frozen=True)
class LayerInfo:
    """A layer strokes came from (curve objects have one, unnamed and unlocked)."""

    name: str
    locked: bool  # the layer or a group above it is locked
    hidden: bool  # the layer or a group above it is hidden


@dataclass(frozen=True)
class ReadBack:
    """A Drawing read from an object, with what Continue from Active needs to keep strokes."""

    drawing: object  # synth_core.drawing.Drawing
    selected: np.ndarray  # (N,) bool: Blender's selection (no selection data: all selected)
    layer: np.ndarray  # (N,) int: index in ``layers`` of each stroke's layer
    layers: tuple[LayerInfo, ...]
    source: str  # 'stored', 'plane' or 'fitted': how the canvas was found
    scale: float  # plane units per canvas pixel
    centre: np.ndarray  # (2,) where the canvas centre lies on the plane

    def selected_strokes(self) -> np.ndarray:
        """Indices of the selected strokes (Keep Selected Strokes)."""
        return np.flatnonzero(self.selected)

    def locked_strokes(self) -> np.ndarray:
        """Indices of the strokes on locked layers (Keep Locked Layers)."""
        if not len(self.layer):
            return np.zeros(0, np.int64)
        return np.flatnonzero(np.array([info.locked for info in self.layers], dtype=bool)[self.layer])


@dataclass(frozen=True)
class _Strokes:
    """Strokes as read from Blender, still in object-local units (before any canvas)."""

    points: np.ndarray  # (P, 3) cubic control points
    segments: np.ndarray  # (N,)
    radius: np.ndarray  # (N,) mean half width, local units; NaN: no thickness of its own
    colour: np.ndarray  # (N, 3) linear, as Blender shows the stroke
    alpha: np.ndarray  # (N,)
    stored: np.ndarray  # (N, 4) the drawing's own sRGBA written by the add-on, NaN if none
    selected: np.ndarray  # (N,) bool
    layer: np.ndarray  # (N,) int


def read_object(obj: bpy.types.Object, frame: int | None = None, canvas: Sequence[int] | None = None,
                plane: Plane | None = None, eye: Sequence[float] | None = None, margin: float = DEFAULT_MARGIN,
                background: Sequence[float] | None = None, max_segments: int | None = None) -> ReadBack:
    """The strokes of ``obj`` (Grease Pencil v3 or curve) at scene ``frame`` (None: the current one).

    ``canvas`` (w, h) is the canvas for strokes without a stored one (default: the request canvas
    an older result recorded, else ``DEFAULT_CANVAS``); a stored canvas wins unless ``plane`` is
    given. ``max_segments`` thins hand-drawn point strokes (``bezier.catmull_rom_controls``).
    Grease Pencil layers are read bottom first, hidden ones too (``LayerInfo.hidden`` says which);
    a layer's keyframe held at ``frame`` counts. Grease Pencil v2 (Blender 4.2) strokes are point
    lists: the add-on's own come back as their exact cubics (``bezier.sampled_controls``), others
    through Catmull-Rom. Raises ValueError for other object types.
    """
    if obj.type == grease_pencil.object_type() and grease_pencil.is_v3():
        strokes, layers = _read_grease_pencil(obj, _frame(frame), max_segments)
    elif obj.type == grease_pencil.object_type():
        strokes, layers = _read_grease_pencil_v2(obj, _frame(frame), max_segments)
    elif obj.type == 'CURVE':
        strokes, layers = _read_curve(obj, frame, max_segments), (LayerInfo("", False, False),)
    else:
        raise ValueError(f"'{obj.name}' is a {obj.type} object: only Grease Pencil and curves can be read")
    return _assemble(obj, strokes, layers, frame, canvas, plane, eye, margin, background)


def drawing_from_object(obj: bpy.types.Object, frame: int | None = None, **kwargs):
    """Just the Drawing of ``read_object``."""
    return read_object(obj, frame, **kwargs).drawing


# -- canvas ------------------------------------------------------------------------------------
def _stored_canvas(obj: bpy.types.Object) -> tuple[tuple[int, int], float] | None:
    """The canvas size and scale a result recorded, or None (hand-drawn, or an older result)."""
    size, plane = obj.get(results.CANVAS_SIZE_PROP), obj.get(results.PLANE_SIZE_PROP)
    try:
        w, h = int(size[0]), int(size[1])
        scale = float(plane[0]) / w
    except (TypeError, IndexError, ValueError, ZeroDivisionError):
        return None
    return ((w, h), scale) if w > 0 and h > 0 and scale > 0 else None


def _fallback_canvas(obj: bpy.types.Object, canvas: Sequence[int] | None) -> tuple[int, int]:
    """The asked-for canvas, else the request canvas an older result recorded, else the default."""
    for value in (canvas, obj.get(results.PROP_PREFIX + "canvas")):
        try:
            w, h = int(value[0]), int(value[1])
        except (TypeError, IndexError, ValueError):
            continue
        if w > 0 and h > 0:
            return w, h
    return DEFAULT_CANVAS


def _assemble(obj, strokes: _Strokes, layers, frame, canvas, plane, eye, margin, background) -> ReadBack:
    """Put the strokes on a canvas (stored, plane or fitted) and make the Drawing."""
    stored = None if plane is not None else _stored_canvas(obj)
    radius = strokes.radius
    if stored is not None:
        (w, h), scale = stored
        local, centre, source = strokes.points, np.zeros(2), "stored"
    elif plane is not None:
        w, h = _fallback_canvas(obj, canvas)
        world = _transform(strokes.points, np.array(obj.matrix_world))
        local, factor = project_onto_plane(world, plane, eye)
        per_stroke = np.repeat(np.arange(len(strokes.segments)), 3 * strokes.segments + 1)
        growth = np.bincount(per_stroke, factor, len(strokes.segments)) / (3 * strokes.segments + 1)
        radius = radius * _mean_scale(np.array(obj.matrix_world)) * growth
        scale, centre, source = plane.scale(w), np.zeros(2), "plane"
    else:
        w, h = _fallback_canvas(obj, canvas)
        local = strokes.points
        (scale, centre), source = fit_canvas(local, w, h, margin), "fitted"
    bg = _background(obj, background)
    widths = np.where(np.isnan(radius), DEFAULT_WIDTH_PX, 2.0 * radius / scale)
    drawing = import_engine("drawing").Drawing(
        w, h, canvas_points(local, w, h, scale, centre), strokes.segments, np.maximum(widths, MIN_WIDTH_PX),
        _drawing_colours(strokes, bg), background=bg,
        meta={"source": {"object": obj.name, "frame": _frame(frame), "canvas": source}},
    )
    return ReadBack(drawing, strokes.selected, strokes.layer, tuple(layers), source, float(scale), centre)


def _background(obj: bpy.types.Object, background: Sequence[float] | None) -> tuple[float, ...]:
    """The asked-for background, else the one a result recorded, else white."""
    for value in (background, obj.get(results.BACKGROUND_PROP)):
        if value is not None and len(value) == 4:
            return tuple(float(np.clip(c, 0.0, 1.0)) for c in value)
    return (1.0, 1.0, 1.0, 1.0)


def _drawing_colours(strokes: _Strokes, background: Sequence[float]) -> np.ndarray:
    """(N, 4) straight sRGBA: the stored drawing colour where the material still shows exactly
    that colour (8 bits a channel, as materials are keyed), else the material's colour inverted."""
    shown = np.concatenate([linear_to_srgb(strokes.colour), strokes.alpha[:, None]], axis=1)
    out = engine_colours(strokes.colour, strokes.alpha, background)
    have = ~np.isnan(strokes.stored).any(axis=1)
    if have.any():
        stored = np.clip(strokes.stored[have], 0.0, 1.0)
        colour, alpha = canvas_matched_colours(stored, background)
        expected = materials.colour_keys(np.concatenate([linear_to_srgb(colour), alpha[:, None]], axis=1))
        same = np.array([a == b for a, b in zip(expected, materials.colour_keys(shown[have]), strict=True)])
        rows = np.flatnonzero(have)[same]
        out[rows] = stored[same]
    return out


# -- shared helpers ----------------------------------------------------------------------------
def _frame(frame: int | None) -> int:
    return int(bpy.context.scene.frame_current if frame is None else frame)


def _transform(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def _mean_scale(matrix: np.ndarray) -> float:
    """How much a transform scales lengths on average (radii under a non-uniform scale)."""
    return float(abs(np.linalg.det(matrix[:3, :3])) ** (1.0 / 3.0))


def _controls(is_bezier: np.ndarray, knots, left, right, counts, cyclic, max_segments):
    """Control points of every stroke in order: Bezier strokes exactly, the others through
    Catmull-Rom. Returns ((P, 3) points, (N,) segments)."""
    starts = np.concatenate([[0], np.cumsum(counts)])
    pieces, segments = [], []
    for i, k in enumerate(counts):
        sl = slice(starts[i], starts[i + 1])
        if is_bezier[i]:
            pts, seg = bezier_controls(knots[sl], left[sl], right[sl], [k], cyclic[i : i + 1])
        else:
            pts, seg = catmull_rom_controls(knots[sl], [k], cyclic[i : i + 1], max_segments)
        pieces.append(pts)
        segments.append(seg[0])
    return (np.concatenate(pieces) if pieces else np.zeros((0, 3))), np.array(segments, dtype=np.int64)


def _material_rgba(obj: bpy.types.Object, indices: Sequence[int], read) -> np.ndarray:
    """(N, 4) linear RGBA that ``read`` finds in the material of each slot index (empty: black)."""
    slots = obj.material_slots
    table = {}
    for index in {int(i) for i in indices}:
        mat = slots[index].material if 0 <= index < len(slots) else None
        table[index] = read(mat) if mat is not None else NO_MATERIAL
    return np.array([table[int(i)] for i in indices], dtype=np.float64).reshape(-1, 4)


def _concat(parts: list[_Strokes]) -> _Strokes:
    if not parts:
        return _Strokes(np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 3)), np.zeros(0),
                        np.zeros((0, 4)), np.zeros(0, bool), np.zeros(0, np.int64))
    return _Strokes(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Strokes.__dataclass_fields__))


# -- Grease Pencil v3 --------------------------------------------------------------------------
def _attribute(attrs, name: str, count: int, width: int, default, dtype=np.float32) -> np.ndarray:
    """A whole attribute as a (count, width) array, or ``default`` everywhere when it is missing."""
    attr = attrs.get(name)
    if attr is None:
        return np.broadcast_to(np.asarray(default, dtype=np.float64), (count, width)).copy()
    prop = {"FLOAT_VECTOR": "vector", "FLOAT_COLOR": "color", "BYTE_COLOR": "color"}.get(attr.data_type, "value")
    buf = np.empty(count * width, dtype=bool if attr.data_type == 'BOOLEAN' else dtype)
    attr.data.foreach_get(prop, buf)
    return buf.reshape(count, width).astype(np.float64)


def _gp_selection(attrs, counts: np.ndarray) -> np.ndarray:
    """Selected strokes: a stroke is selected when it or any of its points is (Blender's rule;
    no selection attribute means everything is selected)."""
    attr = attrs.get(".selection")
    if attr is None:
        return np.ones(len(counts), bool)
    size = len(counts) if attr.domain == 'CURVE' else int(counts.sum())
    values = _attribute(attrs, ".selection", size, 1, 1.0)[:, 0] > 0
    if attr.domain == 'CURVE':
        return values
    starts = np.concatenate([[0], np.cumsum(counts)])[:-1]
    return np.array([values[s : s + c].any() for s, c in zip(starts, counts, strict=True)], dtype=bool)


def _layer_state(layer) -> LayerInfo:
    """A layer's effective lock and visibility: its own, or those of any group above it."""
    locked, hidden, node = layer.lock, layer.hide, layer.parent_group
    while node is not None:
        locked, hidden, node = locked or node.lock, hidden or node.hide, node.parent_group
    return LayerInfo(layer.name, bool(locked), bool(hidden))


def _gp_material(mat: bpy.types.Material) -> tuple[float, ...]:
    style = mat.grease_pencil
    return tuple(style.color) if style is not None else tuple(mat.diffuse_color)


def _read_grease_pencil(obj: bpy.types.Object, frame: int, max_segments: int | None
                        ) -> tuple[_Strokes, list[LayerInfo]]:
    """Every layer's drawing shown at ``frame``, bottom layer first (the order they are drawn in)."""
    parts, layers = [], []
    for index, layer in enumerate(obj.data.layers):
        layers.append(_layer_state(layer))
        keyed = layer.get_frame_at(frame)
        if keyed is not None and keyed.drawing is not None and len(keyed.drawing.strokes):
            parts.append(_read_gp_drawing(obj, keyed.drawing, layer, index, max_segments))
    return _concat(parts), layers


def _read_gp_drawing(obj, drawing, layer, layer_index: int, max_segments: int | None) -> _Strokes:
    """One layer's strokes: positions (and Bezier handles) through the layer's transform."""
    attrs = drawing.attributes
    n = len(drawing.strokes)
    offsets = np.empty(n + 1, np.int32)
    drawing.curve_offsets.foreach_get("value", offsets)
    counts = np.diff(offsets).astype(np.int64)
    npts = int(offsets[-1])
    m = np.array(layer.matrix_local)
    pos = _transform(_attribute(attrs, "position", npts, 3, 0.0), m)
    left = _transform(_attribute(attrs, "handle_left", npts, 3, 0.0), m) if attrs.get("handle_left") else pos
    right = _transform(_attribute(attrs, "handle_right", npts, 3, 0.0), m) if attrs.get("handle_right") else pos
    kinds = _attribute(attrs, "curve_type", n, 1, 0, np.int8)[:, 0]
    cyclic = _attribute(attrs, "cyclic", n, 1, 0.0)[:, 0] > 0
    points, segments = _controls(kinds == _BEZIER, pos, left, right, counts, cyclic, max_segments)
    per_point = np.repeat(np.arange(n), counts)
    radius = _attribute(attrs, "radius", npts, 1, GP_DEFAULT_RADIUS)[:, 0] * _mean_scale(m) + layer.radius_offset
    slots = _attribute(attrs, "material_index", n, 1, 0, np.int32)[:, 0].astype(int)
    base = _material_rgba(obj, slots, _gp_material)
    vertex = _attribute(attrs, "vertex_color", npts, 4, 0.0)  # mixed over the material by its alpha
    mixed = base[per_point, :3] * (1 - vertex[:, 3:]) + vertex[:, :3] * vertex[:, 3:]
    opacity = _attribute(attrs, "opacity", npts, 1, 1.0)[:, 0]
    return _Strokes(
        points=points, segments=segments, radius=_per_stroke_mean(radius, per_point, n),
        colour=np.stack([_per_stroke_mean(mixed[:, c], per_point, n) for c in range(3)], axis=1),
        alpha=np.clip(base[:, 3] * _per_stroke_mean(opacity, per_point, n) * layer.opacity, 0.0, 1.0),
        stored=_attribute(attrs, grease_pencil.SRGBA_ATTRIBUTE, n, 4, np.nan),
        selected=_gp_selection(attrs, counts), layer=np.full(n, layer_index, np.int64),
    )


# -- Grease Pencil v2 (Blender 4.2) ------------------------------------------------------------
def _read_grease_pencil_v2(obj: bpy.types.Object, frame: int, max_segments: int | None
                           ) -> tuple[_Strokes, list[LayerInfo]]:
    """v2: every layer's frame held at ``frame`` (the last keyed at or before it), bottom layer first."""
    parts, layers = [], []
    for index, layer in enumerate(obj.data.layers):
        layers.append(LayerInfo(layer.info, bool(layer.lock), bool(layer.hide)))
        held = [f for f in layer.frames if f.frame_number <= frame]
        keyed = max(held, key=lambda f: f.frame_number) if held else None
        if keyed is not None and any(len(st.points) for st in keyed.strokes):
            parts.append(_read_gp_frame_v2(obj, keyed, layer, index, max_segments))
    return _concat(parts), layers


def _v2_points(stroke, name: str, width: int) -> np.ndarray:
    buf = np.empty(len(stroke.points) * width, np.float32)
    stroke.points.foreach_get(name, buf)
    return buf.reshape(-1, width).astype(np.float64)


def _read_gp_frame_v2(obj, frame, layer, layer_index: int, max_segments: int | None) -> _Strokes:
    """One v2 layer's strokes. The add-on's own results (they carry a run id) were written as cubics
    sampled at ``V2_SAMPLES_PER_SEGMENT`` points a segment and are fitted back exactly."""
    strokes = [st for st in frame.strokes if len(st.points)]
    n = len(strokes)
    counts = np.array([len(st.points) for st in strokes], np.int64)
    m = np.array(layer.matrix_layer)
    pos = _transform(np.concatenate([_v2_points(st, "co", 3) for st in strokes]), m)
    pressure = np.concatenate([_v2_points(st, "pressure", 1)[:, 0] for st in strokes])
    strength = np.concatenate([_v2_points(st, "strength", 1)[:, 0] for st in strokes])
    vertex = np.concatenate([_v2_points(st, "vertex_color", 4) for st in strokes])
    cyclic = np.array([st.use_cyclic for st in strokes], bool)
    samples = grease_pencil.V2_SAMPLES_PER_SEGMENT
    ours = obj.get(results.PROP_PREFIX + "run_id") is not None
    if ours and not cyclic.any() and all(samples_fit(int(c), samples) for c in counts):
        points, segments = sampled_controls(pos, counts, samples)
    else:
        points, segments = catmull_rom_controls(pos, counts, cyclic, max_segments)
    per_point = np.repeat(np.arange(n), counts)
    thickness = np.array([st.line_width + layer.line_change for st in strokes], np.float64)
    radius = thickness[per_point] * pressure * grease_pencil.V2_RADIUS_PER_THICKNESS * _mean_scale(m)
    base = _material_rgba(obj, [st.material_index for st in strokes], _gp_material)
    mixed = base[per_point, :3] * (1 - vertex[:, 3:]) + vertex[:, :3] * vertex[:, 3:]
    return _Strokes(
        points=points, segments=segments, radius=_per_stroke_mean(radius, per_point, n),
        colour=np.stack([_per_stroke_mean(mixed[:, c], per_point, n) for c in range(3)], axis=1),
        alpha=np.clip(base[:, 3] * _per_stroke_mean(strength, per_point, n) * layer.opacity, 0.0, 1.0),
        stored=grease_pencil.v2_srgba(obj.data, layer, frame.frame_number, n),
        selected=np.array([st.select for st in strokes], bool), layer=np.full(n, layer_index, np.int64),
    )


def _per_stroke_mean(values: np.ndarray, per_point: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(per_point, minlength=n)
    return np.bincount(per_point, values, minlength=n) / np.maximum(counts, 1)


# -- curves ------------------------------------------------------------------------------------
def _curve_material(mat: bpy.types.Material) -> tuple[float, ...]:
    """Base colour and alpha: a Principled BSDF's when the material has one, else the viewport
    colour (the add-on's flat materials keep their colour there)."""
    tree = mat.node_tree if getattr(mat, "use_nodes", True) else None
    for node in (tree.nodes if tree is not None else ()):
        if node.type == 'BSDF_PRINCIPLED':
            return (*node.inputs["Base Color"].default_value[:3], node.inputs["Alpha"].default_value)
    return tuple(mat.diffuse_color)


def _read_curve(obj: bpy.types.Object, frame: int | None, max_segments: int | None) -> _Strokes:
    """Every spline as it is, or with its keyed channels at ``frame`` (evaluated from the F-curves,
    so that the scene and any unkeyed edit stay as they are)."""
    cu = obj.data
    keyed = _keyed_channels(cu, frame) if frame is not None else {}
    knots, left, right, radius, counts, kinds, cyclic, selected, slots = [], [], [], [], [], [], [], [], []
    for i, sp in enumerate(cu.splines):
        arrays, sel = _spline_arrays(sp)
        for point, prop, axis, value in keyed.get(i, ()):
            if prop in arrays and point < len(arrays[prop]) and axis < arrays[prop].shape[1]:
                arrays[prop][point, axis] = value
        knots.append(arrays["co"])
        left.append(arrays.get("handle_left", arrays["co"]))
        right.append(arrays.get("handle_right", arrays["co"]))
        radius.append(float(arrays["radius"].mean()) if len(sel) else 0.0)
        counts.append(len(sel))
        kinds.append(sp.type == 'BEZIER')
        cyclic.append(sp.use_cyclic_u)
        selected.append(bool(sel.any()))
        slots.append(sp.material_index)
    n = len(counts)
    cat = (lambda a: np.concatenate(a)) if n else (lambda a: np.zeros((0, 3)))
    points, segments = _controls(np.array(kinds, bool), cat(knots), cat(left), cat(right),
                                 np.array(counts, np.int64), np.array(cyclic, bool), max_segments)
    rgba = _material_rgba(obj, slots, _curve_material)
    thick = cu.bevel_depth if cu.bevel_depth > 0 and cu.bevel_mode == 'ROUND' else np.nan
    return _Strokes(points, segments, np.array(radius) * thick, rgba[:, :3], rgba[:, 3], _curve_stored(obj, n),
                    np.array(selected, bool), np.zeros(n, np.int64))


def _spline_arrays(sp) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A spline's points as (K, 3) 'co' (+ Bezier 'handle_left', 'handle_right') and (K, 1)
    'radius' arrays, and which of its control points are selected."""
    bezier = sp.type == 'BEZIER'
    pts = sp.bezier_points if bezier else sp.points
    k = len(pts)
    co = np.empty(k * (3 if bezier else 4), np.float32)  # poly and NURBS points are (x, y, z, w)
    pts.foreach_get("co", co)
    arrays = {"co": co.reshape(k, -1)[:, :3].astype(np.float64)}
    for name in ("handle_left", "handle_right") if bezier else ():
        buf = np.empty(k * 3, np.float32)
        pts.foreach_get(name, buf)
        arrays[name] = buf.reshape(k, 3).astype(np.float64)
    r = np.empty(k, np.float32)
    pts.foreach_get("radius", r)
    arrays["radius"] = r.reshape(k, 1).astype(np.float64)
    sel = np.empty(k, bool)
    pts.foreach_get("select_control_point" if bezier else "select", sel)
    return arrays, sel


_CHANNEL = re.compile(r"splines\[(\d+)\]\.(?:bezier_points|points)\[(\d+)\]\.(co|handle_left|handle_right|radius)$")


def _keyed_channels(cu: bpy.types.Curve, frame: int) -> dict[int, list[tuple[int, str, int, float]]]:
    """Spline index -> (point, property, axis, value at ``frame``) of each keyed point channel."""
    out: dict[int, list[tuple[int, str, int, float]]] = {}
    for fc in _fcurves(cu):
        match = _CHANNEL.match(fc.data_path)
        if match:
            out.setdefault(int(match[1]), []).append((int(match[2]), match[3], fc.array_index, fc.evaluate(frame)))
    return out


def _fcurves(id_data: bpy.types.ID) -> list:
    """The F-curves animating ``id_data``, found without creating anything (legacy or slotted)."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return []
    if not animation.has_slots():
        return list(anim.action.fcurves)
    if anim.action_slot is None:
        return []
    found = []
    for layer in anim.action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(anim.action_slot)
            if bag is not None:
                found.extend(bag.fcurves)
    return found


def _curve_stored(obj: bpy.types.Object, n: int) -> np.ndarray:
    """The drawing colours the add-on recorded, if they still match the splines in number."""
    values = obj.get(curves.SRGBA_PROPERTY)
    try:
        stored = np.asarray(values, dtype=np.float64).reshape(-1, 4)
    except (TypeError, ValueError):
        stored = None
    return stored if stored is not None and len(stored) == n else np.full((n, 4), np.nan)
