"""Drawing -> Curve object: one Bezier spline per stroke with the engine's exact control points.

Knots and handles come straight from the cubic control points (``bezier.knot_handles``), the
tube radius is the stroke's half width in world units (``bevel_depth`` 1, per-point ``radius``),
and colour and alpha come from one reused material per colour (``materials.curve_material``).
``CurvesOutput`` is how a run writes curves: splines rewritten live, every snapshot keyed at the end;
``CurvesLevels`` is how an abstraction ladder writes them: one curve object per level.
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

    def drop(self, obj: bpy.types.Object, keep: int, frames: list[int]) -> None:
        """Forget the snapshots from ``keep`` on; the splines show the last one kept again."""
        self._snapshots[keep:] = []
        if self._snapshots and same_topology(obj.data, self._snapshots[-1]):
            write_points(obj.data, self._snapshots[-1])
            self._created |= assign_materials(obj.data, self._snapshots[-1], preview=True)
            obj[SRGBA_PROPERTY] = self._snapshots[-1].srgba.ravel().tolist()
            self._preview = True

    def close(self, obj: bpy.types.Object | None, frames: list[int]) -> None:
        """Exact colours, keyframes at ``frames`` (one per snapshot) and no leftover materials."""
        if obj is not None and self._snapshots:
            if self._preview:
                self._created |= assign_materials(obj.data, self._snapshots[-1])
            if len(self._snapshots) > 1:
                animation.keyframe_curve(obj.data, frames, self._snapshots)
        materials.remove_unused(self._created)


def hide(obj: bpy.types.Object) -> None:
    """Hidden in the viewport (the outliner's eye, so one click shows it) and in renders."""
    obj.hide_render = True
    try:
        obj.hide_set(True)
    except RuntimeError:  # not in the current view layer (a collection excluded from it)
        obj.hide_viewport = True


def levels_collection(obj: bpy.types.Object) -> bpy.types.Collection:
    """A new sub-collection ``<result> levels`` in ``obj``'s first collection."""
    coll = bpy.data.collections.new(f"{obj.name} levels")
    obj.users_collection[0].children.link(coll)
    return coll


class CurvesLevels(CurvesOutput):
    """An abstraction ladder as curves: the result object shows the level being drawn, and at the
    end the last level; each earlier finished level becomes a curve object of its own, hidden, in
    the sub-collection ``<result> levels``.

    Objects rather than one object, because a curve object has no layers; the last level is the
    result object itself (what Replace Active, read-back and renders use).
    """

    def __init__(self) -> None:
        super().__init__()
        self.made: list[bpy.types.Object] = []  # the level objects, in order
        self._collection: bpy.types.Collection | None = None

    def level(self, obj: bpy.types.Object, index: int, stages: int, label: str, frame: int,
              strokes: MappedStrokes) -> bpy.types.Object | None:
        """Level ``index`` is finished: a hidden curve object of its own (None for the last level,
        which the result object shows)."""
        if index >= stages - 1:
            return None
        name = f"{obj.name} {label}"[:63]
        level = bpy.data.objects.new(name, new_data(name, strokes))
        self._created |= assign_materials(level.data, strokes)
        level[SRGBA_PROPERTY] = strokes.srgba.ravel().tolist()
        level.matrix_world = obj.matrix_world.copy()
        self._levels(obj).objects.link(level)
        hide(level)
        self.made.append(level)
        return level

    def _levels(self, obj: bpy.types.Object) -> bpy.types.Collection:
        """This run's levels collection (made again if it was deleted meanwhile)."""
        try:
            if self._collection is not None and self._collection.name in bpy.data.collections:
                return self._collection
        except ReferenceError:
            pass
        self._collection = levels_collection(obj)
        return self._collection
