"""Drawing -> Grease Pencil, behind one function for both Grease Pencil APIs.

Blender 4.3+ has Grease Pencil v3 (``GREASEPENCIL`` objects; strokes are curves written as whole
attribute arrays, Bezier with handles, so the engine's control points land exactly). Blender 4.2
has v2 (``GPENCIL`` objects; strokes are point lists, so each cubic path is sampled into a
polyline). Everything version-specific lives here; callers use ``new_data``, ``object_type``
and ``write_frame``.
"""

from __future__ import annotations

import bpy
import numpy as np

from .placement import MappedStrokes, knot_handles, sample_polylines

LAYER_NAME = "Drawing"
V2_SAMPLES_PER_SEGMENT = 8
# v2 stroke thickness in world units is line_width * pressure / 1000 (pixel_factor 1): Blender's
# own v2 -> v3 conversion uses radius = line_width * pressure / 2000.
V2_RADIUS_PER_THICKNESS = 1.0 / 2000.0
V2_MAX_LINE_WIDTH = 1000

_CURVE_TYPE_BEZIER = 2  # v3 'curve_type' attribute value


def is_v3() -> bool:
    """Grease Pencil v3 (Blender 4.3 and later)."""
    return bpy.app.version >= (4, 3, 0)


def object_type() -> str:
    """``Object.type`` of a Grease Pencil object in this Blender."""
    return 'GREASEPENCIL' if is_v3() else 'GPENCIL'


def datablocks() -> bpy.types.bpy_prop_collection:
    """Where Grease Pencil data lives: 4.3-4.5 keep v2 under ``grease_pencils`` and v3 beside it."""
    if is_v3() and bpy.app.version < (5, 0, 0):
        return bpy.data.grease_pencils_v3
    return bpy.data.grease_pencils


def new_data(name: str, material: bpy.types.Material) -> bpy.types.ID:
    """A Grease Pencil datablock with one unlit layer, 2D stroke order and ``material``."""
    gp = datablocks().new(name)
    gp.stroke_depth_order = '2D'  # strokes layer in drawing order, as on the engine's canvas
    layer = gp.layers.new(LAYER_NAME, set_active=True) if not is_v3() else gp.layers.new(LAYER_NAME)
    layer.use_lights = False  # lights would darken the drawing's colours
    gp.materials.append(material)
    return gp


def layer_of(gp: bpy.types.ID) -> bpy.types.bpy_struct:
    layer = gp.layers.get(LAYER_NAME) if hasattr(gp.layers, "get") else None
    return layer if layer is not None else gp.layers[0]


def frame_numbers(gp: bpy.types.ID) -> list[int]:
    """Keyed frame numbers of the drawing layer, ascending."""
    return sorted(int(f.frame_number) for f in layer_of(gp).frames)


def write_frame(gp: bpy.types.ID, frame_number: int, strokes: MappedStrokes) -> None:
    """Put ``strokes`` on the drawing layer at ``frame_number``, replacing what was there."""
    layer = layer_of(gp)
    _remove_frame(layer, frame_number)
    if is_v3():
        _write_v3(layer.frames.new(frame_number).drawing, strokes)
    else:
        _write_v2(layer.frames.new(frame_number), strokes)


def remove_frames_after(gp: bpy.types.ID, frame_number: int) -> None:
    """Drop keyed frames later than ``frame_number`` (left over from a longer earlier run)."""
    layer = layer_of(gp)
    for n in [f for f in frame_numbers(gp) if f > frame_number]:
        _remove_frame(layer, n)


def _remove_frame(layer, frame_number: int) -> None:
    if is_v3():
        if any(f.frame_number == frame_number for f in layer.frames):
            layer.frames.remove(frame_number)
        return
    for f in layer.frames:
        if f.frame_number == frame_number:
            layer.frames.remove(f)
            return


def _set(attrs, name: str, kind: str, domain: str, prop: str, values: np.ndarray) -> None:
    attr = attrs.get(name) or attrs.new(name, kind, domain)
    attr.data.foreach_set(prop, np.ascontiguousarray(values, dtype=np.float32 if kind != 'INT' else np.int32).ravel())


def _write_v3(drawing, strokes: MappedStrokes) -> None:
    """Whole-array writes: one Bezier curve per stroke, S+1 knots with the engine's handles."""
    n = len(strokes)
    if n == 0:
        return
    knots_per = strokes.segments + 1
    drawing.add_strokes([int(k) for k in knots_per])
    drawing.set_types(type='BEZIER', indices=list(range(n)))
    knots, left, right = knot_handles(strokes.points, strokes.segments)
    per_point = np.repeat(np.arange(n), knots_per)
    colour = np.concatenate([strokes.colour, np.ones((n, 1))], axis=1)  # alpha 1 = use vertex colour fully
    attrs = drawing.attributes
    _set(attrs, "position", 'FLOAT_VECTOR', 'POINT', "vector", knots)
    _set(attrs, "handle_left", 'FLOAT_VECTOR', 'POINT', "vector", left)
    _set(attrs, "handle_right", 'FLOAT_VECTOR', 'POINT', "vector", right)
    _set(attrs, "radius", 'FLOAT', 'POINT', "value", strokes.radius[per_point])
    _set(attrs, "opacity", 'FLOAT', 'POINT', "value", strokes.alpha[per_point])
    _set(attrs, "vertex_color", 'FLOAT_COLOR', 'POINT', "color", colour[per_point])
    _set(attrs, "material_index", 'INT', 'CURVE', "value", np.zeros(n))
    drawing.tag_positions_changed()


def v2_width_and_pressure(radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split world radii into v2's integer ``line_width`` (pixels) and a per-point ``pressure``."""
    thickness = np.asarray(radius, dtype=np.float64) / V2_RADIUS_PER_THICKNESS
    line_width = np.clip(np.ceil(thickness), 1, V2_MAX_LINE_WIDTH).astype(int)
    return line_width, thickness / line_width


def _write_v2(frame, strokes: MappedStrokes) -> None:
    """Sampled polylines: 3D-space strokes with pressure (width), strength (alpha), vertex colour."""
    pts, counts = sample_polylines(strokes.points, strokes.segments, V2_SAMPLES_PER_SEGMENT)
    line_width, pressure = v2_width_and_pressure(strokes.radius)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for i in range(len(strokes)):
        c = int(counts[i])
        st = frame.strokes.new()
        st.display_mode = '3DSPACE'
        st.line_width = int(line_width[i])
        st.material_index = 0
        st.points.add(c)
        p = st.points
        p.foreach_set("co", pts[starts[i] : starts[i + 1]].astype(np.float32).ravel())
        p.foreach_set("pressure", np.full(c, pressure[i], np.float32))
        p.foreach_set("strength", np.full(c, strokes.alpha[i], np.float32))
        p.foreach_set("vertex_color", np.tile(np.append(strokes.colour[i], 1.0), c).astype(np.float32))
