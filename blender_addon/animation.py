"""Keyframes written as arrays, across Blender's three action APIs.

- 4.2-4.3: ``action.fcurves``;
- 4.4/4.5: layered actions; F-curves must live in the channelbag of a slot assigned to the ID,
  otherwise nothing animates (silently);
- 5.0: ``Action.fcurves`` is gone; only the slot's channelbag has them.
``fcurves_for`` hides that; ``write_fcurve`` fills one F-curve with ``foreach_set`` (creating
F-curves and filling them as arrays is ~20x faster than ``keyframe_insert`` per point).
``show_frames`` fits the timeline to a finished drawing.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np

from .bezier import knot_handles
from .placement import MappedStrokes

INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}  # Keyframe.interpolation enum values
FACTORY_RANGE = (1, 250)  # a new scene's frame range


def has_slots() -> bool:
    """Layered actions with slots (Blender 4.4+)."""
    return bpy.app.version >= (4, 4, 0)


def fcurves_for(id_data: bpy.types.ID, action_name: str):
    """A fresh action assigned to ``id_data``; returns the F-curve collection to fill."""
    anim = id_data.animation_data or id_data.animation_data_create()
    old = anim.action
    action = bpy.data.actions.new(action_name)
    if not has_slots():
        anim.action = action
    else:
        slot = action.slots.new(id_type=id_data.id_type, name=id_data.name)
        anim.action = action
        anim.action_slot = slot
    if old is not None and old.users == 0:
        bpy.data.actions.remove(old)
    return channelbag_fcurves(action, anim)


def channelbag_fcurves(action: bpy.types.Action, anim: bpy.types.AnimData):
    """The F-curves that animate ``anim``'s ID: the legacy list or the slot's channelbag."""
    if not has_slots():
        return action.fcurves
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
    return strip.channelbag(anim.action_slot, ensure=True).fcurves


def find_fcurve(id_data: bpy.types.ID, data_path: str, index: int = 0):
    """The F-curve animating ``data_path[index]`` of ``id_data``, or None (for read-back)."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return None
    return channelbag_fcurves(anim.action, anim).find(data_path, index=index)


def write_fcurve(fcurves, data_path: str, index: int, frames: np.ndarray, values: np.ndarray,
                 interpolation: str = "LINEAR") -> None:
    """One F-curve with a key at each of ``frames``, written with ``foreach_set``."""
    fc = fcurves.new(data_path, index=index)
    k = len(frames)
    fc.keyframe_points.add(k)
    co = np.empty(2 * k, np.float32)
    co[0::2], co[1::2] = frames, values
    fc.keyframe_points.foreach_set("co", co)
    fc.keyframe_points.foreach_set("interpolation", np.full(k, INTERPOLATION[interpolation], np.int32))
    fc.update()


def keyframe_curve(cu: bpy.types.Curve, frames: Sequence[int], snapshots: Sequence[MappedStrokes],
                   interpolation: str = "LINEAR") -> int:
    """Animate a curve's knots, handles (x, y) and radii through ``snapshots`` at ``frames``.

    The snapshots must share the curve's topology. z stays 0 on the drawing plane, so only x
    and y are keyed. Returns the number of F-curves written.
    """
    if len(frames) != len(snapshots) or not snapshots:
        raise ValueError(f"{len(frames)} frames for {len(snapshots)} snapshots")
    fr = np.asarray(frames, np.float32)
    stacked = [knot_handles(s.points, s.segments) for s in snapshots]
    series = {name: np.stack([st[i] for st in stacked]) for i, name in enumerate(("co", "handle_left", "handle_right"))}
    first = snapshots[0]
    series["radius"] = np.stack([np.repeat(s.radius, s.segments + 1) for s in snapshots])[:, :, None]
    fcurves = fcurves_for(cu, f"{cu.name} drawing")
    written = 0
    knot = 0
    for i, k in enumerate(first.segments + 1):
        for j in range(int(k)):
            base = f"splines[{i}].bezier_points[{j}]."
            for prop, values in series.items():
                for axis in ((0,) if prop == "radius" else (0, 1)):
                    write_fcurve(fcurves, base + prop, axis, fr, values[:, knot, axis], interpolation)
                    written += 1
            knot += 1
    return written


def show_frames(scene: bpy.types.Scene, first: int, last: int) -> None:
    """Make the timeline show a drawing's frames without taking the user's frame range away.

    A scene still on the factory range (1-250) has no range of its own yet: it becomes the
    drawing's frames, so playback and Render Animation show the drawing forming. Otherwise the
    scene's range stays (growing only to fit the drawing, so rendering it never cuts it off) and
    the preview range is set to the drawing's frames instead: playback loops over the drawing,
    and Alt+P in the timeline gives the user's range back.
    """
    first, last = int(first), max(int(first), int(last))
    if (scene.frame_start, scene.frame_end) == FACTORY_RANGE:
        scene.frame_start, scene.frame_end = first, last  # frame_start first: it may push frame_end up
        return
    scene.frame_end = max(scene.frame_end, last)
    scene.use_preview_range = True
    scene.frame_preview_start, scene.frame_preview_end = first, last


def key_visibility(obj: bpy.types.Object, shown: dict[int, bool]) -> None:
    """Key the object shown or hidden (viewport and render) on each frame of ``shown``: booleans
    hold until the next key, so the object appears and disappears exactly on those frames."""
    for frame, visible in sorted(shown.items()):
        obj.hide_viewport = obj.hide_render = not visible
        obj.keyframe_insert("hide_viewport", frame=frame)
        obj.keyframe_insert("hide_render", frame=frame)
