"""Render settings that make Blender's picture match the engine's canvas (headless renders).

Flat, unlit colours on the drawing's background, the 'Standard' view transform (so colours are
not tone-mapped), a camera whose view is exactly the canvas, and per-version engine names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import bpy
from mathutils import Matrix

from .colour import srgb_to_linear

ENGINES = ("WORKBENCH", "EEVEE", "CYCLES")


def engine_id(name: str) -> str:
    """Blender's engine identifier for 'WORKBENCH', 'EEVEE' or 'CYCLES' in this version."""
    name = name.upper()
    if name == "WORKBENCH":
        return 'BLENDER_WORKBENCH'
    if name == "CYCLES":
        return 'CYCLES'
    if name == "EEVEE":
        return 'BLENDER_EEVEE_NEXT' if bpy.app.version < (5, 0, 0) else 'BLENDER_EEVEE'
    raise ValueError(f"render engine must be one of {', '.join(ENGINES)}, got {name!r}")


def ensure_camera(scene: bpy.types.Scene, canvas_w: int, canvas_h: int, scale: float = 1.0) -> bpy.types.Object:
    """The scene camera (a new one facing +Y from -10 Y if there is none) with the canvas' aspect.

    The render resolution becomes the canvas size times ``scale``, so that a drawing placed with
    'Fit Camera View' fills the frame exactly and renders pixel-aligned with the engine's canvas.
    """
    cam = scene.camera
    if cam is None:
        cam = bpy.data.objects.new("CLIPDraw Camera", bpy.data.cameras.new("CLIPDraw Camera"))
        scene.collection.objects.link(cam)
        cam.matrix_world = Matrix.Translation((0.0, -10.0, 0.0)) @ Matrix.Rotation(math.pi / 2, 4, 'X')
        scene.camera = cam
    scene.render.resolution_x = max(1, round(canvas_w * scale))
    scene.render.resolution_y = max(1, round(canvas_h * scale))
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    return cam


def configure(scene: bpy.types.Scene, engine: str = "WORKBENCH",
              background: Sequence[float] = (1.0, 1.0, 1.0, 1.0), samples: int = 16) -> None:
    """Flat colours on ``background`` (sRGB) with the chosen engine."""
    scene.render.engine = engine_id(engine)
    scene.view_settings.view_transform = 'Standard'
    scene.view_settings.look = 'None'
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    scene.render.film_transparent = False
    rgb = tuple(float(c) for c in srgb_to_linear(list(background)[:3]))
    world = scene.world or bpy.data.worlds.new("CLIPDraw Background")
    scene.world = world
    world.color = rgb  # Workbench's background
    if bpy.app.version < (5, 0, 0):  # always node-based from 5.0
        world.use_nodes = True
    nodes = world.node_tree.nodes if world.node_tree is not None else ()
    bg = next((n for n in nodes if n.type == 'BACKGROUND'), None)
    if bg is not None:  # EEVEE and Cycles
        bg.inputs["Color"].default_value = (*rgb, 1.0)
        bg.inputs["Strength"].default_value = 1.0
    shading = scene.display.shading
    shading.light = 'FLAT'
    shading.color_type = 'MATERIAL'
    shading.background_type = 'WORLD'
    shading.show_backface_culling = True  # curve tubes: one layer of alpha, as on the canvas
    if engine.upper() == "CYCLES":
        scene.cycles.samples = samples
        scene.cycles.device = 'CPU'
    elif engine.upper() == "EEVEE":
        scene.eevee.taa_render_samples = samples


def render_still(scene: bpy.types.Scene, path: str, frame: int) -> str:
    """Render ``frame`` to a PNG at ``path``."""
    scene.frame_set(frame)
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGB'
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return path


def render_frames(scene: bpy.types.Scene, folder: str, first: int, last: int) -> str:
    """Render frames ``first`` to ``last`` as numbered PNGs in ``folder``."""
    import os

    scene.frame_start, scene.frame_end = first, last
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGB'
    scene.render.filepath = os.path.join(folder, "frame_")
    bpy.ops.render.render(animation=True)
    return folder
