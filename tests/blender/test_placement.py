"""Canvas -> world mapping: pure numpy, no Blender needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blender_addon import placement
from synth_core.drawing import Drawing

NEEDS_BPY = False


def rot_z(deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_front_plane_maps_corners_with_y_flipped_and_aspect_kept():
    plane = placement.front_plane((1.0, 2.0, 3.0), None, 4.0, 200, 100)
    corners = plane.world_points(np.array([[0, 0], [200, 0], [0, 100], [200, 100], [100, 50]]), 200, 100)
    # canvas top-left -> left (-X) and up (+Z) of the cursor; the front plane is XZ at the cursor's y
    np.testing.assert_allclose(corners, [[-1, 2, 4], [3, 2, 4], [-1, 2, 2], [3, 2, 2], [1, 2, 3]], atol=1e-12)
    assert plane.height == pytest.approx(2.0)
    assert plane.scale(200) == pytest.approx(0.02)
    np.testing.assert_allclose(plane.matrix[:3, 2], [0, -1, 0], atol=1e-12)  # faces a Front-view viewer


def test_front_plane_turns_with_the_cursor():
    plane = placement.front_plane((0, 0, 0), rot_z(90), 2.0, 100, 100)
    right = plane.world_points(np.array([[100, 50]]), 100, 100)[0]
    np.testing.assert_allclose(right, [0, 1, 0], atol=1e-12)  # canvas-right now points along +Y


def perspective_corners(aspect: float) -> np.ndarray:
    """Camera.view_frame-style corners: sensor-fit width 1 at depth 1 (40 mm / 36 mm scaled)."""
    hw, hh = 0.5, 0.5 / aspect
    return np.array([[hw, hh, -1.0], [hw, -hh, -1.0], [-hw, -hh, -1.0], [-hw, hh, -1.0]])


def test_camera_plane_fills_the_view_at_the_distance():
    cam = np.eye(4)
    cam[:3, 3] = [0, 0, 10]  # looking down -Z from z=10
    plane = placement.camera_plane(cam, perspective_corners(2.0), False, 4.0, 200, 100)
    # at distance 4 the frame is 4 wide and 2 high: a 2:1 canvas fills it exactly
    assert (plane.width, plane.height) == pytest.approx((4.0, 2.0))
    pts = plane.world_points(np.array([[0, 0], [200, 100]]), 200, 100)
    np.testing.assert_allclose(pts, [[-2, 1, 6], [2, -1, 6]], atol=1e-12)


def test_camera_plane_contains_a_canvas_of_another_aspect():
    cam = np.eye(4)
    plane = placement.camera_plane(cam, perspective_corners(2.0), False, 1.0, 100, 100)
    assert (plane.width, plane.height) == pytest.approx((0.5, 0.5))  # square canvas: limited by the height
    ortho = np.array([[3, 1, -0.1], [3, -1, -0.1], [-3, -1, -0.1], [-3, 1, -0.1]])
    plane = placement.camera_plane(cam, ortho, True, 7.0, 100, 100)
    assert (plane.width, plane.height) == pytest.approx((2.0, 2.0))
    np.testing.assert_allclose(plane.matrix[:3, 3], [0, 0, -7])


def test_camera_plane_follows_a_rotated_camera():
    cam = np.eye(4)
    cam[:3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]])  # rotate +90 deg about X: looks along +Y
    cam[:3, 3] = [0, -10, 0]
    plane = placement.camera_plane(cam, perspective_corners(1.0), False, 10.0, 64, 64)
    np.testing.assert_allclose(plane.matrix[:3, 3], [0, 0, 0], atol=1e-12)
    top_left = plane.world_points(np.array([[0, 0]]), 64, 64)[0]
    np.testing.assert_allclose(top_left, [-5, 0, 5], atol=1e-12)


def test_bad_plane_arguments_are_refused():
    with pytest.raises(ValueError, match="world_width"):
        placement.front_plane((0, 0, 0), None, 0.0, 10, 10)
    with pytest.raises(ValueError, match="distance"):
        placement.camera_plane(np.eye(4), perspective_corners(1), False, -1, 10, 10)


def test_map_strokes_scales_widths_like_positions_and_linearises_colour():
    d = Drawing(100, 50, [[0, 0], [10, 0], [20, 0], [30, 0]] * 2, [1, 1], [10.0, 4.0],
                [[0.5, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.5]])
    plane = placement.front_plane((0, 0, 0), None, 2.0, 100, 50)
    m = placement.map_strokes(d, plane)
    assert m.radius[0] == pytest.approx(10.0 * 0.02 / 2)  # half of the full width, same scale as points
    np.testing.assert_allclose(m.points[1], [10 * 0.02 - 1.0, 0.5, 0.0])
    np.testing.assert_allclose(m.colour[0], [0.21404114, 1.0, 0.0], atol=1e-7)  # sRGB 0.5 -> linear 0.214
    assert m.alpha[0] == 1.0 and m.knots == 4
    # half-transparent black on white is 50% grey on the canvas: Blender needs opacity 1 - lin(0.5)
    np.testing.assert_allclose(m.colour[1], [0, 0, 0], atol=1e-12)
    assert m.alpha[1] == pytest.approx(1 - 0.21404114)


def test_canvas_points_invert_local_points():
    rng = np.random.default_rng(5)
    px = rng.uniform(-20, 220, (50, 2))
    plane = placement.front_plane((1.0, -2.0, 0.5), rot_z(30), 3.0, 200, 120)
    np.testing.assert_allclose(plane.canvas_points(plane.local_points(px, 200, 120), 200, 120), px, atol=1e-9)
    moved = placement.canvas_points(plane.local_points(px, 200, 120) + [0.5, -1.0, 7.0], 200, 120,
                                    plane.scale(200), centre=(0.5, -1.0))  # z off the plane is dropped
    np.testing.assert_allclose(moved, px, atol=1e-9)


def test_fit_canvas_centres_the_bounding_box_with_a_margin():
    local = np.array([[1.0, 1.0, 0.3], [5.0, 2.0, -1.0], [3.0, 1.5, 0.0]])  # 4 wide, 1 high
    scale, centre = placement.fit_canvas(local, 100, 50, margin=0.1)
    assert scale == pytest.approx(4.0 / 80.0)  # the width limits: 80 of 100 px usable
    np.testing.assert_allclose(centre, [3.0, 1.5])
    px = placement.canvas_points(local, 100, 50, scale, centre)
    np.testing.assert_allclose(px[:2], [[10, 35], [90, 15]])  # x touches both margins, y centred
    tall = placement.fit_canvas(np.array([[0.0, 0.0], [0.0, 2.0]]), 100, 50, margin=0.0)
    assert tall[0] == pytest.approx(2.0 / 50.0)
    assert placement.fit_canvas(np.zeros((1, 3)), 100, 50)[0] == pytest.approx(0.01)  # one point: 1 unit wide
    with pytest.raises(ValueError, match="margin"):
        placement.fit_canvas(local, 100, 50, margin=0.5)


def test_project_onto_plane_orthographic_and_from_an_eye():
    plane = placement.front_plane((0, 5, 0), None, 2.0, 100, 100)  # the XZ plane at y = 5, normal -Y
    pts = np.array([[1.0, 3.0, 2.0], [-1.0, 9.0, 0.5]])
    local, factor = placement.project_onto_plane(pts, plane)
    np.testing.assert_allclose(local, [[1, 2, 0], [-1, 0.5, 0]], atol=1e-12)
    assert np.all(factor == 1)
    eye = np.array([0.0, -5.0, 0.0])  # 10 in front of the plane
    local, factor = placement.project_onto_plane(np.array([[2.0, 15.0, 4.0]]), plane, eye)  # twice as far
    np.testing.assert_allclose(local, [[1, 2, 0]], atol=1e-12)
    np.testing.assert_allclose(factor, [0.5])
    with pytest.raises(ValueError, match="in front"):
        placement.project_onto_plane(np.array([[0.0, -6.0, 0.0]]), plane, eye)  # behind the eye


def test_beside_moves_a_new_canvas_along_its_right_until_it_is_clear():
    from blender_addon.placement import beside

    plane = placement.front_plane((1.0, 2.0, 3.0), None, 4.0, 200, 100)
    assert np.allclose(beside(plane, []).matrix, plane.matrix)  # nothing there: where the cursor is
    taken = [(1.0, 2.0, 3.0), (1.0 + 4.4, 2.0, 3.0)]  # two earlier results side by side
    moved = beside(plane, taken)
    assert np.allclose(moved.matrix[:3, 3], (1.0 + 8.8, 2.0, 3.0)) and np.allclose(moved.matrix[:3, :3], plane.matrix[:3, :3])
    turned = placement.front_plane((0.0, 0.0, 0.0), np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], float), 2.0, 100, 100)
    assert np.allclose(beside(turned, [(0.0, 0.0, 0.0)]).matrix[:3, 3], (0.0, 2.2, 0.0))  # along the turned right
    assert np.allclose(beside(plane, [(30.0, 2.0, 3.0)]).matrix, plane.matrix)  # far away: not in the way


# -- a camera's view, letterboxed into the square canvas ------------------------------------------
def _frame(aspect_w: float, aspect_h: float) -> np.ndarray:
    """Camera-local frame corners of a perspective camera (as Camera.view_frame gives them)."""
    half = np.array([aspect_w, aspect_h]) / max(aspect_w, aspect_h)
    return np.array([[half[0], half[1], -2.0], [half[0], -half[1], -2.0], [-half[0], -half[1], -2.0],
                     [-half[0], half[1], -2.0]])


@pytest.mark.parametrize("w, h", [(224, 126), (126, 224), (224, 127), (224, 224)])
def test_letterboxed_plane_puts_the_pictures_rectangle_on_the_camera_frame(w, h):
    """16:9 and 9:16 (and an odd rounding): the picture's rectangle in the canvas covers the frame exactly."""
    from synth_core import letterbox

    cam = np.eye(4)
    cam[:3, 3] = (1.0, 2.0, 3.0)
    cam[:3, :3] = rot_z(30)
    frame = _frame(w, h)
    picture = placement.camera_plane(cam, frame, False, 4.0, w, h)
    plane = placement.letterboxed_plane(picture, w, h, 224)
    assert plane.width == pytest.approx(plane.height)
    x0, y0, nw, nh = letterbox.fit_square_rect(w, h, 224)
    got = plane.world_points(np.array([[x0, y0], [x0 + nw, y0 + nh], [x0 + nw / 2, y0 + nh / 2]]), 224, 224)
    want = picture.world_points(np.array([[0, 0], [w, h], [w / 2, h / 2]]), w, h)
    np.testing.assert_allclose(got, want, atol=1e-9)
    if w >= h:  # landscape: the square is as wide as the frame, centred on it
        assert plane.width == pytest.approx(picture.width)
    else:  # portrait: as tall as the frame
        assert plane.height == pytest.approx(picture.height)
    np.testing.assert_allclose(plane.matrix[:3, :3], picture.matrix[:3, :3], atol=1e-12)
    if (224 - nw) % 2 == 0 and (224 - nh) % 2 == 0:  # an even margin: centred exactly
        np.testing.assert_allclose(plane.matrix[:3, 3], picture.matrix[:3, 3], atol=1e-9)
