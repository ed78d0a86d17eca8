"""Colour management: strokes composited by Blender in linear light look as on the engine's sRGB canvas."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon import colour

NEEDS_BPY = False


def test_srgb_round_trips_through_linear():
    c = np.linspace(0, 1, 101)
    np.testing.assert_allclose(colour.linear_to_srgb(colour.srgb_to_linear(c)), c, atol=1e-12)
    assert colour.srgb_to_linear(np.array(0.5)) == pytest.approx(0.21404114)


@pytest.mark.parametrize("background", [(1, 1, 1), (0.2, 0.5, 0.9), (0, 0, 0)])
def test_canvas_matched_colours_composite_like_the_engine(background):
    rng = np.random.default_rng(3)
    srgba = rng.uniform(0, 1, (500, 4))
    srgba[:50, 3] = 1.0
    srgba[50:60, 3] = 0.0
    x, a = colour.canvas_matched_colours(srgba, background)
    assert np.all((0 <= x) & (x <= 1)) and np.all(a >= srgba[:, 3] - 1e-12) and np.all(a <= 1)
    bg = np.array(background, dtype=float)
    engine = colour.srgb_to_linear(srgba[:, 3:] * srgba[:, :3] + (1 - srgba[:, 3:]) * bg)  # sRGB mixing
    blender = a[:, None] * x + (1 - a[:, None]) * colour.srgb_to_linear(bg)  # linear mixing
    np.testing.assert_allclose(blender, engine, atol=1e-9)
    np.testing.assert_allclose(x[:50], colour.srgb_to_linear(srgba[:50, :3]), atol=1e-12)  # opaque: as is


@pytest.mark.parametrize("background", [(1, 1, 1), (0.2, 0.5, 0.9), (0, 0, 0)])
def test_engine_colours_invert_the_canvas_matching(background):
    rng = np.random.default_rng(4)
    srgba = rng.uniform(0, 1, (500, 4))
    srgba[:50, 3] = 1.0
    x, a = colour.canvas_matched_colours(srgba, background)
    back = colour.engine_colours(x, a, background)
    np.testing.assert_allclose(back[:50], srgba[:50], atol=1e-9)  # opaque strokes come back as they were
    np.testing.assert_allclose(back[:, 3], a, atol=1e-12)  # Blender's opacity is the alpha read back
    # the colour read back composites to the engine's pixel, and Blender gets the same material again
    bg = np.array(background, dtype=float)
    np.testing.assert_allclose(_pixel(back, bg), _pixel(srgba, bg), atol=1e-9)
    x2, a2 = colour.canvas_matched_colours(back, background)
    np.testing.assert_allclose(x2, x, atol=1e-9)
    np.testing.assert_allclose(a2, a, atol=1e-12)


def _pixel(srgba: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """The engine's composite of straight sRGBA over the background."""
    return srgba[:, 3:] * srgba[:, :3] + (1 - srgba[:, 3:]) * bg
