"""Drawing with the artist (issue 13) in Blender: Continue from Active with kept strokes, the
abstraction ladder's levels and keyed prompts on the timeline.

The engine is the test double of fakes.py (the engine's real loop, wire code and, for keyed
prompts, its real ``series.keyed``) so that frames, layers and requests can be checked exactly;
test_real_engine.py runs a continuation with the real engine.
"""

from __future__ import annotations

import json
import os
import time

import bpy
import numpy as np
import pytest
import runs
from drawings import lines_drawing
from fakes import fake_stages_run_job, fake_worker_job
from gp_versions import draw_poly_strokes, frame_strokes, layer_names, select_strokes

from blender_addon import (
    animation,
    engine_path,
    grease_pencil,
    launch,
    placement,
    preferences,
    readback,
    results,
    session,
)
from synth_core.drawing import Drawing


@pytest.fixture
def settings(addon, monkeypatch):
    """Three lines on a 200 x 100 canvas through the in-process runner with the fake stage engine."""
    monkeypatch.setattr(engine_path, "in_process_problem", lambda: None)
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_stages_run_job())
    s = bpy.context.scene.clipdraw
    s.prompt = "three lines"
    s.strokes, s.steps, s.snapshot_every, s.canvas = 3, 12, 4, (200, 100)
    yield s
    session.stop_all()


def start() -> session.RunSession:
    return launch.start(bpy.context, preferences.runner_choice(bpy.context), follow=False)


def finish(run: session.RunSession, timeout: float = 30.0) -> session.RunSession:
    """The run pumped to its end, which must be a finished run."""
    run = runs.finish(run, timeout)
    assert run.status == "finished", run.error
    return run


def result() -> bpy.types.Object:
    return bpy.data.objects[session.last_run().object_name]


def layer_strokes(layer) -> int:
    (frame,) = layer.frames
    return len(frame_strokes(frame))


# -- the abstraction ladder ----------------------------------------------------------------------
def test_a_ladder_is_one_grease_pencil_layer_per_level_hidden_except_the_last(settings):
    settings.ladder = "3, 2,1"
    run = start()
    assert run.request["ladder"] == [3, 2, 1] and run.request["strokes"] == 3 and "tidy" not in run.request
    finish(run)
    obj = result()
    layers = list(obj.data.layers)
    assert layer_names(obj.data) == ["3 strokes", "2 strokes", "1 strokes"]
    assert [layer.hide for layer in layers] == [True, True, False]
    assert [layer_strokes(layer) for layer in layers] == [3, 2, 1]
    assert all([f.frame_number for f in layer.frames] == [settings.start_frame] for layer in layers)
    assert obj["clipdraw_level"] == "1 strokes" and run.stage == "1 strokes"
    # every level keeps its exact colours: the first level's strokes are the drawing's three colours
    first = readback.read_object(obj).drawing  # all layers are read, bottom first: 3 + 2 + 1 strokes
    np.testing.assert_allclose(first.rgba[:3], lines_drawing(3).rgba, atol=1 / 255)
    assert not [m for m in bpy.data.materials if m.users == 0]  # no preview colours left behind


def test_continuing_a_ladder_takes_the_level_shown(settings):
    settings.ladder = "3,2"
    finish(start())
    bpy.context.view_layer.objects.active = result()
    if not grease_pencil.is_v3():  # v2 strokes are written unselected; v3 has no selection data: all selected
        for layer in result().data.layers:
            select_strokes(layer.frames[0], range(len(frame_strokes(layer.frames[0]))))
    settings.ladder, settings.continue_active, settings.keep, settings.add_strokes = "", True, "SELECTED", 1
    run = start()
    sent = Drawing.load(run.request["init"])
    assert len(sent) == 2 and run.request["lock"] == [0, 1]  # the hidden 3-stroke level is left out
    finish(run)


def test_a_curve_ladder_keeps_earlier_levels_as_hidden_objects_in_a_sub_collection(settings):
    settings.ladder, settings.output = "3,2,1", "CURVES"
    finish(start())
    obj = result()
    assert len(obj.data.splines) == 1 and obj["clipdraw_level"] == "1 strokes" and not obj.hide_get()
    (levels,) = obj.users_collection[0].children
    assert levels.name == f"{obj.name} levels"
    made = sorted(levels.objects, key=lambda o: -len(o.data.splines))
    assert [(o["clipdraw_level"], len(o.data.splines)) for o in made] == [("3 strokes", 3), ("2 strokes", 2)]
    assert all(o.hide_get() and o.hide_render for o in made)
    assert all(o.matrix_world == obj.matrix_world for o in made)
    back = readback.read_object(made[0])  # each level is a result of its own: read back on its canvas
    assert back.source == "stored" and (back.drawing.width, back.drawing.height) == (200, 100)
    assert made[0]["clipdraw_prompt"] == "three lines" and "clipdraw_run_id" not in made[0]


def test_a_cancelled_ladder_shows_the_level_where_it_stopped(settings, monkeypatch):
    monkeypatch.setattr(engine_path, "load_run_job", lambda: fake_stages_run_job(delay=0.05))  # 1 s a level
    settings.ladder, settings.steps = "3,2,1", 4
    run = start()
    deadline = time.monotonic() + 30
    while not run.stage:  # the first level is finished: the second one is forming
        run.pump(budget_s=None)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run.cancel()
    while run.running:
        run.pump(budget_s=None)
    assert run.status == "cancelled"
    session.release(run)
    layers = list(result().data.layers)
    shown = [(name, layer.hide, layer_strokes(layer)) for name, layer in zip(layer_names(result().data), layers)]
    assert shown == [("3 strokes", True, 3), ("2 strokes", False, 2)]


def test_a_ladder_that_does_not_parse_or_go_down_is_refused(settings):
    settings.ladder = "64, many"
    with pytest.raises(RuntimeError, match="'many' is not one"):
        bpy.ops.clipdraw.run()
    settings.ladder = "3,4"
    with pytest.raises(RuntimeError, match="ladder counts must go down"):
        bpy.ops.clipdraw.run()
    assert session.last_run().refused and len(bpy.data.objects) == 0


# -- keyed prompts -------------------------------------------------------------------------------
def key(settings, frame: int, prompt: str) -> None:
    bpy.context.scene.frame_set(frame)
    settings.prompt = prompt
    assert bpy.ops.clipdraw.keyed_prompt_add() == {'FINISHED'}
    settings.keyed_prompts[settings.keyed_index].prompt = prompt


def test_add_at_current_frame_keeps_the_list_in_frame_order_and_replaces_the_prompt(settings):
    scene = bpy.context.scene
    scene.frame_set(10)
    assert bpy.ops.clipdraw.keyed_prompt_add() == {'FINISHED'}
    assert [(k.frame, k.prompt) for k in settings.keyed_prompts] == [(10, "three lines")]  # the prompt, to start
    scene.frame_set(1)
    assert bpy.ops.clipdraw.keyed_prompt_add() == {'FINISHED'}
    assert [(k.frame, k.prompt) for k in settings.keyed_prompts] == [(1, ""), (10, "three lines")]
    assert settings.keyed_index == 0
    with pytest.raises(RuntimeError, match="keyed prompt on frame 1 is empty"):
        bpy.ops.clipdraw.run()
    settings.keyed_prompts[0].prompt = "first lines"
    scene.frame_set(10)
    assert bpy.ops.clipdraw.keyed_prompt_add() == {'CANCELLED'} and settings.keyed_index == 1  # one per frame
    settings.keyed_prompts[0].frame = 10
    with pytest.raises(RuntimeError, match="two keyed prompts are on frame 10"):
        bpy.ops.clipdraw.run()
    settings.keyed_prompts[0].frame = 20  # the list may go out of order: the request is sorted
    settings.prompt = "   "  # not used: no "prompt is empty"
    run = start()
    assert run.request["keyed_prompts"] == [[10, "three lines"], [20, "first lines"]]
    assert "prompt" not in run.request and run.request["tidy"] is True  # hides strokes at each key
    finish(run)
    assert result().name == "CLIPDraw three lines to first lines"
    assert settings.keyed_prompts[settings.keyed_index].frame == 10
    assert bpy.ops.clipdraw.keyed_prompt_remove() == {'FINISHED'}  # the selected one
    assert [k.frame for k in settings.keyed_prompts] == [20] and settings.keyed_index == 0
    assert bpy.ops.clipdraw.keyed_prompt_remove() == {'FINISHED'}
    assert not bpy.ops.clipdraw.keyed_prompt_remove.poll()


@pytest.mark.parametrize("runner", ["in-process", "worker"])
@pytest.mark.parametrize("output", ["GREASE_PENCIL", "CURVES"])
def test_keyed_drawings_land_on_their_frames_and_the_morph_between_them(settings, monkeypatch, output, runner):
    if runner == "worker":  # the worker process passes stage events and frames through unchanged
        monkeypatch.setattr(launch, "make_job", lambda request, choice: fake_worker_job("stages", request))
    settings.output = output
    key(settings, 5, "three lines")
    key(settings, 15, "moved lines")
    run = finish(start())
    obj = result()
    # the engine's series.keyed: prompt 1 forms without frames (a preview on frame 5), its drawing is
    # keyed on frame 5; the morph's snapshots (steps 4 and 8 of 12) on frames 8 and 12; prompt 2 on 15
    want = [5, 8, 12, 15]
    if output == "GREASE_PENCIL":
        assert grease_pencil.frame_numbers(obj.data) == want
    else:
        fc = animation.find_fcurve(obj.data, "splines[0].bezier_points[0].co", 1)
        assert [k.co[0] for k in fc.keyframe_points] == want
    assert list(obj["clipdraw_frames"]) == [5, 15] and run.stage == "frame 15: moved lines"
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (5, 15)  # the factory range becomes the keys' frames
    for frame, shift in ((5, 12), (15, 24)):  # FakeMethod moves its lines down a pixel a step
        got = readback.read_object(obj, frame=frame).drawing
        np.testing.assert_allclose(got.points, lines_drawing(3, 200, 100, shift=shift).points, atol=1e-3)


def test_final_only_keeps_just_the_keyed_drawings_on_their_frames(settings):
    settings.animation = "FINAL"
    key(settings, 3, "three lines")
    key(settings, 9, "moved lines")
    bpy.context.scene.frame_start, bpy.context.scene.frame_end = 1, 100  # a range of the user's own
    finish(start())
    assert grease_pencil.frame_numbers(result().data) == [3, 9]
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 100)
    assert scene.use_preview_range and (scene.frame_preview_start, scene.frame_preview_end) == (3, 9)


# -- continue from active --------------------------------------------------------------------------
def source_result(scene, output: str = "GREASE_PENCIL", drawing: Drawing | None = None) -> bpy.types.Object:
    """A result of an earlier run (written by the real writer), active, with a stored canvas."""
    d = drawing or lines_drawing(3, width=120, height=80)
    plane = placement.front_plane((1.0, 2.0, 0.5), None, 3.0, d.width, d.height)
    obj = results.ResultWriter(scene, results.OutputSpec(output, plane, name="earlier")).finish(d, 10)
    obj.scale = (2.0, 2.0, 2.0)  # moved and scaled since: the continuation lies on it still
    obj.location.x -= 1.0
    bpy.context.view_layer.update()
    bpy.context.view_layer.objects.active = obj
    return obj


@pytest.mark.parametrize("output", ["GREASE_PENCIL", "CURVES"])
def test_continue_from_active_sends_its_drawing_kept_strokes_and_canvas(settings, scene, output):
    source = source_result(scene, output)
    settings.continue_active, settings.add_strokes = True, 2
    settings.output = output
    if output == "GREASE_PENCIL":
        select_strokes(grease_pencil.layer_of(source.data).frames[0], {0, 2})
        settings.keep = "SELECTED"
    else:
        settings.keep = "NONE"
    run = start()
    req = run.request
    assert req["canvas"] == [120, 80] and req["add"] == 2 and "strokes" not in req  # the drawing's canvas
    assert req["lock"] == ([0, 2] if output == "GREASE_PENCIL" else [])
    sent = Drawing.load(req["init"])
    np.testing.assert_allclose(sent.points, lines_drawing(3, 120, 80).points, atol=1e-4 * 120)
    assert os.path.dirname(req["init"]) in [str(p) for p in run.job._owned]  # removed with the job
    finish(run)
    assert not os.path.exists(req["init"])
    obj = result()
    assert obj is not source and len(bpy.data.objects) == 2
    assert np.allclose(np.array(obj.matrix_world), np.array(source.matrix_world))  # on the source's canvas
    assert obj["clipdraw_init"] == f"bpy.data.objects['earlier'] at frame {scene.frame_current}"
    assert json.loads(obj["clipdraw_request"])["init"] == obj["clipdraw_init"]
    assert list(obj["clipdraw_canvas_size"]) == [120, 80]


def test_continue_with_replace_active_continues_in_place(settings, scene):
    source = source_result(scene)
    name, where = source.name, np.array(source.matrix_world)
    settings.continue_active, settings.target, settings.add_strokes = True, "REPLACE", 1
    finish(start())
    assert result() == source and len(bpy.data.objects) == 1 and source.name != name
    assert np.allclose(np.array(source.matrix_world), where, atol=1e-6)  # scale and place kept
    assert len(frame_strokes(grease_pencil.layer_of(source.data).frames[-1])) == 4


def hand_drawn(scene) -> bpy.types.Object:
    """Two Grease Pencil layers of strokes drawn by hand; 'top' is locked."""
    gp = grease_pencil.datablocks().new("sketch")
    obj = bpy.data.objects.new("sketch", gp)
    scene.collection.objects.link(obj)
    for name, lines in {"base": [[(0, 0, 0), (1, 0.5, 0), (2, 0, 0)], [(0, 2, 0), (3, 2, 0)]],
                        "top": [[(1, 1, 0), (2, 1, 0)]]}.items():
        layer = draw_poly_strokes(gp, name, scene.frame_current, lines, 0.05)
        if not grease_pencil.is_v3():  # as v3 without selection data: every stroke selected
            select_strokes(layer.frames[0], range(len(lines)))
    gp.layers["top"].lock = True
    bpy.context.view_layer.objects.active = obj
    return obj


def test_keep_locked_layers_keeps_their_strokes_and_hand_drawings_use_the_canvas_setting(settings, scene):
    hand_drawn(scene)
    settings.continue_active, settings.keep, settings.add_strokes = True, "LOCKED", 0
    run = start()
    assert run.request["lock"] == [2] and run.request["canvas"] == [200, 100]  # fitted on the Canvas setting
    finish(run)
    settings.keep = "SELECTED"  # no selection data: every stroke is selected (Blender's rule)
    with pytest.raises(RuntimeError, match="all 3 strokes are kept and Add Strokes is 0"):
        bpy.ops.clipdraw.run()


def test_continue_reads_the_selection_made_in_edit_mode(settings, scene):
    cu = bpy.data.curves.new("path", 'CURVE')
    cu.dimensions = '3D'
    for y in (0.0, 1.0, 2.0):
        sp = cu.splines.new('POLY')
        sp.points.add(1)
        sp.points[0].co, sp.points[1].co = (0, y, 0, 1), (2, y, 0, 1)
    obj = bpy.data.objects.new("path", cu)
    scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    bpy.ops.curve.select_all(action='DESELECT')
    obj.data.splines[1].points[0].select = True  # edit-mode data: Blender writes it back on leaving
    bpy.ops.object.mode_set(mode='OBJECT')
    bpy.ops.object.mode_set(mode='EDIT')
    settings.continue_active, settings.keep, settings.output = True, "SELECTED", "CURVES"
    run = start()
    assert obj.mode == 'OBJECT' and run.request["lock"] == [1]
    finish(run)


@pytest.mark.parametrize("make, message", [
    (lambda scene: None, "needs an active Grease Pencil or curve object"),
    (lambda scene: bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube")), "'Cube' is a MESH"),
    (lambda scene: bpy.data.objects.new("empty", grease_pencil.datablocks().new("empty")), "has no visible strokes at frame"),
])
def test_continue_from_active_refuses_what_it_cannot_read_in_one_line(settings, scene, make, message):
    obj = make(scene)
    if obj is not None:
        scene.collection.objects.link(obj)
        bpy.context.view_layer.objects.active = obj
    settings.continue_active = True
    before = len(bpy.data.objects)
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.clipdraw.run()
    last = session.last_run()
    assert last.refused and message.split("'")[0] in last.error and "Traceback" not in last.error
    assert len(bpy.data.objects) == before


def test_a_ladder_must_start_at_the_continued_strokes(settings, scene):
    source_result(scene)
    settings.continue_active, settings.add_strokes, settings.ladder = True, 2, "8,4"
    with pytest.raises(RuntimeError, match="the drawing has 3 and Add Strokes is 2 .5.: start the Ladder at 5"):
        bpy.ops.clipdraw.run()
    settings.ladder = "5,2,1"
    finish(start())
    assert layer_names(result().data) == ["5 strokes", "2 strokes", "1 strokes"]


def test_a_drawing_file_continues_through_the_operator(settings, tmp_path):
    path = tmp_path / "start.json"
    lines_drawing(3, 96, 64).save(path)
    settings.add_strokes = 1
    assert bpy.ops.clipdraw.run(init_file=str(path), lock="0-1") == {'FINISHED'}
    obj = result()
    req = json.loads(obj["clipdraw_request"])
    assert req["init"] == str(path) and req["lock"] == [0, 1] and req["canvas"] == [96, 64]
    with pytest.raises(RuntimeError, match="lock: stroke indices are numbers and ranges"):
        bpy.ops.clipdraw.run(init_file=str(path), lock="0-x")
    with pytest.raises(RuntimeError, match="stroke 7 cannot be kept: the drawing has 3 strokes"):
        bpy.ops.clipdraw.run(init_file=str(path), lock="7")


def test_restore_defaults_resets_how_to_draw_and_keeps_the_keyed_prompts(settings):
    settings.continue_active, settings.keep, settings.add_strokes, settings.ladder = True, "LOCKED", 3, "8,4"
    key(settings, 4, "a red circle")
    assert bpy.ops.clipdraw.restore_defaults() == {'FINISHED'}
    assert (settings.continue_active, settings.keep, settings.add_strokes, settings.ladder) == (False, "NONE", 16, "")
    assert [(k.frame, k.prompt) for k in settings.keyed_prompts] == [(4, "a red circle")]
