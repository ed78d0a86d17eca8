"""Where CLIPasso starts its strokes: encoder saliency x XDoG edges, sampled with a softmax.

- ``xdog_edges``: the eXtended Difference-of-Gaussians edge map (CLIPasso's gamma 0.98, phi 200,
  eps -0.1, sigma 0.8, k 10), Otsu-binarised: 1 on edges.
- ``attention_saliency``: for ViT encoders, the CLS token's attention to the patches averaged over
  heads and blocks (what CLIPasso reads from its patched CLIP), computed here from forward hooks
  on the stock open_clip model, so no patched CLIP is needed.
- ``gradient_saliency``: for convolutional encoders (the built-in model, RN50/RN101), the blurred
  magnitude of the gradient of the image embedding with respect to the pixels.
- ``sample_starts``: softmax (temperature 0.3) over the positive values of saliency x edges,
  start points drawn without replacement.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .encoders.base import Encoder


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, C, H, W] with reflect padding."""
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, k.reshape(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.reshape(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of ``values``."""
    v = values.flatten().double().cpu()
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        return lo
    hist = torch.histc(v, bins=bins, min=lo, max=hi)
    centres = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)[:-1] + (hi - lo) / bins / 2
    w0 = torch.cumsum(hist, 0)
    w1 = w0[-1] - w0
    m0 = torch.cumsum(hist * centres, 0) / w0.clamp_min(1e-12)
    m1 = ((hist * centres).sum() - torch.cumsum(hist * centres, 0)) / w1.clamp_min(1e-12)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(torch.argmax(between))])


def xdog_edges(rgb: torch.Tensor, gamma: float = 0.98, phi: float = 200.0, eps: float = -0.1, sigma: float = 0.8,
               k: float = 10.0) -> torch.Tensor:
    """Binary edge map [B, 1, H, W] (1 = edge) of images [B, 3, H, W] in [0, 1]."""
    grey = (0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]).double()
    d = gaussian_blur(grey, sigma) - gamma * gaussian_blur(grey, sigma * k)
    e = torch.where(d >= eps, torch.ones_like(d), 1.0 + torch.tanh(phi * (d - eps)))
    out = torch.stack([(ei < otsu_threshold(ei)).float() for ei in e])
    return out.to(rgb.dtype)


def _normalise(m: torch.Tensor) -> torch.Tensor:
    lo = m.amin(dim=(-2, -1), keepdim=True)
    hi = m.amax(dim=(-2, -1), keepdim=True)
    return (m - lo) / (hi - lo).clamp_min(1e-12)


def attention_saliency(encoder: Encoder, image: torch.Tensor) -> torch.Tensor | None:
    """CLS-to-patch attention of an open_clip ViT, [B, 1, H, W] in [0, 1]; None if not a ViT."""
    visual = getattr(getattr(encoder, "model", None), "visual", None)
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is None or not all(isinstance(getattr(b, "attn", None), torch.nn.MultiheadAttention) for b in blocks):
        return None
    inputs: list[torch.Tensor] = []
    hooks = [b.attn.register_forward_pre_hook(lambda m, args, kwargs: inputs.append(
        (kwargs.get("query") if "query" in kwargs else args[0]).detach()), with_kwargs=True) for b in blocks]
    try:
        with torch.no_grad():
            encoder.encode_image(F.interpolate(image, size=(encoder.input_size,) * 2, mode="bicubic",
                                               align_corners=False).clamp(0, 1))
    finally:
        for h in hooks:
            h.remove()
    maps = []
    for block, x in zip(blocks, inputs):
        attn = block.attn
        if not attn.batch_first:
            x = x.transpose(0, 1)  # -> [B, L, D]
        b, n, d = x.shape
        heads, dh = attn.num_heads, d // attn.num_heads
        qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
        q, k = qkv[..., :d], qkv[..., d : 2 * d]
        q = q.reshape(b, n, heads, dh).transpose(1, 2)
        k = k.reshape(b, n, heads, dh).transpose(1, 2)
        probs = (q @ k.transpose(-1, -2) / math.sqrt(dh)).softmax(-1).clamp_min(0).mean(1)  # [B, L, L]
        maps.append(probs[:, 0, 1:])
    cls = torch.stack(maps).mean(0)  # [B, patches]
    side = int(round(math.sqrt(cls.shape[1])))
    grid = cls.reshape(-1, 1, side, side)
    up = F.interpolate(grid, size=image.shape[-2:], mode="bicubic", align_corners=False)
    return _normalise(up)


def gradient_saliency(encoder: Encoder, image: torch.Tensor, blur: float | None = None) -> torch.Tensor:
    """Blurred |d embedding / d pixel| (projected on the embedding itself), [B, 1, H, W] in [0, 1]."""
    x = image.detach().clone().requires_grad_(True)
    small = F.interpolate(x, size=(encoder.input_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
    with torch.enable_grad():
        emb = encoder.encode_image(small)
        (emb * emb.detach()).sum().backward()
    g = x.grad.abs().sum(1, keepdim=True)
    sigma = blur if blur is not None else image.shape[-1] / 56
    return _normalise(gaussian_blur(g, sigma))


def saliency(encoder: Encoder, image: torch.Tensor) -> torch.Tensor:
    """Attention saliency for ViTs, gradient saliency otherwise."""
    att = attention_saliency(encoder, image)
    return att if att is not None else gradient_saliency(encoder, image)


def sample_starts(weight: torch.Tensor, count: int, temperature: float = 0.3,
                  generator: torch.Generator | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``count`` distinct pixel centres [count, 2] (x, y) drawn from softmax(weight / T) over weight > 0.

    ``weight`` [H, W] in [0, 1]. Where fewer than ``count`` pixels are positive, the rest are
    drawn from the whole image (or ``mask``) so a blank target still gets its strokes.
    """
    h, w = weight.shape
    flat = weight.flatten().double().cpu()
    pos = flat > 0
    probs = torch.zeros_like(flat)
    if pos.any():
        probs[pos] = torch.softmax(flat[pos] / temperature, 0)
    if int(pos.sum()) < count:
        fallback = (mask.flatten().double().cpu() > 0) if mask is not None else torch.ones_like(pos)
        fallback = fallback & ~pos
        probs[fallback] = 1e-6 if pos.any() else 1.0
    idx = torch.multinomial(probs, count, replacement=False, generator=generator)
    return torch.stack([(idx % w).double() + 0.5, (idx // w).double() + 0.5], 1)
