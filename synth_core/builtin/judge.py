"""The independent judge: which colour and which shape does a drawing show?

Tests and benchmarks use it to check drawings made against the built-in model without asking
that model (a model always rates its own drawings as the prompt). Independence by construction:
another architecture (a small vision transformer over a convolutional patch stem, where the
model is a plain CNN with global pooling), trained on separately generated images (another
generator style with more wobble and clutter, another seed stream), as a plain classifier
rather than contrastively. A seventh shape class, "none", takes drawings that show no shape
(scribbles, blobs, broken shapes), so that junk is not credited as the nearest shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import checkpoint
from .vocabulary import COLOURS, SHAPES

SHAPE_CLASSES = (*SHAPES, "none")


@dataclass(frozen=True)
class JudgeConfig:
    input_size: int = 64
    stem_channels: tuple[int, ...] = (24, 32, 48, 64)  # convolutions before the one that makes the tokens
    stem_strides: tuple[int, ...] = (2, 1, 2, 1)
    width: int = 96  # token width; a last stride-2 convolution makes 8x8 tokens from 64 px
    depth: int = 2  # transformer layers: global attention over the tokens instead of pooling
    heads: int = 4


class ConvTransformer(nn.Module):
    """Convolutional patch stem (8x8 tokens) + transformer layers + class token, two heads."""

    def __init__(self, cfg: JudgeConfig = JudgeConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin, side = 3, cfg.input_size
        for c, stride in zip(cfg.stem_channels, cfg.stem_strides):
            layers += [nn.Conv2d(cin, c, 3, stride, 1, bias=False), nn.GroupNorm(1, c), nn.ReLU()]
            cin, side = c, side // stride
        layers.append(nn.Conv2d(cin, cfg.width, 3, 2, 1))
        self.stem = nn.Sequential(*layers)
        tokens = (side // 2) ** 2
        self.pos = nn.Parameter(torch.randn(1, tokens + 1, cfg.width) * 0.02)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.width))
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 2 * cfg.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.colour_head = nn.Linear(cfg.width, len(COLOURS))
        self.shape_head = nn.Linear(cfg.width, len(SHAPE_CLASSES))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (colour [B, 5], shape [B, 7]) for images [B, 3, S, S] in [0, 1]."""
        x = self.stem(images * 2.0 - 1.0).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        x = self.norm(self.blocks(x)[:, 0])
        return self.colour_head(x), self.shape_head(x)


class Judge:
    """Colour and shape verdicts for RGB images in [0, 1] of any square size (resized inside)."""

    def __init__(self, net: ConvTransformer, device: torch.device | str = "cpu", meta: dict | None = None) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.meta = dict(meta or {})

    @classmethod
    def load(cls, device: torch.device | str = "cpu", path: str | Path = checkpoint.JUDGE_FILE) -> "Judge":
        what = "judge"
        ckpt = checkpoint.load(path, what)
        net = checkpoint.build(ConvTransformer, checkpoint.config_from(ckpt, JudgeConfig, path, what), ckpt, path, what)
        return cls(net, device, ckpt.get("meta"))

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"the judge takes RGB images [B, 3, H, W], got {tuple(images.shape)}")
        size = self.net.cfg.input_size
        x = images.detach().to(self.device, torch.float32).clamp(0, 1)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(colour [B, 5], shape [B, 7]) probabilities; the last shape class is "none"."""
        c, s = self.net(self._prepare(images))
        return c.softmax(-1), s.softmax(-1)

    def predict(self, images: torch.Tensor) -> list[tuple[str, str]]:
        """(colour, shape) per image; shape may be "none" (no recognisable shape)."""
        c, s = self.probabilities(images)
        return [(COLOURS[i], SHAPE_CLASSES[j]) for i, j in zip(c.argmax(-1).tolist(), s.argmax(-1).tolist())]
