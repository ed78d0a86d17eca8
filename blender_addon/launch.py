"""Starting a generation: Blender state becomes a checked request, an output spec and a running job.

Everything the job needs is copied here, on the main thread, before it starts: the request
(with image datablocks, and a drawing to continue, written to files in the job's own folder),
validated with the engine's own rules (``synth_core.request``, torch-free), and the output spec.
Then a runner is chosen and the ``session.RunSession`` that applies the job's events becomes the
current run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import bpy
import numpy as np

from . import (
    bridge,
    camera_shot,
    continuation,
    engine_path,
    image_inputs,
    overlay,
    placement,
    properties,
    results,
    session,
)

rules = engine_path.import_engine("request")


class RunRefused(RuntimeError):
    """The run cannot start; the message says what to change."""


@dataclass(frozen=True)
class RunnerChoice:
    """Which runner to use and with what: plain values from the preferences."""

    runner: str = "AUTO"  # 'AUTO', 'IN_PROCESS' or 'SUBPROCESS'
    python: str = ""  # worker interpreter ('' = automatic)
    managed_venv: str | None = None
    device: str = "AUTO"
    cache_dir: str = ""
    online: bool = False  # bpy.app.online_access: without it the engine must not download weights
    threads: int = 0  # torch CPU threads for the engine (0: torch's default, every core)
    precision: str = "AUTO"  # the encoder's arithmetic, a request ``precision`` in capitals


def engine_threads(preference: int, cpus: int | None) -> int:
    """Torch threads for a run: the preference, or for 0 every core but one.

    The spare core keeps Blender's UI responsive while the engine computes; a small model on a
    busy machine is often faster with fewer threads too.
    """
    if preference > 0:
        return preference
    return max(1, (cpus or 1) - 1)


def plane_for(context: bpy.types.Context, settings, canvas=None) -> placement.Plane:
    """The canvas plane for the chosen placement (camera fit or front plane at the cursor);
    ``canvas`` (w, h) when it is not the Canvas setting (a continued drawing's)."""
    w, h = canvas if canvas is not None else (settings.canvas[0], settings.canvas[1])
    scene = context.scene
    if settings.placement == "CAMERA":
        cam = scene.camera
        if cam is None or cam.type != 'CAMERA':
            raise RunRefused("'Fit Camera View' needs an active camera in the scene")
        corners = [tuple(v) for v in cam.data.view_frame(scene=scene)]
        return placement.camera_plane([list(r) for r in cam.matrix_world], corners, cam.data.type == 'ORTHO',
                                      settings.camera_distance, w, h)
    cursor = scene.cursor
    return placement.front_plane(tuple(cursor.location), [list(r) for r in cursor.matrix.to_3x3()],
                                 settings.plane_width, w, h)


IMAGE_KEYS = {"STYLE": ("style_image", "style image"), "SKETCH": ("image", "source image")}


def check_settings(settings, continuing: bool = False) -> None:
    """Refuse settings the chosen method cannot run with, before anything is made (``continuing``:
    the canvas is the continued drawing's, not the Canvas setting)."""
    method = settings.method
    if properties.uses_keyed_prompts(settings):
        check_keyed_prompts(settings)
    elif method != "SKETCH" and not settings.prompt.strip():
        hint = " (Text + Style Image draws the prompt in the style of the image)" if method == "STYLE" else ""
        raise RunRefused(f"the prompt is empty: type what to draw{hint}")
    if method == "SKETCH" and settings.canvas[0] != settings.canvas[1] and not continuing:
        raise RunRefused(f"Image to Sketch needs a square canvas, not {settings.canvas[0]}x{settings.canvas[1]}: "
                         "give width and height the same size (the image is letterboxed into it)")
    if properties.uses_camera(settings) and continuing:
        raise RunRefused("the Camera source sketches a new animation: turn Continue from Active off")


def begin_shot(context: bpy.types.Context) -> camera_shot.CameraShot:
    """The Camera source's frames to render, checked before anything is rendered (RunRefused says why).

    The caller renders them (``render_next`` from a timer, or ``render_all``) and passes the shot
    to ``start``, which takes over its folder.
    """
    if session.current() is not None:
        raise RunRefused("a drawing is already running: cancel it first")
    settings = context.scene.clipdraw
    check_settings(settings, continuing=settings.continue_active)
    ladder_of(settings)
    try:
        spec = camera_shot.spec_from(settings, context.scene)
        camera_shot.check(context.scene, context.view_layer, spec)
    except camera_shot.ShotRefused as e:
        raise RunRefused(str(e)) from None
    return camera_shot.CameraShot(context.scene, context.view_layer, spec, image_inputs.JobFolder())


def render_shot(shot: camera_shot.CameraShot, log: session.Log | None = None,
                should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Every frame of ``shot`` at once (background mode); False if stopped. RunRefused if a render
    fails; the shot is discarded then and when stopped."""
    try:
        finished = shot.render_all(log, should_stop)
    except camera_shot.ShotRefused as e:
        shot.discard()
        raise RunRefused(str(e)) from None
    if not finished:
        shot.discard()
    return finished


def check_keyed_prompts(settings) -> None:
    """Each keyed prompt says something, on a frame of its own."""
    seen: set[int] = set()
    for frame, prompt in properties.keyed_list(settings):
        if not prompt.strip():
            raise RunRefused(f"the keyed prompt on frame {frame} is empty: type what to draw there, or remove it")
        if frame in seen:
            raise RunRefused(f"two keyed prompts are on frame {frame}: give each its own frame")
        seen.add(frame)


def ladder_of(settings) -> list[int]:
    """The Ladder setting's stroke counts (RunRefused if they are not numbers)."""
    try:
        return properties.ladder_counts(settings.ladder)
    except ValueError as e:
        raise RunRefused(str(e)) from None


def continuation_for(context: bpy.types.Context, settings, folder: image_inputs.JobFolder,
                     init_file: str = "", lock=()) -> continuation.Continuation | None:
    """The drawing the run continues (``init_file``, else the active object when Continue from
    Active is on), checked and written to the job's folder; None for a fresh drawing."""
    try:
        if init_file:
            cont = continuation.from_file(bpy.path.abspath(init_file), lock)
        elif settings.continue_active:
            cont = continuation.from_active(context, settings.keep, tuple(settings.canvas))
        else:
            return None
        if settings.method == "SKETCH" and cont.canvas[0] != cont.canvas[1]:
            raise continuation.ContinueRefused(f"Image to Sketch continues square drawings only; this one is "
                                               f"{cont.canvas[0]}x{cont.canvas[1]}")
        continuation.check(cont, settings.add_strokes, ladder_of(settings))
        return continuation.write(cont, folder)
    except continuation.ContinueRefused as e:
        raise RunRefused(str(e)) from None
    except OSError as e:  # the temporary folder cannot take the drawing (a full disk)
        raise RunRefused(f"cannot write the drawing to continue: {e.strerror or e}") from None


def resolve_images(settings, folder: image_inputs.JobFolder) -> dict[str, image_inputs.ResolvedImage]:
    """The method's image input as a file, keyed by its request key (datablocks written to ``folder``)."""
    if settings.method not in IMAGE_KEYS:
        return {}
    if properties.uses_camera(settings):  # the frames are rendered instead (camera_shot)
        return {}
    key, what = IMAGE_KEYS[settings.method]
    choice = settings.style_image if settings.method == "STYLE" else settings.source_image
    try:
        return {key: image_inputs.resolve(choice, what, folder)}
    except image_inputs.ImageInputError as e:
        raise RunRefused(str(e)) from None


def recorded_request(request: dict, images: dict[str, image_inputs.ResolvedImage],
                     cont: continuation.Continuation | None = None) -> dict:
    """The request as stored on the result: a temporary PNG is gone after the run, so a datablock
    is named the way Python reaches it, and a file keeps its path (a continued drawing likewise:
    its object and frame, or its file)."""
    out = dict(request)
    for key, image in images.items():
        out[key] = f"bpy.data.images[{image.label!r}]" if image.source == "IMAGE" else image.path
    if cont is not None:
        out["init"] = cont.source
    return out


def result_name(settings, request: dict, images: dict[str, image_inputs.ResolvedImage]) -> str:
    if "frames" in request:
        numbers = request["frame_numbers"]
        return f"CLIPDraw sketch {bpy.context.scene.camera.name} {numbers[0]}-{numbers[-1]}"[:60]
    if settings.method == "SKETCH":
        return ("CLIPDraw sketch " + os.path.basename(images["image"].label))[:60]
    if "keyed_prompts" in request:
        keys = request["keyed_prompts"]
        ends = keys[:1] + keys[-1:] if len(keys) > 1 else keys
        return ("CLIPDraw " + " to ".join(p.strip() for _, p in ends))[:60]
    return ("CLIPDraw " + request["prompt"].strip())[:60]


def shot_plane(scene: bpy.types.Scene, settings, shot: camera_shot.CameraShot) -> placement.Plane:
    """The square canvas in the camera's own space, so that the picture letterboxed into it lies
    exactly on the camera frame (at the Distance setting)."""
    cam = scene.camera
    corners = [tuple(v) for v in cam.data.view_frame(scene=scene)]
    w, h = shot.size
    picture = placement.camera_plane(np.eye(4), corners, cam.data.type == 'ORTHO', settings.camera_distance, w, h)
    return placement.letterboxed_plane(picture, w, h, shot.spec.canvas)


def output_spec(context: bpy.types.Context, settings, request: dict, follow: bool,
                images: dict[str, image_inputs.ResolvedImage] | None = None,
                cont: continuation.Continuation | None = None,
                shot: camera_shot.CameraShot | None = None) -> results.OutputSpec:
    """The builder's instructions, checked against the scene (replace target, camera); a drawing
    read from an object is continued on its own plane; a camera sketch is parented to its camera."""
    images = images or {}
    replace = None
    if settings.target == "REPLACE":
        obj = context.active_object
        want = results.object_type_for(settings.output)
        if obj is None:
            raise RunRefused("'Replace Active' needs an active object: select one, or choose 'New Object'")
        if obj.type != want:
            raise RunRefused(f"the active object '{obj.name}' is a {obj.type}, not a {want} object: "
                             "select one, switch the output type, or choose 'New Object'")
        replace = obj.name
    recorded = recorded_request(request, images, cont)
    props = {k: v for k, v in recorded.items() if k not in rules.NOT_RECORDED}
    for key, image in images.items():
        props[key] = image.label
        props[key + "_source"] = image.source
    if shot is not None:  # the frames were temporary files: the record names the shot instead
        label = (f"bpy.data.objects[{context.scene.camera.name!r}] frames "
                 f"{shot.frame_numbers[0]}-{shot.frame_numbers[-1]}")
        del recorded["frames"]
        recorded["shot"] = props["shot"] = label
        for key in ("frames", "frame_numbers"):  # the writer records the frame range and the finished frames
            props.pop(key, None)
    props["request"] = recorded
    canvas = tuple(request["canvas"])
    keyed = request.get("keyed_prompts") or []
    stages = "LADDER" if request.get("ladder") else "KEYED" if keyed else "NONE"
    key_frames = tuple(int(f) for f, _ in keyed)
    parent = ""
    if shot is not None:
        plane, parent = shot_plane(context.scene, settings, shot), context.scene.camera.name
        stages, key_frames = "FRAMES", tuple(shot.frame_numbers)
    elif cont is not None and cont.plane is not None:
        plane = cont.plane
    else:
        plane = plane_for(context, settings, canvas)
    if replace is None and cont is None and shot is None and settings.placement == "CURSOR":
        plane = placement.beside(plane, result_centres(context.scene))
    return results.OutputSpec(
        output=settings.output, plane=plane,
        name=result_name(settings, request, images), keyframes=settings.animation == "KEYFRAMES",
        start_frame=settings.start_frame, frames_per_snapshot=settings.frames_per_snapshot,
        replace=replace, follow=follow, properties=props, overlay=overlay_spec(settings, plane, images, canvas[0]),
        stages=stages, ladder=tuple(request.get("ladder") or ()), key_frames=key_frames, parent=parent,
    )


def result_centres(scene: bpy.types.Scene) -> list[tuple[float, float, float]]:
    """Where the earlier results of this add-on in the scene are (their objects sit at their canvas' centre)."""
    return [tuple(o.matrix_world.translation) for o in scene.objects
            if results.CANVAS_SIZE_PROP in o or results.PROP_PREFIX + "run_id" in o]


def overlay_spec(settings, plane: placement.Plane, images: dict[str, image_inputs.ResolvedImage],
                 canvas: int | None = None) -> overlay.OverlaySpec | None:
    """The source image under a sketch, if asked for (``canvas``: the square canvas' side)."""
    if settings.method != "SKETCH" or not settings.show_overlay or "image" not in images:
        return None
    image = images["image"]
    return overlay.OverlaySpec(plane=plane, canvas=canvas or settings.canvas[0], label=image.label,
                               image_name=image.image_name, image_path=image.path if image.source == "FILE" else "")


def make_job(request: dict, choice: RunnerChoice) -> bridge.Job:
    """The job for ``request`` on the chosen runner (AUTO: in-process when torch imports here).

    Offline mode travels in the request (``offline``), never through Blender's environment; the
    worker process also gets HF_HUB_OFFLINE, in its own environment, for libraries that read it.
    """
    runner = choice.runner
    problem = engine_path.in_process_problem() if runner in ("AUTO", "IN_PROCESS") else "not asked for"
    if runner == "IN_PROCESS" and problem:
        raise RunRefused(f"the in-process runner cannot be used: {problem} (choose 'Worker Process')")
    if runner == "IN_PROCESS" or (runner == "AUTO" and problem is None):
        return bridge.InProcessJob(request, _lazy_run_job)
    root = engine_path.engine_root()
    if root is None:
        raise RunRefused("the engine (synth_core) is not installed with the add-on: reinstall the extension")
    python = engine_path.worker_python(choice.python, choice.managed_venv)
    env = bridge.worker_environment(root)
    if request.get("offline"):
        env["HF_HUB_OFFLINE"] = "1"
    return bridge.SubprocessJob(request, python, root, env=env)


def _lazy_run_job(request: dict, should_stop: Callable[[], bool]):
    """Imports the engine (and torch) on the job's thread, not on Blender's main thread."""
    return engine_path.load_run_job()(request, should_stop)


def start(context: bpy.types.Context, choice: RunnerChoice, follow: bool, log: session.Log | None = None,
          live_preview: bool = True, init_file: str = "", lock=(),
          shot: camera_shot.CameraShot | None = None) -> session.RunSession:
    """Validate the scene's settings and start a run; RunRefused says why it cannot.

    ``init_file`` continues that drawing file with the strokes ``lock`` names kept (scripts);
    otherwise Continue from Active, when on, continues the active object. With the Camera
    source, ``shot`` holds the rendered frames (``begin_shot``); without one they are rendered
    here, all at once (background mode). The run takes over the shot's folder.
    """
    if session.current() is not None:
        raise RunRefused("a drawing is already running: cancel it first")
    settings = context.scene.clipdraw
    check_settings(settings, continuing=bool(init_file) or settings.continue_active)
    ladder_of(settings)
    if properties.uses_camera(settings) and shot is None:
        shot = begin_shot(context)
        if not render_shot(shot, log):
            raise RunRefused("stopped while rendering the camera's frames")
    folder = shot.folder if shot is not None else image_inputs.JobFolder()
    try:
        if shot is not None and not shot.done:
            raise RunRefused("the camera's frames are not all rendered")
        images = resolve_images(settings, folder)
        cont = continuation_for(context, settings, folder, init_file, lock)
        request = properties.request_from(settings, device=choice.device.lower(), cache_dir=choice.cache_dir,
                                          live_preview=live_preview, images={k: v.path for k, v in images.items()},
                                          threads=choice.threads, offline=not choice.online,
                                          precision=choice.precision.lower(),
                                          init=cont.request_fields() if cont is not None else None,
                                          frames=shot.rendered if shot is not None else ())
        check_request(request)
        spec = output_spec(context, settings, request, follow, images, cont, shot)
        job = make_job(request, choice)
    except BaseException:
        folder.remove()
        raise
    if folder.path is not None:
        job.own(folder.path)
    return session.begin(session.RunSession(job, results.ResultWriter(context.scene, spec), request, log))


def check_request(request: dict) -> None:
    """The engine's own validation, here and now: a bad setting is refused before anything starts."""
    try:
        rules.parse_request(request)
    except rules.BadRequest as e:
        raise RunRefused(str(e)) from None
