"""Drawing -> Curve object: one Bezier spline per stroke with the engine's exact control points.

Knots and handles come straight from the cubic control points (``bezier.knot_handles``), the
tube radius is the stroke's half width in world units (``bevel_depth`` 1, per-point ``radius``),
and colour and alpha come from one reused material per colour (``materials.curve_material``).
``CurvesOutput`` is how a run writes curves: splines rewritten live, every snapshot keyed at the end.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import animation, materials
from .bezier import knot_handles
from .placement import MappedStrokes

BEVEL_RESOLUTION = 2
RESOLUTION_U = 12
# the drawing's own straight sRGBA per spline (N*4 values): materials hold canvas-matched colours,
# from which a translucent stroke's own colour cannot be recovered (readback.py)
SRGBA_PROPERTY = "clipdraw_srgba"


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
    call had to create, so that a run can remove the intermediate colours that nothing uses once
    it is over (pre-existing ones are never touched).
    """
    keys = materials.colour_keys(strokes.display_srgba, preview)
    slots, created = materials.assign_slots(cu, keys, materials.curve_material, materials.CURVE_MATERIAL_PREFIX)
    cu.splines.foreach_set("material_index", slots.astype(np.int32))
    return created


class CurvesOutput:
    """A run's drawings as one curve object: the splines show the newest drawing while the run
    goes on; at the end they get exact colours and are keyed through every snapshot."""

    def __init__(self) -> None:
        self._snapshots: list[MappedStrokes] = []
        self._created: set[str] = set()  # materials this run made (intermediate ones are removed)
        self._preview = False  # the splines show the coarse preview palette right now

    @staticmethod
    def object_type() -> str:
        return 'CURVE'

    @staticmethod
    def datablocks() -> bpy.types.bpy_prop_collection:
        return bpy.data.curves

    def new_data(self, name: str, strokes: MappedStrokes) -> bpy.types.Curve:
        return new_data(name, strokes)

    def write(self, obj: bpy.types.Object, index: int, frame: int, strokes: MappedStrokes, final: bool) -> int:
        """Show ``strokes`` as snapshot ``index``; returns the index kept: 0 when a drawing of
        another shape (never for the engine's methods) made the curve start over."""
        if same_topology(obj.data, strokes):
            write_points(obj.data, strokes)
        else:
            old = obj.data
            obj.data = new_data(old.name, strokes)
            if old.users == 0:
                bpy.data.curves.remove(old)
            self._snapshots, index = [], 0
        self._created |= assign_materials(obj.data, strokes, preview=not final)
        obj[SRGBA_PROPERTY] = strokes.srgba.ravel().tolist()
        self._preview = not final
        self._snapshots[index:] = [strokes]
        return index

    def close(self, obj: bpy.types.Object | None, frames: list[int]) -> None:
        """Exact colours, keyframes at ``frames`` (one per snapshot) and no leftover materials."""
        if obj is not None and self._snapshots:
            if self._preview:
                self._created |= assign_materials(obj.data, self._snapshots[-1])
            if len(self._snapshots) > 1:
                animation.keyframe_curve(obj.data, frames, self._snapshots)
        materials.remove_unused(self._created)
