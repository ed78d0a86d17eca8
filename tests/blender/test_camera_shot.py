"""The Camera source (issue 12): the camera's view and an exact object mask as a picture sequence,
the request it makes, and the sketch animation it comes back as (one drawing per scene frame).

The scene: an orthographic camera looking along +Y at a 16:9 view, a red cube (the object, in the
collection "Subject") that moves right between frames 1 and 2, and a blue cube beside it that is
not part of the mask. The engine for the writer tests is the test double of fake_engine.py, run
through the engine's own ``sequence`` loop shape: one stage per frame with its scene frame.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import bpy
import numpy as np
import pytest
from fake_engine import fake_sequence_run_job
from gp_versions import frame_strokes, keyed_frame
from mathutils import Matrix
from runs import finish

from blender_addon import (
    camera_shot,
    engine_path,
    grease_pencil,
    image_inputs,
    launch,
    preferences,
    properties,
    session,
)
from synth_core import request as rules

CANVAS = 64


def material(name: str, rgb) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (*rgb, 1.0)
    return mat


def cube(name: str, location, rgb, collection: bpy.types.Collection) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    s = 0.5
    verts = [(x, y, z) for x in (-s, s) for y in (-s, s) for z in (-s, s)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh.from_pydata(verts, [], faces)
    mesh.materials.append(material(name, rgb))
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    collection.objects.link(obj)
    return obj


def make_scene() -> tuple[bpy.types.Scene, bpy.types.Object]:
    """The test scene; returns it and the moving red cube (1 unit; the view is 8 units wide)."""
    scene = bpy.context.scene
    scene.render.resolution_x, scene.render.resolution_y = 320, 180
    scene.frame_start, scene.frame_end = 1, 2
    cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    cam.data.type, cam.data.ortho_scale = 'ORTHO', 8.0
    cam.matrix_world = Matrix.Translation((0.0, -10.0, 0.0)) @ Matrix.Rotation(math.pi / 2, 4, 'X')
    scene.collection.objects.link(cam)
    scene.camera = cam
    subject = bpy.data.collections.new("Subject")
    scene.collection.children.link(subject)
    red = cube("Red", (-1.0, 0.0, 0.0), (1.0, 0.0, 0.0), subject)
    red.keyframe_insert("location", frame=1)
    red.location.x = 1.0
    red.keyframe_insert("location", frame=2)
    for fc in red.animation_data.action.fcurves if hasattr(red.animation_data.action, "fcurves") else ():
        for k in fc.keyframe_points:
            k.interpolation = 'LINEAR'
    cube("Blue", (-3.0, 0.0, 0.0), (0.0, 0.0, 1.0), scene.collection)
    scene.display.shading.light = 'FLAT'
    scene.display.shading.color_type = 'MATERIAL'
    return scene, red


def read_png(path) -> np.ndarray:
    img = bpy.data.images.load(str(path))
    try:
        return image_inputs.datablock_pixels(img)
    finally:
        bpy.data.images.remove(img)


def snapshot(scene: bpy.types.Scene) -> dict:
    """Every scene setting the shot may touch, and each object's render flag."""
    r, im = scene.render, scene.render.image_settings
    names = ("engine", "resolution_x", "resolution_y", "resolution_percentage", "pixel_aspect_x", "pixel_aspect_y",
             "film_transparent", "filepath", "use_border", "use_compositing", "use_sequencer", "use_stamp",
             "use_multiview")
    out = {n: getattr(r, n) for n in names}
    out.update({f"image.{n}": getattr(im, n) for n in ("file_format", "color_mode", "color_depth")})
    out["xray"] = scene.display.shading.show_xray
    out["frame"] = scene.frame_current
    out["hidden"] = {o.name: o.hide_render for o in scene.objects}
    out["images"] = sorted(i.name for i in bpy.data.images if i.type != 'RENDER_RESULT')  # no leftovers
    return out


def render_all(scene, collection: str = "Subject", engine: str = "WORKBENCH") -> camera_shot.CameraShot:
    spec = camera_shot.ShotSpec(frames=(1, 2), canvas=CANVAS, engine=engine, collection=collection)
    camera_shot.check(scene, bpy.context.view_layer, spec)
    shot = camera_shot.CameraShot(scene, bpy.context.view_layer, spec, image_inputs.JobFolder())
    calls = 0
    while shot.render_next():  # one frame per call, as the modal operator's timer does
        calls += 1
    assert calls == 1 and shot.done
    return shot


def test_the_mask_is_the_chosen_objects_projection_and_every_setting_is_restored(tmp_path):
    scene, _ = make_scene()
    scene.render.engine = 'CYCLES'  # the user's own settings, which the shot must give back
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = 'OPEN_EXR'
    scene.render.image_settings.color_depth = '32'
    scene.render.filepath = "//user/"
    scene.render.pixel_aspect_x = 2.0  # a 320x180 render with 2:1 pixels is 32:9 on screen
    scene.display.shading.show_xray = True
    scene.frame_set(7)
    before = snapshot(scene)
    shot = render_all(scene)
    assert snapshot(scene) == before
    w, h = shot.size
    assert (w, h) == (CANVAS, round(CANVAS * 9 / 32))
    assert shot.frame_numbers == [1, 2] and all(p.endswith(".png") for p in shot.paths)
    alphas = []
    for frame, path in shot.rendered:
        rgba = read_png(path)
        assert rgba.shape == (h, w, 4)
        # the red cube's front face: 1 unit of the 8 (ortho scale, the long side) wide view
        px = w / 8.0
        cx = w / 2 + (-1.0 if frame == 1 else 1.0) * px
        cols = np.nonzero(rgba[h // 2, :, 3] > 127)[0]
        assert abs(cols.min() - (cx - px / 2)) <= 1 and abs(cols.max() + 1 - (cx + px / 2)) <= 1
        rows = np.nonzero(rgba[:, int(cx), 3] > 127)[0]
        assert abs(len(rows) - px) <= 1  # square pixels: the view as it looks on screen (32:9), not stretched
        inside = rgba[..., 3] > 127
        assert np.all(rgba[inside][:, 0] > 150) and np.all(rgba[inside][:, 2] < 80)  # only red is masked
        blue = (rgba[..., 2] > 150) & (rgba[..., 0] < 80)
        assert blue.sum() > 10 and not np.any(rgba[blue][:, 3])  # in the picture, not in the mask
        alphas.append(inside)
    assert not np.array_equal(*alphas)  # the object moved
    shot.discard()
    assert not (tmp_path / "x").exists() and shot.folder.path is None


def test_the_picture_is_the_camera_render_and_earlier_sketches_stay_out_of_it(tmp_path):
    scene, _ = make_scene()
    scene.render.engine = 'BLENDER_WORKBENCH'
    old = cube("Old sketch", (0.0, -5.0, 0.0), (0.0, 1.0, 0.0), scene.collection)  # in front of everything
    old.scale = (20.0, 1.0, 20.0)
    old["clipdraw_run_id"] = "an earlier run"
    shot = render_all(scene, collection="")
    assert not old.hide_render
    frame, path = shot.rendered[0]
    # the same camera render by hand, at the picture's size, without the earlier result
    old.hide_render = True
    scene.frame_set(frame)
    scene.render.resolution_x, scene.render.resolution_y = shot.size
    scene.render.image_settings.file_format = 'PNG'
    scene.render.image_settings.color_mode = 'RGB'  # Workbench's RGBA has partial alpha on edges even on opaque film
    scene.render.filepath = str(tmp_path / "by_hand.png")
    bpy.ops.render.render(write_still=True)
    want = read_png(tmp_path / "by_hand.png")
    got = read_png(path)
    np.testing.assert_array_equal(got[..., :3], want[..., :3])
    assert got[..., 3].max() >= 250 and got[..., 3].min() == 0  # the mask: every object (empty collection)
    assert (got[..., 3] > 127).sum() == pytest.approx(2 * 8 * 8, abs=8)  # both cubes, not the earlier result
    shot.discard()


def test_bad_shots_are_refused_in_one_line():
    scene, red = make_scene()
    layer = bpy.context.view_layer
    spec = camera_shot.ShotSpec(frames=(1, 2), canvas=CANVAS, collection="Subject")
    with pytest.raises(camera_shot.ShotRefused, match="reversed"):
        camera_shot.frame_range(5, 3)
    assert camera_shot.frame_range(1, 7, 3) == (1, 4, 7)
    empty = bpy.data.collections.new("Empty")
    with pytest.raises(camera_shot.ShotRefused, match="collection 'Empty' has no object that renders"):
        camera_shot.check(scene, layer, camera_shot.ShotSpec((1,), CANVAS, collection="Empty"))
    red.hide_render = True
    with pytest.raises(camera_shot.ShotRefused, match="no object that renders"):
        camera_shot.check(scene, layer, spec)
    red.hide_render = False
    scene.camera = red
    with pytest.raises(camera_shot.ShotRefused, match="'Red' is a mesh object, not a camera"):
        camera_shot.check(scene, layer, spec)
    scene.camera = None
    with pytest.raises(camera_shot.ShotRefused, match="needs a scene camera"):
        camera_shot.check(scene, layer, spec)
    assert empty.name == "Empty"


# -- the panel's settings: refusals and the request ------------------------------------------------
@pytest.fixture
def settings(addon, monkeypatch):
    """Image to Sketch from the camera of the test scene, 2 frames."""
    make_scene()
    s = bpy.context.scene.clipdraw
    s.method = "SKETCH"
    s.source_image.source = "CAMERA"
    s.source_image.mask_collection = bpy.data.collections["Subject"]
    s.canvas, s.steps, s.sketch_strokes, s.snapshot_every = (CANVAS, CANVAS), 4, 3, 2
    yield s
    session.stop_all()
    session.set_rendering(None)


@pytest.mark.parametrize("change, message", [
    (lambda s: setattr(bpy.context.scene, "camera", None), "needs a scene camera"),
    (lambda s: (setattr(s.source_image, "use_scene_range", False), setattr(s.source_image, "frame_start", 9),
                setattr(s.source_image, "frame_end", 4)), "the frame range 9-4 is reversed"),
    (lambda s: setattr(s, "canvas", (64, 48)), "needs a square canvas"),
    (lambda s: setattr(s.source_image, "mask_collection", bpy.data.collections.new("Nothing")),
     "collection 'Nothing' has no object that renders"),
    (lambda s: setattr(s, "continue_active", True), "turn Continue from Active off"),
])
def test_the_run_refuses_a_bad_camera_source_before_rendering_anything(settings, change, message):
    change(settings)
    frame = bpy.context.scene.frame_current
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.clipdraw.run()
    assert session.last_run().refused and len(session.last_run().error.splitlines()) == 1
    assert bpy.context.scene.frame_current == frame and not bpy.data.images
    assert not [o for o in bpy.data.objects if o.type == grease_pencil.object_type()]


def test_request_from_the_camera_source_is_a_sequence_the_engine_accepts(settings):
    settings.coherence, settings.boil = 30.0, 0.0
    frames = [(1, "/tmp/f1.png"), (2, "/tmp/f2.png")]
    req = properties.request_from(settings, images={"image": "/tmp/ignored.png"}, frames=frames)
    assert req["frames"] == ["/tmp/f1.png", "/tmp/f2.png"] and req["frame_numbers"] == [1, 2]
    assert req["coherence"] == 30.0 and "boil" not in req and "image" not in req and "tidy" not in req
    rules.parse_request(req)
    settings.boil = 1.5
    assert properties.request_from(settings, frames=frames)["boil"] == 1.5
    settings.property_unset("coherence")
    assert properties.request_from(settings, frames=frames)["coherence"] == rules.DEFAULT_COHERENCE
    settings.source_image.source = "FILE"  # another source: no sequence keys at all
    req = properties.request_from(settings, images={"image": "/tmp/x.png"}, frames=frames)
    assert "frames" not in req and "coherence" not in req and req["image"] == "/tmp/x.png"


# -- the result: one drawing per scene frame ----------------------------------------------------------
def start_camera_run(monkeypatch, run_job) -> session.RunSession:
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: run_job)
    return launch.start(bpy.context, preferences.runner_choice(bpy.context), follow=False)


@pytest.mark.parametrize("output", ["GREASE_PENCIL", "CURVES"])
def test_one_drawing_per_scene_frame_with_its_loss_parented_to_the_camera(settings, monkeypatch, output):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 3, 5
    settings.output = output
    frame = scene.frame_current
    run = finish(start_camera_run(monkeypatch, fake_sequence_run_job()))
    assert run.status == "finished", run.error
    assert run.request["frame_numbers"] == [3, 4, 5] and len(run.request["frames"]) == 3
    obj = bpy.data.objects[session.last_run().object_name]
    assert obj.parent == scene.camera and obj.name.startswith("CLIPDraw sketch Cam 3-5")
    assert list(obj["clipdraw_frame_numbers"]) == [3, 4, 5]
    np.testing.assert_allclose(list(obj["clipdraw_frame_loss"]), [0.5, 0.4, 0.3])
    assert list(obj["clipdraw_frames"]) == [3, 5] and obj["clipdraw_shot"] == "bpy.data.objects['Cam'] frames 3-5"
    if output == "GREASE_PENCIL":
        assert grease_pencil.frame_numbers(obj.data) == [3, 4, 5]  # snapshots were only previews
    else:
        from blender_addon import animation

        fc = animation.find_fcurve(obj.data, "splines[0].bezier_points[0].co", 1)
        assert [k.co[0] for k in fc.keyframe_points] == [3, 4, 5]
    assert scene.frame_current == frame  # restored after rendering the frames


@pytest.mark.parametrize("output", ["GREASE_PENCIL", "CURVES"])
def test_frames_before_the_object_comes_into_view_show_no_sketch(settings, monkeypatch, output):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 4
    settings.output = output
    run = finish(start_camera_run(monkeypatch, fake_sequence_run_job(blank_frames=2)))
    assert run.status == "finished", run.error
    obj = bpy.data.objects[session.last_run().object_name]
    assert list(obj["clipdraw_frame_numbers"]) == [1, 2, 3, 4]
    shown = {}
    for f in (1, 2, 3, 4):
        scene.frame_set(f)
        visible = not obj.hide_render and not obj.hide_viewport
        if output == "GREASE_PENCIL":
            visible = visible and len(frame_strokes(keyed_frame(obj.data.layers[0], f))) > 0
        shown[f] = visible
    assert shown == {1: False, 2: False, 3: True, 4: True}


def test_the_sketch_lies_on_the_camera_view(settings, monkeypatch):
    """The 16:9 picture letterboxed into the square canvas: the canvas' picture rectangle is the
    camera frame, so the square plane is as wide as the frame and centred on it."""
    scene = bpy.context.scene
    finish(start_camera_run(monkeypatch, fake_sequence_run_job()))
    obj = bpy.data.objects[session.last_run().object_name]
    bpy.context.view_layer.update()
    cam = scene.camera
    frame = [cam.matrix_world @ v for v in cam.data.view_frame(scene=scene)]
    xs = [v.x for v in frame]
    width = max(xs) - min(xs)
    assert list(obj["clipdraw_plane_size"]) == pytest.approx([width, width])
    centre = obj.matrix_world.translation
    assert centre.x == pytest.approx(sum(xs) / 4, abs=1e-6) and centre.z == pytest.approx(0.0, abs=1e-6)


def test_a_cancel_keeps_every_finished_frame_and_drops_the_unfinished_one(settings, monkeypatch):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 3
    run = finish(start_camera_run(monkeypatch, fake_sequence_run_job(cancel_in_frame=2)))
    assert run.status == "cancelled"
    obj = bpy.data.objects[session.last_run().object_name]
    assert grease_pencil.frame_numbers(obj.data) == [1, 2] and list(obj["clipdraw_frame_numbers"]) == [1, 2]
    assert obj["clipdraw_cancelled"]


# -- the modal Run operator: frames rendered from its timer, then the job --------------------------
def modal_op(monkeypatch, run_job):
    """The Run operator's modal code on the harness of test_operator.py, its camera frames not yet rendered."""
    from test_operator import ModalHarness

    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: run_job)
    op = ModalHarness()
    op._shot = launch.begin_shot(bpy.context)
    session.set_rendering(op._shot)
    op._timer = bpy.context.window_manager.event_timer_add(0.1, window=bpy.context.window)
    return op


def test_the_modal_run_renders_one_frame_per_tick_then_draws(settings, monkeypatch):
    scene = bpy.context.scene
    scene.frame_set(2)
    op = modal_op(monkeypatch, fake_sequence_run_job())
    timer = SimpleNamespace(type='TIMER', value='NOTHING', timer=op._timer)
    assert not bpy.ops.clipdraw.run.poll()  # one run at a time, rendering included
    assert op.modal(bpy.context, timer) == {'RUNNING_MODAL'} and len(op._shot.rendered) == 1
    assert op._shot.status_line() == "Rendering camera frame 2/2"
    assert op.modal(bpy.context, timer) == {'RUNNING_MODAL'}  # the last frame: the job starts
    assert op._shot is None and session.rendering() is None and op._session is not None
    assert scene.frame_current == 2
    result = None
    deadline = time.monotonic() + 30
    while result != {'FINISHED'}:
        result = op.modal(bpy.context, timer)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    obj = bpy.data.objects[session.last_run().object_name]
    assert grease_pencil.frame_numbers(obj.data) == [1, 2] and op._timer is None


def test_esc_while_rendering_discards_the_frames_and_restores_the_frame(settings, monkeypatch):
    scene = bpy.context.scene
    scene.frame_set(2)
    op = modal_op(monkeypatch, fake_sequence_run_job())
    timer = SimpleNamespace(type='TIMER', value='NOTHING', timer=op._timer)
    assert op.modal(bpy.context, timer) == {'RUNNING_MODAL'}
    folder = op._shot.folder.path
    assert folder.is_dir() and scene.frame_current == 1
    assert bpy.ops.clipdraw.cancel() == {'FINISHED'}  # the panel's Cancel: the next tick stops
    assert op.modal(bpy.context, timer) == {'CANCELLED'}
    assert not folder.exists() and scene.frame_current == 2 and op._timer is None
    assert session.rendering() is None and session.current() is None and not bpy.data.objects.get("CLIPDraw")
    assert ("INFO", "Cancelled while rendering the camera's frames") in op.reports
