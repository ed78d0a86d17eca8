"""Applying a job's drawings to one Blender object. Main thread only.

``ResultWriter`` receives the Drawings of one run (snapshots, then the final one) and keeps one
object up to date: Grease Pencil gets one keyed frame per snapshot; curves get their splines
rewritten live and, at the end, every snapshot as keyframes. The object lands in the
``CLIPDraw`` collection with the run's settings as custom properties. Whatever happens later
(cancel, crash), the object keeps the last drawing written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from . import animation, curves, grease_pencil, materials, overlay
from .placement import MappedStrokes, Plane, map_strokes

COLLECTION_NAME = "CLIPDraw"
PROP_PREFIX = "clipdraw_"
OUTPUTS = ("GREASE_PENCIL", "CURVES")


class TargetLost(RuntimeError):
    """The result object was deleted (or the object to replace is gone) while the job ran."""


@dataclass(frozen=True)
class OutputSpec:
    """Where and how to build: plain values copied from Blender before the job starts."""

    output: str  # 'GREASE_PENCIL' or 'CURVES'
    plane: Plane
    name: str
    keyframes: bool = True  # every snapshot on the timeline; False: one frame, overwritten
    start_frame: int = 1
    frames_per_snapshot: int = 1
    replace: str | None = None  # name of the object whose drawing is replaced
    follow: bool = False  # move the current frame to the newest snapshot (live view)
    properties: dict[str, Any] = field(default_factory=dict)
    collection: str = COLLECTION_NAME
    overlay: overlay.OverlaySpec | None = None  # the source image under a sketch

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.frames_per_snapshot < 1:
            raise ValueError("frames_per_snapshot must be at least 1")


def object_type_for(output: str) -> str:
    return grease_pencil.object_type() if output == "GREASE_PENCIL" else 'CURVE'


def results_collection(scene: bpy.types.Scene, name: str = COLLECTION_NAME) -> bpy.types.Collection:
    """The named collection for results, created once and linked to ``scene``."""
    coll = bpy.data.collections.get(name)
    if coll is None:
        coll = bpy.data.collections.new(name)
    if scene.collection.children.get(coll.name) is None and coll not in scene.collection.children_recursive:
        scene.collection.children.link(coll)
    return coll


def id_property(value: Any) -> Any:
    """A value Blender can store as a custom property (lists of text become one string)."""
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) and value:
            return list(value)
        return "; ".join(str(v) for v in value)
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value)


class ResultWriter:
    """Keeps one object in step with a run's drawings."""

    def __init__(self, scene: bpy.types.Scene, spec: OutputSpec) -> None:
        self.spec = spec
        self.scene = scene
        self.run_id = uuid.uuid4().hex
        self._obj: bpy.types.Object | None = None
        self._obj_name = ""
        self._steps: list[int] = []  # engine step of each kept snapshot
        self._curve_snaps: list[MappedStrokes] = []
        self._created_materials: set[str] = set()
        self._preview_colours = False  # curves show the coarse preview palette right now
        self.finished = False
        self.notes: list[str] = []  # warnings for the user (the session reports them)

    # -- the object ------------------------------------------------------------------------
    @property
    def object(self) -> bpy.types.Object | None:
        """The result object, None before the first drawing; TargetLost if it was deleted."""
        if self._obj is None:
            return None
        try:  # .name raises ReferenceError once Blender freed the object (delete, undo, new file)
            if self._obj.name in bpy.data.objects:
                return self._obj
        except ReferenceError:
            pass
        again = bpy.data.objects.get(self._obj_name)  # after an undo the same object comes back anew
        if again is not None and again.get(PROP_PREFIX + "run_id") == self.run_id:
            self._obj = again
            return again
        raise TargetLost(f"the result object '{self._obj_name}' was deleted")

    @property
    def frames(self) -> list[int]:
        """Scene frame of each kept snapshot."""
        return [self._frame(i) for i in range(len(self._steps))]

    def _frame(self, index: int) -> int:
        return self.spec.start_frame + index * self.spec.frames_per_snapshot

    def _new_data(self, strokes: MappedStrokes) -> bpy.types.ID:
        if self.spec.output == "GREASE_PENCIL":
            return grease_pencil.new_data(self.spec.name, materials.gp_stroke_material())
        return curves.new_data(self.spec.name, strokes)

    def _create_object(self, strokes: MappedStrokes) -> bpy.types.Object:
        want = object_type_for(self.spec.output)
        if self.spec.replace:
            obj = bpy.data.objects.get(self.spec.replace)
            if obj is None:
                raise TargetLost(f"the object to replace, '{self.spec.replace}', no longer exists")
            if obj.type != want:
                raise TargetLost(f"'{obj.name}' is a {obj.type} object, not {want}: it cannot take this drawing")
            old = obj.data
            obj.data = self._new_data(strokes)
            _remove_if_unused(old)
            for key in [k for k in obj.keys() if k.startswith(PROP_PREFIX)]:
                del obj[key]
        else:
            obj = bpy.data.objects.new(self.spec.name, self._new_data(strokes))
            results_collection(self.scene, self.spec.collection).objects.link(obj)
        obj.matrix_world = Matrix(np.asarray(self.spec.plane.matrix).tolist())
        obj[PROP_PREFIX + "run_id"] = self.run_id
        for key, value in self.spec.properties.items():
            obj[PROP_PREFIX + key] = id_property(value)
        self._obj, self._obj_name = obj, obj.name
        self._place_overlay(obj)
        return obj

    def _place_overlay(self, obj: bpy.types.Object) -> None:
        """Show the source image under the drawing (once, with the first drawing of the run).

        Made with the first drawing rather than at start, so a run the engine refuses (an
        unreadable image) leaves nothing behind; a failure here is a note, not an error.
        """
        if self.spec.overlay is None:
            return
        coll = results_collection(self.scene, self.spec.collection)
        empty, problem = overlay.ensure_overlay(self.scene, self.spec.overlay, coll)
        if empty is None:
            self.notes.append(f"no overlay: {problem}")
            return
        obj[PROP_PREFIX + "overlay"] = empty.name

    # -- drawings ----------------------------------------------------------------------------
    def add(self, drawing, step: int, final: bool = False) -> bpy.types.Object:
        """Write one drawing (a snapshot, or the final one when ``final``)."""
        strokes = map_strokes(drawing, self.spec.plane)
        obj = self.object or self._create_object(strokes)
        if not self.spec.keyframes:
            index = 0
        elif final and self._steps and self._steps[-1] == step:
            index = len(self._steps) - 1  # the final drawing of a step already snapshotted
        else:
            index = len(self._steps)
        if self.spec.output == "GREASE_PENCIL":
            grease_pencil.write_frame(obj.data, self._frame(index), strokes)
        else:
            self._write_curve(obj, strokes, index, preview=not final)
        if index == len(self._steps):
            self._steps.append(step)
        else:
            self._steps[index] = step
        if self.spec.follow:
            self.scene.frame_current = self._frame(index)
        obj[PROP_PREFIX + "step"] = int(step)
        obj[PROP_PREFIX + "frames"] = [self._frame(0), self._frame(len(self._steps) - 1)]
        return obj

    def _write_curve(self, obj: bpy.types.Object, strokes: MappedStrokes, index: int, preview: bool) -> None:
        if not curves.same_topology(obj.data, strokes):  # never for CLIPDraw; restart cleanly if so
            old = obj.data
            obj.data = curves.new_data(self.spec.name, strokes)
            _remove_if_unused(old)
            self._curve_snaps, self._steps = [], []
            index = 0
        else:
            curves.write_points(obj.data, strokes)
        self._created_materials |= curves.assign_materials(obj.data, strokes, preview)
        self._preview_colours = preview
        if index == len(self._curve_snaps):
            self._curve_snaps.append(strokes)
        else:
            self._curve_snaps[index] = strokes

    def finish(self, drawing, step: int, cancelled: bool = False) -> bpy.types.Object | None:
        """The final drawing (None: keep the last one) and the curve keyframes."""
        if drawing is not None:
            self.add(drawing, step, final=True)
        obj = self.object
        self._close(obj)
        if obj is not None:
            obj[PROP_PREFIX + "cancelled"] = bool(cancelled)
            if drawing is not None:
                record_result_meta(obj, getattr(drawing, "meta", None) or {})
        return obj

    def abort(self, message: str) -> bpy.types.Object | None:
        """A failed run: keep the last good drawing (and its animation), note the error on it."""
        try:
            obj = self.object
        except TargetLost:
            obj = None
        self._close(obj)
        if obj is not None:
            obj[PROP_PREFIX + "error"] = message
        return obj

    def _close(self, obj: bpy.types.Object | None) -> None:
        if self.finished:
            return
        self.finished = True
        if obj is not None and self.spec.output == "CURVES" and self._curve_snaps and self._preview_colours:
            self._created_materials |= curves.assign_materials(obj.data, self._curve_snaps[-1])
        if obj is not None and self.spec.output == "CURVES" and self.spec.keyframes and len(self._curve_snaps) > 1:
            animation.keyframe_curve(obj.data, self.frames, self._curve_snaps)
        if obj is not None and self.spec.keyframes and self._steps:
            self.scene.frame_end = max(self.scene.frame_end, self.frames[-1])
        materials.remove_unused(self._created_materials)


def record_result_meta(obj: bpy.types.Object, meta: dict[str, Any]) -> None:
    """What only the final drawing knows: for a sketch, the seed that won and each seed's loss.

    The request's ``seed`` is the first of the batch (``clipdraw_seed``); the engine's ``meta``
    names the winner (seed, seed + 1000, ...), which reproduces the sketch with ``seeds`` 1.
    """
    if "eval_loss" not in meta:  # only CLIPasso picks a best seed
        return
    if isinstance(meta.get("seed"), int):
        obj[PROP_PREFIX + "winning_seed"] = _int_or_text(meta["seed"])
    seeds = meta.get("seeds")
    if isinstance(seeds, list) and seeds and all(isinstance(v, int) and _INT32[0] <= v <= _INT32[1] for v in seeds):
        obj[PROP_PREFIX + "seed_list"] = [int(v) for v in seeds]
    losses = meta.get("eval_loss")
    if isinstance(losses, list) and losses:
        obj[PROP_PREFIX + "eval_loss"] = [float("nan") if v is None else float(v) for v in losses]


_INT32 = (-(2**31), 2**31 - 1)  # integer custom properties are 32-bit


def _int_or_text(value: int) -> int | str:
    return int(value) if _INT32[0] <= value <= _INT32[1] else str(value)


def _remove_if_unused(data: bpy.types.ID | None) -> None:
    """Delete replaced drawing data nothing uses any more (no orphans left behind)."""
    if data is None or data.users > 0:
        return
    for coll in (bpy.data.curves, grease_pencil.datablocks()):
        if coll.get(data.name) == data:
            coll.remove(data)
            return
