"""Registration, preferences, presets, the manifest and the extension zip."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import addon_utils
import bpy
from common import ADDON, ROOT

BLENDER_EXT = Path(bpy.utils.resource_path('LOCAL')) / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def _raise(exc):
    raise exc


def test_enable_disable_enable_leaves_nothing_behind():
    handlers_before = len(bpy.app.handlers.load_pre)
    for _ in range(2):
        addon_utils.enable(ADDON, default_set=True, handle_error=_raise)
        prefs = bpy.context.preferences.addons[ADDON].preferences
        assert (prefs.runner, prefs.device, prefs.python_path) == ("AUTO", "AUTO", "")
        assert bpy.context.scene.clipdraw.strokes == 128
        assert hasattr(bpy.ops.clipdraw, "run") and bpy.ops.clipdraw.run.poll()
        assert len(bpy.app.handlers.load_pre) == handlers_before + 1
        assert "CLIPDRAW_PT_main" in dir(bpy.types)
        addon_utils.disable(ADDON, default_set=True, handle_error=_raise)
        assert not hasattr(bpy.types.Scene, "clipdraw")
        assert "CLIPDRAW_PT_main" not in dir(bpy.types)
        assert len(bpy.app.handlers.load_pre) == handlers_before
        assert ADDON not in bpy.context.preferences.addons


def run_preset(name: str) -> None:
    from blender_addon import panels

    path = next(p for d in bpy.utils.preset_paths(panels.PRESET_SUBDIR) if (p := Path(d) / f"{name}.py").is_file())
    bpy.ops.script.execute_preset(filepath=str(path), menu_idname="CLIPDRAW_MT_presets")


def test_presets_ship_preview_final_style_sketch_offline_and_restore_defaults(addon):
    from blender_addon import panels

    shipped = [Path(d) for d in bpy.utils.preset_paths(panels.PRESET_SUBDIR)
               if Path(d).resolve().is_relative_to(Path(panels.__file__).resolve().parent)]  # not the user's own
    names = sorted(p.name for d in shipped for p in d.glob("*.py"))
    assert names == ["Final.py", "Offline.py", "Preview.py", "Sketch.py", "Style.py"]
    settings = bpy.context.scene.clipdraw
    settings.prompt = "keep me"
    settings.max_width = 20.0
    run_preset("Preview")
    assert (settings.strokes, settings.steps, settings.snapshot_every) == (64, 100, 5)
    assert settings.max_width == 0.0  # the model's own limit: a quality preset does not keep a width
    assert settings.method == "CLIPDRAW"  # a quality preset keeps the method
    run_preset("Offline")  # the built-in model's settings (docs/builtin-model.md)
    assert (settings.model, settings.strokes, settings.steps, settings.method) == ("builtin", 12, 200, "CLIPDRAW")
    run_preset("Sketch")  # a method's reference settings (CLIPasso: 16 strokes, best of 3, up to 2000 steps)
    assert (settings.method, settings.sketch_strokes, settings.seeds, settings.steps) == ("SKETCH", 16, 3, 2000)
    run_preset("Style")
    assert (settings.method, settings.strokes, settings.steps, settings.style_strength) == ("STYLE", 256, 500, 50)
    image = bpy.data.images.new("Kept", 8, 8)
    settings.style_image.image, settings.seeds, settings.style_strength = image, 5, 10
    bpy.ops.clipdraw.restore_defaults()
    assert (settings.strokes, settings.steps, settings.snapshot_every, settings.seeds) == (128, 300, 10, 3)
    assert settings.style_strength == 50
    assert (settings.prompt, settings.method, settings.style_image.image) == ("keep me", "STYLE", image)


def test_user_presets_are_saved_with_blenders_preset_operator(addon):
    settings = bpy.context.scene.clipdraw
    settings.strokes, settings.steps = 7, 9
    settings.method, settings.sketch_strokes, settings.seeds = "SKETCH", 6, 2
    bpy.ops.clipdraw.preset_add(name="Tiny")
    settings.strokes = settings.steps = settings.sketch_strokes = settings.seeds = 1
    settings.method = "CLIPDRAW"
    from blender_addon import panels

    paths = [Path(d) / "Tiny.py" for d in bpy.utils.preset_paths(panels.PRESET_SUBDIR)]
    tiny = [p for p in paths if p.is_file()]
    assert tiny, "the user preset was not written"
    try:
        bpy.ops.script.execute_preset(filepath=str(tiny[0]), menu_idname="CLIPDRAW_MT_presets")
    finally:
        tiny[0].unlink()  # the user's preset folder outlives the test (and other tests list presets)
    assert (settings.strokes, settings.steps) == (7, 9)
    assert (settings.method, settings.sketch_strokes, settings.seeds) == ("SKETCH", 6, 2)


def test_setup_engine_refuses_without_online_access(addon):
    assert bpy.app.online_access is False  # bpy from PyPI starts offline
    assert not bpy.ops.clipdraw.setup_engine.poll()
    from blender_addon import preferences

    assert preferences.managed_venv_dir().name == "engine-venv"


def test_check_setup_reports_a_missing_worker_python(addon, tmp_path):
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.runner = "SUBPROCESS"
    prefs.python_path = str(tmp_path / "nowhere" / "python")
    bpy.ops.clipdraw.check_setup()
    from blender_addon import preferences

    bad = [c.message for c in preferences._check_lines if not c.ok]
    assert bad and "worker Python not found" in bad[0] and "nowhere" in bad[0]


def test_check_setup_passes_with_the_engine_python(addon, engine_python):
    from blender_addon import engine_path, engine_setup

    checks = engine_setup.check_setup(engine_python, engine_path.engine_root(), "", None)
    assert all(c.ok for c in checks if "weights" not in c.message), [c.message for c in checks if not c.ok]
    assert any(c.message.startswith("torch") for c in checks)


def test_manifest_validates_with_blenders_own_tool():
    proc = subprocess.run([sys.executable, str(BLENDER_EXT), "validate", str(ROOT / "blender_addon")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_extension_zip_builds_and_carries_the_engine(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--output-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    zips = list(tmp_path.glob("*.zip"))
    assert len(zips) == 1
    names = set(zipfile.ZipFile(zips[0]).namelist())
    assert {"blender_manifest.toml", "__init__.py", "bridge.py", "presets/clipdraw/Final.py", "presets/clipdraw/Sketch.py",
            "overlay.py", "image_inputs.py", "image_files.py",
            "engine/synth_core/__init__.py", "engine/synth_core/worker.py", "engine/requirements.txt",
            "engine/synth_core/weights/builtin_clip.pt"} <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_installed_zip_enables_as_an_extension_with_its_own_engine(tmp_path, engine_python):
    from blender_addon import bridge

    subprocess.run([sys.executable, str(ROOT / "scripts" / "build_extension.py"), "--output-dir", str(tmp_path)],
                   check=True, capture_output=True)
    zip_path = next(tmp_path.glob("*.zip"))
    bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo="user_default", enable_on_install=True)
    name = "bl_ext.user_default.clipdraw"
    try:
        assert name in bpy.context.preferences.addons
        assert bpy.context.preferences.addons[name].preferences.runner == "AUTO"
        engine_path = sys.modules[name + ".engine_path"]
        assert engine_path.is_bundled()
        assert engine_path.import_engine("drawing").__name__ == name + ".engine.synth_core.drawing"
        root = engine_path.engine_root()
        assert root.name == "engine" and "extensions" in str(root)
        # the worker runs from the bundled copy (a bad request needs no model, so it is quick)
        job = bridge.SubprocessJob({"prompt": " "}, engine_python, root)
        events = list(bridge.iterate(job, timeout=60))
        job.close()
        assert events[-1]["kind"] == "bad_request" and job.process.returncode == 2
    finally:
        addon_utils.disable(name, default_set=True, handle_error=_raise)
