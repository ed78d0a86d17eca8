"""Reading user images: every odd file either loads sensibly or is refused with a clear reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from synth_core.errors import BadRequest
from synth_core.images import fit_long_edge, fit_square, load_image


def test_rgba_is_composited_on_white_and_keeps_its_mask(tmp_path):
    a = np.zeros((20, 30, 4), np.uint8)
    a[5:15, 10:20] = (255, 0, 0, 255)  # opaque red square, transparent elsewhere
    Image.fromarray(a, "RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.size == (30, 20)
    assert np.allclose(img.rgb[0, 0], 1.0) and np.allclose(img.rgb[10, 15], [1, 0, 0])
    assert img.alpha is not None and img.alpha[10, 15] == 1.0 and img.alpha[0, 0] == 0.0
    rgb, mask = fit_square(img, 60)
    assert rgb.shape == (1, 3, 60, 60) and mask.shape == (1, 1, 60, 60)
    assert float(mask.sum()) == pytest.approx(400, rel=0.1)  # 10x10 px scaled 2x
    assert float(rgb[0, :, 0, 0].min()) == 1.0  # letterbox is white


@pytest.mark.parametrize("mode", ["L", "P", "I;16", "RGB"])
def test_modes_become_rgb(tmp_path, mode):
    base = Image.fromarray((np.linspace(0, 255, 32 * 32).reshape(32, 32)).astype(np.uint8))
    im = base.convert(mode) if mode != "I;16" else Image.fromarray(np.asarray(base, np.uint16) * 257).convert("I;16")
    im.save(tmp_path / "x.png")
    img = load_image(tmp_path / "x.png")
    assert img.rgb.shape == (32, 32, 3) and img.rgb.dtype == np.float32
    assert 0.0 <= img.rgb.min() and img.rgb.max() <= 1.0 and img.rgb.max() > 0.9
    assert img.alpha is None


def test_animated_images_use_the_first_frame_and_webp_jpeg_load(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert np.allclose(load_image(tmp_path / "a.gif").rgb[0, 0], [1, 0, 0], atol=0.02)
    for ext in ("jpg", "webp"):
        Image.new("RGB", (40, 20), "green").save(tmp_path / f"g.{ext}")
        assert load_image(tmp_path / f"g.{ext}").size == (40, 20)
    assert fit_long_edge(load_image(tmp_path / "g.jpg"), 224).shape == (1, 3, 112, 224)


def test_bad_images_are_refused(tmp_path):
    with pytest.raises(BadRequest, match="does not exist"):
        load_image(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(BadRequest, match="not a readable image"):
        load_image(tmp_path / "bad.png")
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(BadRequest, match="at least 8 px"):
        load_image(tmp_path / "dot.png")
    Image.new("1", (12000, 9000)).save(tmp_path / "huge.png")  # 108 MP, tiny file
    with pytest.raises(BadRequest, match="megapixels"):
        load_image(tmp_path / "huge.png")
