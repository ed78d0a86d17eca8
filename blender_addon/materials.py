"""Materials for results: one per colour, reused by name so that runs never duplicate them.

Every distinct colour of a drawing (8 bits per channel, alpha included) gets one material named
after its sRGB hex code, for curves and Grease Pencil alike, and later runs that draw that colour
reuse it: a user restyles a drawing by editing its materials. While a run is going, a coarse
preview palette stands in, so that the colours changing at every snapshot do not create hundreds
of short-lived materials. Curve materials render flat (emission, alpha through a transparent
mix) in EEVEE and Cycles, and through ``diffuse_color`` in Workbench; Grease Pencil materials
are solid unlit strokes. Both hold the canvas-matched linear colour and opacity (``colour.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import bpy
import numpy as np

from .colour import srgb_to_linear

CURVE_MATERIAL_PREFIX = "CLIPDraw #"
GP_MATERIAL_PREFIX = "CLIPDraw Stroke #"


def colour_keys(srgba: np.ndarray, preview: bool = False) -> list[str]:
    """'RRGGBBAA' sRGB hex code of each row of (N, 4) ``srgba``: the identity of a material.

    ``preview`` snaps to a coarse palette (4 levels of R, G, B; 3 of alpha) for the live preview:
    colours change at every snapshot, and exact keys would create hundreds of short-lived
    materials per snapshot. The final drawing gets exact colours.
    """
    c = np.clip(np.asarray(srgba, dtype=np.float64).reshape(-1, 4), 0.0, 1.0)
    if preview:
        c = np.concatenate([np.rint(c[:, :3] * 3) / 3, np.rint(c[:, 3:] * 2) / 2], axis=1)
    q = np.rint(c * 255.0).astype(np.uint8)
    return [row.tobytes().hex().upper() for row in q]


def key_colour(key: str) -> tuple[np.ndarray, float]:
    """A colour key's linear RGB (what Blender's colour properties hold) and its alpha."""
    srgba = np.array([int(key[i : i + 2], 16) / 255.0 for i in range(0, 8, 2)])
    return srgb_to_linear(srgba[:3]), float(srgba[3])


def curve_material(key: str) -> bpy.types.Material:
    """The curve material for one colour key, created on first use and reused afterwards."""
    name = CURVE_MATERIAL_PREFIX + key
    mat = bpy.data.materials.get(name)
    if mat is not None and not mat.is_grease_pencil:
        return mat
    rgb, alpha = key_colour(key)
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*rgb, alpha)  # Workbench (shading colour type 'MATERIAL') and the viewport
    _flat_node_tree(mat, rgb, alpha)
    return mat


def gp_material(key: str) -> bpy.types.Material:
    """The Grease Pencil material for one colour key: a solid stroke of that colour, no fill."""
    name = GP_MATERIAL_PREFIX + key
    mat = bpy.data.materials.get(name)
    if mat is not None and mat.is_grease_pencil:
        return mat
    rgb, alpha = key_colour(key)
    mat = bpy.data.materials.new(name)
    bpy.data.materials.create_gpencil_data(mat)
    style = mat.grease_pencil
    style.show_stroke = True
    style.show_fill = False
    style.mode = 'LINE'
    style.stroke_style = 'SOLID'
    style.color = (*rgb, alpha)  # linear, like the vertex colours it replaces
    mat.diffuse_color = (*rgb, alpha)  # the swatch in lists and the Solid view's material colour
    return mat


def assign_slots(id_data: bpy.types.ID, keys: Sequence[str], make: Callable[[str], bpy.types.Material],
                 prefix: str, keep: bool = False) -> tuple[np.ndarray, set[str]]:
    """Give ``id_data`` a material slot for each distinct key; returns each key's slot and the
    names of the materials this call created (so a run can remove the ones nothing uses later).

    ``make`` finds or creates the material of a key, named ``prefix`` + key. ``keep`` keeps the
    existing slots and appends missing colours (Grease Pencil frames already written point at
    theirs); otherwise the slots become exactly the distinct keys, in order.
    """
    if not keep:
        id_data.materials.clear()
    slots = {m.name: i for i, m in enumerate(id_data.materials) if m is not None}
    slot_of: dict[str, int] = {}
    created: set[str] = set()
    for key in dict.fromkeys(keys):
        name = prefix + key
        if name not in slots:  # a colour this datablock has no slot for yet
            new = bpy.data.materials.get(name) is None
            mat = make(key)
            if new:
                created.add(mat.name)
            name = mat.name
            if name not in slots:
                slots[name] = len(id_data.materials)
                id_data.materials.append(mat)
        slot_of[key] = slots[name]
    return np.array([slot_of[key] for key in keys], dtype=np.int64), created


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
