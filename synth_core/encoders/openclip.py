"""CLIP models through open_clip: any ``NAME:TAG`` or ``NAME:path/to/checkpoint``, frozen, in eval mode."""

from __future__ import annotations

import logging
import re
from typing import Sequence

import torch

from ..errors import MissingWeights
from ..pretrained import open_clip_weights
from .base import Encoder

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class OpenClipEncoder(Encoder):
    """A CLIP model from open_clip, frozen, in eval mode, with its own preprocessing constants."""

    def __init__(self, name: str, pretrained: str, device: torch.device, cache_dir: str | None = None,
                 offline: bool = False) -> None:
        import open_clip as oc

        checkpoint, quick_gelu = open_clip_weights(name, pretrained, cache_dir, offline)
        log.info("loading %s from %s", name, checkpoint)
        try:
            model = oc.create_model(name, pretrained=checkpoint, force_quick_gelu=quick_gelu, cache_dir=cache_dir,
                                    device=device)
        except Exception as e:  # any failure to read a checkpoint means the file is unusable
            raise MissingWeights(f"cannot load {name} weights from {checkpoint!r}: {load_failure(e)} "
                                 "(corrupt file, or not a checkpoint of this architecture?)") from None
        model.eval().requires_grad_(False)
        self.model = model
        self.tokenizer = oc.get_tokenizer(name)
        self.name = f"{name}:{pretrained}"
        self.label = f"CLIP {self.name}"
        size = model.visual.image_size
        self.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.context_length = int(getattr(self.tokenizer, "context_length", 77))
        pp = getattr(model.visual, "preprocess_cfg", {}) or {}
        self.device = device
        self._mean = torch.tensor(pp.get("mean", CLIP_MEAN), device=device).reshape(1, 3, 1, 1)
        self._std = torch.tensor(pp.get("std", CLIP_STD), device=device).reshape(1, 3, 1, 1)

    @classmethod
    def untrained(cls, name: str, device: torch.device) -> "OpenClipEncoder":
        """The architecture with random weights: the real cost of the real network, for timing and tests
        only (its drawings mean nothing)."""
        import open_clip as oc

        enc = cls.__new__(cls)
        model = oc.create_model(name, pretrained=None, device=device).eval().requires_grad_(False)
        enc.model, enc.tokenizer, enc.device = model, oc.get_tokenizer(name), device
        enc.name = enc.label = f"{name} (untrained, timing only)"
        size = model.visual.image_size
        enc.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        enc.context_length = int(getattr(enc.tokenizer, "context_length", 77))
        enc._mean = torch.tensor(CLIP_MEAN, device=device).reshape(1, 3, 1, 1)
        enc._std = torch.tensor(CLIP_STD, device=device).reshape(1, 3, 1, 1)
        return enc

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        x = (images - self._mean) / self._std
        return torch.nn.functional.normalize(self.model.encode_image(x).float(), dim=-1)

    @property
    def feature_layers(self) -> tuple[int, ...]:
        """ResNets: (stem, layer1..4) -> layer2 + layer3 as CLIPasso; ViTs: blocks at 1/3 and 2/3 depth."""
        if hasattr(self.model.visual, "layer1"):
            return (2, 3)
        n = len(self.model.visual.transformer.resblocks)
        return (n // 3, 2 * n // 3)

    def encode_with_features(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One pass through open_clip's ``forward_intermediates`` (no hooks, so it compiles): ResNets give
        the stem and layer1..4 maps, ViTs every block's patch tokens [B, L, C] (class token left out)."""
        x = (images - self._mean) / self._std
        v = self.model.visual
        out = v.forward_intermediates(x, output_fmt="NCHW" if hasattr(v, "layer1") else "NLC")
        emb = torch.nn.functional.normalize(out["image_features"].float(), dim=-1)
        return emb, [f.float() for f in out["image_intermediates"]]

    def count_tokens(self, text: str) -> int:
        enc = getattr(self.tokenizer, "encode", None)
        if enc is None:  # HF tokenizers: count the non-padding ids of a long encoding
            ids = self.tokenizer([text], context_length=10_000)[0]
            return int((ids != 0).sum())
        return len(enc(text)) + 2


def load_failure(e: Exception, keys: int = 3) -> str:
    """One line for a checkpoint that would not load: for a wrong architecture, a few of the keys."""
    text = str(e).strip()
    if "Error(s) in loading state_dict" not in text:
        return (text.splitlines()[0][:200] if text else type(e).__name__)
    parts = []
    for label, pattern in (("missing keys", r"Missing key\(s\) in state_dict: (.*?)\.\s*$"),
                           ("unexpected keys", r"Unexpected key\(s\) in state_dict: (.*?)\.\s*$")):
        m = re.search(pattern, text, re.M)
        if m:
            names = re.findall(r'"([^"]+)"', m.group(1))
            more = f" and {len(names) - keys} more" if len(names) > keys else ""
            parts.append(f"{label} {', '.join(names[:keys])}{more}")
    sizes = re.findall(r"size mismatch for ([^:]+):", text)
    if sizes:
        more = f" and {len(sizes) - keys} more" if len(sizes) > keys else ""
        parts.append(f"wrong shapes for {', '.join(sizes[:keys])}{more}")
    return "its tensors do not fit: " + "; ".join(parts) if parts else "its tensors do not fit the architecture"
