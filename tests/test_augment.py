"""Augmentations: same geometry as torchvision's transforms, replayable, differentiable, white fill."""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

from synth_core.augment import AugmentConfig, apply_warps, homography, identity_warp, sample_warps


def image(h=64, w=64, seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def test_identity_warp_is_exact():
    x = image()
    assert torch.allclose(apply_warps(x, identity_warp(64, 64, 64), 64), x, atol=1e-6)


def test_perspective_matches_torchvision():
    x = image()
    start = [[0, 0], [63, 0], [63, 63], [0, 63]]
    end = [[5, 3], [60, 8], [55, 62], [2, 50]]
    theirs = TF.perspective(x, start, end, interpolation=InterpolationMode.BILINEAR, fill=[1.0, 1.0, 1.0])
    h = homography(torch.tensor([end], dtype=torch.float64), torch.tensor([start], dtype=torch.float64))
    ours = apply_warps(x, h, 64)
    inner = (slice(None), slice(None), slice(12, 52), slice(12, 52))  # edges differ by half-pixel conventions
    assert (ours - theirs)[inner].abs().max() < 0.02
    assert float(ours[0, :, 0, 63].min()) == 1.0  # outside the warped canvas is white


def test_resized_crop_matches_torchvision():
    x = image(64, 64, seed=1)
    top, left, h, w = 10, 6, 40, 48
    theirs = TF.resized_crop(x, top, left, h, w, [96, 96], interpolation=InterpolationMode.BILINEAR, antialias=False)
    sx, sy = w / 96, h / 96
    m = torch.tensor([[[sx, 0, left + 0.5 * sx - 0.5], [0, sy, top + 0.5 * sy - 0.5], [0, 0, 1]]], dtype=torch.float64)
    ours = apply_warps(x, m, 96)
    assert (ours - theirs)[..., 2:-2, 2:-2].abs().max() < 1e-4


def test_sampling_is_reproducible_and_replayable():
    cfg = AugmentConfig()
    w1 = sample_warps(4, 224, 224, 224, cfg, torch.Generator().manual_seed(7))
    w2 = sample_warps(4, 224, 224, 224, cfg, torch.Generator().manual_seed(7))
    w3 = sample_warps(4, 224, 224, 224, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(w1, w2) and not torch.equal(w1, w3)
    assert len({tuple(m.flatten().tolist()) for m in w1}) == 4  # every copy differs
    a, b = image(seed=2), image(seed=3)
    pair = apply_warps(torch.cat([a, b]), w1, 32)  # same warps on a sketch and its target
    assert torch.allclose(pair[:4], apply_warps(a, w1, 32)) and torch.allclose(pair[4:], apply_warps(b, w1, 32))


def test_crop_area_within_configured_scale():
    cfg = AugmentConfig(distortion=0.0)
    warps = sample_warps(50, 200, 200, 100, cfg, torch.Generator().manual_seed(0))
    area = (warps[:, 0, 0] * 100) * (warps[:, 1, 1] * 100) / (200 * 200)
    assert float(area.min()) >= 0.68 and float(area.max()) <= 0.92


def test_gradient_reaches_the_image_and_small_outputs_are_antialiased():
    x = image().requires_grad_()
    out = apply_warps(x, sample_warps(3, 64, 64, 16, AugmentConfig(), torch.Generator().manual_seed(0)), 16)
    assert out.shape == (3, 3, 16, 16)
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    # a 1-px line keeps its ink when shrunk 4x (antialiased), instead of vanishing between samples
    line = torch.ones(1, 3, 64, 64)
    line[..., 33, :] = 0.0
    small = apply_warps(line, identity_warp(64, 64, 16), 16)
    ink_small, ink = float((1 - small).sum()) * 16, float((1 - line).sum())  # 16 = area ratio
    assert abs(ink_small - ink) < 0.05 * ink
