"""The source image under a sketch: an image empty on the drawing's plane. Main thread only.

CLIPasso sees its source image letterboxed onto a white square canvas (``fit_square``). The
overlay shows the same image in the same place: an image empty on the plane of the drawing,
centred on the rectangle the engine used and sized to it (``placement.overlay_placement``), so a
stroke drawn over an eye in the engine's canvas lies over that eye in Blender, in every view,
the camera's included. It is drawn behind everything (depth 'Back') at half opacity, so the
strokes stay readable, and empties do not render.

One overlay per image and place: runs on the same image at the same plane share it (found by a
key stored on the empty), so sketching again does not pile up copies in the collection. A source
file the overlay loads is packed into the .blend, so the overlay survives moving the .blend.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix

from .engine_path import import_engine
from .placement import Plane, overlay_placement

KEY_PROP = "clipdraw_overlay_key"
NAME_PREFIX = "CLIPDraw Overlay "
OPACITY = 0.5


@dataclass(frozen=True)
class OverlaySpec:
    """What the overlay shows and where: plain values copied before the job starts."""

    plane: Plane
    canvas: int  # the engine's square canvas, in pixels
    label: str  # the image as the user chose it (datablock name or file path)
    image_name: str = ""  # a datablock to show; '' means load ``image_path``
    image_path: str = ""


def ensure_overlay(scene: bpy.types.Scene, spec: OverlaySpec, collection: bpy.types.Collection
                   ) -> tuple[bpy.types.Object | None, str]:
    """The overlay empty for ``spec`` in ``collection``, made or reused; (None, why) if impossible.

    The reason is for a warning: a missing overlay never fails the run.
    """
    image, problem = _image_for(spec)
    if image is None:
        return None, problem
    w, h = image.size[:]
    orientation = import_engine("exif").read_orientation(spec.image_path) if spec.image_path else 1
    place = overlay_placement(spec.plane, spec.canvas, w, h, tuple(image.display_aspect), orientation)
    key = overlay_key(spec, image, place.matrix)
    obj = next((o for o in collection.objects if o.get(KEY_PROP) == key and o.type == 'EMPTY'), None)
    if obj is None:
        obj = bpy.data.objects.new(NAME_PREFIX + os.path.basename(spec.label), None)
        collection.objects.link(obj)
        obj[KEY_PROP] = key
    _configure(obj, image, place.matrix, place.display_size)
    return obj, ""


def _image_for(spec: OverlaySpec) -> tuple[bpy.types.Image | None, str]:
    """The datablock to show: the chosen one, or the file loaded once (``check_existing``)."""
    if spec.image_name:
        image = bpy.data.images.get(spec.image_name)
        if image is None:
            return None, f"the image '{spec.image_name}' was removed"
        return image, ""
    before = {im.name for im in bpy.data.images}
    try:
        image = bpy.data.images.load(spec.image_path, check_existing=True)
    except RuntimeError:
        return None, f"Blender cannot open {spec.image_path!r}"
    if image.size[0] * image.size[1] == 0:  # e.g. a GIF, which the engine reads and Blender does not
        if image.name not in before:
            bpy.data.images.remove(image)
        return None, f"Blender cannot read {os.path.basename(spec.image_path)!r} (the engine can)"
    if image.name not in before:
        _pack(image)
    return image, ""


def _pack(image: bpy.types.Image) -> None:
    """Keep a loaded source file's bytes in the .blend: saving stores its path relative to the
    .blend, so moving the .blend (or deleting the photo) would otherwise blank the overlay.

    Only images the overlay loaded itself: a datablock the user made keeps their choice. Movies
    (an animated GIF opens as one) cannot be packed and stay linked to their file.
    """
    if image.source == 'FILE' and image.packed_file is None:
        image.pack()


def overlay_key(spec: OverlaySpec, image: bpy.types.Image, matrix: np.ndarray) -> str:
    """Same image (and size) at the same place: the same key, so the overlay is reused."""
    text = f"{image.name}|{spec.image_path}|{tuple(image.size)}|" + ",".join(f"{v:.6g}" for v in np.ravel(matrix))
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _configure(obj: bpy.types.Object, image: bpy.types.Image, matrix: np.ndarray, display_size: float) -> None:
    obj.empty_display_type = 'IMAGE'
    obj.data = image
    obj.empty_display_size = display_size
    obj.empty_image_offset = (-0.5, -0.5)  # centred on the object's origin
    obj.matrix_world = Matrix(np.asarray(matrix).tolist())
    obj.empty_image_depth = 'BACK'  # behind the strokes that lie on the same plane
    obj.empty_image_side = 'DOUBLE_SIDED'
    obj.use_empty_image_alpha = True
    obj.color[3] = OPACITY
    obj.show_empty_image_only_axis_aligned = False
    obj.hide_render = True
