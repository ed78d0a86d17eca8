"""CLIPDraw for Blender: draw a prompt with CLIP into Grease Pencil or curve objects.

The package is a Blender extension (blender_manifest.toml). Submodules register in order and
unregister in reverse; nothing is imported from Blender at module level here so that the pure
helpers (placement, bridge, engine_path, engine_setup) can be imported and tested without bpy.
Running jobs are stopped when a file is loaded, when the add-on is disabled and when Blender quits.
"""

import atexit
import os

_MODULES = ("properties", "preferences", "operators", "panels")


def _submodules():
    import importlib

    return [importlib.import_module(f"{__package__}.{name}") for name in _MODULES]


def _stop_jobs(*_args) -> None:
    from . import session

    session.stop_all()


def _load_pre_handler():
    import bpy

    @bpy.app.handlers.persistent
    def clipdraw_stop_on_load(*_args) -> None:
        """A new file is being loaded: the running job's scene is going away, so stop it."""
        _stop_jobs()

    return clipdraw_stop_on_load


_handler = None


def register() -> None:
    global _handler
    import bpy

    for mod in _submodules():
        mod.register()
    bpy.utils.register_preset_path(os.path.dirname(__file__))
    _handler = _load_pre_handler()
    bpy.app.handlers.load_pre.append(_handler)
    atexit.register(_stop_jobs)


def unregister() -> None:
    global _handler
    import bpy

    _stop_jobs()
    atexit.unregister(_stop_jobs)
    if _handler is not None and _handler in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_handler)
    _handler = None
    bpy.utils.unregister_preset_path(os.path.dirname(__file__))
    for mod in reversed(_submodules()):
        mod.unregister()
