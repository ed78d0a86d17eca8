"""Model specs to encoders: ``NAME:TAG`` / ``NAME:path`` / a bare checkpoint for open_clip, or ``builtin``.

- ``"ViT-B-32:openai"`` (open_clip name and pretrained tag; the default, what CLIPDraw used),
- a checkpoint file (``path/to/model.pt`` or ``ViT-B-32:path/to/model.pt``),
- ``"builtin"``: the small model this project trains and ships, an offline stand-in for CLIP
  (it knows six shapes in five colours and nothing else; it is not CLIP).
The model families load lazily, so choosing one never imports the other.
"""

from __future__ import annotations

import os

import torch

from ..errors import BadRequest
from ..request import BUILTIN_MODEL, DEFAULT_MODEL
from .base import Encoder


def load_encoder(spec: str = DEFAULT_MODEL, device: str | torch.device = "auto", cache_dir: str | None = None,
                 offline: bool = False) -> Encoder:
    """Resolve a model spec to a ready, frozen encoder on ``device`` (``offline``: never download)."""
    dev = resolve_device(device)
    spec = (spec or "").strip()
    if not spec:
        raise BadRequest(f"model is empty: use e.g. {DEFAULT_MODEL}, a checkpoint path, or {BUILTIN_MODEL}")
    if spec.lower() == BUILTIN_MODEL:
        from ..builtin import load_builtin_encoder

        return load_builtin_encoder(device=dev)
    from .openclip import OpenClipEncoder

    name, pretrained = split_spec(spec)
    return OpenClipEncoder(name, pretrained, dev, cache_dir, offline)


def split_spec(spec: str) -> tuple[str, str]:
    """``name:tag`` / ``name:path`` / ``path`` -> (open_clip architecture, tag or file)."""
    if os.path.exists(spec):  # a bare checkpoint: OpenAI's files are named after the architecture
        import open_clip

        stem = os.path.splitext(os.path.basename(spec))[0].replace("/", "-")
        if stem not in open_clip.list_models():
            raise BadRequest(f"cannot tell the architecture of {spec!r}: write it as ARCH:{spec}, e.g. ViT-B-32:{spec}")
        return stem, spec
    if ":" not in spec:
        raise BadRequest(f"model {spec[:80]!r} is not a file and has no pretrained tag: use NAME:TAG such as "
                         f"{DEFAULT_MODEL}, NAME:path/to/checkpoint, or {BUILTIN_MODEL}")
    name, pretrained = spec.split(":", 1)
    if not name.strip() or not pretrained.strip():
        raise BadRequest(f"model {spec[:80]!r} needs both parts of NAME:TAG, e.g. {DEFAULT_MODEL}")
    return name.strip(), pretrained.strip()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that is absent is an error."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BadRequest(f"device {device!r} requested but CUDA is not available here (use --device cpu)")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise BadRequest("device 'mps' requested but Metal is not available here (use --device cpu)")
    if not (name == "cpu" or name == "mps" or name.startswith("cuda")):
        raise BadRequest(f"unknown device {device!r}: use auto, cpu, cuda or mps")
    return torch.device(name)
