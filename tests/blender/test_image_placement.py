"""Image files and the sketch overlay's maths: pure, no Blender needed.

The overlay is checked against Pillow and the engine: Pillow's ``exif_transpose`` and the
engine's ``fit_square`` decide where an image pixel lands on the canvas, and the image empty
must show that pixel at the same place on the drawing's plane.
"""

from __future__ import annotations

import numpy as np
import pytest
from pictures import decode_png

from blender_addon import engine_path, image_files, placement
from synth_core import exif

NEEDS_BPY = False


def test_png_writer_round_trips_exactly(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    path = image_files.write_png(tmp_path / "x.png", rgba)
    np.testing.assert_array_equal(decode_png(path.read_bytes()), rgba)
    with pytest.raises(ValueError, match="expected an"):
        image_files.png_bytes(np.zeros((4, 4, 3), np.uint8))
    np.testing.assert_array_equal(image_files.float_to_bytes(np.array([-1, 0, 0.5, 1.2])), [0, 0, 128, 255])


def test_png_writer_output_is_read_by_pillow(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    rgba = np.random.default_rng(1).integers(0, 256, (9, 4, 4), dtype=np.uint8)
    image_files.write_png(tmp_path / "x.png", rgba)
    with pil.open(tmp_path / "x.png") as im:
        assert im.mode == "RGBA" and im.size == (4, 9)
        np.testing.assert_array_equal(np.asarray(im), rgba)


def test_the_overlay_reads_exif_with_the_engines_own_module():
    """The add-on has no EXIF code of its own: it imports the engine's (tested in tests/test_exif.py)."""
    assert engine_path.import_engine("exif").read_orientation is exif.read_orientation


@pytest.mark.parametrize("size, canvas", [((96, 64), 64), ((64, 96), 64), ((33, 100), 96), ((50, 50), 224),
                                          ((1000, 3), 224)])
def test_the_letterbox_rule_is_where_fit_square_puts_the_image(size, canvas):
    torch = pytest.importorskip("torch")
    from synth_core.images import LoadedImage, fit_square

    fit_square_rect = engine_path.import_engine("letterbox").fit_square_rect  # what the overlay uses

    w, h = size
    img = LoadedImage(np.zeros((h, w, 3), np.float32), np.ones((h, w), np.float32), "x")
    rgb, mask = fit_square(img, canvas)
    ink = (rgb[0, 0] < 0.5).numpy()  # black image on white: the letterboxed rectangle
    ys, xs = np.nonzero(ink)
    x0, y0, nw, nh = fit_square_rect(w, h, canvas)
    assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == (x0, y0, nw, nh)
    assert torch.equal(mask[0, 0] > 0.5, torch.from_numpy(ink))
    padded = (fit_square(img, canvas, pad=0.1)[0][0, 0] < 0.5).numpy()
    ys, xs = np.nonzero(padded)
    assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == fit_square_rect(w, h, canvas, 0.1)
    with pytest.raises(ValueError):
        fit_square_rect(0, 5, 10)


def test_empty_image_aspect_follows_blender():
    assert placement.empty_image_aspect(200, 100) == (1.0, 0.5)
    assert placement.empty_image_aspect(100, 400) == (0.25, 1.0)
    assert placement.empty_image_aspect(100, 100, 2.0, 1.0) == (1.0, 0.5)  # wide pixels


def empty_pixel_world(place: placement.OverlayPlacement, w: int, h: int, u: float, v: float,
                      aspect=(1.0, 1.0)) -> np.ndarray:
    """Where an image empty draws the point (u, v) of its raw image (pixels, y down).

    Blender (overlay_image.cc) scales the object's X and Y axes by aspect * display_size / 2 and
    draws the quad [-1, 1]^2 offset by ``empty_image_offset`` (-0.5, -0.5): centred.
    """
    ax, ay = placement.empty_image_aspect(w, h, *aspect)
    local = np.array([(u / w - 0.5) * place.display_size * ax, (0.5 - v / h) * place.display_size * ay, 0.0, 1.0])
    return (place.matrix @ local)[:3]


def marker_on_canvas(raw: np.ndarray, canvas: int, orientation: int) -> tuple[float, float]:
    """Where the engine puts the raw image's red marker: Pillow's exif_transpose, then fit_square."""
    pil = pytest.importorskip("PIL.Image")
    from PIL import ImageOps

    from synth_core.images import LoadedImage, fit_square

    upright = np.asarray(ImageOps.exif_transpose(_with_orientation(pil.fromarray(raw), orientation)))
    img = LoadedImage(upright.astype(np.float32) / 255, None, "x")
    rgb = fit_square(img, canvas)[0][0].numpy()
    redness = np.clip(rgb[0] - rgb[1], 0, 1)  # red minus green: the marker only
    ys, xs = np.mgrid[: rgb.shape[1], : rgb.shape[2]]
    return float((redness * (xs + 0.5)).sum() / redness.sum()), float((redness * (ys + 0.5)).sum() / redness.sum())


def _with_orientation(im, orientation: int):
    im.getexif()[0x0112] = orientation  # what exif_transpose reads
    return im


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("size", [(120, 80), (70, 110)])
def test_overlay_shows_each_image_pixel_where_the_engine_put_it(orientation, size):
    pytest.importorskip("torch")
    w, h = size
    canvas = 96
    raw = np.full((h, w, 3), 255, np.uint8)
    u, v = int(w * 0.7), int(h * 0.25)  # off-centre, so a flip or a turn would show
    raw[v - 3 : v + 3, u - 3 : u + 3] = (255, 0, 0)
    cx, cy = marker_on_canvas(raw, canvas, orientation)
    plane = placement.front_plane((0.5, 1.0, -2.0), None, 3.0, canvas, canvas)
    place = placement.overlay_placement(plane, canvas, w, h, orientation=orientation)
    shown = empty_pixel_world(place, w, h, u, v)  # the marker's centre in the raw image
    engine = plane.world_points(np.array([[cx, cy]]), canvas, canvas)[0]
    assert np.linalg.norm(shown - engine) < 0.6 * plane.scale(canvas), (shown, engine)  # within resampling blur


def test_overlay_covers_exactly_the_letterboxed_rectangle():
    plane = placement.front_plane((0, 0, 0), None, 2.0, 64, 64)
    place = placement.overlay_placement(plane, 64, 96, 64)
    x0, y0, nw, nh = place.rect
    assert (x0, y0, nw, nh) == (0, 10, 64, 43)
    corners = np.array([empty_pixel_world(place, 96, 64, u, v) for u, v in [(0, 0), (96, 64)]])
    expected = plane.world_points(np.array([[x0, y0], [x0 + nw, y0 + nh]]), 64, 64)
    np.testing.assert_allclose(corners, expected, atol=1e-12)
    assert place.display_size == pytest.approx(2.0)  # the long side spans the canvas
    np.testing.assert_allclose(place.matrix[:3, 2], plane.matrix[:3, 2])  # on the drawing's plane
    # non-square pixels (Image.display_aspect) are absorbed too
    wide = placement.overlay_placement(plane, 64, 96, 64, aspect=(2.0, 1.0))
    corners = np.array([empty_pixel_world(wide, 96, 64, u, v, (2.0, 1.0)) for u, v in [(0, 0), (96, 64)]])
    np.testing.assert_allclose(corners, expected, atol=1e-12)
