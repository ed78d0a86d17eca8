"""The built-in model and its judge: an OFFLINE STAND-IN FOR CLIP, NOT CLIP.

A tiny image-text model trained here on procedural drawings of six shapes in five colours
(scripts/train_builtin.py, docs/builtin-model.md), shipped in synth_core/weights/ so that the
whole pipeline runs without downloading CLIP; and an independent judge classifier (another
architecture, other training images) that tells which colour and shape a drawing shows.
Importing this package is cheap: weights load on the first ``load_*`` call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .vocabulary import COLOURS, SHAPES, caption

if TYPE_CHECKING:
    from .judge import Judge
    from .model import BuiltinEncoder

__all__ = ["COLOURS", "SHAPES", "caption", "load_builtin_encoder", "load_judge"]


def load_builtin_encoder(device: torch.device | str = "cpu") -> "BuiltinEncoder":
    """The shipped built-in encoder (offline stand-in for CLIP, not CLIP); MissingWeights if unusable."""
    from .model import BuiltinEncoder

    return BuiltinEncoder.load(device)


def load_judge(device: torch.device | str = "cpu") -> "Judge":
    """The shipped independent judge; MissingWeights if its file is missing or unusable."""
    from .judge import Judge

    return Judge.load(device)
