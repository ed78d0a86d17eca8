"""The panels' draw code against a recording layout (Blender cannot draw UI headless)."""

from __future__ import annotations

import types

import bpy
from common import ADDON

from blender_addon import panels, preferences, session


class Layout:
    """Records every layout call; sub-layouts record into the same log."""

    def __init__(self, log: list):
        self.__dict__["log"] = log

    def __setattr__(self, name, value):
        self.__dict__[name] = value

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.log.append((name, args, kwargs))
            return Layout(self.log) if name in ("row", "column", "box", "split") else None
        return call


def draw(panel_cls, context=None) -> list:
    log: list = []
    panel_cls.draw(types.SimpleNamespace(layout=Layout(log), _draw_last=panels.CLIPDRAW_PT_main._draw_last),
                   context or bpy.context)
    return log


def ops(log):
    return [a[0] for name, a, _ in log if name == "operator"]


def props(log):
    return [a[1] for name, a, _ in log if name == "prop"]


def test_main_panel_idle_running_and_after_an_error(addon, monkeypatch):
    log = draw(panels.CLIPDRAW_PT_main)
    assert props(log) == ["method", "prompt", "negative"] and ops(log) == ["clipdraw.run"]

    fake = types.SimpleNamespace(factor=0.25, status_line=lambda: "CLIPDraw: step 5/20 · loss -0.500 · ETA 3 s")
    monkeypatch.setattr(session, "current", lambda: fake)
    log = draw(panels.CLIPDRAW_PT_main)
    assert ops(log) == ["clipdraw.cancel"]
    progress = [k for name, _, k in log if name == "progress"][0]
    assert progress["factor"] == 0.25 and progress["text"] == "step 5/20 · loss -0.500 · ETA 3 s"

    monkeypatch.undo()
    session.set_last_error("the worker exited with code 3 before finishing: fake worker: simulated crash " * 2)
    log = draw(panels.CLIPDRAW_PT_main)
    labels = [k["text"] for name, _, k in log if name == "label"]
    assert labels[0].startswith("the worker exited") and len(labels) >= 2  # wrapped, all of it shown
    assert " ".join(labels).split() == ("the worker exited with code 3 before finishing: fake worker: "
                                        "simulated crash " * 2).split()


def test_sub_panels_show_every_setting(addon):
    scene = bpy.context.scene
    assert props(draw(panels.CLIPDRAW_PT_settings)) == ["strokes", "tidy", "max_width", "steps", "seed", "canvas",
                                                        "augmentations", "model"]
    assert props(draw(panels.CLIPDRAW_PT_output)) == ["output", "target", "placement", "plane_width"]
    scene.clipdraw.placement = "CAMERA"
    log = draw(panels.CLIPDRAW_PT_output)
    assert "camera_distance" in props(log)
    assert any("no active camera" in k.get("text", "") for name, _, k in log if name == "label")
    assert props(draw(panels.CLIPDRAW_PT_animation)) == ["animation", "start_frame", "snapshot_every",
                                                        "frames_per_snapshot"]


def test_preferences_draw_the_runner_settings_and_both_buttons(addon):
    prefs = bpy.context.preferences.addons[ADDON].preferences
    log: list = []
    preferences.CLIPDRAW_AddonPreferences.draw(types.SimpleNamespace(layout=Layout(log), python_path="",
                                                                     **{k: getattr(prefs, k) for k in ("runner",
                                                                                                       "threads")}),
                                               bpy.context)
    assert props(log) == ["runner", "python_path", "device", "precision", "threads", "cache_dir"]
    assert ops(log) == ["clipdraw.check_setup", "clipdraw.setup_engine"]
    assert any(k.get("text", "").startswith("Engine threads: ") for name, _, k in log if name == "label")


def templates(log):
    return [(a[0], a[1], k) for name, a, k in log if name == "template_ID"]


def test_each_method_shows_its_own_fields(addon):
    settings = bpy.context.scene.clipdraw
    settings.method = "STYLE"
    log = draw(panels.CLIPDRAW_PT_main)
    assert props(log) == ["method", "prompt", "negative", "source", "style_strength"]
    ((owner, prop, kwargs),) = templates(log)
    assert owner == settings.style_image and prop == "image" and kwargs["open"] == "image.open"
    assert props(draw(panels.CLIPDRAW_PT_settings))[-1] == "style_weights"

    settings.method = "SKETCH"  # no prompt: the image is what gets drawn
    log = draw(panels.CLIPDRAW_PT_main)
    assert props(log) == ["method", "source", "show_overlay"] and templates(log)[0][0] == settings.source_image
    settings.source_image.source = "FILE"
    assert props(draw(panels.CLIPDRAW_PT_main)) == ["method", "source", "filepath", "show_overlay"]
    log = draw(panels.CLIPDRAW_PT_settings)
    assert props(log) == ["sketch_strokes", "sketch_tidy", "seeds", "use_mask", "steps", "seed", "canvas",
                          "augmentations", "model"]
    assert settings.sketch_strokes == 16 and settings.seeds == 3 and settings.strokes == 128
    assert not any(name == "label" for name, _, _ in log)
    settings.canvas = (224, 128)
    log = draw(panels.CLIPDRAW_PT_settings)
    assert any("square canvas" in k.get("text", "") for name, _, k in log if name == "label")


def labels(log):
    return [k.get("text", "") for name, _, k in log if name == "label"]


def test_the_stage_panels_draw_continue_ladder_and_keyed_prompts(addon):
    settings = bpy.context.scene.clipdraw
    log = draw(panels.CLIPDRAW_PT_continue)
    assert props(log) == ["keep", "add_strokes"] and labels(log) == ["No active object"]
    header: list = []
    panels.CLIPDRAW_PT_continue.draw_header(types.SimpleNamespace(layout=Layout(header)), bpy.context)
    assert props(header) == ["continue_active"]
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    bpy.context.scene.collection.objects.link(cube)
    bpy.context.view_layer.objects.active = cube
    assert labels(draw(panels.CLIPDRAW_PT_continue)) == ["'Cube' is not Grease Pencil or curves"]

    settings.ladder = "64, 32 16"
    log = draw(panels.CLIPDRAW_PT_ladder)
    assert props(log) == ["ladder"] and labels(log) == ["3 levels, one layer (or object) each: 64 > 32 > 16"]
    settings.ladder = "64,x"
    assert "e.g. 64,32,16" in labels(draw(panels.CLIPDRAW_PT_ladder))[0]

    log = draw(panels.CLIPDRAW_PT_keyed)
    (args,) = [a for name, a, _ in log if name == "template_list"]
    assert args[0] == "CLIPDRAW_UL_keyed_prompts" and args[3:] == ("keyed_prompts", settings, "keyed_index")
    assert ops(log) == ["clipdraw.keyed_prompt_add", "clipdraw.keyed_prompt_remove"]
    assert panels.CLIPDRAW_PT_keyed.poll(bpy.context)
    settings.method = "SKETCH"
    assert not panels.CLIPDRAW_PT_keyed.poll(bpy.context)

    row: list = []
    item = settings.keyed_prompts.add()
    panels.CLIPDRAW_UL_keyed_prompts.draw_item(None, bpy.context, Layout(row), settings, item, 0, settings,
                                               "keyed_index")
    assert props(row) == ["frame", "prompt"]


def test_settings_that_others_override_are_greyed_out(addon):
    settings = bpy.context.scene.clipdraw
    assert panels.settings_unused(settings) == set()
    settings.ladder = "64,32"
    assert panels.settings_unused(settings) == {"strokes", "sketch_strokes", "tidy", "sketch_tidy"}
    settings.ladder, settings.continue_active = "", True
    assert panels.settings_unused(settings) == {"strokes", "sketch_strokes", "canvas"}
    settings.continue_active = False
    settings.keyed_prompts.add().prompt = "a red circle"
    assert panels.settings_unused(settings) == set()  # keyed prompts tidy by hiding strokes at each key
    assert props(draw(panels.CLIPDRAW_PT_main))[:3] == ["method", "prompt", "negative"]  # shown, greyed out
    log = draw(panels.CLIPDRAW_PT_animation)
    assert "Keyed prompts place the drawings on their frames" in labels(log)


def test_the_camera_source_shows_its_frames_objects_and_sequence_settings(addon):
    settings = bpy.context.scene.clipdraw
    settings.method, settings.source_image.source = "SKETCH", "CAMERA"
    log = draw(panels.CLIPDRAW_PT_main)
    assert props(log) == ["method", "source", "use_scene_range", "mask_collection", "render_engine", "coherence",
                          "boil"]
    assert "Frames 1-250" in labels(log) and "The scene has no camera" in labels(log)
    settings.source_image.use_scene_range = False
    settings.source_image.frame_start, settings.source_image.frame_end = 10, 5
    log = draw(panels.CLIPDRAW_PT_main)
    assert props(log)[2:5] == ["use_scene_range", "frame_start", "frame_end"]
    assert "The end is before the start" in labels(log)
    output = draw(panels.CLIPDRAW_PT_output)
    assert "placement" not in props(output) and "camera_distance" in props(output)
    assert "sketch_tidy" in panels.settings_unused(settings)  # a sequence keeps its strokes
    shot = types.SimpleNamespace(rendered=[1], total=4, status_line=lambda: "Rendering camera frame 2/4")
    session.set_rendering(shot)
    try:
        log = draw(panels.CLIPDRAW_PT_main)
        assert ops(log) == ["clipdraw.cancel"]
        (progress,) = [k for name, _, k in log if name == "progress"]
        assert progress["factor"] == 0.25 and progress["text"] == "Rendering camera frame 2/4"
    finally:
        session.set_rendering(None)


def test_the_progress_line_counts_the_tidy_passs_steps(addon):
    """The tidy pass fine-tunes past the request's steps: the line says 221/240, not 221/200."""

    class Job:
        cancel_requested = False

        def __init__(self, events):
            self.events = list(events)

        def poll(self, limit=1):
            out, self.events = self.events[:limit], self.events[limit:]
            return out

    events = [{"event": "progress", "step": 200, "steps": 200, "loss": -2.3, "eta_s": 0.0},
              {"event": "progress", "step": 221, "steps": 240, "loss": -2.4, "eta_s": 0.0}]
    run = session.RunSession(Job(events), None, {"method": "clipdraw", "steps": 200})
    run.pump(None)
    assert run.status_line().startswith("CLIPDraw: step 221/240 · loss -2.400") and run.factor < 1.0
