"""Add-on preferences: which Python runs the engine, on which device, where models are cached;
"Check Setup" (what exactly is missing) and "Set Up the Engine" (a virtual environment with torch,
made with Blender's own Python, only when online access is allowed).
"""

import os
import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty
from bpy.types import AddonPreferences, Context, Event, Operator

from . import engine_path, engine_setup, launch

_check_lines: list[engine_setup.Check] = []  # last "Check Setup" result, shown in the preferences
_setup_status: dict[str, str] = {"state": "", "line": ""}


def managed_venv_dir(create: bool = False) -> Path:
    """The engine's virtual environment in the extension's user folder (never in the add-on folder)."""
    try:
        base = bpy.utils.extension_path_user(__package__, path="", create=create)
    except ValueError:  # a legacy add-on (development checkout): same layout under a fixed name
        base = os.path.join(bpy.utils.user_resource('EXTENSIONS'), ".user", "addons", __package__)
        if create:
            os.makedirs(base, exist_ok=True)
    return Path(base) / engine_path.VENV_DIR_NAME


def get(context: Context | None = None) -> "CLIPDRAW_AddonPreferences | None":
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def runner_choice(context: Context) -> launch.RunnerChoice:
    """The preferences as plain values for ``launch.start`` (defaults when not registered as add-on)."""
    prefs = get(context)
    online = bool(bpy.app.online_access)
    threads = launch.engine_threads(prefs.threads if prefs is not None else 0, os.cpu_count())
    if prefs is None:
        return launch.RunnerChoice(managed_venv=str(managed_venv_dir()), online=online, threads=threads)
    return launch.RunnerChoice(runner=prefs.runner, python=prefs.python_path, managed_venv=str(managed_venv_dir()),
                                device=prefs.device, cache_dir=prefs.cache_dir, online=online, threads=threads,
                                precision=prefs.precision)


class CLIPDRAW_AddonPreferences(AddonPreferences):
    bl_idname = __package__

    runner: EnumProperty(
        name="Runner",
        items=[("AUTO", "Automatic", "Inside Blender when torch imports there, else the worker process"),
               ("IN_PROCESS", "Inside Blender", "A thread in Blender's own Python (needs torch installed there)"),
               ("SUBPROCESS", "Worker Process", "python -m synth_core.worker in the worker Python below")],
        default="AUTO",
    )
    python_path: StringProperty(
        name="Worker Python",
        description="Python interpreter with torch that runs the engine; empty: the engine environment made by "
                    "'Set Up the Engine' if there is one, else Blender's own Python",
        subtype='FILE_PATH', default="",
    )
    device: EnumProperty(
        name="Device",
        items=[("AUTO", "Automatic", "CUDA, then Metal, then the CPU"), ("CPU", "CPU", ""),
               ("CUDA", "CUDA", "NVIDIA GPU"), ("MPS", "Metal", "Apple GPU")],
        default="AUTO",
    )
    precision: EnumProperty(
        name="GPU Precision",
        items=[("AUTO", "Automatic", "bfloat16 arithmetic for the model on an NVIDIA GPU (faster), float32 elsewhere"),
               ("FLOAT32", "Float32", "Full float32 arithmetic everywhere (slower on a GPU; for comparing results)")],
        default="AUTO",
    )
    cache_dir: StringProperty(name="Model Cache", description="Folder where model weights are looked for and "
                              "downloaded (empty: the Hugging Face default)", subtype='DIR_PATH', default="")
    threads: IntProperty(name="CPU Threads", description="CPU threads the engine may use (0: every core but one, "
                         "so that Blender stays responsive while it runs)", default=0, min=0, max=1024, soft_max=64)

    def draw(self, context: Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        col = layout.column()
        col.prop(self, "runner")
        col.prop(self, "python_path")
        col.prop(self, "device")
        col.prop(self, "precision")
        col.prop(self, "threads")
        col.prop(self, "cache_dir")
        python = engine_path.worker_python(self.python_path, managed_venv_dir())
        col.label(text=f"Worker Python in use: {python}", icon='INFO')
        col.label(text=f"Engine threads: {launch.engine_threads(self.threads, os.cpu_count())} "
                       f"of {os.cpu_count() or '?'} cores", icon='INFO')
        row = layout.row()
        row.operator(CLIPDRAW_OT_check_setup.bl_idname, icon='CHECKMARK')
        row.operator(CLIPDRAW_OT_setup_engine.bl_idname, icon='IMPORT')
        if _setup_status["state"]:
            box = layout.box()
            box.label(text=f"Set up: {_setup_status['state']}", icon='TIME')
            if _setup_status["line"]:
                box.label(text=_setup_status["line"][:160])
        if _check_lines:
            box = layout.box()
            for check in _check_lines:
                box.label(text=check.message, icon='CHECKMARK' if check.ok else 'ERROR')


class CLIPDRAW_OT_check_setup(Operator):
    """Check that the engine can run and say exactly what is missing"""

    bl_idname = "clipdraw.check_setup"
    bl_label = "Check Setup"
    bl_options = {'REGISTER'}

    def execute(self, context: Context) -> set[str]:
        choice = runner_choice(context)
        python = engine_path.worker_python(choice.python, choice.managed_venv)
        checks = engine_setup.check_setup(python, engine_path.engine_root(), bpy.path.abspath(choice.cache_dir),
                                          engine_path.in_process_problem())
        _check_lines[:] = checks
        problems = [c.message for c in checks if not c.ok]
        for text in problems:
            self.report({'WARNING'}, text)
        if not problems:
            self.report({'INFO'}, "The engine is ready")
        return {'FINISHED'}


class CLIPDRAW_OT_setup_engine(Operator):
    """Create a Python environment for the engine with Blender's Python and install torch and open_clip
    into it (several GB; needs online access)"""

    bl_idname = "clipdraw.setup_engine"
    bl_label = "Set Up the Engine"
    bl_options = {'REGISTER'}

    _timer = None
    _job = None

    @classmethod
    def poll(cls, context: Context) -> bool:
        if not bpy.app.online_access:
            cls.poll_message_set("Online access is off: allow it in Preferences > System > Network first")
            return False
        if _setup_status["state"] == "running":
            cls.poll_message_set("The engine is being set up")
            return False
        return True

    def execute(self, context: Context) -> set[str]:
        if not bpy.app.online_access:  # poll already says so; scripts calling it directly get this
            self.report({'ERROR'}, "Online access is off: allow it in Preferences > System > Network first")
            return {'CANCELLED'}
        try:
            needs = engine_setup.requirements_for(engine_path.engine_root())
        except engine_path.EngineMissing as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}
        venv = managed_venv_dir(create=True)
        self._job = engine_setup.StepsJob(engine_setup.setup_steps(sys.executable, venv, needs))
        _setup_status.update(state="running", line="")
        if bpy.app.background or context.window is None:
            while self._step(context):
                self._job.wait(0.2)
            return self._end(context)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def _step(self, context: Context) -> bool:
        for ev in self._job.poll():
            if ev["event"] == "progress":
                _setup_status["line"] = f"[{ev['step'] + 1}/{ev['steps']}] {ev['message']}"
            elif ev["event"] == "error":
                _setup_status.update(state="failed", line=ev["message"])
            elif ev["event"] == "done":
                _setup_status["state"] = "cancelled" if ev.get("cancelled") else "done"
        for area in getattr(context.screen, "areas", ()) if context.screen else ():
            if area.type == 'PREFERENCES':
                area.tag_redraw()
        return not self._job.finished

    def modal(self, context: Context, event: Event) -> set[str]:
        if event.type == 'ESC' and event.value == 'PRESS':
            self._job.cancel()
        if event.type == 'TIMER' and event.timer is self._timer and not self._step(context):
            return self._end(context)
        return {'PASS_THROUGH'}

    def _end(self, context: Context) -> set[str]:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        self._job.close(1.0)
        state = _setup_status["state"]
        if state == "done":
            self.report({'INFO'}, f"Engine environment ready in {managed_venv_dir()}")
            return {'FINISHED'}
        self.report({'ERROR'} if state == "failed" else {'WARNING'}, f"Set up {state}: {_setup_status['line']}")
        return {'CANCELLED'}

    def cancel(self, context: Context) -> None:
        if self._job is not None:
            self._job.close(1.0)
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None


classes = (CLIPDRAW_AddonPreferences, CLIPDRAW_OT_check_setup, CLIPDRAW_OT_setup_engine)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()


def unregister() -> None:
    _unregister_classes()
    _check_lines.clear()
    _setup_status.update(state="", line="")
