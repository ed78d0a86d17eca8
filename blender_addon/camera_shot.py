"""The camera's view as a picture sequence: one RGBA PNG per frame for a sketch animation. Main thread only.

For each frame of a range the scene's camera is rendered twice: the **picture** (Workbench, or
the scene's own engine) and the **mask** (Workbench on a transparent film with every object
that is not among the chosen ones hidden from render). The PNG the engine reads has the
picture's RGB and the mask's alpha, so no saliency or matting model is needed for the object.
Both renders are the scene's own aspect with the long side = the canvas; the engine letterboxes
the picture into its square canvas (``placement.letterboxed_plane`` puts the sketch back on the
camera frame).

Every scene setting a render needs is changed for that render only and restored in ``finally``
(``changed``), so the user's file is never left altered, whatever fails; the current frame is
restored when the shot is finished or discarded. ``CameraShot.render_next`` renders one frame
per call so that the modal Run operator can render from its timer without blocking the UI;
``render_all`` is for background mode. Earlier results of the add-on (sketches in front of the
camera, overlays) are hidden from both renders: a rerun must not sketch its last sketch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import bpy
import numpy as np

from . import engine_path, image_files, image_inputs, rendering, results

# object types that show in a render (what a mask can be made of)
RENDERABLE = {'MESH', 'CURVE', 'SURFACE', 'META', 'FONT', 'CURVES', 'POINTCLOUD', 'VOLUME', 'GREASEPENCIL',
              'GPENCIL'}
ENGINES = ("WORKBENCH", "SCENE")


class ShotRefused(ValueError):
    """The shot cannot be rendered; the message says what to change (the Run operator shows it)."""


@dataclass(frozen=True)
class ShotSpec:
    """What to render: plain values copied from the settings before anything is rendered."""

    frames: tuple[int, ...]  # scene frames, ascending
    canvas: int  # the long side of each picture, px (the engine's square canvas)
    engine: str = "WORKBENCH"  # the picture's engine: 'WORKBENCH' or 'SCENE' (the mask is always Workbench)
    collection: str = ""  # the objects whose mask is drawn; '' = every renderable object in the view layer


def frame_range(first: int, last: int, step: int = 1) -> tuple[int, ...]:
    """The scene frames ``first`` to ``last`` (every ``step``-th); ShotRefused if reversed or too long."""
    if last < first:
        raise ShotRefused(f"the frame range {first}-{last} is reversed: the end must not be before the start")
    frames = tuple(range(first, last + 1, max(1, step)))
    limit = engine_path.import_engine("request").MAX_FRAMES
    if len(frames) > limit:
        raise ShotRefused(f"the frame range {first}-{last} has {len(frames)} frames: at most {limit} in one run")
    return frames


def picture_size(scene: bpy.types.Scene, canvas: int) -> tuple[int, int]:
    """(w, h) of the camera's view at the scene's aspect (pixel aspect included), long side ``canvas``."""
    r = scene.render
    aspect = (r.resolution_x * r.pixel_aspect_x) / (r.resolution_y * r.pixel_aspect_y)
    if aspect >= 1.0:
        return canvas, max(1, round(canvas / aspect))
    return max(1, round(canvas * aspect)), canvas


def is_add_on_result(obj: bpy.types.Object) -> bool:
    """A sketch, drawing or overlay this add-on made (kept out of the camera's pictures)."""
    return (results.PROP_PREFIX + "run_id" in obj or results.CANVAS_SIZE_PROP in obj
            or "clipdraw_overlay_key" in obj)


def chosen_objects(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, collection_name: str = ""
                   ) -> list[bpy.types.Object]:
    """The objects whose mask is drawn: the collection's (all levels), else every object of the view
    layer; only those that render (a renderable type, not hidden from render, not an add-on result)."""
    if collection_name:
        coll = bpy.data.collections.get(collection_name)
        if coll is None or coll.hide_render:
            return []
        pool: Iterable[bpy.types.Object] = coll.all_objects
    else:
        pool = scene.objects
    view_layer.update()  # objects linked a moment ago are in the layer only once it is synced
    in_layer = view_layer.objects
    return [o for o in pool if o.type in RENDERABLE and not o.hide_render and in_layer.get(o.name) is not None
            and not is_add_on_result(o)]


def check(scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, spec: ShotSpec) -> list[bpy.types.Object]:
    """Refuse a shot that cannot be rendered, before anything is; returns the chosen objects."""
    cam = scene.camera
    if cam is None:
        raise ShotRefused("the Camera source needs a scene camera: add one and make it active (Ctrl+Numpad 0)")
    if cam.type != 'CAMERA':
        raise ShotRefused(f"the scene camera '{cam.name}' is a {cam.type.lower()} object, not a camera: "
                          "make a camera the scene camera")
    if not spec.frames:
        raise ShotRefused("the frame range is empty: give at least one frame")
    if spec.engine not in ENGINES:
        raise ShotRefused(f"the picture's render engine must be one of {', '.join(ENGINES)}, got {spec.engine!r}")
    chosen = chosen_objects(scene, view_layer, spec.collection)
    if not chosen:
        where = f"the collection '{spec.collection}'" if spec.collection else "the scene"
        raise ShotRefused(f"{where} has no object that renders (meshes, curves, text ... not hidden from render): "
                          "nothing to make a mask of")
    return chosen


@contextmanager
def changed(target: Any, **values: Any) -> Iterator[None]:
    """Set attributes of ``target`` for the ``with`` block; every one is put back afterwards, in the
    order given (file format before colour mode before colour depth: each one limits the next)."""
    before = {name: getattr(target, name) for name in values}
    try:
        for name, value in values.items():
            setattr(target, name, value)
        yield
    finally:
        for name, value in before.items():
            try:
                setattr(target, name, value)
            except (TypeError, ValueError, AttributeError):  # never leave the rest unrestored
                pass


@contextmanager
def hidden_from_render(objects: Iterable[bpy.types.Object]) -> Iterator[None]:
    """Hide ``objects`` from renders for the ``with`` block; each flag is put back afterwards."""
    with ExitStack() as stack:
        for obj in objects:
            if not obj.hide_render:
                stack.enter_context(changed(obj, hide_render=True))
        yield


def render_settings(scene: bpy.types.Scene, size: tuple[int, int], engine: str, transparent: bool,
                    path: str) -> ExitStack:
    """Everything one camera render needs, restored when the returned stack closes."""
    r = scene.render
    stack = ExitStack()
    stack.enter_context(changed(r, engine=r.engine if engine == "SCENE" else rendering.engine_id(engine),
                                resolution_x=size[0], resolution_y=size[1], resolution_percentage=100,
                                pixel_aspect_x=1.0, pixel_aspect_y=1.0, film_transparent=transparent,
                                use_border=False, use_compositing=False, use_sequencer=False, use_stamp=False,
                                use_multiview=False, filepath=path))
    stack.enter_context(changed(r.image_settings, file_format='PNG', color_mode='RGBA' if transparent else 'RGB',
                                color_depth='8'))
    if transparent:  # X-ray would make the objects' alpha partial
        stack.enter_context(changed(scene.display.shading, show_xray=False))
    return stack


def render_pixels(scene: bpy.types.Scene, size: tuple[int, int], engine: str, transparent: bool,
                  path: str) -> np.ndarray:
    """One render of the scene camera as (H, W, 4) uint8 sRGB, read back from a temporary PNG.

    Saved from the Render Result rather than with ``write_still``, which prints "Saved:" and "Time:"
    lines for every render: four lines a frame in a headless log."""
    with render_settings(scene, size, engine, transparent, path):
        bpy.ops.render.render(scene=scene.name)
        result = next((i for i in bpy.data.images if i.type == 'RENDER_RESULT'), None)
        if result is not None:
            result.save_render(path, scene=scene)
    if not os.path.isfile(path):
        raise ShotRefused(f"Blender wrote no image to {path}")
    image = bpy.data.images.load(path)
    try:
        return image_inputs.datablock_pixels(image, "camera render")
    finally:
        bpy.data.images.remove(image)
        os.unlink(path)


def combine(picture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The engine's frame: the picture's RGB, opaque, with the mask's alpha as the object mask."""
    out = picture.copy()
    out[..., 3] = mask[..., 3]
    return out


class CameraShot:
    """Renders a ``ShotSpec``'s frames into a job folder, one frame per ``render_next`` call."""

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer, spec: ShotSpec,
                 folder: image_inputs.JobFolder) -> None:
        self.scene, self.view_layer, self.spec, self.folder = scene, view_layer, spec, folder
        self.size = picture_size(scene, spec.canvas)
        self.rendered: list[tuple[int, str]] = []  # (scene frame, PNG) of each frame done
        self.cancel_requested = False
        self._frame_before: tuple[int, float] | None = (scene.frame_current, scene.frame_subframe)

    @property
    def total(self) -> int:
        return len(self.spec.frames)

    @property
    def done(self) -> bool:
        return len(self.rendered) == self.total

    def status_line(self) -> str:
        """'Rendering camera frame 3/24' for the status bar and the panel."""
        return f"Rendering camera frame {min(len(self.rendered) + 1, self.total)}/{self.total}"

    def render_next(self) -> bool:
        """Render the next frame's picture and mask into one PNG; True while frames remain.

        ShotRefused when Blender cannot render it (the message names the frame).
        """
        if self.done:
            self.restore_frame()
            return False
        frame = self.spec.frames[len(self.rendered)]
        self.scene.frame_set(frame)
        folder = self.folder.get()
        objects = list(self.scene.objects)
        chosen = set(chosen_objects(self.scene, self.view_layer, self.spec.collection))
        try:
            with hidden_from_render(o for o in objects if is_add_on_result(o)):
                picture = render_pixels(self.scene, self.size, self.spec.engine, False, str(folder / "picture.png"))
            with hidden_from_render(o for o in objects if o not in chosen):
                mask = render_pixels(self.scene, self.size, "WORKBENCH", True, str(folder / "mask.png"))
        except RuntimeError as e:  # the engine failed (Blender's message is its first line)
            raise ShotRefused(f"cannot render camera frame {frame}: {str(e).strip().splitlines()[0]}") from None
        path = folder / f"frame-{frame:07d}.png"
        image_files.write_png(path, combine(picture, mask))
        self.rendered.append((frame, str(path)))
        if self.done:
            self.restore_frame()
        return not self.done

    def render_all(self, log: Callable[[str], None] | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Every frame in one go (background mode); False if ``should_stop`` ended it early."""
        try:
            while not self.done:
                if should_stop():
                    return False
                if log is not None:
                    log(self.status_line())
                self.render_next()
            return True
        finally:
            self.restore_frame()

    def restore_frame(self) -> None:
        """Back to the frame the user was on (once)."""
        if self._frame_before is not None:
            frame, sub = self._frame_before
            self._frame_before = None
            self.scene.frame_set(frame, subframe=sub)

    def discard(self) -> None:
        """Cancelled or refused: the frame restored and the rendered pictures removed."""
        self.restore_frame()
        self.folder.remove()
        self.rendered.clear()

    @property
    def frame_numbers(self) -> list[int]:
        return [f for f, _ in self.rendered]

    @property
    def paths(self) -> list[str]:
        return [p for _, p in self.rendered]


def spec_from(settings, scene: bpy.types.Scene) -> ShotSpec:
    """The shot the settings describe (``source_image`` with the Camera source)."""
    source = settings.source_image
    if source.use_scene_range:
        frames = frame_range(scene.frame_start, scene.frame_end, scene.frame_step)
    else:
        frames = frame_range(source.frame_start, source.frame_end)
    coll = source.mask_collection
    return ShotSpec(frames=frames, canvas=int(settings.canvas[0]), engine=source.render_engine,
                    collection=coll.name if coll is not None else "")

