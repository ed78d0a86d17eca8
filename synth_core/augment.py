"""Differentiable augmentations: CLIPDraw's random perspective + random resized crop as one warp.

Both transforms are projective, so each augmented copy is one 3x3 homography (output pixel ->
source pixel) and one bilinear resample, instead of two resamples. Sampling is separate from
applying (as in kornia): ``sample_warps`` draws the parameters on the CPU from an explicit
generator, so runs are reproducible across devices, and the same warps can be replayed on a
second image (CLIPasso applies identical augmentations to the sketch and its target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """torchvision's RandomPerspective(distortion, p=1) then RandomResizedCrop(scale, ratio)."""

    distortion: float = 0.5
    crop_scale: tuple[float, float] = (0.7, 0.9)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    fill: float = 1.0  # value outside the warped canvas (white, as in CLIPDraw)

    def __post_init__(self) -> None:
        if not 0.0 <= self.distortion <= 1.0:
            raise ValueError(f"distortion must be in [0, 1], got {self.distortion}")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")


def homography(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """3x3 matrices [n, 3, 3] mapping the 4 points ``src`` [n, 4, 2] onto ``dst`` [n, 4, 2]."""
    n = src.shape[0]
    x, y = src[..., 0], src[..., 1]
    u, v = dst[..., 0], dst[..., 1]
    zeros, ones = torch.zeros_like(x), torch.ones_like(x)
    rows_u = torch.stack([x, y, ones, zeros, zeros, zeros, -u * x, -u * y], -1)
    rows_v = torch.stack([zeros, zeros, zeros, x, y, ones, -v * x, -v * y], -1)
    a = torch.cat([rows_u, rows_v], 1)  # [n, 8, 8]
    b = torch.cat([u, v], 1)  # [n, 8]
    h = torch.linalg.solve(a, b)
    return torch.cat([h, torch.ones(n, 1, dtype=h.dtype)], 1).reshape(n, 3, 3)


def _perspective(n: int, w: int, h: int, distortion: float, g: torch.Generator) -> torch.Tensor:
    """Output->input maps of torchvision's RandomPerspective (corners pulled inward at random)."""
    hw, hh = int(distortion * (w // 2)), int(distortion * (h // 2))
    r = lambda hi: torch.randint(0, hi + 1, (n,), generator=g).double()  # noqa: E731
    corners = torch.tensor([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], dtype=torch.float64).expand(n, 4, 2)
    moved = torch.stack([
        torch.stack([r(hw), r(hh)], 1),
        torch.stack([w - 1 - r(hw), r(hh)], 1),
        torch.stack([w - 1 - r(hw), h - 1 - r(hh)], 1),
        torch.stack([r(hw), h - 1 - r(hh)], 1),
    ], 1)
    return homography(moved, corners)  # output(moved) = input(corner)


def _resized_crop(n: int, w: int, h: int, out: int, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Output->input maps of torchvision's RandomResizedCrop (10 tries, then a centre crop)."""
    mats = []
    log_r = (math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1]))
    for _ in range(n):
        for _try in range(10):
            area = w * h * float(torch.empty(1, dtype=torch.float64).uniform_(*cfg.crop_scale, generator=g))
            ratio = math.exp(float(torch.empty(1, dtype=torch.float64).uniform_(*log_r, generator=g)))
            cw, ch = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                x0 = int(torch.randint(0, w - cw + 1, (1,), generator=g))
                y0 = int(torch.randint(0, h - ch + 1, (1,), generator=g))
                break
        else:
            cw, ch = min(w, h), min(w, h)
            x0, y0 = (w - cw) // 2, (h - ch) // 2
        # output pixel centre (q + 0.5) * c / out - 0.5 in crop pixels, as align_corners=False resizing
        sx, sy = cw / out, ch / out
        mats.append(torch.tensor([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5], [0, 0, 1]],
                                 dtype=torch.float64))
    return torch.stack(mats)


def sample_warps(n: int, width: int, height: int, size: int, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """``n`` random output->canvas pixel maps [n, 3, 3] (float64, CPU) for ``size`` x ``size`` outputs."""
    persp = _perspective(n, width, height, cfg.distortion, generator)
    crop = _resized_crop(n, width, height, size, cfg, generator)
    return persp @ crop  # output -> perspective-output (crop) -> canvas


def identity_warp(width: int, height: int, size: int) -> torch.Tensor:
    """The map [1, 3, 3] of a plain resize of the whole canvas to ``size`` x ``size``."""
    sx, sy = width / size, height / size
    return torch.tensor([[[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]]], dtype=torch.float64)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small CPU tensor on ``device``; to a GPU through pinned memory without a host wait."""
    if device.type != "cuda" or t.device == device:
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def apply_warps(images: torch.Tensor, warps: torch.Tensor, size: int, fill: float = 1.0,
                per_image: bool = False) -> torch.Tensor:
    """Warp every image [B, C, H, W] with every map [n, 3, 3] -> [B * n, C, size, size] (b-major).

    With ``per_image`` the maps pair up with the images instead (n == B) -> [B, C, size, size].

    When a copy shrinks the canvas (an encoder input smaller than the canvas), the warp is done
    at the canvas' resolution first and then reduced with an antialiased resize, so thin strokes
    do not alias away.
    """
    B, C, H, W = images.shape
    n = warps.shape[0]
    work = max(size, min(H, W))
    scale = work / size
    if work != size:  # same maps for a larger output grid
        s = torch.tensor([[1 / scale, 0, 0.5 / scale - 0.5], [0, 1 / scale, 0.5 / scale - 0.5], [0, 0, 1]],
                         dtype=torch.float64)
        warps = warps @ s
    # the sampling grid is made where it is used on a GPU (only the 3x3 maps travel, without making the
    # host wait); elsewhere on the CPU in float64 (MPS has no float64)
    at = images.device if images.device.type == "cuda" else torch.device("cpu")
    warps = to_device(warps, at)
    ys, xs = torch.meshgrid(torch.arange(work, dtype=torch.float64, device=at),
                            torch.arange(work, dtype=torch.float64, device=at), indexing="ij")
    grid = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)  # output pixel indices
    src = grid @ warps.transpose(1, 2)  # [n, work*work, 3]
    src = src[..., :2] / src[..., 2:3]
    # pixel index -> grid_sample's [-1, 1] (align_corners=False)
    norm = torch.stack([(src[..., 0] + 0.5) / W * 2 - 1, (src[..., 1] + 0.5) / H * 2 - 1], -1)
    norm = norm.reshape(n, work, work, 2).to(images.device, images.dtype)
    if per_image:
        if n != B:
            raise ValueError(f"per_image needs one map per image, got {n} maps for {B} images")
        x = images - fill
    else:
        norm = norm[None].expand(B, n, work, work, 2).reshape(B * n, work, work, 2)
        x = images[:, None].expand(B, n, C, H, W).reshape(B * n, C, H, W) - fill
    out = F.grid_sample(x, norm, mode="bilinear", padding_mode="zeros", align_corners=False) + fill
    if work != size:
        out = F.interpolate(out, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out
