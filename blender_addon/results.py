"""Applying a job's drawings to one Blender object. Main thread only.

``ResultWriter`` receives the Drawings of one run (snapshots, then the final one with ``done``)
and keeps one object up to date through the output chosen once from the spec: Grease Pencil
(``grease_pencil.GreasePencilOutput``: one keyed frame per snapshot) or curves
(``curves.CurvesOutput``: splines rewritten live, every snapshot keyed at the end). The writer
owns what both share: the object, its collection and custom properties, which snapshot goes to
which frame, and the timeline. Whatever happens later (cancel, crash), the object keeps the
last drawing written.

Runs made of stages (``OutputSpec.stages``) differ in where drawings go:
- ``KEYED`` (keyed prompts): drawings land on the frames the engine gives (each prompt's drawing
  on its key frame, the morph between keys on the frames between); the forming of the first
  prompt, which has no frame, is a live preview on the first key's frame.
- ``LADDER`` (an abstraction ladder): snapshots are a live preview; each finished level is kept
  by the output's ``level`` (a Grease Pencil layer, or a curve object of its own).
- ``FRAMES`` (a sketch animation of a picture sequence, the Camera source): each frame's drawing
  lands on its scene frame; snapshots are a live preview on the frame being sketched. Each
  frame's evaluation loss is recorded (``clipdraw_frame_numbers``, ``clipdraw_frame_loss``). After
  a cancel the unfinished frame's preview is dropped (when a frame was finished), so the result
  holds the finished frames only.
"""

from __future__ import annotations

import bisect
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import bpy
import numpy as np
from mathutils import Matrix

from . import animation, curves, grease_pencil, overlay
from .placement import MappedStrokes, Plane, map_strokes

COLLECTION_NAME = "CLIPDraw"
PROP_PREFIX = "clipdraw_"
# where the canvas lies on the result object (read back by readback.py)
CANVAS_SIZE_PROP = PROP_PREFIX + "canvas_size"  # [w, h] pixels of the engine's canvas
PLANE_SIZE_PROP = PROP_PREFIX + "plane_size"  # [w, h] the canvas in object-local units
BACKGROUND_PROP = PROP_PREFIX + "background"  # the canvas background, straight sRGBA


class Output(Protocol):
    """How one kind of object takes a run's drawings (``OutputSpec.output`` picks the kind)."""

    @staticmethod
    def object_type() -> str:
        """``Object.type`` of the objects it makes (what 'Replace Active' can take over)."""

    @staticmethod
    def datablocks() -> bpy.types.bpy_prop_collection:
        """Where its data lives (replaced data is removed from there)."""

    def new_data(self, name: str, strokes: MappedStrokes) -> bpy.types.ID:
        """Fresh drawing data for the result object."""

    def write(self, obj: bpy.types.Object, index: int, frame: int, strokes: MappedStrokes, final: bool) -> int:
        """Show ``strokes`` as snapshot ``index`` (scene ``frame``); returns the index it was kept
        as (0 when the output had to start over)."""

    def close(self, obj: bpy.types.Object | None, frames: list[int]) -> None:
        """The run is over: ``frames`` holds the scene frame of each kept snapshot."""

    def drop(self, obj: bpy.types.Object, keep: int, frames: list[int]) -> None:
        """Forget the snapshots from index ``keep`` on (they were on scene ``frames``)."""


OUTPUT_KINDS: dict[str, type[Output]] = {"GREASE_PENCIL": grease_pencil.GreasePencilOutput, "CURVES": curves.CurvesOutput}
OUTPUTS = tuple(OUTPUT_KINDS)
STAGES = ("NONE", "LADDER", "KEYED", "FRAMES")
ON_FRAMES = ("KEYED", "FRAMES")  # stages whose drawings go on the engine's frames


def make_output(output: str, ladder: tuple[int, ...] = ()) -> Output:
    """The output for a run: one level per rung for a ladder, else one drawing over time."""
    if not ladder:
        return OUTPUT_KINDS[output]()
    return grease_pencil.GreasePencilLevels(ladder) if output == "GREASE_PENCIL" else curves.CurvesLevels()


@dataclass(frozen=True)
class Stage:
    """A finished stage of a run (the wire's ``stage`` event, without its drawing)."""

    index: int
    stages: int
    step: int
    label: str
    frame: int | None = None  # keyed prompts: the prompt's frame
    prompt: str | None = None


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
    stages: str = "NONE"  # 'NONE', 'LADDER' (one level per rung), 'KEYED' (drawings on the engine's frames)
    # or 'FRAMES' (one drawing per picture of a sequence, on its scene frame)
    ladder: tuple[int, ...] = ()  # LADDER: the stroke count of each level
    key_frames: tuple[int, ...] = ()  # KEYED: the frame of each keyed prompt; FRAMES: of each picture; ascending
    parent: str = ""  # an object the result is parented to, ``plane`` being in its space (a camera sketch)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.frames_per_snapshot < 1:
            raise ValueError("frames_per_snapshot must be at least 1")
        if self.stages not in STAGES:
            raise ValueError(f"stages must be one of {STAGES}, got {self.stages!r}")
        if (self.stages == "LADDER") != bool(self.ladder) or (self.stages in ON_FRAMES) != bool(self.key_frames):
            raise ValueError("a ladder needs its stroke counts, keyed prompts and sequences their frames, nothing else")
        if list(self.key_frames) != sorted(set(self.key_frames)):
            raise ValueError(f"key frames must go up, got {list(self.key_frames)}")


def object_type_for(output: str) -> str:
    """``Object.type`` of the objects an output makes (what 'Replace Active' needs)."""
    return OUTPUT_KINDS[output].object_type()


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
        self._output: Output = make_output(spec.output, spec.ladder)
        self._obj: bpy.types.Object | None = None
        self._obj_name = ""
        self._steps: list[int] = []  # engine step of each kept snapshot
        self._frames: list[int] = []  # scene frame of each kept snapshot
        self.levels: list[bpy.types.Object] = []  # a curve ladder's level objects
        self._frame_loss: dict[int, float] = {}  # FRAMES: each finished frame's evaluation loss
        self._drawn: dict[int, bool] = {}  # FRAMES: whether each finished frame's drawing has strokes
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
        return list(self._frames)

    def _frame(self, index: int) -> int:
        return self.spec.start_frame + index * self.spec.frames_per_snapshot

    def _create_object(self, strokes: MappedStrokes) -> bpy.types.Object:
        target = self._object_to_replace() if self.spec.replace else None
        data = self._output.new_data(self.spec.name, strokes)
        if target is not None:
            obj = self._take_over(target, data)
        else:
            obj = bpy.data.objects.new(self.spec.name, data)
            results_collection(self.scene, self.spec.collection).objects.link(obj)
        self._place(obj)
        obj[PROP_PREFIX + "run_id"] = self.run_id
        for key, value in self.spec.properties.items():
            obj[PROP_PREFIX + key] = id_property(value)
        self._obj, self._obj_name = obj, obj.name
        self._place_overlay(obj)
        return obj

    def _place(self, obj: bpy.types.Object) -> None:
        """The plane's matrix: in the world, or in the parent's space (a camera sketch follows its camera)."""
        matrix = Matrix(np.asarray(self.spec.plane.matrix).tolist())
        parent = bpy.data.objects.get(self.spec.parent) if self.spec.parent else None
        if parent is None:
            obj.matrix_world = matrix
            return
        obj.parent = parent
        obj.matrix_parent_inverse = Matrix.Identity(4)
        obj.matrix_basis = matrix

    def _object_to_replace(self) -> bpy.types.Object:
        """The 'Replace Active' target, if it still exists and can take this output."""
        obj = bpy.data.objects.get(self.spec.replace)
        if obj is None:
            raise TargetLost(f"the object to replace, '{self.spec.replace}', no longer exists")
        want = self._output.object_type()
        if obj.type != want:
            raise TargetLost(f"'{obj.name}' is a {obj.type} object, not {want}: it cannot take this drawing")
        return obj

    def _take_over(self, obj: bpy.types.Object, data: bpy.types.ID) -> bpy.types.Object:
        """'Replace Active': the object keeps its place in the scene and takes the new drawing, its
        settings and its name (the old name would name the old prompt); nothing old is left behind."""
        old = obj.data
        obj.data = data
        if old is not None and old.users == 0:
            self._output.datablocks().remove(old)
        for key in [k for k in obj.keys() if k.startswith(PROP_PREFIX)]:
            del obj[key]
        obj.name = self.spec.name
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
    def add(self, drawing, step: int, final: bool = False, frame: int | None = None,
            kept: bool = False) -> bpy.types.Object:
        """Write one drawing: a snapshot, or the final one (exact colours) when ``final``.

        ``frame`` is where the engine put it on the timeline (keyed prompts); ``kept`` keeps it
        there whatever the Animation setting (a keyed prompt's own drawing).
        """
        strokes = map_strokes(drawing, self.spec.plane)
        obj = self._ensure_object(drawing, strokes)
        index, at = self._slot(frame, final, kept)
        written = self._output.write(obj, index, at, strokes, final)
        if written != index and self.spec.stages not in ON_FRAMES:  # the output started over
            at = self._frame(written)
        self._steps[written:], self._frames[written:] = [step], [at]
        if self.spec.follow:
            self.scene.frame_current = at
        obj[PROP_PREFIX + "step"] = int(step)
        obj[PROP_PREFIX + "frames"] = [self._frames[0], self._frames[-1]]
        return obj

    def stage(self, drawing, stage: Stage) -> bpy.types.Object:
        """A finished stage: a keyed prompt's drawing on its frame, or a ladder's level."""
        if self.spec.stages == "KEYED" and stage.frame is not None:
            return self.add(drawing, stage.step, frame=stage.frame, kept=True)
        if self.spec.stages == "FRAMES" and stage.frame is not None:
            obj = self.add(drawing, stage.step, frame=stage.frame, kept=True)
            self._record_frame(obj, stage.frame, drawing)
            self._drawn[int(stage.frame)] = len(drawing) > 0
            return obj
        strokes = map_strokes(drawing, self.spec.plane)
        obj = self._ensure_object(drawing, strokes)
        level = getattr(self._output, "level", None)
        if level is None:  # a stage of a plain run (no engine sends one): nothing more to keep
            return obj
        at = self._frames[-1] if self._frames else self.spec.start_frame
        made = level(obj, stage.index, stage.stages, stage.label, at, strokes)
        if made is not None:
            self._record_level(obj, made, drawing, stage)
        obj[PROP_PREFIX + "level"] = stage.label
        return obj

    def _ensure_object(self, drawing, strokes: MappedStrokes) -> bpy.types.Object:
        obj = self.object or self._create_object(strokes)
        record_canvas(obj, drawing, self.spec.plane)
        return obj

    def _slot(self, frame: int | None, final: bool, kept: bool) -> tuple[int, int]:
        """(index, scene frame) of the next drawing; a drawing replaces those at or after its frame."""
        spec = self.spec
        if spec.stages == "FRAMES":  # a frame's drawing, or the preview of the frame being sketched
            at = frame if frame is not None else self._frames[-1] if self._frames else spec.key_frames[0]
            return bisect.bisect_left(self._frames, at), at
        if spec.stages == "KEYED":
            keys = spec.key_frames
            if final and self._frames:  # the last stage's drawing (or the last good one): where the last went
                at = self._frames[-1]
            elif frame is None:  # the first prompt forming: a preview where its drawing will go
                at = keys[0]
            elif kept or spec.keyframes:
                at = frame
            else:  # Final Result Only: the morph is a preview on the frame of the key it heads for
                at = next((k for k in keys if k >= frame), keys[-1])
            return bisect.bisect_left(self._frames, at), at
        if not spec.keyframes or spec.stages == "LADDER":
            return 0, spec.start_frame
        return len(self._frames), self._frame(len(self._frames))

    def _record_level(self, obj: bpy.types.Object, level: bpy.types.Object, drawing, stage: Stage) -> None:
        """A level object carries the result's record, its own canvas and which level it is."""
        for key in obj.keys():
            if key.startswith(PROP_PREFIX) and key not in level and key != PROP_PREFIX + "run_id":
                level[key] = obj[key]
        record_canvas(level, drawing, self.spec.plane)
        level[PROP_PREFIX + "level"] = stage.label
        level[PROP_PREFIX + "step"] = int(stage.step)
        level[PROP_PREFIX + "strokes"] = len(drawing)
        self.levels.append(level)

    def _record_frame(self, obj: bpy.types.Object, frame: int, drawing) -> None:
        """A finished frame's evaluation loss (NaN for a frame that kept the previous drawing)."""
        loss = (getattr(drawing, "meta", None) or {}).get("image_loss")
        self._frame_loss[int(frame)] = float(loss) if isinstance(loss, (int, float)) else float("nan")
        frames = sorted(self._frame_loss)
        obj[PROP_PREFIX + "frame_numbers"] = frames
        obj[PROP_PREFIX + "frame_loss"] = [self._frame_loss[f] for f in frames]

    def _unfinished_frame(self, drawing) -> bool:
        """FRAMES: the final drawing is a frame that never finished (a cancel mid-frame) while earlier
        ones did: its preview is dropped and the drawing not kept, so only finished frames remain."""
        if self.spec.stages != "FRAMES" or drawing is None or not self._frame_loss:
            return False
        frame = (getattr(drawing, "meta", None) or {}).get("frame")
        if frame in self._frame_loss:
            return False
        last = max(self._frame_loss)
        keep = bisect.bisect_right(self._frames, last)
        obj = self.object
        if obj is not None and keep < len(self._frames):
            self._output.drop(obj, keep, self._frames[keep:])
        self._steps[keep:], self._frames[keep:] = [], []
        return True

    def finish(self, drawing, step: int, cancelled: bool = False) -> bpy.types.Object | None:
        """The final drawing (None: keep the last one), then the run is closed."""
        if self._unfinished_frame(drawing):
            drawing = None
        if drawing is not None:
            frame = (getattr(drawing, "meta", None) or {}).get("frame") if self.spec.stages == "FRAMES" else None
            self.add(drawing, step, final=True, frame=frame if isinstance(frame, int) else None)
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
        self._output.close(obj, self.frames)
        self._hide_lost_blank_frames(obj)
        timeline = self.spec.keyframes or self.spec.stages in ON_FRAMES
        if obj is not None and timeline and self.spec.stages != "LADDER" and len(self._frames):
            animation.show_frames(self.scene, self.frames[0], self.frames[-1])

    def _hide_lost_blank_frames(self, obj: bpy.types.Object | None) -> None:
        """FRAMES: frames before the object came into view have drawings without strokes. Grease Pencil
        keeps them as empty drawings, but a curve object cannot key "no splines" (it starts over at the
        first drawing), and would show that drawing on those frames too: there the object is keyed
        hidden, and shown again from the first frame with strokes."""
        blank = [f for f, drawn in self._drawn.items() if not drawn and f not in self._frames]
        if obj is None or not blank:
            return
        animation.key_visibility(obj, self._drawn)


def record_canvas(obj: bpy.types.Object, drawing, plane: Plane) -> None:
    """Where the canvas lies on the object, so that strokes read back map exactly to the canvas.

    The object's matrix is the plane's, so points are written in local units: the canvas size in
    pixels and in local units give the scale (local units per pixel), and the background undoes
    the canvas-matched colours (``colour.engine_colours``). Results made before these were stored
    are read back like hand-drawn objects (fitted to a canvas, ``readback.py``).
    """
    obj[CANVAS_SIZE_PROP] = [int(drawing.width), int(drawing.height)]
    obj[PLANE_SIZE_PROP] = [float(plane.width), float(plane.height)]
    obj[BACKGROUND_PROP] = [float(c) for c in getattr(drawing, "background", (1.0, 1.0, 1.0, 1.0))]


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
