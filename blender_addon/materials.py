"""Materials for results, reused by name so that runs never duplicate them.

Grease Pencil takes its colours from per-point vertex colours, so every GP result shares one
stroke material. Curve objects have no per-spline colour, so each distinct colour (8 bits per
channel, alpha included) gets one material named after its sRGB hex code and is reused by every
later run that draws that colour; while a run is going, a coarse preview palette stands in.
Curve materials render flat (emission, alpha through a transparent mix) in EEVEE and Cycles, and
through ``diffuse_color`` in Workbench.
"""

from __future__ import annotations

import bpy
import numpy as np

from .placement import srgb_to_linear

GP_MATERIAL_NAME = "CLIPDraw Stroke"
CURVE_MATERIAL_PREFIX = "CLIPDraw #"


def gp_stroke_material() -> bpy.types.Material:
    """The shared Grease Pencil material: solid stroke, no fill, colour from vertex colours."""
    mat = bpy.data.materials.get(GP_MATERIAL_NAME)
    if mat is None or not mat.is_grease_pencil:
        mat = bpy.data.materials.new(GP_MATERIAL_NAME)
        bpy.data.materials.create_gpencil_data(mat)
    style = mat.grease_pencil
    style.show_stroke = True
    style.show_fill = False
    style.mode = 'LINE'
    style.stroke_style = 'SOLID'
    style.color = (0.0, 0.0, 0.0, 1.0)  # seen only where a vertex colour is missing
    return mat


def colour_keys(srgba: np.ndarray, preview: bool = False) -> list[str]:
    """'RRGGBBAA' sRGB hex code of each row of (N, 4) ``srgba``: the identity of a curve material.

    ``preview`` snaps to a coarse palette (4 levels of R, G, B; 3 of alpha) for curves' live
    preview: colours change at every snapshot, and exact keys would create hundreds of
    short-lived materials per snapshot. The final drawing gets exact colours.
    """
    c = np.clip(np.asarray(srgba, dtype=np.float64).reshape(-1, 4), 0.0, 1.0)
    if preview:
        c = np.concatenate([np.rint(c[:, :3] * 3) / 3, np.rint(c[:, 3:] * 2) / 2], axis=1)
    q = np.rint(c * 255.0).astype(int).tolist()
    return ["".join(f"{v:02X}" for v in row) for row in q]


def curve_material(key: str) -> bpy.types.Material:
    """The material for one colour key, created on first use and reused afterwards."""
    name = CURVE_MATERIAL_PREFIX + key
    mat = bpy.data.materials.get(name)
    if mat is not None and not mat.is_grease_pencil:
        return mat
    srgba = np.array([int(key[i : i + 2], 16) / 255.0 for i in range(0, 8, 2)])
    rgb = srgb_to_linear(srgba[:3])
    alpha = float(srgba[3])
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*rgb, alpha)  # Workbench (shading colour type 'MATERIAL') and the viewport
    _flat_node_tree(mat, rgb, alpha)
    return mat


def _flat_node_tree(mat: bpy.types.Material, rgb: np.ndarray, alpha: float) -> None:
    """Emission mixed with Transparent by alpha: the drawing's flat colour in EEVEE and Cycles.

    A stroke is a round tube, so a camera ray crosses its surface twice; the back faces are made
    transparent (and culled in Workbench/EEVEE) so that alpha is applied once, as on the canvas.
    """
    if bpy.app.version < (5, 0, 0):  # 5.0 materials always use nodes (use_nodes is deprecated)
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    out = nodes.new("ShaderNodeOutputMaterial")
    emit = nodes.new("ShaderNodeEmission")
    emit.inputs["Color"].default_value = (*rgb, 1.0)
    emit.inputs["Strength"].default_value = 1.0
    clear = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    mix.inputs["Fac"].default_value = alpha
    links.new(clear.outputs[0], mix.inputs[1])
    links.new(emit.outputs[0], mix.inputs[2])
    geometry = nodes.new("ShaderNodeNewGeometry")
    front_only = nodes.new("ShaderNodeMixShader")
    links.new(geometry.outputs["Backfacing"], front_only.inputs["Fac"])
    links.new(mix.outputs[0], front_only.inputs[1])
    links.new(clear.outputs[0], front_only.inputs[2])
    links.new(front_only.outputs[0], out.inputs["Surface"])
    mat.use_backface_culling = True
    if hasattr(mat, "surface_render_method"):  # EEVEE Next (4.2+): blended alpha, no dithering
        mat.surface_render_method = 'BLENDED' if alpha < 1.0 else 'DITHERED'


def remove_unused(names: set[str]) -> int:
    """Delete the named materials that nothing uses any more (intermediate colours of a run)."""
    removed = 0
    for name in names:
        mat = bpy.data.materials.get(name)
        if mat is not None and mat.users == 0:
            bpy.data.materials.remove(mat)
            removed += 1
    return removed
