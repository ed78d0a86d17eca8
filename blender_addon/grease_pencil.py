"""Drawing -> Grease Pencil, behind one function for both Grease Pencil APIs.

Blender 4.3+ has Grease Pencil v3 (``GREASEPENCIL`` objects; strokes are curves written as whole
attribute arrays, Bezier with handles, so the engine's control points land exactly). Blender 4.2
has v2 (``GPENCIL`` objects; strokes are point lists, so each cubic path is sampled into a
polyline). Everything version-specific lives here; callers use ``new_data``, ``object_type``,
``write_frame`` and ``set_frame_materials`` (on the drawing layer, or on a layer they name).

Colour and alpha come from the stroke's material, one reused material per colour
(``materials.gp_material``), so that editing a material restyles its strokes; points keep full
opacity and no vertex colour. ``GreasePencilOutput`` is how a run writes Grease Pencil: one
keyed frame per snapshot, live colours from the preview palette, exact colours at the end;
``GreasePencilLevels`` is how an abstraction ladder writes it: one layer per level.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np

from . import materials
from .bezier import knot_handles, sample_polylines
from .placement import MappedStrokes

LAYER_NAME = "Drawing"
V2_SAMPLES_PER_SEGMENT = 8
# v2 stroke thickness in world units is line_width * pressure / 1000 (pixel_factor 1): Blender's
# own v2 -> v3 conversion uses radius = line_width * pressure / 2000.
V2_RADIUS_PER_THICKNESS = 1.0 / 2000.0
V2_MAX_LINE_WIDTH = 1000

_CURVE_TYPE_BEZIER = 2  # v3 'curve_type' attribute value
# v3: the drawing's own straight sRGBA per stroke (CURVE domain): materials hold canvas-matched
# colours, from which a translucent stroke's own colour cannot be recovered (readback.py)
SRGBA_ATTRIBUTE = "clipdraw_srgba"


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


def new_data(name: str, layer_name: str = LAYER_NAME) -> bpy.types.ID:
    """A Grease Pencil datablock with one unlit layer and 2D stroke order (no materials yet)."""
    gp = datablocks().new(name)
    gp.stroke_depth_order = '2D'  # strokes layer in drawing order, as on the engine's canvas
    new_layer(gp, layer_name)
    return gp


def new_layer(gp: bpy.types.ID, name: str) -> bpy.types.bpy_struct:
    """An unlit layer on top of the others (lights would darken the drawing's colours)."""
    layer = gp.layers.new(name, set_active=True) if not is_v3() else gp.layers.new(name)
    layer.use_lights = False
    return layer


def layer_name(layer) -> str:
    """A layer's name (v2 calls it ``info``)."""
    return layer.name if is_v3() else layer.info


def rename_layer(layer, name: str) -> None:
    if is_v3():
        layer.name = name
    else:
        layer.info = name


def find_layer(gp: bpy.types.ID, name: str):
    """The layer called ``name``, or None."""
    return next((layer for layer in gp.layers if layer_name(layer) == name), None)


def layer_of(gp: bpy.types.ID, name: str = LAYER_NAME) -> bpy.types.bpy_struct:
    """The layer called ``name`` (default: the drawing layer), else the first layer."""
    layer = find_layer(gp, name)
    return layer if layer is not None else gp.layers[0]


def frame_numbers(gp: bpy.types.ID, name: str = LAYER_NAME) -> list[int]:
    """Keyed frame numbers of the drawing layer (or the layer called ``name``), ascending."""
    return sorted(int(f.frame_number) for f in layer_of(gp, name).frames)


def write_frame(gp: bpy.types.ID, frame_number: int, strokes: MappedStrokes, slots: np.ndarray,
                layer=None) -> None:
    """Put ``strokes`` on the drawing layer (or ``layer``) at ``frame_number``, replacing what was
    there; stroke i uses material slot ``slots[i]``."""
    layer = layer if layer is not None else layer_of(gp)
    _remove_frame(layer, frame_number)
    if is_v3():
        _write_v3(layer.frames.new(frame_number).drawing, strokes, slots)
    else:
        _write_v2(layer.frames.new(frame_number), strokes, slots)


def set_frame_materials(gp: bpy.types.ID, frame_number: int, slots: np.ndarray,
                        srgba: np.ndarray | None = None, layer=None) -> None:
    """Point the strokes of the keyed frame ``frame_number`` (of the drawing layer, or ``layer``) at
    material slots ``slots`` (v3: and record ``srgba``, the drawing colours those materials stand for)."""
    layer = layer if layer is not None else layer_of(gp)
    frame = next(f for f in layer.frames if f.frame_number == frame_number)
    if is_v3():
        _set(frame.drawing.attributes, "material_index", 'INT', 'CURVE', "value", slots)
        if srgba is not None:
            _set(frame.drawing.attributes, SRGBA_ATTRIBUTE, 'FLOAT_COLOR', 'CURVE', "color", srgba)
        return
    for stroke, slot in zip(frame.strokes, slots, strict=True):
        stroke.material_index = int(slot)
    if srgba is not None:
        record_v2_srgba(gp, layer, frame_number, srgba)


def v2_srgba_key(layer, frame_number: int) -> str:
    """Where a v2 frame's drawing colours are kept on the datablock: v2 strokes have no custom
    attributes, so they live in an ID property keyed by layer name and frame."""
    return f"{layer_name(layer)}@{int(frame_number)}"


def record_v2_srgba(gp: bpy.types.ID, layer, frame_number: int, srgba: np.ndarray) -> None:
    """Keep a v2 frame's straight sRGBA per stroke (what the v3 attribute ``SRGBA_ATTRIBUTE`` holds)."""
    if SRGBA_ATTRIBUTE not in gp:
        gp[SRGBA_ATTRIBUTE] = {}
    gp[SRGBA_ATTRIBUTE][v2_srgba_key(layer, frame_number)] = np.asarray(srgba, np.float64).ravel().tolist()


def v2_srgba(gp: bpy.types.ID, layer, frame_number: int, n: int) -> np.ndarray:
    """The (n, 4) sRGBA ``record_v2_srgba`` kept for a v2 frame; NaN where none (or not n strokes)."""
    values = gp.get(SRGBA_ATTRIBUTE, {}).get(v2_srgba_key(layer, frame_number))
    stored = np.asarray(values if values is not None else [], dtype=np.float64)
    return stored.reshape(n, 4) if stored.size == 4 * n else np.full((n, 4), np.nan)


def stroke_count(gp: bpy.types.ID, frame_number: int) -> int:
    """How many strokes the keyed frame ``frame_number`` has."""
    frame = next(f for f in layer_of(gp).frames if f.frame_number == frame_number)
    return len(frame.drawing.strokes if is_v3() else frame.strokes)


def _remove_frame(layer, frame_number: int) -> None:
    if is_v3():
        if any(f.frame_number == frame_number for f in layer.frames):
            layer.frames.remove(frame_number)
        return
    for f in layer.frames:
        if f.frame_number == frame_number:
            layer.frames.remove(f)
            break
    kept = layer.id_data.get(SRGBA_ATTRIBUTE)
    if kept is not None and v2_srgba_key(layer, frame_number) in kept:
        del kept[v2_srgba_key(layer, frame_number)]


def _set(attrs, name: str, kind: str, domain: str, prop: str, values: np.ndarray) -> None:
    attr = attrs.get(name) or attrs.new(name, kind, domain)
    attr.data.foreach_set(prop, np.ascontiguousarray(values, dtype=np.float32 if kind != 'INT' else np.int32).ravel())


def _write_v3(drawing, strokes: MappedStrokes, slots: np.ndarray) -> None:
    """Whole-array writes: one Bezier curve per stroke, S+1 knots with the engine's handles."""
    n = len(strokes)
    if n == 0:
        return
    knots_per = strokes.segments + 1
    drawing.add_strokes([int(k) for k in knots_per])
    drawing.set_types(type='BEZIER', indices=list(range(n)))
    knots, left, right = knot_handles(strokes.points, strokes.segments)
    per_point = np.repeat(np.arange(n), knots_per)
    attrs = drawing.attributes
    _set(attrs, "position", 'FLOAT_VECTOR', 'POINT', "vector", knots)
    _set(attrs, "handle_left", 'FLOAT_VECTOR', 'POINT', "vector", left)
    _set(attrs, "handle_right", 'FLOAT_VECTOR', 'POINT', "vector", right)
    _set(attrs, "radius", 'FLOAT', 'POINT', "value", strokes.radius[per_point])
    _set(attrs, "opacity", 'FLOAT', 'POINT', "value", np.ones(len(per_point)))  # alpha is the material's
    _set(attrs, "material_index", 'INT', 'CURVE', "value", slots)
    _set(attrs, SRGBA_ATTRIBUTE, 'FLOAT_COLOR', 'CURVE', "color", strokes.srgba)
    drawing.tag_positions_changed()


def v2_width_and_pressure(radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split world radii into v2's integer ``line_width`` (pixels) and a per-point ``pressure``."""
    thickness = np.asarray(radius, dtype=np.float64) / V2_RADIUS_PER_THICKNESS
    line_width = np.clip(np.ceil(thickness), 1, V2_MAX_LINE_WIDTH).astype(int)
    return line_width, thickness / line_width


def _write_v2(frame, strokes: MappedStrokes, slots: np.ndarray) -> None:
    """Sampled polylines: 3D-space strokes with pressure (width) and full strength."""
    pts, counts = sample_polylines(strokes.points, strokes.segments, V2_SAMPLES_PER_SEGMENT)
    line_width, pressure = v2_width_and_pressure(strokes.radius)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for i in range(len(strokes)):
        c = int(counts[i])
        st = frame.strokes.new()
        st.display_mode = '3DSPACE'
        st.line_width = int(line_width[i])
        st.material_index = int(slots[i])
        st.points.add(c)
        p = st.points
        p.foreach_set("co", pts[starts[i] : starts[i + 1]].astype(np.float32).ravel())
        p.foreach_set("pressure", np.full(c, pressure[i], np.float32))
        p.foreach_set("strength", np.ones(c, np.float32))  # alpha is the material's


class GreasePencilOutput:
    """A run's drawings as one Grease Pencil object: one keyed frame per snapshot.

    Frames written while the run goes on use the coarse preview palette (colours change at every
    snapshot; exact ones would pile up materials). At the end every frame's strokes point at the
    exact material of their stroke's final colour, as curves do, so a material edit restyles a
    stroke on every frame, and the preview materials nothing uses are removed.
    """

    def __init__(self) -> None:
        self._keys: dict[int, list[str]] = {}  # frame -> colour key of each stroke written there
        self._last: MappedStrokes | None = None
        self._created: set[str] = set()

    @staticmethod
    def object_type() -> str:
        return object_type()

    @staticmethod
    def datablocks() -> bpy.types.bpy_prop_collection:
        return datablocks()

    def new_data(self, name: str, strokes: MappedStrokes) -> bpy.types.ID:
        return new_data(name)

    def write(self, obj: bpy.types.Object, index: int, frame: int, strokes: MappedStrokes, final: bool) -> int:
        """Key ``strokes`` at ``frame`` (replacing a frame already there); returns ``index``."""
        keys = materials.colour_keys(strokes.display_srgba, preview=not final)
        slots, created = materials.assign_slots(obj.data, keys, materials.gp_material,
                                                 materials.GP_MATERIAL_PREFIX, keep=True)
        write_frame(obj.data, frame, strokes, slots)
        self._created |= created
        self._keys[frame] = keys
        self._last = strokes
        return index

    def drop(self, obj: bpy.types.Object, keep: int, frames: list[int]) -> None:
        """Remove the keyed frames ``frames`` (snapshots ``keep`` on: an unfinished frame's preview)."""
        layer = layer_of(obj.data)
        for frame in frames:
            _remove_frame(layer, frame)
            self._keys.pop(frame, None)

    def close(self, obj: bpy.types.Object | None, frames: list[int]) -> None:
        """Exact final colours on every frame; the run's materials nothing uses are removed."""
        if obj is not None and self._last is not None:
            final = materials.colour_keys(self._last.display_srgba)
            kept = [f for f in frames if f in self._keys]
            keys = {f: final if len(self._keys[f]) == len(final) else self._keys[f] for f in kept}
            slots, created = materials.assign_slots(obj.data, [k for f in kept for k in keys[f]],
                                                    materials.gp_material, materials.GP_MATERIAL_PREFIX)
            self._created |= created
            at = 0
            for f in kept:
                srgba = self._last.srgba if keys[f] is final else None
                set_frame_materials(obj.data, f, slots[at : at + len(keys[f])], srgba)
                at += len(keys[f])
        materials.remove_unused(self._created)


def level_name(count: int) -> str:
    """A ladder level's layer name while it forms (the engine's ``stage`` label replaces it)."""
    return f"{count} strokes"


class GreasePencilLevels:
    """An abstraction ladder as one Grease Pencil object with one layer per level.

    Each level is a layer with one keyed frame: the live preview forms in the layer of the level
    being drawn (earlier levels are hidden meanwhile), a finished level (a ``stage`` event) takes
    the engine's label and its exact drawing, and at the end every layer is hidden except the last
    one drawn: the most abstract level, or where a cancelled run stopped. Layers rather than
    objects, so that the levels stay one drawing that a user flips through in the layer list.
    """

    def __init__(self, counts: Sequence[int]) -> None:
        self._names = [level_name(n) for n in counts]
        self._level = 0  # the level being drawn
        self._written: dict[str, tuple[int, MappedStrokes]] = {}  # layer -> (frame, strokes), in order
        self._created: set[str] = set()

    @staticmethod
    def object_type() -> str:
        return object_type()

    @staticmethod
    def datablocks() -> bpy.types.bpy_prop_collection:
        return datablocks()

    def new_data(self, name: str, strokes: MappedStrokes) -> bpy.types.ID:
        return new_data(name, self._names[0])

    def write(self, obj: bpy.types.Object, index: int, frame: int, strokes: MappedStrokes, final: bool) -> int:
        """The live preview (or, with ``final``, the run's last drawing) on the current level's layer."""
        self._put(obj, self._layer(obj, self._level), frame, strokes, final)
        return index

    def level(self, obj: bpy.types.Object, index: int, stages: int, label: str, frame: int,
              strokes: MappedStrokes) -> None:
        """Level ``index`` is finished: its layer takes ``label`` and the exact drawing; the next
        previews go to the next level's layer."""
        layer = self._layer(obj, index)
        if label and layer_name(layer) != label:
            self._written.pop(layer_name(layer), None)
            rename_layer(layer, label)
        self._names[min(index, len(self._names) - 1)] = layer_name(layer)
        self._put(obj, layer, frame, strokes, final=True)
        self._level = min(index + 1, stages - 1, len(self._names) - 1)

    def close(self, obj: bpy.types.Object | None, frames: list[int]) -> None:
        """Exact colours on every layer, only the last level drawn shown, unused materials removed."""
        if obj is not None and self._written:
            layers = [(find_layer(obj.data, name), frame, strokes) for name, (frame, strokes) in self._written.items()]
            layers = [item for item in layers if item[0] is not None]
            keys = [materials.colour_keys(strokes.display_srgba) for _, _, strokes in layers]
            slots, created = materials.assign_slots(obj.data, [k for ks in keys for k in ks], materials.gp_material,
                                                    materials.GP_MATERIAL_PREFIX)
            self._created |= created
            at = 0
            for (layer, frame, strokes), ks in zip(layers, keys, strict=True):
                set_frame_materials(obj.data, frame, slots[at : at + len(ks)], strokes.srgba, layer=layer)
                at += len(ks)
            shown = layers[-1][0] if layers else None
            for layer in obj.data.layers:
                layer.hide = layer != shown and layer_name(layer) in self._written
        materials.remove_unused(self._created)

    def _layer(self, obj: bpy.types.Object, index: int):
        """The layer of level ``index``, made on top when it is new (and the others hidden meanwhile)."""
        name = self._names[min(index, len(self._names) - 1)]
        layer = find_layer(obj.data, name)
        if layer is None:
            layer = new_layer(obj.data, name)
        for other in obj.data.layers:
            if layer_name(other) in self._written:
                other.hide = other != layer
        layer.hide = False
        return layer

    def _put(self, obj: bpy.types.Object, layer, frame: int, strokes: MappedStrokes, final: bool) -> None:
        keys = materials.colour_keys(strokes.display_srgba, preview=not final)
        slots, created = materials.assign_slots(obj.data, keys, materials.gp_material, materials.GP_MATERIAL_PREFIX,
                                                keep=True)
        self._created |= created
        write_frame(obj.data, frame, strokes, slots, layer=layer)
        name = layer_name(layer)
        self._written.pop(name, None)  # re-inserted last: dict order is the order levels were drawn
        self._written[name] = (frame, strokes)
