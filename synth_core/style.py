"""Style loss of StyleCLIPDraw: STROTSS-style relaxed EMD + moments + palette on VGG-16 hypercolumns.

Features (as the reference): torchvision VGG-16 ``features`` at relu1_1, relu1_2, relu2_1, relu2_2,
relu3_1, relu3_2, relu3_3, relu4_3, relu5_3 plus the RGB input, bilinearly sampled at chosen
image locations -> 2179-channel hypercolumns. The reference feeds [0, 1] images through a
[-1, 1] -> [0, 1] mapping before ImageNet normalisation (so pixels land in [0.5, 1]); both
sides get it and it is kept for fidelity (``reference_scaling``).

Terms (content weight 0, as StyleCLIPDraw): relaxed EMD with cosine cost over all channels,
moment matching (means and covariances), and a palette term (relaxed EMD on YUV-like colours
with cosine + L2 cost); style = (remd + moments + palette) / 2.

The extractor is pluggable: ImageNet weights when they are on this machine (torch hub cache, a
file, or a download when the network allows), or an untrained VGG-16 with a fixed seed, which
still carries texture and colour statistics and is what offline tests use (and say so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import MissingWeights

VGG_LAYERS = (1, 3, 6, 8, 11, 13, 15, 22, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG16_FILE = "vgg16-397923af.pth"  # torchvision's VGG16_Weights.IMAGENET1K_V1
_YUV = torch.tensor([[0.577350, 0.577350, 0.577350], [-0.577350, 0.788675, -0.211325],
                     [-0.577350, -0.211325, 0.788675]])


class FeatureExtractor(nn.Module):
    """VGG-16 hypercolumns; ``label`` says which weights (users and tests must know)."""

    def __init__(self, vgg_features: nn.Sequential, label: str, reference_scaling: bool = True) -> None:
        super().__init__()
        self.features = vgg_features[: max(VGG_LAYERS) + 1].eval().requires_grad_(False)
        self.label = label
        self.reference_scaling = reference_scaling
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[RGB, relu1_1, ... relu5_3] feature maps of images [B, 3, H, W] in [0, 1]."""
        x = (images + 1) / 2 if self.reference_scaling else images
        x = (x - self.mean) / self.std
        out = [images]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG_LAYERS:
                out.append(x)
        return out

    def sample(self, images: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """Hypercolumns [B, K, C] at normalised locations ``xy`` [K, 2] in [-1, 1]."""
        grid = xy.to(images.device, images.dtype)[None, None].expand(len(images), 1, -1, 2)
        cols = [F.grid_sample(m, grid, mode="bilinear", align_corners=False)[:, :, 0] for m in self.maps(images)]
        return torch.cat(cols, 1).transpose(1, 2)


def vgg16_extractor(weights: str | None = "imagenet", device: torch.device | str = "cpu",
                    cache_dir: str | None = None, seed: int = 0, offline: bool = False) -> FeatureExtractor:
    """``"imagenet"`` (torch hub cache / download unless ``offline``), a .pth file path, or ``None``
    (untrained, seeded)."""
    from torchvision.models import vgg16

    if weights is None:
        torch.manual_seed(seed)
        net = vgg16(weights=None)
        return FeatureExtractor(net.features, "VGG-16, untrained (random weights, seed %d)" % seed).to(device)
    net = vgg16(weights=None)
    path = weights if weights != "imagenet" else _imagenet_file(cache_dir, offline)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except FileNotFoundError:
        raise MissingWeights(f"VGG-16 weights file {path!r} does not exist") from None
    except Exception as e:
        raise MissingWeights(f"cannot load VGG-16 weights from {path!r} ({type(e).__name__}): "
                             "corrupt file or not torchvision's VGG-16?") from None
    return FeatureExtractor(net.features, f"VGG-16 ImageNet ({os.path.basename(path)})").to(device)


def _imagenet_file(cache_dir: str | None, offline: bool) -> str:
    """torchvision's cached VGG-16 file, downloading it only when allowed and the network answers."""
    from .pretrained import download_refusal

    hub = cache_dir or os.path.join(torch.hub.get_dir(), "checkpoints")
    path = os.path.join(hub, VGG16_FILE)
    if os.path.isfile(path):
        return path
    url = f"https://download.pytorch.org/models/{VGG16_FILE}"
    refusal = download_refusal(offline)
    if refusal:
        raise MissingWeights(
            f"VGG-16 ImageNet weights (for the style loss) are not on this machine and cannot be downloaded "
            f"({refusal}); "
            f"looked for {path}. Download {url} into that folder, or pass the file with --style-weights")
    os.makedirs(hub, exist_ok=True)
    torch.hub.download_url_to_file(url, path, progress=False)
    return path


def _cosine_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[B, N, M] 1 - cos between rows of x [B, N, C] and y [B, M, C]."""
    return 1 - F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).transpose(1, 2)


def relaxed_emd(cost: torch.Tensor) -> torch.Tensor:
    """max(mean_i min_j C_ij, mean_j min_i C_ij) per batch item."""
    return torch.maximum(cost.min(2).values.mean(1), cost.min(1).values.mean(1))


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [B, 1, C] and covariance [B, C, C] of features [B, K, C]."""
    m = x.mean(1, keepdim=True)
    xc = x - m
    return m, xc.transpose(1, 2) @ xc / max(1, x.shape[1] - 1)


def moment_loss(x: torch.Tensor, y_moments: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """mean |mu_x - mu_y| + mean |Sigma_x - Sigma_y| per batch item (features [B, K, C])."""
    mx, cx = moments(x)
    my, cy = y_moments
    return (mx - my).abs().mean((1, 2)) + (cx - cy).abs().mean((1, 2))


def palette_loss(x_rgb: torch.Tensor, y_rgb: torch.Tensor) -> torch.Tensor:
    """Relaxed EMD between colours (YUV-like basis), cost = cosine + L2."""
    m = _YUV.to(x_rgb.device, x_rgb.dtype)
    xa, ya = x_rgb @ m.T, y_rgb @ m.T
    cost = _cosine_cost(xa, ya) + torch.cdist(xa, ya)
    return relaxed_emd(cost)


@dataclass(frozen=True)
class StyleSampling:
    style_sites: int = 5000  # 5 x 1000 random locations of the style image
    drawing_sites: int = 1024  # per step, of the drawing


class StyleLoss:
    """STROTSS-style loss against one style image, features of the style computed once."""

    def __init__(self, extractor: FeatureExtractor, style: torch.Tensor, sampling: StyleSampling = StyleSampling(),
                 generator: torch.Generator | None = None) -> None:
        self.extractor, self.sampling = extractor, sampling
        self.gen = generator or torch.Generator().manual_seed(0)
        with torch.no_grad():
            xy = torch.rand(sampling.style_sites, 2, generator=self.gen) * 2 - 1
            self.style_feats = extractor.sample(style, xy)  # [1, K, C]
            self.style_moments = moments(self.style_feats)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Style loss per image [B]."""
        xy = torch.rand(self.sampling.drawing_sites, 2, generator=self.gen) * 2 - 1
        f = self.extractor.sample(images, xy)
        s = self.style_feats.expand(len(f), -1, -1)
        remd = relaxed_emd(_cosine_cost(f, s))
        mom = moment_loss(f, self.style_moments)
        palette = palette_loss(f[..., :3], s[..., :3])
        return (remd + mom + palette) / 2
