"""The person-like judge (synth_core/builtin/eye.py): colour naming, purity, shapes, calibration.

Images are built here (PIL, antialiased by supersampling) or drawn by the generator from fixed
seeds; claims are rates and ranges with margins, not exact floats.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from synth_core.lab import eye
from synth_core.lab.shapes import COLOURS, PALETTE, SHAPES, render_mess, render_shape

SIZE = 224
OTHER_COLOURS = {
    "orange": (1.0, 0.55, 0.0), "gold-orange": (1.0, 0.65, 0.0), "pink": (1.0, 0.75, 0.8),
    "hot pink": (1.0, 0.41, 0.71), "purple": (0.5, 0.0, 0.5), "violet": (0.56, 0.0, 1.0),
    "cyan": (0.0, 1.0, 1.0), "teal": (0.0, 0.5, 0.5), "brown": (0.55, 0.3, 0.1), "sienna": (0.63, 0.32, 0.18),
    "mid grey": (0.5, 0.5, 0.5), "light grey": (0.8, 0.8, 0.8), "olive": (0.5, 0.5, 0.0),
}


def _arcs(arcs: list[tuple[float, float, tuple[float, float, float]]], width: float = 3.0, alpha: float = 1.0,
          box: tuple[float, float, float, float] = (0.25, 0.25, 0.75, 0.75),
          paper: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Arcs (start and end degrees, RGB) of one ellipse in canvas fractions, antialiased."""
    k = 4
    img = np.ones((SIZE * k, SIZE * k, 3), np.float32) * np.asarray(paper, np.float32)
    for start, end, rgb in arcs:
        mask = Image.new("L", (SIZE * k, SIZE * k), 0)
        ImageDraw.Draw(mask).arc([v * SIZE * k for v in box], start, end, fill=255, width=round(width * k))
        m = np.asarray(mask, np.float32)[..., None] / 255.0 * alpha
        img = img * (1 - m) + m * np.asarray(rgb, np.float32)
    return img.reshape(SIZE, k, SIZE, k, 3).mean((1, 3))


RED, GREEN = PALETTE["red"], PALETTE["green"]


def _name(rgb) -> str:
    return eye.COLOUR_CLASSES[int(eye.classify(np.asarray(rgb, np.float32)))]


# -- colour ---------------------------------------------------------------------------------
def test_the_palette_with_its_jitter_is_named_right_and_other_colours_are_other():
    rng = np.random.default_rng(0)
    corners = np.array(np.meshgrid(*[[-0.08, 0.0, 0.08]] * 3)).reshape(3, -1).T
    for i, name in enumerate(COLOURS):
        jitter = np.concatenate([corners, rng.uniform(-0.08, 0.08, (500, 3))])
        colours = np.clip(np.asarray(PALETTE[name]) + jitter, 0, 1).astype(np.float32)
        assert (eye.classify(colours) == i).all(), name
        faded = 1 - 0.8 * (1 - colours)  # the clean style's least opaque stroke, over white
        assert (eye.classify(faded) == i).all(), name
    for name, rgb in OTHER_COLOURS.items():
        assert _name(rgb) == "other", name
    assert _name((0.3, 0.3, 0.3)) == "black"  # dark grey


def test_a_pure_red_ring_is_pure_red_even_when_thin():
    for width in (1.5, 3.0, 12.0):
        v = eye.look(_arcs([(0, 360, RED)], width=width), "red", "circle")
        assert v.purity > 0.97 and v.dominant == "red", (width, v)
        assert v.seen_shape == "circle" and v.passed, (width, v)
    as_uint8 = (_arcs([(0, 360, RED)]) * 255 + 0.5).astype(np.uint8)
    assert eye.look(as_uint8, "red", "circle").passed


def test_purity_is_the_share_of_the_ink_in_the_prompt_colour():
    half = _arcs([(0, 180, RED), (180, 360, GREEN)])
    red, green = eye.look(half, "red", "circle"), eye.look(half, "green", "circle")
    assert 0.4 < red.purity < 0.6 and 0.4 < green.purity < 0.6, (red, green)
    assert red.purity + green.purity > 0.97
    assert not red.passed and not green.passed


def test_orange_and_pink_ink_is_other_and_a_thinly_laid_red_is_pink():
    for name in ("orange", "pink", "purple", "brown"):
        v = eye.look(_arcs([(0, 360, OTHER_COLOURS[name])], width=6), "red", "circle")
        assert v.dominant == "other" and v.purity < 0.05 and not v.passed, (name, v)
    half_opaque = eye.look(_arcs([(0, 360, RED)], width=6, alpha=0.5), "red", "circle")
    assert half_opaque.purity > 0.9 and half_opaque.passed, half_opaque
    thin = eye.look(_arcs([(0, 360, RED)], width=6, alpha=0.25), "red", "circle")
    assert thin.dominant == "other" and not thin.passed, thin


def test_the_background_colour_is_not_ink():
    grey_paper = (0.5, 0.5, 0.5)
    on_grey = _arcs([(0, 360, RED)], width=4, paper=grey_paper)
    v = eye.look(on_grey, "red", "circle", background=grey_paper)
    assert v.purity > 0.9 and v.seen_shape == "circle", v
    assert eye.look(on_grey, "red", "circle").dominant == "other"  # on white, the grey paper is all ink


# -- tangles --------------------------------------------------------------------------------
def test_a_multicoloured_tangle_is_not_a_red_circle():
    rng = np.random.default_rng(3)
    for _ in range(4):
        v = eye.look(render_mess(SIZE, rng), "red", "circle")
        assert not v.passed and v.purity < 0.6, v
    quarters = (RED, GREEN, PALETTE["blue"], OTHER_COLOURS["orange"])
    rainbow = _arcs([(a, a + 90, rgb) for a, rgb in zip((0, 90, 180, 270), quarters)])
    v = eye.look(rainbow, "red", "circle")
    assert v.purity < 0.35 and not v.passed, v
    assert v.seen_shape == "none", v  # the red quarter alone is no circle


def test_a_blank_page_passes_nothing():
    v = eye.look(np.ones((SIZE, SIZE, 3), np.float32), "black", "line")
    assert v.purity == 0.0 and v.seen_shape == "none" and not v.passed


# -- shapes ---------------------------------------------------------------------------------
def test_the_generator_s_clean_shapes_are_named_right_in_every_colour():
    rng = np.random.default_rng(11)
    wrong = []
    for shape in SHAPES:
        for colour in COLOURS:
            img = render_shape(shape, colour, SIZE, rng, clutter=False, style=eye.CLEAN_STYLE)
            v = eye.look(img, colour, shape)
            if not v.passed:
                wrong.append((colour, shape, v.seen_shape, round(v.purity, 2), round(v.shape_score, 3)))
    assert len(wrong) <= 2, wrong


def _polygon(corners: np.ndarray, filled: bool, rgb=PALETTE["blue"]) -> np.ndarray:
    """A closed polygon (canvas fractions), filled or outlined 4 px wide, antialiased, on white."""
    k = 4
    mask = Image.new("L", (SIZE * k, SIZE * k), 0)
    pts = [tuple(v) for v in corners * SIZE * k]
    if filled:
        ImageDraw.Draw(mask).polygon(pts, fill=255)
    else:
        ImageDraw.Draw(mask).line(pts + pts[:1], fill=255, width=4 * k, joint="curve")
    m = np.asarray(mask, np.float32)[..., None] / 255.0
    img = 1 - m + m * np.asarray(rgb, np.float32)
    return img.reshape(SIZE, k, SIZE, k, 3).mean((1, 3))


def _ring(n: int, radii=(0.3,), turn: float = 10.0) -> np.ndarray:
    a = np.deg2rad(turn - 90 + 360 / n * np.arange(n))
    r = np.resize(np.asarray(radii), n)
    return 0.5 + np.stack([np.cos(a) * r, np.sin(a) * r], 1)


def test_filled_and_outlined_shapes_are_the_same_shape():
    outlines = {"circle": _ring(90), "square": _ring(4, (0.32,)), "triangle": _ring(3, (0.34,)),
                "star": _ring(10, (0.36, 0.15))}
    for shape, corners in outlines.items():
        for filled in (True, False):
            v = eye.look(_polygon(corners, filled), "blue", shape)
            assert v.seen_shape == shape and v.passed, (shape, filled, v)


def test_a_dot_is_too_small_to_be_a_circle():
    dot = _arcs([(0, 360, RED)], width=4, box=(0.47, 0.47, 0.53, 0.53))
    assert eye.look(dot, "red", "circle").seen_shape == "none"


# -- calibration ----------------------------------------------------------------------------
def test_calibration_meets_its_targets():
    """Clean shapes judged right >= 0.9 and scribbles called "none" >= 0.8 (at 112 px, which
    the eye matches at anyway, to keep the test short)."""
    c = eye.calibrate(n=60, seed=2, size=112)
    assert c.shapes_passed >= 0.9, c.shapes_passed
    assert c.scribbles_none >= 0.8, c.scribbles_none


def test_bad_prompts_are_refused():
    with pytest.raises(ValueError):
        eye.look(np.ones((8, 8, 3)), "purple", "circle")
    with pytest.raises(ValueError):
        eye.look(np.ones((8, 8, 3)), "red", "heart")


# -- reports --------------------------------------------------------------------------------
def test_the_contact_sheet_shows_the_eye_beside_the_learned_judge():
    from synth_core.lab import evaluate

    ring = (_arcs([(0, 360, RED)]) * 255 + 0.5).astype(np.uint8)
    tangle = (render_mess(SIZE, np.random.default_rng(4)) * 255 + 0.5).astype(np.uint8)
    verdicts = [evaluate.Verdict("red", "circle", "red", "circle", 0.4, 0.8, 1.0, im,
                                 eye.look(im, "red", "circle"), 16) for im in (ring, tangle)]
    assert verdicts[0].eye.passed and not verdicts[1].eye.passed
    tile = 112
    sheet = evaluate.contact_sheet(verdicts, columns=2, tile=tile)
    bar = evaluate.BAR
    eye_bar = tile + bar + 1 + bar // 2  # the row through the eye's bar
    for i, colour in enumerate((evaluate.GREEN, evaluate.RED)):  # the eye's shape: right, then wrong
        assert tuple(sheet[eye_bar, i * tile + tile * 3 // 4]) == colour
        assert tuple(sheet[tile + bar // 2, i * tile + tile // 4]) == evaluate.GREEN  # learned judge: right
