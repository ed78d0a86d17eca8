"""CLIPDraw's pixel-optimisation baseline: optimise the canvas' pixels directly (sigmoid logits).

Reference: a 224x224x3 sigmoid-parameterised image, Adam lr 0.01, 16 augmented copies per step.
It shows why strokes matter: without the stroke prior the optimiser makes adversarial noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .augment import AugmentConfig, apply_warps, identity_warp, sample_warps
from .encoders.base import Encoder
from .engine import StepResult
from .safe_step import guarded_update
from .losses import semantic_loss


@dataclass(frozen=True)
class PixelConfig:
    steps: int = 1000
    width: int = 224
    height: int = 224
    augmentations: int = 16
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    lr: float = 0.01
    negative_weight: float = 0.3
    seed: int = 0


class PixelOptimisation:
    def __init__(self, cfg: PixelConfig, encoder: Encoder, prompt: str, negatives: Sequence[str] = ()) -> None:
        self.cfg = cfg
        self.encoder = encoder
        texts = encoder.encode_text([prompt, *negatives]).detach()
        self.text, self.negatives = texts[:1], texts[1:]
        g = torch.Generator().manual_seed(cfg.seed)
        self.aug_gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
        logits = torch.randn(1, 3, cfg.height, cfg.width, generator=g) * 0.1
        self.logits = logits.to(encoder.device).requires_grad_()
        self.opt = torch.optim.Adam([self.logits], lr=cfg.lr)

    def step(self, t: int) -> StepResult:
        cfg, size = self.cfg, self.encoder.input_size
        self.opt.zero_grad(set_to_none=True)
        image = torch.sigmoid(self.logits)
        if cfg.augmentations > 0:
            warps = sample_warps(cfg.augmentations, cfg.width, cfg.height, size, cfg.augment, self.aug_gen)
        else:
            warps = identity_warp(cfg.width, cfg.height, size)
        views = apply_warps(image, warps, size, fill=cfg.augment.fill)
        loss, sim = semantic_loss(self.encoder.encode_image(views), self.text, self.negatives,
                                  cfg.negative_weight, copies=views.shape[0])
        loss = loss.sum()
        loss.backward()
        applied = guarded_update(self.opt, [self.logits], loss)
        return StepResult(loss.detach(), sim.mean().detach(), note="non-finite loss, gradients or update",
                          applied=applied)

    def picture(self) -> np.ndarray:
        img = torch.sigmoid(self.logits.detach())[0].permute(1, 2, 0).cpu().numpy()
        return (img * 255 + 0.5).astype(np.uint8)
