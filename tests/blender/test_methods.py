"""The three methods in Blender: requests, image inputs, refusals, custom properties and the overlay.

Runs use test-double engines (fakes.py, and recording ones here) so that what reaches the engine
and what comes back can be checked exactly; the real engine runs in test_real_engine.py and in
the bad-input tests at the end of this file.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

import bpy
import numpy as np
import pytest
from common import ADDON
from fakes import fake_run_job
from pictures import datablock, decode_png, disc_rgba, empty_image_point, odd_file, write_rgba

from blender_addon import colour, engine_path, grease_pencil, image_inputs, launch, placement, preferences, properties, session
from synth_core import letterbox
from synth_core.drawing import Drawing


@pytest.fixture
def settings(addon, tmp_path, monkeypatch):
    """Small runs; temporary job folders go under tmp_path, so the test sees every one of them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    s = bpy.context.scene.clipdraw
    s.prompt = "three lines"
    s.strokes, s.sketch_strokes, s.steps, s.snapshot_every, s.canvas = 3, 3, 8, 4, (64, 64)
    yield s
    session.stop_all()


def job_folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "tmp").glob(image_inputs.FOLDER_PREFIX + "*"))


def use_engine(monkeypatch, run_job) -> None:
    """The in-process runner with ``run_job`` as the engine."""
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: run_job)


def recording_engine(seen: dict, meta: dict | None = None):
    """The fake engine, noting the request and reading its image files as the engine would."""
    base = fake_run_job()

    def run_job(request, should_stop):
        seen["request"] = dict(request)
        for key in ("image", "style_image"):
            if key in request:
                path = Path(request[key])
                seen[key] = path.read_bytes() if path.is_file() else None
                seen[key + "_folder"] = path.parent
        for ev in base(request, should_stop):
            if meta and ev.get("event") == "done":
                ev["drawing"]["meta"].update(meta)
            yield ev

    return run_job


def run_ok() -> bpy.types.Object:
    assert bpy.ops.clipdraw.run() == {'FINISHED'}
    last = session.last_run()
    assert last.status == "finished", last.error
    return bpy.data.objects[last.object_name]


# -- requests ----------------------------------------------------------------------------------
def test_request_per_method_carries_only_that_methods_keys(settings):
    settings.negative = "blurry; dark"
    req = properties.request_from(settings, threads=3)
    assert req == {"method": "clipdraw", "prompt": "three lines", "negative": ["blurry", "dark"], "strokes": 3,
                   "steps": 8, "seed": 0, "canvas": [64, 64], "model": "ViT-B-32:openai", "device": "auto",
                   "snapshot_every": 4, "threads": 3, "tidy": True}  # the panel shows clipdraw's default: on

    settings.method, settings.style_strength, settings.style_weights = "STYLE", 80, " UNTRAINED "
    req = properties.request_from(settings, images={"style_image": "/x/style.png"})
    assert req["method"] == "styleclipdraw" and req["prompt"] == "three lines"
    assert (req["style_image"], req["style_strength"], req["style_weights"]) == ("/x/style.png", 80.0, "untrained")
    assert "threads" not in req and "image" not in req and "seeds" not in req
    settings.style_weights = "//weights/vgg.pth"  # a path, relative to the .blend: made absolute
    assert os.path.isabs(properties.request_from(settings)["style_weights"])

    settings.method, settings.sketch_strokes, settings.seeds, settings.use_mask = "SKETCH", 12, 2, False
    req = properties.request_from(settings, images={"image": "/x/photo.png"})
    assert req["method"] == "clipasso" and "prompt" not in req and "negative" not in req
    assert (req["strokes"], req["seeds"], req["mask"], req["image"]) == (12, 2, False, "/x/photo.png")
    assert "style_image" not in req and "style_strength" not in req


def test_max_width_is_sent_when_set_and_never_for_a_sketch(settings):
    """0 (the default) leaves the model's own limit; a width is the engine's ``max_width`` in px."""
    from synth_core.request import parse_request

    assert "max_width" not in properties.request_from(settings)
    settings.max_width = 6.0
    for method, images in (("CLIPDRAW", {}), ("STYLE", {"style_image": "s.png"})):
        settings.method = method
        assert parse_request(properties.request_from(settings, images=images)).max_width == 6.0
    settings.method = "SKETCH"  # CLIPasso's strokes keep one width: the setting is not sent
    assert "max_width" not in properties.request_from(settings, images={"image": "i.png"})


def test_every_methods_request_passes_the_engines_validation(settings):
    from synth_core.request import parse_request

    for method, images in (("CLIPDRAW", {}), ("STYLE", {"style_image": "s.png"}), ("SKETCH", {"image": "i.png"})):
        settings.method = method
        req = parse_request(properties.request_from(settings, images=images, threads=1))
        assert req.method == properties.WIRE_METHOD[method] and req.threads == 1


def test_threads_default_to_every_core_but_one(addon, monkeypatch):
    assert launch.engine_threads(0, 2) == 1 and launch.engine_threads(0, 16) == 15
    assert launch.engine_threads(0, None) == 1 and launch.engine_threads(4, 16) == 4
    prefs = bpy.context.preferences.addons[ADDON].preferences
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert preferences.runner_choice(bpy.context).threads == 7
    prefs.threads = 2
    assert preferences.runner_choice(bpy.context).threads == 2


def test_the_precision_preference_reaches_the_engines_request(addon, settings):
    from synth_core.request import parse_request

    prefs = bpy.context.preferences.addons[ADDON].preferences
    assert prefs.precision == "AUTO" and preferences.runner_choice(bpy.context).precision == "AUTO"
    assert "precision" not in properties.request_from(settings)  # the engine's own default: auto
    prefs.precision = "FLOAT32"
    try:
        choice = preferences.runner_choice(bpy.context)
        req = parse_request(properties.request_from(settings, precision=choice.precision.lower()))
        assert req.precision == "float32"
    finally:
        prefs.precision = "AUTO"


# -- image inputs -------------------------------------------------------------------------------
def test_a_datablock_reaches_the_engine_as_a_png_in_the_jobs_own_folder(settings, monkeypatch, tmp_path):
    seen: dict = {}
    use_engine(monkeypatch, recording_engine(seen))
    rgba = disc_rgba(40, 24, centre=(30, 6), radius=5)
    rgba[0, 0] = (10, 200, 30, 128)  # top-left pixel: top row first, straight alpha
    settings.method, settings.source_image.image = "SKETCH", datablock("Photo", rgba)
    obj = run_ok()
    np.testing.assert_array_equal(decode_png(seen["image"]), rgba)  # what the engine read
    assert seen["image_folder"].name.startswith(image_inputs.FOLDER_PREFIX)
    assert job_folders(tmp_path) == [] and not seen["image_folder"].exists()  # gone with the job
    assert obj["clipdraw_image"] == "Photo" and obj["clipdraw_image_source"] == "IMAGE"
    assert json.loads(obj["clipdraw_request"])["image"] == "bpy.data.images['Photo']"


def test_packed_float_and_file_images(settings, monkeypatch, tmp_path):
    seen: dict = {}
    use_engine(monkeypatch, recording_engine(seen))
    settings.method = "STYLE"
    # packed: the file it came from is gone, the pixels are in the .blend
    path = write_rgba(tmp_path / "style.png", disc_rgba(32, 32, centre=(8, 8), radius=4, transparent=False))
    img = bpy.data.images.load(str(path))
    img.pack()
    path.unlink()
    settings.style_image.image = img
    run_ok()
    np.testing.assert_array_equal(decode_png(seen["style_image"]), disc_rgba(32, 32, centre=(8, 8), radius=4,
                                                                             transparent=False))
    # float buffers are scene-linear: encoded to sRGB as an 8-bit file would be
    lin = np.full((16, 16, 4), 1.0, np.float32)
    lin[..., :3] = colour.srgb_to_linear(np.array([0.5, 0.25, 0.1]))
    flt = bpy.data.images.new("Float", 16, 16, alpha=True, float_buffer=True)
    flt.pixels.foreach_set(lin.ravel())
    settings.style_image.image = flt
    run_ok()
    np.testing.assert_array_equal(decode_png(seen["style_image"])[0, 0], [128, 64, 26, 255])
    # a file path is passed as it is: no temporary copy
    other = write_rgba(tmp_path / "other.png", disc_rgba(transparent=False))
    settings.style_image.source, settings.style_image.filepath = "FILE", str(other)
    obj = run_ok()
    assert seen["request"]["style_image"] == str(other) and seen["style_image_folder"] == tmp_path
    assert obj["clipdraw_style_image"] == str(other) and obj["clipdraw_style_image_source"] == "FILE"
    assert job_folders(tmp_path) == []


def refuses(message: str) -> None:
    """The run does not start, says why in the panel's last run, and makes nothing."""
    objects = len(bpy.data.objects)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.clipdraw.run()
    assert re.search(message, session.last_run().error)  # the panel shows the same
    assert len(bpy.data.objects) == objects and session.current() is None


def test_missing_or_unusable_inputs_are_refused_before_anything_starts(settings, monkeypatch, tmp_path):
    use_engine(monkeypatch, fake_run_job())
    settings.method = "STYLE"
    refuses("no style image chosen: pick a Blender image")
    settings.style_image.source = "FILE"
    refuses("no style image chosen: pick an image file")
    settings.style_image.filepath = str(tmp_path / "nowhere.png")
    refuses("the style image file .*nowhere.png' does not exist")
    settings.style_image.filepath, settings.prompt = str(write_rgba(tmp_path / "s.png", disc_rgba())), "  "
    refuses("the prompt is empty: type what to draw .Text \\+ Style Image")
    settings.method = "SKETCH"
    refuses("no source image chosen: pick a Blender image")
    missing = bpy.data.images.new("Gone", 8, 8)
    missing.source, missing.filepath = 'FILE', str(tmp_path / "gone.png")
    settings.source_image.image = missing
    refuses("the source image 'Gone' has no pixels: its file .*gone.png' is missing")
    settings.source_image.image = bpy.data.images.get("Render Result") or bpy.data.images.new("R", 1, 1)
    if settings.source_image.image.type == 'RENDER_RESULT':
        refuses("has no pixels: render first")
    settings.source_image.image = datablock("Dot", np.zeros((1, 1, 4), np.uint8))
    refuses("the source image 'Dot' is 1x1 px: the engine needs at least 8 px")
    settings.source_image.image, settings.canvas = datablock("Ok", disc_rgba()), (64, 32)
    refuses("Image to Sketch needs a square canvas, not 64x32")
    assert job_folders(tmp_path) == []


def test_zero_strokes_are_clamped_in_blender_and_refused_by_the_engine(settings):
    settings.sketch_strokes = 0
    assert settings.sketch_strokes == 1
    from synth_core.jobs import run_job

    settings.method = "SKETCH"
    req = properties.request_from(settings, images={"image": "x.png"})
    req["strokes"] = 0
    ev = list(run_job(req))[-1]
    assert ev["kind"] == "bad_request" and "strokes must be between 1 and 10000, got 0" in ev["message"]


# -- results ------------------------------------------------------------------------------------
def test_style_and_sketch_results_record_their_settings(settings, monkeypatch, tmp_path):
    use_engine(monkeypatch, recording_engine({}))
    settings.method, settings.style_strength, settings.style_weights = "STYLE", 70, "untrained"
    settings.style_image.image = datablock("Starry", disc_rgba())
    obj = run_ok()
    assert obj.name.startswith("CLIPDraw three lines")
    assert (obj["clipdraw_method"], obj["clipdraw_style_image"], obj["clipdraw_style_image_source"]) == \
        ("styleclipdraw", "Starry", "IMAGE")
    assert obj["clipdraw_style_strength"] == 70.0 and obj["clipdraw_style_weights"] == "untrained"
    assert "clipdraw_threads" not in obj and "clipdraw_winning_seed" not in obj

    meta = {"seed": 1005, "seeds": [5, 1005], "eval_loss": [0.5, 0.25]}
    use_engine(monkeypatch, recording_engine({}, meta))
    settings.method, settings.seed, settings.seeds = "SKETCH", 5, 2
    settings.source_image.source = "FILE"
    settings.source_image.filepath = str(write_rgba(tmp_path / "cat.png", disc_rgba()))
    obj = run_ok()
    assert obj.name.startswith("CLIPDraw sketch cat.png") and "clipdraw_prompt" not in obj
    assert (obj["clipdraw_image"], obj["clipdraw_seeds"], obj["clipdraw_mask"]) == (str(tmp_path / "cat.png"), 2, 1)
    assert obj["clipdraw_seed"] == 5 and obj["clipdraw_winning_seed"] == 1005
    assert list(obj["clipdraw_seed_list"]) == [5, 1005] and list(obj["clipdraw_eval_loss"]) == [0.5, 0.25]
    meta["eval_loss"] = [None, 0.25]  # a seed that was never evaluated
    obj = run_ok()
    assert math.isnan(obj["clipdraw_eval_loss"][0])


# -- the overlay -------------------------------------------------------------------------------
FEATURE = (70, 32)  # the disc's centre in the 96 x 64 source image


def feature_engine(canvas_point: tuple[float, float]):
    """An engine whose one stroke starts exactly at ``canvas_point`` (canvas pixels)."""

    def run_job(request, should_stop):
        size = request["canvas"][0]
        x, y = canvas_point
        pts = np.array([[x, y], [x + 3, y], [x + 6, y + 2], [x + 9, y + 4]])
        d = Drawing(size, size, pts, [1], [3.0], [[0, 0, 0, 1]], meta={"seed": 0, "seeds": [0], "eval_loss": [0.1]})
        yield {"event": "started", "protocol": engine_path.import_engine("wire").PROTOCOL_VERSION, "steps": 1}
        yield {"event": "done", "step": 1, "cancelled": False, "drawing": d.to_dict()}

    return run_job


def engine_canvas_point(u: float, v: float, w: int, h: int, canvas: int) -> tuple[float, float]:
    """Where the engine's letterbox puts image point (u, v) (checked against synth_core in
    test_image_placement.py)."""
    x0, y0, nw, nh = letterbox.fit_square_rect(w, h, canvas)
    return x0 + u * nw / w, y0 + v * nh / h


def first_point_world(obj) -> np.ndarray:
    layer = grease_pencil.layer_of(obj.data)
    frame = layer.frames[len(layer.frames) - 1]
    strokes = frame.drawing.strokes if grease_pencil.is_v3() else frame.strokes
    p = strokes[0].points[0]
    local = np.array([*(p.position if grease_pencil.is_v3() else p.co), 1.0])
    return (np.array(obj.matrix_world) @ local)[:3]


def overlays() -> list[bpy.types.Object]:
    return [o for o in bpy.data.objects if o.type == 'EMPTY' and "clipdraw_overlay_key" in o]


@pytest.mark.parametrize("where", ["cursor", "camera"])
def test_overlay_lies_under_the_sketch_and_a_feature_lands_on_itself(settings, monkeypatch, where):
    canvas = 64  # 96 x 64 letterboxes to 64 x 43: odd, so the rectangle's centre is half a pixel off
    u, v = FEATURE[0] + 0.5, FEATURE[1] + 0.5  # the disc's centre (pixel centres)
    use_engine(monkeypatch, feature_engine(engine_canvas_point(u, v, 96, 64, canvas)))
    settings.method, settings.canvas = "SKETCH", (canvas, canvas)
    settings.source_image.image = datablock("Disc", disc_rgba())
    scene = bpy.context.scene
    if where == "camera":
        cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
        scene.collection.objects.link(cam)
        cam.location, cam.rotation_euler = (3.0, -8.0, 2.0), (1.2, 0.1, 0.4)
        scene.camera, settings.placement, settings.camera_distance = cam, "CAMERA", 6.0
    else:
        scene.cursor.location, scene.cursor.rotation_euler = (1.0, 2.0, 3.0), (0.3, 0.0, 0.7)
    obj = run_ok()
    (empty,) = overlays()
    assert obj["clipdraw_overlay"] == empty.name and empty.data == settings.source_image.image
    assert empty.empty_display_type == 'IMAGE' and empty.empty_image_depth == 'BACK' and empty.hide_render
    assert empty.users_collection[0] == obj.users_collection[0]  # the results collection
    # same plane: parallel normals, the empty's origin on the drawing's plane, same orientation
    m, e = np.array(obj.matrix_world), np.array(empty.matrix_world)
    normal = m[:3, 2] / np.linalg.norm(m[:3, 2])
    np.testing.assert_allclose(np.cross(normal, e[:3, 2] / np.linalg.norm(e[:3, 2])), 0, atol=1e-6)
    assert abs(np.dot(e[:3, 3] - m[:3, 3], normal)) < 1e-6
    assert np.dot(m[:3, 0], e[:3, 0]) > 0 and np.dot(m[:3, 1], e[:3, 1]) > 0  # not turned or mirrored
    # the empty spans the letterboxed rectangle of the drawing's canvas: corners in canvas pixels
    px = launch.plane_for(bpy.context, settings).scale(canvas)  # world units per canvas pixel
    to_canvas = np.linalg.inv(m)
    corners = []
    for u_, v_ in ((0, 0), (96, 64)):
        x, y = (to_canvas @ np.array([*empty_image_point(empty, u_, v_), 1.0]))[:2]
        corners.append((x / px + canvas / 2, canvas / 2 - y / px))
    x0, y0, nw, nh = letterbox.fit_square_rect(96, 64, canvas)
    np.testing.assert_allclose(corners, [(x0, y0), (x0 + nw, y0 + nh)], atol=1e-4)
    # the stroke the engine drew at the disc's centre lies on the disc's centre as the overlay shows it
    gap = np.linalg.norm(first_point_world(obj) - empty_image_point(empty, u, v))
    assert gap < 1e-3 * px, gap


def test_one_overlay_per_image_and_place(settings, monkeypatch):
    use_engine(monkeypatch, recording_engine({}))
    settings.method = "SKETCH"
    settings.source_image.image = datablock("Disc", disc_rgba())
    first = run_ok()
    bpy.data.objects.remove(first)  # the place at the cursor is free again
    run_ok()
    assert len(overlays()) == 1  # the second run on the same image and place reuses it
    run_ok()
    assert len(overlays()) == 2  # a third sits beside the second: another place, another overlay
    settings.show_overlay = False
    obj = run_ok()
    assert len(overlays()) == 2 and "clipdraw_overlay" not in obj
    settings.method, settings.show_overlay = "CLIPDRAW", True
    run_ok()
    assert len(overlays()) == 2  # text drawings have no source image


def test_an_overlay_blender_cannot_read_is_a_warning_not_an_error(settings, monkeypatch, tmp_path, capfd):
    use_engine(monkeypatch, recording_engine({}))
    images = len(bpy.data.images)
    settings.method, settings.source_image.source = "SKETCH", "FILE"
    settings.source_image.filepath = str(odd_file(tmp_path, "ppm"))  # the engine reads PPM, Blender does not
    obj = run_ok()
    assert overlays() == [] and "clipdraw_overlay" not in obj and len(bpy.data.images) == images
    assert "no overlay: Blender cannot read 'photo.ppm' (the engine can)" in capfd.readouterr().out


# -- bad files through the real engine ----------------------------------------------------------
@pytest.fixture
def real_engine(settings, builtin_model):
    """The real engine, in-process when torch imports here (no worker start-up), else the worker."""
    import importlib.util

    prefs = bpy.context.preferences.addons[ADDON].preferences
    if importlib.util.find_spec("torch") is not None:
        prefs.runner = "IN_PROCESS"
    else:
        prefs.runner, prefs.python_path = "SUBPROCESS", builtin_model
    settings.model, settings.method = "builtin", "SKETCH"
    settings.sketch_strokes, settings.seeds, settings.steps, settings.canvas = 2, 1, 1, (32, 32)
    settings.source_image.source = "FILE"
    return settings


@pytest.mark.parametrize("kind, message", [
    ("corrupt", "image to sketch corrupt.png is not a readable image"),
    ("one_pixel", "image to sketch one.png is 1x1 px: at least 8 px a side"),
])
def test_files_the_engine_refuses_show_its_message_and_lose_nothing(real_engine, tmp_path, kind, message):
    from test_panels import draw

    from blender_addon import panels

    real_engine.source_image.filepath = str(odd_file(tmp_path, kind))
    before = {k: getattr(real_engine, k) for k in ("method", "sketch_strokes", "steps", "seeds")}
    objects = len(bpy.data.objects)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.clipdraw.run()
    last = session.last_run()
    assert last.status == "failed" and message in last.error
    assert len(bpy.data.objects) == objects and overlays() == []  # nothing half-made
    assert {k: getattr(real_engine, k) for k in before} == before and job_folders(tmp_path) == []
    labels = " ".join(k["text"] for name, _, k in draw(panels.CLIPDRAW_PT_main) if name == "label")
    assert " ".join(message.split()) in " ".join(labels.split())  # the panel shows all of it
    assert bpy.ops.clipdraw.run.poll()


@pytest.mark.parametrize("kind", ["grey", "grey16", "apng", "gif"])
def test_grey_16_bit_and_animated_files_are_sketched(real_engine, tmp_path, kind):
    real_engine.source_image.filepath = str(odd_file(tmp_path, kind))
    obj = run_ok()
    assert obj["clipdraw_step"] == 1 and len(session.last_run().drawing) == 2
    (empty,) = overlays()  # Blender reads these too (a GIF as a movie: its first frame, as the engine)
    assert tuple(empty.data.size) == (96, 64)
