"""Drawing -> Curve object: one Bezier spline per stroke with the engine's exact control points.

Knots and handles come straight from the cubic control points (``placement.knot_handles``), the
tube radius is the stroke's half width in world units (``bevel_depth`` 1, per-point ``radius``),
and colour and alpha come from one reused material per colour (``materials.curve_material``).
"""

from __future__ import annotations

import bpy
import numpy as np

from . import materials
from .placement import MappedStrokes, knot_handles

BEVEL_RESOLUTION = 2
RESOLUTION_U = 12


def new_data(name: str, strokes: MappedStrokes) -> bpy.types.Curve:
    """A 3D curve datablock with one FREE-handle Bezier spline of S+1 points per stroke."""
    cu = bpy.data.curves.new(name, 'CURVE')
    cu.dimensions = '3D'
    cu.bevel_mode = 'ROUND'
    cu.bevel_depth = 1.0  # each point's radius is then the half width in world units
    cu.bevel_resolution = BEVEL_RESOLUTION
    cu.resolution_u = RESOLUTION_U
    cu.use_fill_caps = True
    for k in (strokes.segments + 1):
        sp = cu.splines.new('BEZIER')
        sp.bezier_points.add(int(k) - 1)
        sp.use_smooth = True
        bp = sp.bezier_points
        n = len(bp)
        bp.foreach_set("handle_left_type", np.zeros(n, np.int32))  # 'FREE': handles stay as written
        bp.foreach_set("handle_right_type", np.zeros(n, np.int32))
    write_points(cu, strokes)
    return cu


def same_topology(cu: bpy.types.Curve, strokes: MappedStrokes) -> bool:
    """Whether ``strokes`` fits the splines of ``cu`` (same strokes, same segment counts)."""
    if len(cu.splines) != len(strokes):
        return False
    return all(len(sp.bezier_points) == int(k) for sp, k in zip(cu.splines, strokes.segments + 1, strict=True))


def write_points(cu: bpy.types.Curve, strokes: MappedStrokes) -> None:
    """Overwrite every knot, handle and radius (the live preview while the engine runs)."""
    knots, left, right = knot_handles(strokes.points, strokes.segments)
    radius = np.repeat(strokes.radius, strokes.segments + 1)
    start = 0
    for sp in cu.splines:
        bp = sp.bezier_points
        end = start + len(bp)
        bp.foreach_set("co", knots[start:end].astype(np.float32).ravel())
        bp.foreach_set("handle_left", left[start:end].astype(np.float32).ravel())
        bp.foreach_set("handle_right", right[start:end].astype(np.float32).ravel())
        bp.foreach_set("radius", radius[start:end].astype(np.float32))
        start = end
    cu.update_tag()


def assign_materials(cu: bpy.types.Curve, strokes: MappedStrokes, preview: bool = False) -> set[str]:
    """One material slot per distinct colour; each spline points at its colour's slot.

    ``preview`` uses the coarse live-preview palette. Returns the names of the materials this
    call had to create, so that a run can remove the
    intermediate colours that nothing uses once it is over (pre-existing ones are never touched).
    """
    keys = materials.colour_keys(strokes.display_srgba, preview)
    slots: dict[str, int] = {}
    for key in keys:
        slots.setdefault(key, len(slots))
    created = {materials.CURVE_MATERIAL_PREFIX + k for k in slots} - set(bpy.data.materials.keys())
    cu.materials.clear()
    for key in slots:
        cu.materials.append(materials.curve_material(key))
    for sp, key in zip(cu.splines, keys, strict=True):
        sp.material_index = slots[key]
    return created
