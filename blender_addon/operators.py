"""Operators: Run (modal in the UI, blocking in background mode), Cancel, Restore Defaults, and
adding and removing keyed prompts.

The Run operator is thin: ``launch.start`` validates and starts the job, ``RunSession.pump``
applies its events. With the Camera source it first renders the camera's frames
(``camera_shot``), one per timer tick so the UI stays live ("Rendering camera frame 3/24"; ESC
or Cancel stops and removes them), then starts the job on them. In the UI a 0.1 s timer drives the pump, ESC cancels, and the timer and the
status text are removed on every way out; under ``bpy.app.background`` the operator blocks until
the job is over, so ``blender -b -P`` scripts and render farms work. One run is one undo step.
"""

import threading
import time

import bpy
from bpy.props import StringProperty
from bpy.types import Context, Event, Operator

from . import camera_shot, launch, preferences, properties, session

TIMER_S = 0.1
_stop_blocking = threading.Event()


def stop_blocking_run() -> None:
    """Ask the blocking (background-mode) run to stop after its current step, keeping its drawing.

    For signal handlers (scripts/render.py's SIGTERM and SIGINT): it only sets a flag, which the
    blocking loop turns into a cancel at its next turn, also when the run was still starting.
    """
    _stop_blocking.set()


def _redraw(context: Context) -> None:
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type in {'VIEW_3D', 'PROPERTIES', 'DOPESHEET_EDITOR', 'TIMELINE'}:
            area.tag_redraw()


def _print_line(text: str) -> None:
    print(text, flush=True)


class CLIPDRAW_OT_run(Operator):
    """Draw the prompt with CLIP into a Grease Pencil or curve object (ESC cancels)"""

    bl_idname = "clipdraw.run"
    bl_label = "Draw with CLIP"
    bl_options = {'REGISTER', 'UNDO'}  # scene data changes: the whole run is one undo step

    # for scripts (scripts/render.py --init): continue a drawing file instead of the panel's choice
    init_file: StringProperty(name="Continue File", description="A drawing (.json or .svg) to continue; its "
                              "canvas is used", default="", subtype='FILE_PATH', options={'HIDDEN', 'SKIP_SAVE'})
    lock: StringProperty(name="Keep Strokes", description="Strokes of the continued file that never change: "
                         "indices and ranges, e.g. 0-5,8", default="", options={'HIDDEN', 'SKIP_SAVE'})

    _timer = None
    _session = None
    _shot = None  # the Camera source's frames while they are rendered, before the job starts

    @classmethod
    def poll(cls, context: Context) -> bool:
        if session.current() is not None or session.rendering() is not None:
            cls.poll_message_set("A drawing is already running: cancel it first")
            return False
        if getattr(context, "scene", None) is None:
            cls.poll_message_set("No scene to draw into")
            return False
        return True

    def invoke(self, context: Context, event: Event) -> set[str]:
        return self.execute(context)

    def execute(self, context: Context) -> set[str]:
        blocking = bpy.app.background or context.window is None
        try:
            shot = self._render_shot_now(context) if blocking else self._begin_shot(context)
            if shot is False:  # stopped while rendering the camera's frames
                return {'CANCELLED'}
            if shot is not None and not blocking:
                return self._start_modal(context, self._shot.status_line())
            run = self._start(context, blocking, shot)
        except launch.RunRefused as e:
            return self._refused(str(e))
        self._session = run
        if blocking:
            return self._block(context, run)
        return self._start_modal(context, run.status_line())

    def _start(self, context: Context, blocking: bool, shot=None) -> session.RunSession:
        return launch.start(context, preferences.runner_choice(context), follow=not blocking,
                            log=_print_line if blocking else None, live_preview=not blocking,
                            init_file=self.init_file, lock=_locks(self.lock), shot=shot)

    def _refused(self, message: str) -> set[str]:
        _stop_blocking.clear()
        session.set_last_error(message)
        self.report({'ERROR'}, message)
        return {'CANCELLED'}

    def _start_modal(self, context: Context, status: str) -> set[str]:
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_S, window=context.window)
        wm.modal_handler_add(self)
        context.workspace.status_text_set(status)
        return {'RUNNING_MODAL'}

    def _begin_shot(self, context: Context):
        """The Camera source: its frames, to be rendered from the timer (None for other sources)."""
        if not properties.uses_camera(context.scene.clipdraw):
            return None
        self._shot = launch.begin_shot(context)
        session.set_rendering(self._shot)
        return self._shot

    def _render_shot_now(self, context: Context):
        """Background mode: the Camera source's frames rendered at once (None for other sources,
        False when a stop came while rendering)."""
        if not properties.uses_camera(context.scene.clipdraw):
            return None
        shot = launch.begin_shot(context)
        if not launch.render_shot(shot, _print_line, _stop_blocking.is_set):
            _stop_blocking.clear()
            self.report({'WARNING'}, "Stopped while rendering the camera's frames: nothing was drawn")
            return False
        return shot

    def _render_step(self, context: Context, event: Event) -> set[str]:
        """One camera frame per timer tick; then the job starts on them (ESC or Cancel discards them)."""
        shot = self._shot
        stop = (event.type == 'ESC' and event.value == 'PRESS') or shot.cancel_requested
        if stop:
            self._drop_shot()
            self._cleanup(context)
            self.report({'INFO'}, "Cancelled while rendering the camera's frames")
            return {'CANCELLED'}
        if event.type != 'TIMER' or event.timer is not self._timer:
            return {'PASS_THROUGH'}
        try:
            if shot.render_next():
                context.workspace.status_text_set(shot.status_line())
                _redraw(context)
                return {'RUNNING_MODAL'}
            self._shot = None
            session.set_rendering(None)
            self._session = self._start(context, False, shot)
        except (launch.RunRefused, camera_shot.ShotRefused) as e:
            self._drop_shot()
            self._cleanup(context)
            return self._refused(str(e))
        self._show(context, self._session)
        return {'RUNNING_MODAL'}

    def _drop_shot(self) -> None:
        if self._shot is not None:
            self._shot.discard()
            self._shot = None
        session.set_rendering(None)

    def _block(self, context: Context, run: session.RunSession) -> set[str]:
        """Background mode: pump until done; the first Ctrl-C (or ``stop_blocking_run``) cancels, a
        second Ctrl-C aborts."""
        interrupted = False
        while True:
            try:
                if _stop_blocking.is_set():
                    _stop_blocking.clear()
                    run.cancel()
                running = run.pump(budget_s=None)
                for level, text in run.take_messages():  # printed by Blender as they come
                    self.report({level}, text)
                if not running:
                    break
                time.sleep(0.02)
            except KeyboardInterrupt:
                if interrupted:
                    run.close(timeout=1.0)
                    raise
                interrupted = True
                run.cancel()
        _stop_blocking.clear()  # a stop that came as the run ended must not cancel the next one
        return self._finish(context, run)

    def modal(self, context: Context, event: Event) -> set[str]:
        if self._shot is not None:
            return self._render_step(context, event)
        run = self._session
        if event.type == 'ESC' and event.value == 'PRESS':
            run.cancel()
            self._show(context, run)
            return {'RUNNING_MODAL'}
        if event.type == 'TIMER' and event.timer is self._timer:
            running = run.pump(budget_s=0.05)
            self._show(context, run)
            if not running:
                return self._finish(context, run)
        return {'PASS_THROUGH'}

    def _show(self, context: Context, run: session.RunSession) -> None:
        for level, text in run.take_messages():
            self.report({level}, text)
        if context.workspace is not None:
            context.workspace.status_text_set(run.status_line())
        _redraw(context)

    def _finish(self, context: Context, run: session.RunSession) -> set[str]:
        self._cleanup(context)
        for level, text in run.take_messages():
            self.report({level}, text)
        made_something = bool(run.object_name())
        session.release(run)
        _redraw(context)
        return {'FINISHED'} if made_something else {'CANCELLED'}

    def cancel(self, context: Context) -> None:
        """Blender ends the modal operator (file closed, window closed): stop the job too."""
        self._drop_shot()
        run = self._session
        if run is not None:
            run.close(timeout=1.0)
            session.release(run)
        self._cleanup(context)

    def _cleanup(self, context: Context) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if getattr(context, "workspace", None) is not None:
            context.workspace.status_text_set(None)


def _locks(text: str) -> list[int]:
    try:
        return properties.stroke_indices(text)
    except ValueError as e:
        raise launch.RunRefused(f"lock: {e}") from None


class CLIPDRAW_OT_cancel(Operator):
    """Stop the running drawing after its current step, keeping every stroke made so far"""

    bl_idname = "clipdraw.cancel"
    bl_label = "Cancel Drawing"
    bl_options = {'REGISTER'}  # no data changes here: the run's own undo step holds the result

    @classmethod
    def poll(cls, context: Context) -> bool:
        if session.current() is None and session.rendering() is None:
            cls.poll_message_set("No drawing is running")
            return False
        return True

    def execute(self, context: Context) -> set[str]:
        shot = session.rendering()
        if shot is not None:  # the Run operator discards the frames at its next tick
            shot.cancel_requested = True
            return {'FINISHED'}
        run = session.current()
        if run is None:  # pressed twice after the run ended: nothing to do
            return {'CANCELLED'}
        run.cancel()
        return {'FINISHED'}


class CLIPDRAW_OT_restore_defaults(Operator):
    """Set every drawing setting back to its default (the method, prompts and images are kept)"""

    bl_idname = "clipdraw.restore_defaults"
    bl_label = "Restore Defaults"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context: Context) -> set[str]:
        properties.reset(context.scene.clipdraw)
        return {'FINISHED'}


class CLIPDRAW_OT_keyed_prompt_add(Operator):
    """Key a prompt on the current frame: the drawing morphs into it by this frame"""

    bl_idname = "clipdraw.keyed_prompt_add"
    bl_label = "Add at Current Frame"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context: Context) -> set[str]:
        settings = context.scene.clipdraw
        frame = context.scene.frame_current
        keys = settings.keyed_prompts
        existing = next((i for i, k in enumerate(keys) if k.frame == frame), None)
        if existing is not None:  # one prompt per frame: show the one that is there
            settings.keyed_index = existing
            self.report({'INFO'}, f"Frame {frame} already has a keyed prompt")
            return {'CANCELLED'}
        item = keys.add()
        item.frame = frame
        item.prompt = settings.prompt if len(keys) == 1 else ""  # the first key starts as the prompt
        at = sum(1 for k in keys if k.frame < frame)  # the list stays in frame order
        keys.move(len(keys) - 1, at)
        settings.keyed_index = at
        return {'FINISHED'}


class CLIPDRAW_OT_keyed_prompt_remove(Operator):
    """Remove the selected keyed prompt"""

    bl_idname = "clipdraw.keyed_prompt_remove"
    bl_label = "Remove Keyed Prompt"
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context: Context) -> bool:
        settings = getattr(context.scene, "clipdraw", None)
        if settings is None or not 0 <= settings.keyed_index < len(settings.keyed_prompts):
            cls.poll_message_set("No keyed prompt is selected")
            return False
        return True

    def execute(self, context: Context) -> set[str]:
        settings = context.scene.clipdraw
        settings.keyed_prompts.remove(settings.keyed_index)
        settings.keyed_index = max(0, min(settings.keyed_index, len(settings.keyed_prompts) - 1))
        return {'FINISHED'}


def menu_add(self, context: Context) -> None:
    self.layout.operator(CLIPDRAW_OT_run.bl_idname, text="Drawing with CLIP", icon='OUTLINER_OB_GREASEPENCIL')


classes = (CLIPDRAW_OT_run, CLIPDRAW_OT_cancel, CLIPDRAW_OT_restore_defaults, CLIPDRAW_OT_keyed_prompt_add,
           CLIPDRAW_OT_keyed_prompt_remove)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    bpy.types.VIEW3D_MT_add.append(menu_add)


def unregister() -> None:
    bpy.types.VIEW3D_MT_add.remove(menu_add)
    _unregister_classes()
