"""Continue from Active: a drawing to start from, the strokes it keeps, and where it lies. Main thread only.

The engine continues a drawing file (``init``) with some of its strokes locked (``lock``) and new
ones added (``add``), on the drawing's own canvas. Here that drawing comes from the active Grease
Pencil or curve object, read back at the current frame (``readback.read_object``), or from a
file (``bpy.ops.clipdraw.run(init_file=...)``, ``scripts/render.py --init``). The drawing is
written into the job's own folder, like the image inputs, so the engine never touches bpy.

A drawing read from an object is continued where it lies: the result's plane is the source's
canvas on the object (its transform, scale included), so kept strokes land exactly on top of
where they were, whichever placement the panel has. Only what the artist sees is continued:
strokes on hidden Grease Pencil layers (a ladder's other levels) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bpy
import numpy as np

from . import grease_pencil, image_inputs, readback
from .engine_path import import_engine
from .placement import Plane

INIT_FILE = "continue.json"


class ContinueRefused(ValueError):
    """The drawing cannot be continued; the message says what to change."""


@dataclass(frozen=True)
class Continuation:
    """What a continued run starts from, as plain values (read before the job starts)."""

    drawing: object  # synth_core.drawing.Drawing
    lock: tuple[int, ...]  # indices of the strokes that never change
    plane: Plane | None  # where the drawing lies (None: a file, placed like a new drawing)
    source: str  # what it came from, as recorded on the result
    path: str = ""  # the file the engine reads

    @property
    def canvas(self) -> list[int]:
        return [int(self.drawing.width), int(self.drawing.height)]

    def request_fields(self) -> dict:
        """The request's continuation keys (``request_from``'s ``init``)."""
        return {"init": self.path, "lock": list(self.lock), "canvas": self.canvas}


def from_active(context: bpy.types.Context, keep: str, canvas: Sequence[int]) -> Continuation:
    """The active object's drawing at the current frame; ``keep`` ('NONE', 'SELECTED', 'LOCKED')
    picks the locked strokes; ``canvas`` is for hand-drawn strokes (a result has its own)."""
    obj = context.active_object
    if obj is None:
        raise ContinueRefused("'Continue from Active' needs an active Grease Pencil or curve object: select the "
                              "drawing to continue")
    if obj.type not in (grease_pencil.object_type(), 'CURVE'):
        raise ContinueRefused(f"'Continue from Active' takes a Grease Pencil or curve object, but the active "
                              f"object '{obj.name}' is a {obj.type}")
    leave_edit_mode(context, obj)
    frame = context.scene.frame_current
    try:
        back = readback.read_object(obj, frame=frame, canvas=tuple(canvas))
    except ValueError as e:  # strokes that do not make a drawing
        raise ContinueRefused(f"cannot continue '{obj.name}': {e}") from None
    drawing, shown = visible_strokes(back)
    if len(drawing) == 0:
        raise ContinueRefused(f"the active object '{obj.name}' has no visible strokes at frame {frame}: draw some, "
                              "show their layer, or go to a frame that has them")
    lock = {"NONE": np.zeros(0, np.int64), "SELECTED": back.selected_strokes(),
            "LOCKED": back.locked_strokes()}[keep]
    lock = np.searchsorted(shown, lock[np.isin(lock, shown)])  # indices among the strokes continued
    return Continuation(drawing, tuple(int(i) for i in lock), source_plane(obj, back),
                        f"bpy.data.objects[{obj.name!r}] at frame {frame}")


def visible_strokes(back: readback.ReadBack) -> tuple[object, np.ndarray]:
    """The read drawing without the strokes of hidden layers, and the indices of those kept."""
    hidden = np.array([info.hidden for info in back.layers], dtype=bool)
    shown = np.flatnonzero(~hidden[back.layer]) if len(back.layer) else np.zeros(0, np.int64)
    d = back.drawing
    if len(shown) == len(d):
        return d, shown
    o = d.offsets
    points = np.concatenate([d.points[o[i] : o[i + 1]] for i in shown]) if len(shown) else np.zeros((0, 2))
    kept = type(d)(d.width, d.height, points, d.segments[shown], d.widths[shown], d.rgba[shown], d.background, d.meta)
    return kept, shown


def from_file(path: str, lock: Sequence[int]) -> Continuation:
    """A drawing file (.json or .svg) continued with the strokes ``lock`` names kept."""
    formats = import_engine("formats")
    try:
        drawing = formats.load(path)
    except (OSError, ValueError) as e:  # DrawingFormatError is a ValueError
        raise ContinueRefused(f"cannot continue from {path}: {e}") from None
    return Continuation(drawing, tuple(sorted({int(i) for i in lock})), None, str(path))


def check(cont: Continuation, add: int, ladder: Sequence[int]) -> None:
    """Refuse what the engine would refuse only once the job has started, in the panel's words."""
    n = len(cont.drawing)
    if cont.lock and max(cont.lock) >= n:
        raise ContinueRefused(f"stroke {max(cont.lock)} cannot be kept: the drawing has {n} strokes (0 to {n - 1})")
    if len(cont.lock) == n and add == 0:
        raise ContinueRefused(f"all {n} strokes are kept and Add Strokes is 0: there is nothing to draw; keep "
                              "fewer strokes or add some")
    if ladder and ladder[0] != n + add:
        raise ContinueRefused(f"the Ladder starts at {ladder[0]} strokes but the drawing has {n} and Add Strokes is "
                              f"{add} ({n + add}): start the Ladder at {n + add}")
    if ladder and len(cont.lock) > ladder[-1]:
        raise ContinueRefused(f"{len(cont.lock)} strokes are kept: the Ladder cannot go down to {ladder[-1]}")


def write(cont: Continuation, folder: image_inputs.JobFolder) -> Continuation:
    """The drawing saved in the job's folder (removed with the job), for the engine to read."""
    path = folder.get() / INIT_FILE
    cont.drawing.save(path)
    return Continuation(cont.drawing, cont.lock, cont.plane, cont.source, str(path))


def source_plane(obj: bpy.types.Object, back: readback.ReadBack) -> Plane:
    """The canvas as it lies on ``obj``: its transform moved to the canvas centre, in local units.

    The matrix keeps the object's scale, so a new object with it shows the drawing's strokes
    exactly where the source shows them.
    """
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    matrix[:3, 3] = matrix[:3, :3] @ np.array([back.centre[0], back.centre[1], 0.0]) + matrix[:3, 3]
    d = back.drawing
    return Plane(matrix, float(d.width * back.scale), float(d.height * back.scale))


def leave_edit_mode(context: bpy.types.Context, obj: bpy.types.Object) -> None:
    """Back to Object Mode, so that edits and the selection are in the data the run reads (and a
    Replace Active never swaps data under Edit Mode)."""
    if obj.mode == 'OBJECT':
        return
    try:
        bpy.ops.object.mode_set(mode='OBJECT')
    except RuntimeError:  # no usable context: at least flush what Edit Mode holds
        obj.update_from_editmode()
