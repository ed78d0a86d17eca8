"""Strokes read back from Blender (readback.py): the add-on's own results come back as the Drawing
that was written, for both outputs and every placement; hand-drawn Grease Pencil and curve objects
are fitted onto a canvas; selection and locked layers are reported per stroke.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
import pytest
from drawings import random_drawing
from gp_versions import draw_poly_strokes, frame_strokes, select_strokes
from mathutils import Matrix

from blender_addon import grease_pencil, placement, readback, results
from synth_core.drawing import Drawing

OUTPUTS = ("GREASE_PENCIL", "CURVES")


def rotation(axis, degrees: float) -> np.ndarray:
    return np.array(Matrix.Rotation(math.radians(degrees), 3, axis))


def camera(scene, location=(1.0, -8.0, 2.0), euler=(80.0, 0.0, 10.0)) -> bpy.types.Object:
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(cam)
    cam.location = location
    cam.rotation_euler = [math.radians(a) for a in euler]
    scene.camera = cam
    bpy.context.view_layer.update()
    return cam


def camera_plane(scene, cam, w: int, h: int, distance: float = 6.0) -> placement.Plane:
    corners = [tuple(v) for v in cam.data.view_frame(scene=scene)]
    return placement.camera_plane(np.array(cam.matrix_world), corners, cam.data.type == 'ORTHO', distance, w, h)


def plane_for(kind: str, scene, w: int, h: int) -> placement.Plane:
    if kind == "cursor":
        return placement.front_plane((1.0, 2.0, 3.0), None, 4.0, w, h)
    if kind == "rotated cursor":
        return placement.front_plane((-2.0, 0.5, 1.0), rotation('Z', 35) @ rotation('X', -20), 2.5, w, h)
    return camera_plane(scene, camera(scene), w, h)


def write(scene, output: str, drawings, plane, **spec_kw) -> bpy.types.Object:
    """A run through the real writer: snapshots, then the final drawing."""
    writer = results.ResultWriter(scene, results.OutputSpec(output, plane, name="result", **spec_kw))
    for step, d in enumerate(drawings[:-1]):
        writer.add(d, step)
    return writer.finish(drawings[-1], len(drawings))


def assert_same_drawing(got: Drawing, want: Drawing, colours: bool = True) -> None:
    assert (got.width, got.height) == (want.width, want.height)
    np.testing.assert_array_equal(got.segments, want.segments)
    np.testing.assert_allclose(got.points, want.points, atol=1e-4 * max(want.width, want.height))
    np.testing.assert_allclose(got.widths, want.widths, rtol=1e-3)
    if colours:
        np.testing.assert_allclose(got.rgba, want.rgba, atol=1 / 255)
    assert got.background == pytest.approx(want.background)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("where", ["cursor", "rotated cursor", "camera"])
def test_a_result_reads_back_as_the_drawing_written(scene, output, where):
    d = random_drawing(12, seed=7, width=200, height=120)  # random translucent colours too
    d = Drawing(d.width, d.height, d.points, d.segments, d.widths, d.rgba, background=(0.9, 0.95, 1.0, 1.0))
    obj = write(scene, output, [d], plane_for(where, scene, d.width, d.height))
    obj.location.x += 3.0  # moved and scaled after the run: the drawing is still the same
    obj.scale = (2.0, 2.0, 2.0)
    back = readback.read_object(obj)
    assert back.source == "stored"
    assert_same_drawing(back.drawing, d)
    assert back.drawing.meta["source"] == {"object": obj.name, "frame": scene.frame_current, "canvas": "stored"}
    # as Blender has them: no GP v3 selection data means all selected; new curve points and v2 strokes
    # are unselected
    assert back.selected.all() if output == "GREASE_PENCIL" and grease_pencil.is_v3() else not back.selected.any()
    assert back.locked_strokes().size == 0
    assert_same_drawing(readback.drawing_from_object(obj), d)


@pytest.mark.parametrize("output", OUTPUTS)
def test_each_snapshot_reads_back_at_its_frame(scene, output):
    drawings = [random_drawing(5, seed=s, width=96, height=96, segments=2) for s in range(3)]
    plane = placement.front_plane((0, 0, 0), None, 2.0, 96, 96)
    obj = write(scene, output, drawings, plane, start_frame=10, frames_per_snapshot=5)
    scene.frame_set(12)
    for k, frame in enumerate((10, 15, 20)):
        got = readback.read_object(obj, frame=frame).drawing
        # positions and widths are the snapshot's; every frame shows the final colours
        assert_same_drawing(got, drawings[k], colours=False)
        np.testing.assert_allclose(got.rgba, drawings[-1].rgba, atol=1 / 255)
        assert got.meta["source"]["frame"] == frame
    assert scene.frame_current == 12  # reading another frame leaves the scene where it was


@pytest.mark.parametrize("output", OUTPUTS)
def test_a_restyled_material_wins_over_the_recorded_colour(scene, output):
    d = random_drawing(4, seed=3, width=64, height=64)
    obj = write(scene, output, [d], placement.front_plane((0, 0, 0), None, 2.0, 64, 64))
    green = (0.0, 1.0, 0.0, 1.0)
    mat = obj.material_slots[0].material
    if output == "GREASE_PENCIL":
        mat.grease_pencil.color = green
    else:
        mat.diffuse_color = green
    got = readback.read_object(obj).drawing
    slot0 = np.array([_slot(obj, i) == 0 for i in range(len(d))])
    assert slot0.any() and not slot0.all()
    np.testing.assert_allclose(got.rgba[slot0], [green] * int(slot0.sum()), atol=1e-6)
    np.testing.assert_allclose(got.rgba[~slot0], d.rgba[~slot0], atol=1 / 255)


def _slot(obj, i: int) -> int:
    if obj.type == 'CURVE':
        return obj.data.splines[i].material_index
    return frame_strokes(grease_pencil.layer_of(obj.data).frames[0])[i].material_index


def test_old_results_without_a_stored_canvas_are_fitted_on_their_request_canvas(scene):
    d = random_drawing(6, seed=1, width=128, height=96)
    obj = write(scene, "GREASE_PENCIL", [d], placement.front_plane((0, 0, 0), None, 2.0, 128, 96),
                properties={"canvas": [128, 96]})
    del obj[results.CANVAS_SIZE_PROP], obj[results.PLANE_SIZE_PROP]
    back = readback.read_object(obj)
    assert back.source == "fitted" and (back.drawing.width, back.drawing.height) == (128, 96)
    pts = back.drawing.points
    assert np.all(pts >= 0) and np.all(pts <= [128, 96])
    # fitted: the same shape, centred and scaled into the margin
    span, old_span = np.ptp(pts, axis=0), np.ptp(d.points, axis=0)
    np.testing.assert_allclose(span / span.max(), old_span / old_span.max(), atol=1e-4)
    assert max(span[0] / 128, span[1] / 96) == pytest.approx(1 - 2 * readback.DEFAULT_MARGIN)
    np.testing.assert_allclose(back.drawing.widths / d.widths, span.max() / old_span.max(), rtol=1e-4)


def test_a_plane_and_eye_project_like_the_camera_placement(scene):
    d = random_drawing(8, seed=4, width=160, height=90)
    cam = camera(scene)
    plane = camera_plane(scene, cam, 160, 90)
    obj = write(scene, "GREASE_PENCIL", [d], plane)
    eye = np.array(cam.matrix_world.translation)
    # pushed away from the camera along its rays, twice as far and twice as big: it looks the same
    push = Matrix.Translation(eye) @ Matrix.Scale(2.0, 4) @ Matrix.Translation(-eye)
    obj.matrix_world = push @ obj.matrix_world
    back = readback.read_object(obj, plane=plane, eye=eye, canvas=(160, 90))
    assert back.source == "plane"
    assert_same_drawing(back.drawing, d)
    flat = readback.read_object(obj, plane=plane, canvas=(160, 90))  # orthographic: twice the size
    centre = np.array([80.0, 45.0])
    assert np.abs(flat.drawing.points - centre).max() > 1.5 * np.abs(d.points - centre).max()


# -- hand-drawn objects --------------------------------------------------------------------------
def gp_material(name: str, rgba) -> bpy.types.Material:
    mat = bpy.data.materials.new(name)
    bpy.data.materials.create_gpencil_data(mat)
    mat.grease_pencil.color = rgba
    return mat


HAND_DRAWN = {"base": [[[0, 0, 0], [1, 0.5, 0.1], [2, 0, 0], [3, 0.5, 0]], [[0, 2, 0], [3, 2, 0]]],
              "top": [[[1, 1, 0], [1.5, 1.2, 0], [2, 1, 0]]]}


def hand_drawn_grease_pencil(scene) -> bpy.types.Object:
    """Two layers of poly strokes (as the Draw tool makes them), drawn off the XY plane a little."""
    gp = grease_pencil.datablocks().new("sketch")
    obj = bpy.data.objects.new("sketch", gp)
    scene.collection.objects.link(obj)
    gp.materials.append(gp_material("ink", (0.0, 0.0, 0.0, 1.0)))
    gp.materials.append(gp_material("wash", (1.0, 0.0, 0.0, 0.5)))
    for name, lines in HAND_DRAWN.items():
        draw_poly_strokes(gp, name, 1, lines, 0.05, material_index=1 if name == "top" else 0)
    return obj


def test_a_hand_drawn_grease_pencil_is_fitted_with_its_layers_and_selection(scene):
    obj = hand_drawn_grease_pencil(scene)
    gp = obj.data
    if grease_pencil.is_v3():
        assert grease_pencil.layer_of(gp).frames[0].drawing.strokes[0].curve_type == 1  # POLY, not Bezier
    gp.layers["top"].lock = True
    if grease_pencil.is_v3():  # a point of the second stroke; "top" has no selection data
        selection = gp.layers["base"].frames[0].drawing.attributes.new(".selection", 'BOOLEAN', 'POINT')
        selection.data[5].value = True
    else:  # v2: a flag per stroke, and new strokes are unselected
        select_strokes(gp.layers["base"].frames[0], {1})
        select_strokes(gp.layers["top"].frames[0], {0})
    back = readback.read_object(obj, canvas=(224, 224))
    d = back.drawing
    assert back.source == "fitted" and (d.width, d.height) == (224, 224)
    assert d.segments.tolist() == [3, 1, 2]  # one cubic per gap between points
    assert np.all(d.points >= 0) and np.all(d.points <= 224)
    assert back.layer.tolist() == [0, 0, 1]
    assert [(i.name, i.locked) for i in back.layers] == [("base", False), ("top", True)]
    # v3: a layer without selection data counts as all selected (Blender's rule)
    assert back.selected_strokes().tolist() == [1, 2]
    assert back.locked_strokes().tolist() == [2]
    if grease_pencil.is_v3():  # layer groups are new in v3
        group = gp.layer_groups.new("inks")  # a locked group locks the layers inside it
        gp.layers.move_to_layer_group(gp.layers["base"], group)
        group.lock = True
        again = readback.read_object(obj, canvas=(224, 224))
        assert {i.name for i in again.layers if i.locked} == {"base", "top"}
        assert again.locked_strokes().tolist() == [0, 1, 2]
    # the knots are the drawn points, mapped by the fitted scale: x spans 0..3 over 90% of 224 px
    scale = 3.0 / (224 * (1 - 2 * readback.DEFAULT_MARGIN))
    assert back.scale == pytest.approx(scale)
    np.testing.assert_allclose(d.points[0:10:3], [[11.2, 112 + 1 / scale], [11.2 + 1 / scale, 112 + 0.5 / scale],
                                                  [11.2 + 2 / scale, 112 + 1 / scale],
                                                  [212.8, 112 + 0.5 / scale]], atol=1e-3)
    np.testing.assert_allclose(d.widths, 0.1 / scale, rtol=1e-5)
    np.testing.assert_allclose(d.rgba[:2], [[0, 0, 0, 1]] * 2, atol=1e-6)
    # half-transparent red over white, as Blender shows it
    shown = 0.5 * np.array([1.0, 0, 0]) + 0.5
    np.testing.assert_allclose(d.rgba[2], [*(2 * _srgb(shown) - 1), 0.5], atol=1e-6)


def _srgb(linear):
    from blender_addon.colour import linear_to_srgb

    return linear_to_srgb(np.asarray(linear))


def test_a_hand_drawn_curve_is_fitted_with_its_splines_widths_and_selection(scene):
    cu = bpy.data.curves.new("path", 'CURVE')
    cu.dimensions = '3D'
    cu.bevel_depth = 0.1
    obj = bpy.data.objects.new("path", cu)
    scene.collection.objects.link(obj)
    mat = bpy.data.materials.new("paint")
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.0, 0.0, 1.0, 1.0)
    obj.data.materials.append(mat)
    bez = cu.splines.new('BEZIER')
    bez.bezier_points.add(2)
    for bp, co in zip(bez.bezier_points, [(0, 0, 0), (2, 1, 0), (4, 0, 0)], strict=True):
        bp.co = co
        bp.handle_left_type = bp.handle_right_type = 'AUTO'
        bp.radius = 2.0
        bp.select_control_point = False
    poly = cu.splines.new('POLY')
    poly.points.add(3)
    for p, co in zip(poly.points, [(0, 3, 0, 1), (1, 3, 0, 1), (2, 3.5, 0, 1), (4, 3, 0, 1)], strict=True):
        p.co = co
        p.select = False
    poly.points[2].select = True
    back = readback.read_object(obj, canvas=(100, 100))
    d = back.drawing
    assert d.segments.tolist() == [2, 3]
    assert np.all(d.points >= 0) and np.all(d.points <= 100)
    bp = bez.bezier_points
    expected = [bp[0].co, bp[0].handle_right, bp[1].handle_left, bp[1].co]
    np.testing.assert_allclose(d.points[:4], placement.canvas_points(np.array(expected), 100, 100, back.scale,
                                                                      back.centre), atol=1e-4)
    np.testing.assert_allclose(d.widths, [2 * 2.0 * 0.1 / back.scale, 2 * 1.0 * 0.1 / back.scale], rtol=1e-5)
    np.testing.assert_allclose(d.rgba, [[0, 0, 1, 1], [0, 0, 1, 1]], atol=1e-6)
    assert back.selected_strokes().tolist() == [1] and back.locked_strokes().size == 0
    cu.bevel_depth = 0.0  # no thickness of its own: the default width
    np.testing.assert_allclose(readback.read_object(obj).drawing.widths, readback.DEFAULT_WIDTH_PX)


def test_other_objects_are_refused(scene):
    obj = bpy.data.objects.new("mesh", bpy.data.meshes.new("mesh"))
    with pytest.raises(ValueError, match="MESH"):
        readback.read_object(obj)
