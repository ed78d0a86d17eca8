"""Image/text encoders behind one interface: open_clip CLIP models and the built-in stand-in.

``load_encoder(spec)`` resolves a model spec:
- ``"ViT-B-32:openai"`` (open_clip name and pretrained tag; the default, what CLIPDraw used),
- a checkpoint file (``path/to/model.pt`` or ``ViT-B-32:path/to/model.pt``),
- ``"builtin"``: the small model this project trains and ships, an offline stand-in for CLIP
  (it knows six shapes in five colours and nothing else; it is not CLIP).
"""

from __future__ import annotations

import abc
import logging
import pickle
from typing import Sequence

import torch

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


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


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit device that is absent is an error."""
    from .errors import BadRequest

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


# ---------------------------------------------------------------------------------------------
# Loading
DEFAULT_MODEL = "ViT-B-32:openai"
BUILTIN = "builtin"
_HUB_HOST = ("huggingface.co", 443)


def load_encoder(spec: str = DEFAULT_MODEL, device: str | torch.device = "auto", cache_dir: str | None = None) -> Encoder:
    """Resolve a model spec (see the module docstring) to a ready, frozen encoder on ``device``."""
    from .errors import BadRequest

    dev = resolve_device(device)
    spec = (spec or "").strip()
    if not spec:
        raise BadRequest("model is empty: use e.g. ViT-B-32:openai, a checkpoint path, or builtin")
    if spec.lower() == BUILTIN:
        from .builtin import load_builtin_encoder

        return load_builtin_encoder(device=dev)
    name, pretrained = _split_spec(spec)
    return OpenClipEncoder(name, pretrained, dev, cache_dir)


def _split_spec(spec: str) -> tuple[str, str]:
    """``name:tag`` / ``name:path`` / ``path`` -> (open_clip architecture, tag or file)."""
    from .errors import BadRequest

    import os

    if os.path.exists(spec):  # a bare checkpoint: OpenAI's files are named after the architecture
        stem = os.path.splitext(os.path.basename(spec))[0].replace("/", "-")
        arch = stem if stem in _open_clip().list_models() else None
        if arch is None:
            raise BadRequest(f"cannot tell the architecture of {spec!r}: write it as ARCH:{spec}, e.g. ViT-B-32:{spec}")
        return arch, spec
    if ":" not in spec:
        raise BadRequest(f"model {spec!r} is not a file and has no pretrained tag: use NAME:TAG such as {DEFAULT_MODEL}, "
                         "NAME:path/to/checkpoint, or builtin")
    name, pretrained = spec.split(":", 1)
    return name.strip(), pretrained.strip()


def _open_clip():
    import open_clip

    return open_clip


class OpenClipEncoder(Encoder):
    """A CLIP model from open_clip, frozen, in eval mode, with its own preprocessing constants."""

    def __init__(self, name: str, pretrained: str, device: torch.device, cache_dir: str | None = None) -> None:
        oc = _open_clip()
        checkpoint, quick_gelu = _resolve_weights(name, pretrained, cache_dir)
        log.info("loading %s from %s", name, checkpoint)
        try:
            model = oc.create_model(name, pretrained=checkpoint, force_quick_gelu=quick_gelu, cache_dir=cache_dir,
                                    device=device)
        except (RuntimeError, OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as e:
            from .errors import MissingWeights

            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise MissingWeights(f"cannot load {name} weights from {checkpoint!r}: {first} "
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
        v = self.model.visual
        if hasattr(v, "layer1"):
            modules = [v.avgpool, v.layer1, v.layer2, v.layer3, v.layer4]
        else:
            modules = list(v.transformer.resblocks)
        feats: list[torch.Tensor] = []
        hooks = [m.register_forward_hook(lambda mod, args, out: feats.append(out)) for m in modules]
        try:
            emb = self.encode_image(images)
        finally:
            for h in hooks:
                h.remove()
        return emb, [f.float() for f in feats]

    def count_tokens(self, text: str) -> int:
        enc = getattr(self.tokenizer, "encode", None)
        if enc is None:  # HF tokenizers: count the non-padding ids of a long encoding
            ids = self.tokenizer([text], context_length=10_000)[0]
            return int((ids != 0).sum())
        return len(enc(text)) + 2


def _resolve_weights(name: str, pretrained: str, cache_dir: str | None) -> tuple[str, bool]:
    """A local checkpoint file for ``name``/``pretrained``, or MissingWeights that says what to do.

    Looks in: an explicit file, the Hugging Face cache (``cache_dir`` or HF_HOME), and open_clip's
    URL cache (``cache_dir`` or ~/.cache/clip). Only when nothing is found and the hub answers
    within a few seconds does it let open_clip download; offline (HF_HUB_OFFLINE=1) it never tries.
    """
    import os

    from .errors import BadRequest, MissingWeights

    oc = _open_clip()
    if name not in oc.list_models():
        near = [m for m in oc.list_models() if m.lower().startswith(name.lower()[:4])][:8]
        raise BadRequest(f"unknown open_clip model {name!r}" + (f"; similar: {', '.join(near)}" if near else ""))
    if os.path.exists(pretrained):
        return pretrained, False
    tags = oc.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        if os.sep in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors", ".pth")):
            raise MissingWeights(f"checkpoint file {pretrained!r} does not exist")
        raise BadRequest(f"unknown pretrained tag {pretrained!r} for {name}; available: {', '.join(tags) or 'none'}")
    cfg = oc.get_pretrained_cfg(name, pretrained)
    quick_gelu = bool(cfg.get("quick_gelu", False))
    looked: list[str] = []
    hub = cfg.get("hf_hub", "")
    if hub:
        repo_id, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        try:
            from huggingface_hub import try_to_load_from_cache
            from huggingface_hub.constants import HF_HUB_CACHE

            for fn in names:
                hit = try_to_load_from_cache(repo_id, fn, cache_dir=cache_dir)
                if isinstance(hit, str):
                    return hit, quick_gelu
            looked.append(f"Hugging Face cache {cache_dir or HF_HUB_CACHE} (repo {repo_id})")
        except ImportError:
            pass
    url = cfg.get("url", "")
    if url:
        url_cache = cache_dir or os.path.expanduser("~/.cache/clip")
        candidate = os.path.join(url_cache, os.path.basename(url))
        if os.path.isfile(candidate):
            return candidate, quick_gelu
        looked.append(candidate)
    where = f"https://huggingface.co/{hub.rstrip('/')}" if hub else url
    if _offline() or not _hub_reachable():
        raise MissingWeights(
            f"weights for {name}:{pretrained} are not on this machine and cannot be downloaded "
            f"({'offline mode' if _offline() else 'no network'}); looked in: {'; '.join(looked)}. "
            f"Download them from {where} and set the model to {name}:/path/to/file (--model on the command "
            "line, Model in Blender), or use the model builtin (the offline stand-in, not CLIP)"
        )
    return pretrained, quick_gelu  # open_clip downloads it into cache_dir


def _offline() -> bool:
    import os

    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "SYNTH_OFFLINE"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe so a machine without network fails in seconds, not after long time-outs."""
    import socket

    try:
        with socket.create_connection(_HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False
