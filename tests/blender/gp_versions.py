"""Grease Pencil in tests, the same calls on v3 (Blender 4.3+) and v2 (Blender 4.2).

The add-on hides the two APIs behind ``blender_addon.grease_pencil``; tests that look inside a
Grease Pencil object (its frames, strokes, selection) or draw one by hand use these helpers, so
that the whole Blender suite runs on both (``.ci/run`` runs the Grease Pencil tests on 4.2 too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import bpy

from blender_addon import grease_pencil


def keyed_frame(layer, frame_number: int):
    """The frame keyed exactly at ``frame_number`` on ``layer``."""
    return next(f for f in layer.frames if f.frame_number == frame_number)


def frame_strokes(frame):
    """A keyed frame's strokes (v3 keeps them in the frame's drawing)."""
    return frame.drawing.strokes if grease_pencil.is_v3() else frame.strokes


def layer_names(gp: bpy.types.ID) -> list[str]:
    return [grease_pencil.layer_name(layer) for layer in gp.layers]


def select_strokes(frame, indices: Iterable[int]) -> None:
    """Select exactly the strokes ``indices`` of a keyed frame (v3: the '.selection' attribute;
    v2: each stroke's flag)."""
    chosen = set(indices)
    strokes = frame_strokes(frame)
    if not grease_pencil.is_v3():
        for i, stroke in enumerate(strokes):
            stroke.select = i in chosen
        return
    attrs = frame.drawing.attributes
    attr = attrs.get(".selection") or attrs.new(".selection", 'BOOLEAN', 'CURVE')
    attr.data.foreach_set("value", [i in chosen for i in range(len(strokes))])


def draw_poly_strokes(gp: bpy.types.ID, name: str, frame_number: int, lines: Sequence[Sequence[Sequence[float]]],
                      radius: float, material_index: int = 0):
    """A new layer ``name`` with point strokes as the Draw tool makes them (v3: POLY curves; v2:
    point lists with ``line_width`` and pressure giving ``radius``). Returns the layer."""
    if grease_pencil.is_v3():
        layer = gp.layers.new(name)
        drawing = layer.frames.new(frame_number).drawing
        drawing.add_strokes([len(p) for p in lines])
        for stroke, pts in zip(drawing.strokes, lines, strict=True):
            for point, co in zip(stroke.points, pts, strict=True):
                point.position, point.radius = co, radius
            stroke.material_index = material_index
        return layer
    layer = gp.layers.new(name, set_active=True)
    frame = layer.frames.new(frame_number)
    width, pressure = grease_pencil.v2_width_and_pressure([radius])
    for pts in lines:
        stroke = frame.strokes.new()
        stroke.line_width, stroke.material_index = int(width[0]), material_index
        stroke.points.add(len(pts))
        for point, co in zip(stroke.points, pts, strict=True):
            point.co, point.pressure, point.strength = co, float(pressure[0]), 1.0
    return layer
