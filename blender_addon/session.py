"""One generation in Blender: the engine job, the result writer, and what the UI shows.

``start`` copies Blender state into plain values (request, output spec) at one boundary,
picks a runner and starts the job. ``RunSession.pump`` runs on the main thread (the modal
operator's timer, or the blocking loop in background mode) and applies the job's events to
the scene. The current session is kept here so that the panel, the Cancel operator and the
file-load / quit handlers can reach it; a finished run leaves its summary in ``last_run``.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import bpy

from . import bridge, engine_path, image_inputs, overlay, placement, properties, results

Log = Callable[[str], None]


class RunRefused(RuntimeError):
    """The run cannot start; the message says what to change."""


@dataclass
class RunSummary:
    """What the panel shows about the last run once it is over."""

    status: str = ""  # 'finished', 'cancelled', 'failed' or '' (none yet)
    message: str = ""
    error: str = ""
    object_name: str = ""
    drawing: object = None  # the final synth_core Drawing (None if the run produced none)


class RunSession:
    """A running generation; all methods are called on Blender's main thread."""

    def __init__(self, job: bridge.Job, writer: results.ResultWriter, request: dict, log: Log | None = None,
                 offline: bool = False):
        self.job = job
        self.offline = offline
        self.writer = writer
        self.request = request
        self.log = log
        self.status = "running"  # then 'finished', 'cancelled' or 'failed'
        self.step = 0
        self.steps = int(request.get("steps", 0))
        self.loss: float | None = None
        self.eta_s: float | None = None
        self.device = ""
        self.error = ""
        self.messages: list[tuple[str, str]] = []  # (report type, text) not yet shown to the user
        self._started = time.monotonic()
        self._last_log = 0.0
        self._writer_dead = False
        self.drawing = None  # the newest Drawing received (the final one once done)

    # -- state ---------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def factor(self) -> float:
        return min(1.0, self.step / self.steps) if self.steps else 0.0

    def status_line(self) -> str:
        """'CLIPDraw: step 40/300 · loss -0.312 · ETA 12 s' for the status bar and the panel."""
        parts = [f"step {self.step}/{self.steps}"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if self.eta_s is not None and self.running:
            parts.append(f"ETA {_duration(self.eta_s)}")
        if self.job.cancel_requested and self.running:
            parts.append("cancelling")
        return "CLIPDraw: " + " · ".join(parts)

    def take_messages(self) -> list[tuple[str, str]]:
        out, self.messages = self.messages, []
        return out

    # -- driving -----------------------------------------------------------------------------
    def pump(self, budget_s: float | None = 0.1) -> bool:
        """Apply the events that have arrived (for at most ``budget_s``); True while running."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        while self.running:
            events = self.job.poll(limit=1)
            if not events:
                break
            try:
                self._apply(events[0])
            except Exception as e:  # a bug here must not leave the job running or the UI stuck
                traceback.print_exc()
                self.job.cancel()
                self._fail(f"{type(e).__name__}: {e} (an add-on error; the traceback is in the console)")
            if deadline is not None and time.monotonic() > deadline:
                break
        return self.running

    def cancel(self) -> None:
        """Ask the engine to stop after its current step (pressing it again changes nothing)."""
        if self.running and not self.job.cancel_requested:
            self.job.cancel()
            self._say("INFO", "Cancelling after the current step")

    def close(self, timeout: float = 5.0) -> None:
        """Stop the job for good (file closed, Blender quitting, add-on disabled)."""
        self.job.close(timeout)
        if self.running:
            self.status = "cancelled"

    def _apply(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "started":
            self.steps = int(ev.get("steps", self.steps))
            self.device = str(ev.get("device", ""))
            self._print(f"CLIPDraw: started on {self.device} with {ev.get('model', '?')}")
        elif kind == "warning":
            self._say("WARNING", str(ev.get("message", "")))
        elif kind == "progress":
            self.step = int(ev.get("step", self.step))
            self.loss = ev.get("loss")
            self.eta_s = ev.get("eta_s")
            self._print(self.status_line(), throttle=True)
        elif kind == "snapshot":
            step = int(ev.get("step", 0))
            self.step = max(self.step, step)
            drawing = self._drawing(ev)
            if drawing is not None:
                self._write(lambda: self.writer.add(drawing, step))
        elif kind == "done":
            self._done(ev)
        elif kind == "error":
            hint = OFFLINE_HINT if self.offline and ev.get("kind") == "missing_weights" else ""
            self._fail(f"{ev.get('message', 'unknown error')}{hint}")

    def _drawing(self, ev: dict):
        """The event's Drawing; None if it has none (then a warning) or cannot be read (then failed)."""
        if ev.get("drawing") is None:
            if "image" in ev:
                self._say("WARNING", "this method produces images, which the add-on cannot build yet")
            return None
        try:
            self.drawing = engine_path.drawing_from_dict(ev["drawing"])
        except ValueError as e:  # DrawingFormatError: the engine and the add-on disagree on the format
            self.job.cancel()
            self._fail(f"the engine sent a drawing the add-on cannot read ({e}): the run was cancelled")
            return None
        return self.drawing

    def _write(self, action: Callable[[], object]) -> bool:
        """Run a writer action; a deleted result object cancels the run. True if it was written."""
        if self._writer_dead:
            return False
        try:
            action()
            return True
        except results.TargetLost as e:
            self._writer_dead = True
            self.job.cancel()
            self._fail(f"{e}: the run was cancelled")
            return False
        finally:
            notes, self.writer.notes = self.writer.notes, []
            for note in notes:
                self._say("WARNING", note)

    def _done(self, ev: dict) -> None:
        step = int(ev.get("step", self.step))
        self.step = step
        cancelled = bool(ev.get("cancelled"))
        drawing = self._drawing(ev)
        if not self.running:  # the final drawing was unreadable
            return
        if not self._write(lambda: self.writer.finish(drawing, step, cancelled)):
            return
        self.status = "cancelled" if cancelled else "finished"
        self._print(self.status_line())
        what = f"cancelled at step {step}" if cancelled else f"finished ({step} steps)"
        self._say("INFO", f"Drawing {what} in {_duration(time.monotonic() - self._started)}")

    def _fail(self, message: str) -> None:
        if not self.running:
            return
        self.error = message
        self.status = "failed"
        if not self._writer_dead:
            try:
                self.writer.abort(message)
            except results.TargetLost:
                pass
        kept = "; the object keeps its last good drawing" if self.object_name() else ""
        self._say("ERROR", message + kept)

    def object_name(self) -> str:
        try:
            obj = self.writer.object
        except results.TargetLost:
            return ""
        return obj.name if obj is not None else ""

    def _say(self, level: str, text: str) -> None:
        """A message for the user: the operator reports it (in background mode Blender prints it)."""
        self.messages.append((level, text))

    def _print(self, text: str, throttle: bool = False) -> None:
        if self.log is None:
            return
        now = time.monotonic()
        if throttle and now - self._last_log < 1.0:
            return
        self._last_log = now
        self.log(text)

    def summary(self) -> RunSummary:
        return RunSummary(self.status, self.status_line(), self.error, self.object_name(), self.drawing)


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"


# -- the current session --------------------------------------------------------------------
@dataclass
class _State:
    current: RunSession | None = None
    last: RunSummary = field(default_factory=RunSummary)


_state = _State()


def current() -> RunSession | None:
    """The running session, if any."""
    s = _state.current
    return s if s is not None and s.running else None


def last_run() -> RunSummary:
    s = _state.current
    return s.summary() if s is not None else _state.last


def set_last_error(message: str) -> None:
    """A run that could not even start still shows its reason in the panel."""
    _state.last = RunSummary("failed", "", message, "")
    if _state.current is not None and not _state.current.running:
        _state.current = None


def release(session: RunSession) -> None:
    """Forget a finished session (keeping its summary) and free its job."""
    session.close(timeout=1.0)
    if _state.current is session:
        _state.last = session.summary()
        _state.current = None


def stop_all(timeout: float = 3.0) -> None:
    """Stop the running job: called when a file is loaded, the add-on disabled or Blender quits."""
    s = _state.current
    if s is not None:
        s.close(timeout)
        _state.last = s.summary()
        _state.current = None


# -- starting --------------------------------------------------------------------------------
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


def engine_threads(preference: int, cpus: int | None) -> int:
    """Torch threads for a run: the preference, or for 0 every core but one.

    The spare core keeps Blender's UI responsive while the engine computes; a small model on a
    busy machine is often faster with fewer threads too.
    """
    if preference > 0:
        return preference
    return max(1, (cpus or 1) - 1)


def plane_for(context: bpy.types.Context, settings) -> placement.Plane:
    """The canvas plane for the chosen placement (camera fit or front plane at the cursor)."""
    w, h = settings.canvas[0], settings.canvas[1]
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
NOT_RECORDED = ("device", "cache_dir", "snapshot_every", "threads")  # how it ran, not what it made


def check_settings(settings) -> None:
    """Refuse settings the chosen method cannot run with, before anything is made."""
    method = settings.method
    if method != "SKETCH" and not settings.prompt.strip():
        hint = " (Text + Style Image draws the prompt in the style of the image)" if method == "STYLE" else ""
        raise RunRefused(f"the prompt is empty: type what to draw{hint}")
    if method == "SKETCH" and settings.canvas[0] != settings.canvas[1]:
        raise RunRefused(f"Image to Sketch needs a square canvas, not {settings.canvas[0]}x{settings.canvas[1]}: "
                         "give width and height the same size (the image is letterboxed into it)")


def resolve_images(settings, folder: image_inputs.JobFolder) -> dict[str, image_inputs.ResolvedImage]:
    """The method's image input as a file, keyed by its request key (datablocks written to ``folder``)."""
    if settings.method not in IMAGE_KEYS:
        return {}
    key, what = IMAGE_KEYS[settings.method]
    choice = settings.style_image if settings.method == "STYLE" else settings.source_image
    try:
        return {key: image_inputs.resolve(choice, what, folder)}
    except image_inputs.ImageInputError as e:
        raise RunRefused(str(e)) from None


def recorded_request(request: dict, images: dict[str, image_inputs.ResolvedImage]) -> dict:
    """The request as stored on the result: a temporary PNG is gone after the run, so a datablock
    is named the way Python reaches it, and a file keeps its path."""
    out = dict(request)
    for key, image in images.items():
        out[key] = f"bpy.data.images[{image.label!r}]" if image.source == "IMAGE" else image.path
    return out


def result_name(settings, request: dict, images: dict[str, image_inputs.ResolvedImage]) -> str:
    if settings.method == "SKETCH":
        return ("CLIPDraw sketch " + os.path.basename(images["image"].label))[:60]
    return ("CLIPDraw " + request["prompt"].strip())[:60]


def output_spec(context: bpy.types.Context, settings, request: dict, follow: bool,
                images: dict[str, image_inputs.ResolvedImage] | None = None) -> results.OutputSpec:
    """The builder's instructions, checked against the scene (replace target, camera)."""
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
    props = {k: v for k, v in recorded_request(request, images).items() if k not in NOT_RECORDED}
    for key, image in images.items():
        props[key] = image.label
        props[key + "_source"] = image.source
    props["request"] = recorded_request(request, images)
    plane = plane_for(context, settings)
    return results.OutputSpec(
        output=settings.output, plane=plane,
        name=result_name(settings, request, images), keyframes=settings.animation == "KEYFRAMES",
        start_frame=settings.start_frame, frames_per_snapshot=settings.frames_per_snapshot,
        replace=replace, follow=follow, properties=props, overlay=overlay_spec(settings, plane, images),
    )


def overlay_spec(settings, plane: placement.Plane, images: dict[str, image_inputs.ResolvedImage]
                 ) -> overlay.OverlaySpec | None:
    """The source image under a sketch, if asked for."""
    if settings.method != "SKETCH" or not settings.show_overlay or "image" not in images:
        return None
    image = images["image"]
    return overlay.OverlaySpec(plane=plane, canvas=settings.canvas[0], label=image.label,
                               image_name=image.image_name, image_path=image.path if image.source == "FILE" else "")


def make_job(request: dict, choice: RunnerChoice) -> bridge.Job:
    """The job for ``request`` on the chosen runner (AUTO: in-process when torch imports here)."""
    runner = choice.runner
    problem = engine_path.in_process_problem() if runner in ("AUTO", "IN_PROCESS") else "not asked for"
    if runner == "IN_PROCESS" and problem:
        raise RunRefused(f"the in-process runner cannot be used: {problem} (choose 'Worker Process')")
    if runner == "IN_PROCESS" or (runner == "AUTO" and problem is None):
        if choice.online:  # the engine reads this at load time: Blender's setting, process-wide
            os.environ.pop(OFFLINE_FLAG, None)
        else:
            os.environ[OFFLINE_FLAG] = "1"
        return bridge.InProcessJob(request, _lazy_run_job)
    root = engine_path.engine_root()
    if root is None:
        raise RunRefused("the engine (synth_core) is not installed with the add-on: reinstall the extension")
    python = engine_path.worker_python(choice.python, choice.managed_venv)
    env = bridge.worker_environment(root)
    if not choice.online:
        env.update({OFFLINE_FLAG: "1", "HF_HUB_OFFLINE": "1"})
    return bridge.SubprocessJob(request, python, root, env=env)


OFFLINE_FLAG = "SYNTH_OFFLINE"  # the engine never touches the network while this is set
OFFLINE_HINT = ("; Blender's online access is off, so nothing is downloaded: allow it in Preferences > System > "
                "Network, or put the weights in the model cache folder")


def _lazy_run_job(request: dict, should_stop: Callable[[], bool]):
    """Imports the engine (and torch) on the job's thread, not on Blender's main thread."""
    return engine_path.load_run_job()(request, should_stop)


def start(context: bpy.types.Context, choice: RunnerChoice, follow: bool, log: Log | None = None,
          live_preview: bool = True) -> RunSession:
    """Validate the scene's settings and start a run; RunRefused says why it cannot.

    Everything the job needs is copied here, on the main thread, before it starts: the request
    (with image datablocks written to files in the job's own folder) and the output spec.
    """
    if current() is not None:
        raise RunRefused("a drawing is already running: cancel it first")
    settings = context.scene.clipdraw
    check_settings(settings)
    folder = image_inputs.JobFolder()
    try:
        images = resolve_images(settings, folder)
        request = properties.request_from(settings, device=choice.device.lower(), cache_dir=choice.cache_dir,
                                          live_preview=live_preview, images={k: v.path for k, v in images.items()},
                                          threads=choice.threads)
        spec = output_spec(context, settings, request, follow, images)
        job = make_job(request, choice)
    except BaseException:
        folder.remove()
        raise
    if folder.path is not None:
        job.own(folder.path)
    session = RunSession(job, results.ResultWriter(context.scene, spec), request, log, offline=not choice.online)
    _state.current = session
    return session
