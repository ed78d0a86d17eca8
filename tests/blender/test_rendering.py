"""What a render shows: widths, colours and half-transparent strokes as on the engine's canvas.

Workbench and Cycles (EEVEE gives the same pixels but compiles shaders for ~10 s cold, so it
is left to scripts/render.py --engine eevee).
"""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from blender_addon import placement, rendering, results
from synth_core.drawing import Drawing

W = H = 120


def render(tmp_path, output: str, engine: str) -> np.ndarray:
    # a 16 px opaque red stroke across at y=40, a 10 px black stroke with alpha 0.5 down at x=60 and
    # a 12 px opaque mid-tone stroke at y=100 (sRGB 64, 128, 191: a colour-space slip would show)
    d = Drawing(W, H, [[20, 40], [50, 40], [70, 40], [100, 40], [60, 60], [60, 75], [60, 90], [60, 110],
                       [10, 100], [20, 100], [30, 100], [45, 100]],
                [1, 1, 1], [16.0, 10.0, 12.0], [[1, 0, 0, 1], [0, 0, 0, 0.5], [64 / 255, 128 / 255, 191 / 255, 1]])
    scene = bpy.context.scene
    cam = rendering.ensure_camera(scene, W, H)
    frame = [tuple(v) for v in cam.data.view_frame(scene=scene)]
    plane = placement.camera_plane(np.array(cam.matrix_world), frame, False, 10.0, W, H)
    results.ResultWriter(scene, results.OutputSpec(output, plane, name="r")).finish(d, 0)
    rendering.configure(scene, engine, samples=4)
    path = rendering.render_still(scene, str(tmp_path / f"{output}_{engine}.png"), 1)
    img = bpy.data.images.load(path)
    px = np.empty(W * H * 4, np.float32)
    img.pixels.foreach_get(px)
    return np.rint(px.reshape(H, W, 4)[::-1, :, :3] * 255)


@pytest.mark.parametrize("engine", ["WORKBENCH", "CYCLES"])
@pytest.mark.parametrize("output", ["GREASE_PENCIL", "CURVES"])
def test_render_matches_the_canvas(tmp_path, output, engine):
    img = render(tmp_path, output, engine)
    np.testing.assert_allclose(img[40, 35], [255, 0, 0], atol=4)  # opaque red stays red
    np.testing.assert_allclose(img[80, 60], [128, 128, 128], atol=3)  # 50% black on white: 50% grey, once
    np.testing.assert_allclose(img[100, 28], [64, 128, 191], atol=3)  # the material's colour, as on the canvas
    np.testing.assert_allclose(img[5, 5], [255, 255, 255], atol=2)  # the canvas background
    red = (255 - img[20:60, 40, 1]) / 255  # coverage of the red stroke down one column
    assert red.sum() == pytest.approx(16, abs=1.0)  # 16 px wide
    assert (red * np.arange(20, 60)).sum() / red.sum() == pytest.approx(39.5, abs=0.5)  # centred on y = 40
    grey = (255 - img[85, 40:80, 0]) / 127.5  # coverage of the half-transparent stroke across one row
    assert grey.sum() == pytest.approx(10, abs=1.0)  # 10 px wide
