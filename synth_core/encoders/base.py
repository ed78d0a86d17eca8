"""The ``Encoder`` interface every image-text model implements (CLIP through open_clip, the built-in one).

The methods only see this interface, so a new model family is one subclass and one registry entry.
"""

from __future__ import annotations

import abc
from typing import Sequence

import torch

from ..request import MIN_WIDTH


class Encoder(abc.ABC):
    """A joint image-text embedding model.

    Images go in as float tensors in [0, 1], shape [B, 3, S, S] with S = ``input_size``; each
    encoder applies its own normalisation. Embeddings come out L2-normalised, shape [B, D].
    """

    name: str  # the spec it was loaded from, e.g. "ViT-B-32:openai" or "builtin"
    label: str  # what to show users, e.g. "builtin (offline stand-in for CLIP, not CLIP)"
    input_size: int  # side of the square image the encoder expects
    context_length: int  # text tokens, including start/end tokens
    device: torch.device
    # negative prompts every CLIPDraw run against this model adds to the user's own (the model's card:
    # the built-in model names the class it was trained to call a scribble); none for CLIP
    default_negatives: tuple[str, ...] = ()
    # the widest stroke a CLIPDraw run against this model grows by default, as a share of the canvas's
    # long edge (the model's card: thick strokes scrub shapes full for the built-in model); none for CLIP
    max_width_share: float | None = None

    def default_max_width(self, width: int, height: int) -> float | None:
        """The model card's widest stroke in px on a ``width`` x ``height`` canvas (None: no cap of its own)."""
        if self.max_width_share is None:
            return None
        return max(MIN_WIDTH, self.max_width_share * max(width, height))

    @abc.abstractmethod
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """[T, D] normalised text embeddings (no gradient needed; callers cache them)."""

    @abc.abstractmethod
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[B, D] normalised image embeddings, differentiable w.r.t. ``images``."""

    @abc.abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` needs, start/end included, to warn before truncation."""

    def unknown_words(self, text: str) -> list[str]:
        """Words the model cannot read (it only knows a small vocabulary); CLIP's BPE reads any text."""
        return []

    # Intermediate features (CLIPasso's geometric loss). ``feature_layers`` are the indices of
    # ``encode_with_features``' feature list that the geometric loss compares by default: for a
    # CNN with an ``image_features`` method (one map per stage), its middle stages, as CLIPasso
    # uses layer2 + layer3 of a ResNet.
    @property
    def feature_layers(self) -> tuple[int, ...]:
        return (1, 2) if hasattr(self, "image_features") else ()

    def encode_with_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(normalised embedding [B, D], intermediate feature maps), differentiable."""
        features = getattr(self, "image_features", None)
        if features is None:
            raise NotImplementedError(f"{self.label} does not expose intermediate features")
        return self.encode_image(images), features(images)
