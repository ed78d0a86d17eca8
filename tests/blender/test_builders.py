"""Builders read back from Blender data: counts, mapped positions, radii, colours, frames, keyframes,
materials, the timeline, Replace Active and the overlay's image.

Runs on the installed bpy: 4.3+ exercises Grease Pencil v3 (Bezier strokes, whole-array
attributes), 4.2 Grease Pencil v2 (sampled polylines) and the legacy action API; 4.4+ the
slotted actions.
"""

from __future__ import annotations

import bpy
import numpy as np
import pytest
from drawings import cubic_points, lines_drawing, random_drawing
from mathutils import Matrix

from blender_addon import animation, grease_pencil, materials, overlay, placement, results


def world(obj, local: np.ndarray) -> np.ndarray:
    m = np.array(obj.matrix_world)
    return local @ m[:3, :3].T + m[:3, 3]


def write_run(scene, output: str, drawings, steps, plane=None, name: str = "test", **spec_kw):
    plane = plane or placement.front_plane((1.0, 2.0, 3.0), None, 4.0, drawings[0].width, drawings[0].height)
    writer = results.ResultWriter(scene, results.OutputSpec(output, plane, name=name, **spec_kw))
    for d, s in zip(drawings[:-1], steps[:-1], strict=True):
        writer.add(d, s)
    obj = writer.finish(drawings[-1], steps[-1])
    return obj, plane, writer


def gp_frame_drawing(obj, frame_number: int):
    layer = grease_pencil.layer_of(obj.data)
    return next(f for f in layer.frames if f.frame_number == frame_number).drawing


def gp_frame_strokes(obj, frame_number: int):
    layer = grease_pencil.layer_of(obj.data)
    frame = next(f for f in layer.frames if f.frame_number == frame_number)
    return frame.drawing.strokes if grease_pencil.is_v3() else frame.strokes


def gp_points(stroke) -> np.ndarray:
    attr = "position" if grease_pencil.is_v3() else "co"
    return np.array([getattr(p, attr)[:] for p in stroke.points])


def test_grease_pencil_frames_positions_radii_and_colours(scene):
    drawings = [lines_drawing(shift=k) for k in range(3)] + [lines_drawing(shift=9)]
    obj, plane, _ = write_run(scene, "GREASE_PENCIL", drawings, [0, 10, 20, 25], start_frame=5,
                              frames_per_snapshot=3)
    assert obj.type == grease_pencil.object_type()
    assert grease_pencil.frame_numbers(obj.data) == [5, 8, 11, 14]
    assert obj.users_collection[0].name == results.COLLECTION_NAME
    d = drawings[2]
    strokes = gp_frame_strokes(obj, 11)
    assert len(strokes) == 3
    s = plane.scale(d.width)
    for i, stroke in enumerate(strokes):
        ctrl = d.points[d.offsets[i] : d.offsets[i + 1]]
        pts = world(obj, gp_points(stroke))
        if grease_pencil.is_v3():  # Bezier knots are the engine's control points 0 and 3
            expected = plane.world_points(ctrl[[0, 3]], d.width, d.height)
            np.testing.assert_allclose(pts, expected, atol=1e-5)
            radius = stroke.points[0].radius
            handles = gp_frame_drawing(obj, 11).attributes["handle_right"].data
            np.testing.assert_allclose(handles[2 * i].vector[:], plane.local_points(ctrl[1:2], d.width, d.height)[0],
                                       atol=1e-5)
        else:  # sampled polyline along the same cubic
            expected = plane.world_points(cubic_points(ctrl, grease_pencil.V2_SAMPLES_PER_SEGMENT), d.width, d.height)
            np.testing.assert_allclose(pts, expected, atol=1e-5)
            radius = stroke.line_width * stroke.points[0].pressure * grease_pencil.V2_RADIUS_PER_THICKNESS
        assert radius == pytest.approx(d.widths[i] * s / 2, rel=1e-5)
    # colours: one material per colour, holding the canvas-matched linear colour and opacity; points
    # add nothing (full opacity, no vertex colour), so editing a material restyles its strokes
    mapped = placement.map_strokes(drawings[-1], plane)  # every frame shows the final colours
    keys = materials.colour_keys(mapped.display_srgba)
    for i, stroke in enumerate(strokes):
        mat = obj.data.materials[stroke.material_index]
        assert mat.name == materials.GP_MATERIAL_PREFIX + keys[i] and mat.is_grease_pencil
        np.testing.assert_allclose(mat.grease_pencil.color[:], [*mapped.colour[i], mapped.alpha[i]], atol=1 / 255)
        point = stroke.points[0]
        assert (point.opacity if grease_pencil.is_v3() else point.strength) == 1.0
        assert point.vertex_color[3] == 0.0
    red = obj.data.materials[strokes[0].material_index].grease_pencil.color
    assert red[:] == pytest.approx((1, 0, 0, 1))  # opaque red stays red
    assert mapped.alpha[1] > 0.5  # half-transparent on the canvas needs more opacity in linear blending
    assert grease_pencil.layer_of(obj.data).use_lights is False
    assert sorted(m.name for m in obj.data.materials) == sorted(materials.GP_MATERIAL_PREFIX + k for k in set(keys))
    assert obj["clipdraw_step"] == 25 and obj["clipdraw_cancelled"] == 0


def test_each_drawing_gets_its_own_frame_and_final_only_overwrites_one(scene):
    """The engine sends the final drawing once, with ``done``: it is one more frame, even at a
    step that was also snapshotted; 'Final Result Only' keeps a single frame."""
    drawings = [lines_drawing(shift=k) for k in (0, 1, 2)]
    obj, _, _ = write_run(scene, "GREASE_PENCIL", drawings, [0, 10, 10])
    assert grease_pencil.frame_numbers(obj.data) == [1, 2, 3]
    obj2, _, _ = write_run(scene, "GREASE_PENCIL", drawings, [0, 10, 20], keyframes=False, start_frame=7)
    assert grease_pencil.frame_numbers(obj2.data) == [7]  # final result only: one frame, overwritten
    assert len(grease_pencil.layer_of(obj2.data).frames[0].drawing.strokes if grease_pencil.is_v3()
               else grease_pencil.layer_of(obj2.data).frames[0].strokes) == 3
    assert len(bpy.data.materials) == 3  # one per colour, shared by both runs, never duplicated


def test_grease_pencil_materials_restyle_every_frame_and_preview_colours_are_cleaned_up(scene):
    drawings = [random_drawing(8, seed) for seed in range(4)]
    obj, plane, writer = write_run(scene, "GREASE_PENCIL", drawings, [0, 1, 2, 3])
    final = placement.map_strokes(drawings[-1], plane)
    keys = materials.colour_keys(final.display_srgba)
    expected = {materials.GP_MATERIAL_PREFIX + k for k in keys}
    assert {m.name for m in bpy.data.materials} == expected  # the preview palette was removed
    for frame in writer.frames:  # stroke i is drawn with its final colour's material on every frame
        used = [obj.data.materials[s.material_index].name for s in gp_frame_strokes(obj, frame)]
        assert used == [materials.GP_MATERIAL_PREFIX + k for k in keys]
    write_run(scene, "GREASE_PENCIL", drawings, [0, 1, 2, 3])
    assert {m.name for m in bpy.data.materials} == expected  # a second run reuses every material


def test_grease_pencil_frame_holds_until_the_next_snapshot(scene):
    obj, _, _ = write_run(scene, "GREASE_PENCIL", [lines_drawing(n=1), lines_drawing(n=2), lines_drawing(n=3)],
                          [0, 5, 10], start_frame=1, frames_per_snapshot=10)
    layer = grease_pencil.layer_of(obj.data)
    if grease_pencil.is_v3():
        assert layer.get_frame_at(15).frame_number == 11 and len(layer.get_frame_at(15).drawing.strokes) == 2
    scene.frame_set(15)
    shown = layer.current_frame() if grease_pencil.is_v3() else layer.active_frame
    assert shown.frame_number == 11


def curve_points(cu) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    co, hl, hr, rad = [], [], [], []
    for sp in cu.splines:
        for bp in sp.bezier_points:
            co.append(bp.co[:]), hl.append(bp.handle_left[:]), hr.append(bp.handle_right[:]), rad.append(bp.radius)
    return np.array(co), np.array(hl), np.array(hr), np.array(rad)


def test_curve_splines_hold_the_exact_control_points_radii_and_colour_materials(scene):
    d = lines_drawing(n=3, segments=2)
    obj, plane, _ = write_run(scene, "CURVES", [d], [0])
    cu = obj.data
    assert obj.type == 'CURVE' and len(cu.splines) == 3
    assert [len(sp.bezier_points) for sp in cu.splines] == [3, 3, 3]
    co, hl, hr, rad = curve_points(cu)
    ctrl = plane.world_points(d.points, d.width, d.height)
    np.testing.assert_allclose(world(obj, co), ctrl[[0, 3, 6, 7, 10, 13, 14, 17, 20]], atol=1e-5)
    np.testing.assert_allclose(world(obj, hr[:2]), ctrl[[1, 4]], atol=1e-5)
    np.testing.assert_allclose(world(obj, hl[1:3]), ctrl[[2, 5]], atol=1e-5)
    np.testing.assert_allclose(rad * cu.bevel_depth, np.repeat(d.widths, 3) * plane.scale(d.width) / 2, rtol=1e-5)
    assert {sp.bezier_points[0].handle_left_type for sp in cu.splines} == {'FREE'}
    # colour and alpha through one material per colour, rendered flat
    mapped = placement.map_strokes(d, plane)
    mat = obj.material_slots[cu.splines[1].material_index].material
    assert mat.name == materials.CURVE_MATERIAL_PREFIX + materials.colour_keys(mapped.display_srgba[1:2])[0]
    np.testing.assert_allclose(mat.diffuse_color[:], [*mapped.colour[1], mapped.alpha[1]], atol=1e-2)
    assert mat.node_tree.nodes["Mix Shader"].inputs["Fac"].default_value == pytest.approx(mapped.alpha[1], abs=1 / 255)
    red = obj.material_slots[cu.splines[0].material_index].material
    assert red.name == "CLIPDraw #FF0000FF" and red.diffuse_color[:] == pytest.approx((1, 0, 0, 1))


def test_curve_materials_are_reused_across_runs_and_preview_colours_are_cleaned_up(scene):
    drawings = [random_drawing(8, seed) for seed in range(4)]
    write_run(scene, "CURVES", drawings, [0, 1, 2, 3])
    names = {m.name for m in bpy.data.materials}
    plane = placement.front_plane((1.0, 2.0, 3.0), None, 4.0, 224, 224)
    final = placement.map_strokes(drawings[-1], plane)
    expected = {materials.CURVE_MATERIAL_PREFIX + k for k in materials.colour_keys(final.display_srgba)}
    assert names == expected  # only the final colours remain: the preview palette was removed
    write_run(scene, "CURVES", drawings, [0, 1, 2, 3])
    assert {m.name for m in bpy.data.materials} == names  # a second run reuses every material


def test_curve_keyframes_replay_the_snapshots(scene):
    drawings = [lines_drawing(n=2, shift=4 * k) for k in range(4)]
    obj, plane, writer = write_run(scene, "CURVES", drawings, [0, 10, 20, 30], start_frame=10, frames_per_snapshot=5)
    assert writer.frames == [10, 15, 20, 25]
    fc = animation.find_fcurve(obj.data, "splines[1].bezier_points[0].co", 1)
    assert fc is not None and len(fc.keyframe_points) == 4
    y0 = plane.local_points(drawings[0].points, 200, 100)[4, 1]  # stroke 1's first control point
    assert fc.evaluate(10) == pytest.approx(y0, abs=1e-6)
    assert fc.evaluate(20) == pytest.approx(y0 - 8 * plane.scale(200), abs=1e-6)
    assert fc.evaluate(17.5) == pytest.approx(y0 - 6 * plane.scale(200), abs=1e-6)  # linear in between
    # the keys really drive the curve: scrub the timeline and read the splines back
    for frame, d in zip([10, 15, 20, 25], drawings, strict=True):
        scene.frame_set(frame)
        co, _, _, _ = curve_points(obj.data)
        expected = plane.world_points(d.points, d.width, d.height)[[0, 3, 4, 7]]
        np.testing.assert_allclose(world(obj, co), expected, atol=1e-5)
    scene.frame_set(1)  # before the first snapshot: the first drawing holds
    first = plane.world_points(drawings[0].points, 200, 100)[0]
    np.testing.assert_allclose(world(obj, curve_points(obj.data)[0])[0], first, atol=1e-5)


def test_timeline_shows_the_drawings_frames_and_keeps_the_users_range(scene):
    assert (scene.frame_start, scene.frame_end) == animation.FACTORY_RANGE
    write_run(scene, "GREASE_PENCIL", [lines_drawing(shift=k) for k in range(4)], [0, 5, 10, 15], start_frame=3,
              frames_per_snapshot=2)
    assert (scene.frame_start, scene.frame_end) == (3, 9)  # a factory range becomes the drawing's frames
    assert not scene.use_preview_range
    scene.frame_start, scene.frame_end = 1, 100  # the user's own range
    write_run(scene, "CURVES", [lines_drawing(shift=k) for k in range(3)], [0, 5, 10], start_frame=10,
              frames_per_snapshot=10)
    assert (scene.frame_start, scene.frame_end) == (1, 100)  # kept
    assert scene.use_preview_range and (scene.frame_preview_start, scene.frame_preview_end) == (10, 30)
    write_run(scene, "GREASE_PENCIL", [lines_drawing(shift=k) for k in range(3)], [0, 5, 10], start_frame=90,
              frames_per_snapshot=10)
    assert (scene.frame_start, scene.frame_end) == (1, 110)  # only grown, so renders reach the last frame
    assert (scene.frame_preview_start, scene.frame_preview_end) == (90, 110)
    scene.use_preview_range = False
    write_run(scene, "GREASE_PENCIL", [lines_drawing(), lines_drawing(shift=1)], [0, 5], keyframes=False)
    assert not scene.use_preview_range and scene.frame_end == 110  # a single frame: the timeline is left alone


def test_replace_active_swaps_the_data_keeps_the_object_and_takes_the_new_name(scene):
    first, _, _ = write_run(scene, "CURVES", [lines_drawing(n=2)], [0], name="CLIPDraw a red circle")
    first["user_note"] = "kept"
    old_data = first.data.name
    obj, _, _ = write_run(scene, "CURVES", [lines_drawing(n=3)], [0], replace=first.name, name="CLIPDraw a blue square")
    assert obj == first and len(obj.data.splines) == 3
    assert obj.name == "CLIPDraw a blue square" and obj.data.name == "CLIPDraw a blue square"
    assert obj["user_note"] == "kept" and obj.users_collection[0].name == results.COLLECTION_NAME
    assert old_data not in bpy.data.curves  # no orphan left behind
    with pytest.raises(results.TargetLost, match="cannot take"):
        write_run(scene, "GREASE_PENCIL", [lines_drawing()], [0], replace=obj.name)
    assert len(grease_pencil.datablocks()) == 0  # the refused run made nothing
    gp, _, _ = write_run(scene, "GREASE_PENCIL", [lines_drawing()], [0], name="CLIPDraw old prompt")
    old_gp = gp.data.name
    again, _, _ = write_run(scene, "GREASE_PENCIL", [lines_drawing(n=2)], [0], replace=gp.name, name="CLIPDraw new prompt")
    assert again == gp and again.name == "CLIPDraw new prompt" and old_gp not in grease_pencil.datablocks()


def test_the_overlays_source_file_is_packed_so_moving_the_blend_keeps_it(scene, tmp_path):
    from pictures import disc_rgba, write_rgba

    source = write_rgba(tmp_path / "photo.png", disc_rgba(transparent=False))
    plane = placement.front_plane((0, 0, 0), None, 2.0, 64, 64)
    spec = overlay.OverlaySpec(plane=plane, canvas=64, label=str(source), image_path=str(source))
    empty, problem = overlay.ensure_overlay(scene, spec, results.results_collection(scene))
    assert problem == "" and empty.data.packed_file is not None
    (tmp_path / "a").mkdir()
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "a" / "sketch.blend"))
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "sketch.blend").rename(tmp_path / "b" / "sketch.blend")
    source.unlink()
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "b" / "sketch.blend"))
    image = next(o for o in bpy.data.objects if o.type == 'EMPTY').data
    assert tuple(image.size) == (96, 64) and image.has_data
    px = np.empty(96 * 64 * 4, np.float32)
    image.pixels.foreach_get(px)
    assert px.reshape(64, 96, 4)[64 - 1 - 32, 70, 0] == 0.0 and px.reshape(64, 96, 4)[0, 0, 0] == 1.0  # the disc
    chosen = bpy.data.images.new("Painted", 8, 8)  # a datablock the user picked is left as it is
    spec = overlay.OverlaySpec(plane=plane, canvas=64, label="Painted", image_name="Painted")
    overlay.ensure_overlay(bpy.context.scene, spec, results.results_collection(bpy.context.scene))
    assert chosen.packed_file is None


def test_deleting_the_result_mid_run_is_detected(scene):
    plane = placement.front_plane((0, 0, 0), None, 1.0, 200, 100)
    writer = results.ResultWriter(scene, results.OutputSpec("GREASE_PENCIL", plane, name="gone"))
    obj = writer.add(lines_drawing(), 0)
    bpy.data.objects.remove(obj)
    with pytest.raises(results.TargetLost, match="deleted"):
        writer.add(lines_drawing(), 1)
    assert writer.abort("the result object was deleted") is None


def test_camera_placement_maps_the_canvas_onto_the_camera_frame(scene):
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    cam.matrix_world = Matrix.Translation((0, -10, 0)) @ Matrix.Rotation(np.pi / 2, 4, 'X')
    scene.camera = cam
    scene.render.resolution_x, scene.render.resolution_y = 400, 200
    frame = [tuple(v) for v in cam.data.view_frame(scene=scene)]
    plane = placement.camera_plane(np.array(cam.matrix_world), frame, False, 10.0, 400, 200)
    obj, _, _ = write_run(scene, "CURVES", [lines_drawing(n=1, width=400, height=200)], [0], plane=plane)
    from bpy_extras.object_utils import world_to_camera_view

    co = world(obj, curve_points(obj.data)[0])
    ndc = np.array([world_to_camera_view(scene, cam, __import__("mathutils").Vector(p))[:2] for p in co])
    # canvas (10, 10) and (390, 10) land at the same place in the camera frame (y flipped)
    np.testing.assert_allclose(ndc, [[10 / 400, 1 - 10 / 200], [390 / 400, 1 - 10 / 200]], atol=1e-5)
