"""StyleCLIPDraw's style loss: its terms, the VGG-16 extractor (untrained offline), clear failures."""

from __future__ import annotations

import pytest
import torch

from synth_core.errors import MissingWeights
from synth_core.style import StyleLoss, StyleSampling, moment_loss, moments, palette_loss, relaxed_emd, vgg16_extractor

SMALL = StyleSampling(style_sites=400, drawing_sites=200)


@pytest.fixture(scope="module")
def vgg():
    return vgg16_extractor(None, "cpu", seed=0)


def stripes(colour, size=64):
    img = torch.ones(1, 3, size, size)
    for y in range(4, size, 12):
        img[0, :, y : y + 4, :] = torch.tensor(colour)[:, None, None]
    return img


def test_terms_vanish_on_identical_sets_and_grow_apart():
    x = torch.rand(1, 50, 8, dtype=torch.float64)
    y = torch.rand(1, 50, 8, dtype=torch.float64) + 1.0
    cost = 1 - torch.nn.functional.cosine_similarity(x[:, :, None], x[:, None], dim=-1)
    assert float(relaxed_emd(cost)) == pytest.approx(0.0, abs=1e-6)
    assert float(moment_loss(x, moments(x))) == pytest.approx(0.0, abs=1e-6)
    assert float(moment_loss(x, moments(y))) > 0.5
    assert float(palette_loss(x[..., :3], x[..., :3])) == pytest.approx(0.0, abs=1e-5)
    assert float(palette_loss(x[..., :3], y[..., :3])) > float(palette_loss(x[..., :3], x[..., :3] + 0.01))


def test_untrained_vgg_is_labelled_and_has_hypercolumns(vgg):
    assert "untrained" in vgg.label
    cols = vgg.sample(torch.rand(2, 3, 64, 64), torch.rand(10, 2) * 2 - 1)
    assert cols.shape == (2, 10, 3 + 64 + 64 + 128 + 128 + 256 + 256 + 256 + 512 + 512)


def test_style_loss_prefers_the_style_and_can_be_optimised(vgg):
    blue = stripes((0.1, 0.2, 0.9))
    loss = StyleLoss(vgg, blue, SMALL, torch.Generator().manual_seed(0))
    red = stripes((0.9, 0.1, 0.1))
    assert float(loss(blue)) < float(loss(red))
    logits = torch.zeros(1, 3, 64, 64, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.05)
    first = None
    for _ in range(25):
        value = loss(torch.sigmoid(logits)).sum()
        first = first if first is not None else float(value)
        opt.zero_grad()
        value.backward()
        opt.step()
    img = torch.sigmoid(logits.detach())
    assert float(loss(img)) < 0.8 * first
    assert float(img[0, 2].mean() - img[0, 0].mean()) > 0.05  # bluer than red now


def test_imagenet_weights_missing_offline_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(MissingWeights, match="vgg16-397923af.pth"):
        vgg16_extractor("imagenet", cache_dir=str(tmp_path))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(MissingWeights, match="cannot load"):
        vgg16_extractor(str(bad))
