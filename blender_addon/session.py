"""A running generation in Blender: applying the job's events to the scene, and what the UI shows.

``RunSession.pump`` runs on the main thread (the modal operator's timer, or the blocking loop in
background mode) and applies the job's events (``synth_core.wire``: a closed, versioned set) to
the scene: snapshots (with the timeline ``frame`` keyed prompts give them), finished ``stage``s
(a ladder's level, a keyed prompt's drawing) and the final drawing. Starting a run is
``launch``'s job. The current session is kept here so that the panel, the Cancel operator and
the file-load / quit handlers can reach it; a finished run leaves its summary in ``last_run``.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from . import bridge, engine_path, results

Log = Callable[[str], None]
wire = engine_path.import_engine("wire")
OFFLINE_HINT = ("; Blender's online access is off, so nothing is downloaded: allow it in Preferences > System > "
                "Network, or put the weights in the model cache folder")
METHOD_NAMES = {"clipdraw": "CLIPDraw", "styleclipdraw": "StyleCLIPDraw", "clipasso": "CLIPasso", "pixels": "Pixels"}


@dataclass
class RunSummary:
    """What the panel shows about the last run once it is over."""

    status: str = ""  # 'finished', 'cancelled', 'failed' or '' (none yet)
    message: str = ""
    error: str = ""
    object_name: str = ""
    drawing: object = None  # the final synth_core Drawing (None if the run produced none)
    refused: bool = False  # the run never started: its settings were refused (scripts exit 2)
    error_kind: str = ""  # the engine's error kind (wire.ERROR_KINDS), when it sent one


class RunSession:
    """A running generation; all methods are called on Blender's main thread."""

    def __init__(self, job: bridge.Job, writer: results.ResultWriter, request: dict, log: Log | None = None):
        self.job = job
        self.offline = bool(request.get("offline", False))
        self.writer = writer
        self.request = request
        self.method_name = METHOD_NAMES.get(str(request.get("method", "clipdraw")), "CLIPDraw")
        self.log = log
        self.status = "running"  # then 'finished', 'cancelled' or 'failed'
        self.step = 0
        self.steps = int(request.get("steps", 0))
        self.loss: float | None = None
        self.eta_s: float | None = None
        self.device = ""
        self.error = ""
        self.error_kind = ""
        self.stage = ""  # the label of the last finished stage ("32 strokes", "frame 48: a blue square")
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
        """'CLIPasso: step 40/300 · loss -0.312 · ETA 12 s' for the status bar and the panel."""
        parts = [f"step {self.step}/{self.steps}"]
        if self.stage:
            parts.append(f"done: {self.stage}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.3f}")
        if self.eta_s is not None and self.running:
            parts.append(f"ETA {_duration(self.eta_s)}")
        if self.job.cancel_requested and self.running:
            parts.append("cancelling")
        return f"{self.method_name}: " + " · ".join(parts)

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
        if kind == wire.STARTED:
            self._started_event(ev)
        elif kind == wire.WARNING:
            self._say("WARNING", str(ev.get("message", "")))
        elif kind == wire.PROGRESS:
            self.step = int(ev.get("step", self.step))
            self.steps = max(self.steps, int(ev.get("steps", 0)))  # the tidy pass runs past the request's steps
            self.loss = ev.get("loss")
            self.eta_s = ev.get("eta_s")
            self._print(self.status_line(), throttle=True)
        elif kind == wire.SNAPSHOT:
            step = int(ev.get("step", 0))
            self.step = max(self.step, step)
            drawing = self._drawing(ev)
            if drawing is not None:
                self._write(lambda: self.writer.add(drawing, step, frame=_frame(ev)))
        elif kind == wire.STAGE:
            self._stage_event(ev)
        elif kind == wire.DONE:
            self._done(ev)
        elif kind == wire.ERROR:
            self.error_kind = str(ev.get("kind") or "")
            hint = OFFLINE_HINT if self.offline and self.error_kind == "missing_weights" else ""
            self._fail(f"{ev.get('message', 'unknown error')}{hint}")
        else:
            self._say("WARNING", wire.unknown_kind(ev))

    def _started_event(self, ev: dict) -> None:
        """Check that the engine speaks this add-on's protocol before reading anything else from it."""
        problem = wire.started_problem(ev)
        if problem:
            self.job.cancel()
            self._fail(problem)
            return
        self.steps = int(ev.get("steps", self.steps))
        self.device = str(ev.get("device", ""))
        self._print(f"{self.method_name}: started on {self.device} with {ev.get('model', '?')}")

    def _stage_event(self, ev: dict) -> None:
        """A finished part of a run: kept by the writer (a level, or a keyed prompt's drawing)."""
        stage = results.Stage(index=int(ev.get("index", 0)), stages=int(ev.get("stages", 1)),
                              step=int(ev.get("step", self.step)), label=str(ev.get("label", "")),
                              frame=_frame(ev), prompt=ev.get("prompt"))
        self.step = max(self.step, stage.step)
        drawing = self._drawing(ev)
        if drawing is None:
            return
        if self._write(lambda: self.writer.stage(drawing, stage)):
            self.stage = stage.label
            count = "" if self.writer.spec.stages == "FRAMES" else f" ({stage.index + 1} of {stage.stages})"
            self._print(f"{self.method_name}: {stage.label}{count}")  # a frame's label says it: "frame 3/24"

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
        return RunSummary(self.status, self.status_line(), self.error, self.object_name(), self.drawing,
                          error_kind=self.error_kind)


def _frame(ev: dict) -> int | None:
    """The timeline frame an event carries (keyed prompts), or None."""
    frame = ev.get("frame")
    return frame if isinstance(frame, int) and not isinstance(frame, bool) else None


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
    rendering: object | None = None  # the Camera source's frames being rendered before a run starts


_state = _State()


def current() -> RunSession | None:
    """The running session, if any."""
    s = _state.current
    return s if s is not None and s.running else None


def rendering():
    """The camera shot being rendered before its run starts (``camera_shot.CameraShot``), if any."""
    return _state.rendering


def set_rendering(shot) -> None:
    """The Run operator renders ``shot`` now (None: it is done or discarded)."""
    _state.rendering = shot


def last_run() -> RunSummary:
    s = _state.current
    return s.summary() if s is not None else _state.last


def begin(session: RunSession) -> RunSession:
    """Make ``session`` the current run (``launch.start`` calls this once the job is running)."""
    _state.current = session
    return session


def set_last_error(message: str) -> None:
    """A run that could not even start still shows its reason in the panel."""
    _state.last = RunSummary("failed", "", message, "", refused=True)
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
