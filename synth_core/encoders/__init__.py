"""Image-text encoders: the ``Encoder`` interface (``base``), CLIP through open_clip (``openclip``) and
the spec registry (``registry``) that picks one; the built-in stand-in lives in ``synth_core.builtin``."""

from __future__ import annotations

from ..request import DEFAULT_MODEL
from .base import Encoder
from .registry import load_encoder, resolve_device, split_spec

__all__ = ["DEFAULT_MODEL", "Encoder", "load_encoder", "resolve_device", "split_spec"]
