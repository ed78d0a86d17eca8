"""The built-in image-text model: a tiny CLIP-style pair of encoders. An offline stand-in for CLIP, NOT CLIP.

Trained by scripts/train_builtin.py on procedural drawings of six shapes in five colours
(synth_core/lab/shapes.py) and it knows nothing else. It exists so that the whole CLIPDraw pipeline runs, and
can be judged, on machines that cannot download CLIP.

Image tower: an optional fixed 2x2 average pool (a low-pass: pixel-level "adversarial confetti"
is invisible to it), a small CNN with GroupNorm (BatchNorm collapsed in eval mode in an earlier
spike), global average pooling, a linear head. Text tower: word embeddings, one transformer layer,
the end-of-text token's features, a linear head. Both L2-normalised into one joint space;
trained with a symmetric InfoNCE loss and a learnable temperature, as CLIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..encoders.base import Encoder
from . import checkpoint, tokenizer

NAME = "builtin"
LABEL = "builtin (offline stand-in for CLIP, not CLIP)"


@dataclass(frozen=True)
class ModelConfig:
    input_size: int = 64
    stem_pool: bool = True  # fixed 2x2 average pool first (the CNN then works at half resolution)
    channels: tuple[int, ...] = (32, 64, 96, 128)
    groups: int = 8
    embed_dim: int = 128
    text_width: int = 64
    text_heads: int = 4
    vocab: tuple[str, ...] = tokenizer.VOCAB
    context_length: int = tokenizer.CONTEXT_LENGTH


def _conv(cin: int, cout: int, stride: int, groups: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(groups, cout), nn.GELU())


class ImageTower(nn.Module):
    """CNN: stage 1 at full (or pooled) resolution, each later stage halves it; GAP; linear head."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c, g = cfg.channels, cfg.groups
        first = [nn.AvgPool2d(2)] if cfg.stem_pool else []
        stages = [nn.Sequential(*first, _conv(3, c[0], 1, g), _conv(c[0], c[0], 1, g))]
        for cin, cout in zip(c[:-1], c[1:]):
            stages.append(nn.Sequential(_conv(cin, cout, 2, g), _conv(cout, cout, 1, g)))
        self.stages = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(c[-1])
        self.head = nn.Linear(c[-1], cfg.embed_dim)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output, finest first (32, 16, 8, 4 px for a 64 px input with the pool)."""
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.features(x)[-1].mean(dim=(2, 3))))


class TextTower(nn.Module):
    """Word embeddings + positions, one pre-norm transformer layer, the <eot> token's features."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(len(cfg.vocab), cfg.text_width)
        self.pos = nn.Parameter(torch.randn(cfg.context_length, cfg.text_width) * 0.02)
        self.layer = nn.TransformerEncoderLayer(cfg.text_width, cfg.text_heads, 2 * cfg.text_width, dropout=0.0,
                                                activation="gelu", batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(cfg.text_width)
        self.head = nn.Linear(cfg.text_width, cfg.embed_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        x = self.layer(x, src_key_padding_mask=tokens == tokenizer.PAD)
        eot = (tokens == tokenizer.EOT).int().argmax(dim=1)
        return self.head(self.norm(x[torch.arange(len(tokens)), eot]))


class ToyClip(nn.Module):
    """The two towers and CLIP's learnable temperature."""

    def __init__(self, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = ImageTower(cfg)
        self.text = TextTower(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(2.6593))  # log(1 / 0.07), as CLIP

    @staticmethod
    def normalise_input(images: torch.Tensor) -> torch.Tensor:
        """[0, 1] -> [-1, 1]: the model's own preprocessing (the encoder applies it)."""
        return images * 2.0 - 1.0

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(self.normalise_input(images)), dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(tokens), dim=-1)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class BuiltinEncoder(Encoder):
    """The Encoder interface over ToyClip: an offline stand-in for CLIP, not CLIP.

    ``encode_image`` takes [B, 3, S, S] in [0, 1] with S = ``input_size`` (64), applies the model's
    own normalisation and is differentiable w.r.t. the images; ``encode_text`` truncates prompts
    longer than ``context_length`` tokens (``count_tokens`` lets callers warn first).
    """

    name = NAME
    label = LABEL

    def __init__(self, model: ToyClip, device: torch.device | str = "cpu", meta: dict | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.input_size = model.cfg.input_size
        self.context_length = model.cfg.context_length
        self.meta = dict(meta or {})
        self.default_negatives = tuple(self.meta.get("negatives", ()))  # from its training (checkpoint meta)
        share = self.meta.get("max_width_share")
        self.max_width_share = float(share) if isinstance(share, (int, float)) and 0 < share <= 1 else None

    @classmethod
    def load(cls, device: torch.device | str = "cpu", path: str | Path = checkpoint.MODEL_FILE) -> "BuiltinEncoder":
        """The shipped (or given) checkpoint; MissingWeights if it is missing or unusable."""
        from ..errors import MissingWeights

        what = "built-in model"
        ckpt = checkpoint.load(path, what)
        cfg = checkpoint.config_from(ckpt, ModelConfig, path, what)
        if cfg.vocab != tokenizer.VOCAB:
            raise MissingWeights(f"{path} was trained with another vocabulary ({checkpoint.RETRAIN})")
        model = checkpoint.build(ToyClip, cfg, ckpt, path, what)
        return cls(model, device, ckpt.get("meta"))

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = tokenizer.tokenize(list(texts), self.context_length).to(self.device)
        return self.model.encode_text(tokens)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(images)

    def image_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Intermediate feature maps of the image tower, one per stage (for CLIPasso's geometric loss)."""
        return self.model.image.features(self.model.normalise_input(images))

    def count_tokens(self, text: str) -> int:
        return tokenizer.count_tokens(text)

    def unknown_words(self, text: str) -> list[str]:
        """Words this stand-in has never seen: the engine warns, since they cannot steer the drawing."""
        return tokenizer.unknown_words(text)
