"""How the encoder runs, not what it computes: bfloat16 autocast and ``torch.compile``.

The encoder is most of a step on a GPU (docs/engine.md), so that is where these go. They wrap
the ``Encoder`` the methods already use, so no method changes:

- **precision**: ``auto`` is bfloat16 autocast on CUDA (tensor cores; outputs come back as
  float32) and float32 elsewhere, where bfloat16 is slower without matrix units; ``float32``
  opts out, ``bfloat16`` forces it (on a CPU too: it runs, for tests).
- **compile**: ``torch.compile`` of the image tower's two entry points (embedding, and embedding
  with features for CLIPasso). Fixed input shapes, so it compiles once per batch size; the first
  step pays the compile time (tens of seconds), so it is opt-in for long runs.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from .encoders.base import Encoder
from .request import PRECISIONS


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast type for ``precision`` on ``device`` (None: plain float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bfloat16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


class AcceleratedEncoder(Encoder):
    """``inner`` with its image tower under autocast and/or compiled; text and everything else as is."""

    def __init__(self, inner: Encoder, dtype: torch.dtype | None, compile: bool, backend: str = "inductor") -> None:
        self.inner, self.dtype, self.compiled = inner, dtype, compile
        self.name, self.label, self.device = inner.name, inner.label, inner.device
        self.input_size, self.context_length = inner.input_size, inner.context_length
        self._image: Callable = inner.encode_image
        self._features: Callable = inner.encode_with_features
        if compile:
            self._image = torch.compile(self._image, backend=backend, dynamic=False)
            self._features = torch.compile(self._features, backend=backend, dynamic=False)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self._image(images).float()

    def encode_with_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        with self._autocast():
            emb, feats = self._features(images)
        return emb.float(), [f.float() for f in feats]

    @property
    def feature_layers(self) -> tuple[int, ...]:
        return self.inner.feature_layers

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        return self.inner.encode_text(texts)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def unknown_words(self, text: str) -> list[str]:
        return self.inner.unknown_words(text)

    def __getattr__(self, name: str):  # anything else the inner encoder offers (image_features, model, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def accelerate(encoder: Encoder, precision: str = "auto", compile: bool = False,
               backend: str = "inductor") -> Encoder:
    """``encoder`` as the request asks it to run; itself when nothing changes (float32, not compiled)."""
    dtype = autocast_dtype(precision, encoder.device)
    if dtype is None and not compile:
        return encoder
    return AcceleratedEncoder(encoder, dtype, compile, backend)
