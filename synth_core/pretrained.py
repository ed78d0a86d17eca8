"""Where pretrained weights come from: a local file, a cache, or (only when allowed) a download.

One public module for the whole engine (CLIP through open_clip, VGG-16 for the style loss), so
the offline rule is decided in one place. Offline is an explicit argument (the request's
``offline`` field, Blender's "Allow Online Access" off); the user's own ``HF_HUB_OFFLINE=1``
is honoured too. When nothing is on disk, a quick probe decides whether a download is tried at
all, so a machine without network fails in seconds with a message that says what to do.
"""

from __future__ import annotations

import os
import socket

from .errors import BadRequest, MissingWeights
from .request import CHECKPOINT_SUFFIXES

HUB_HOST = ("huggingface.co", 443)


def offline_by_environment() -> bool:
    """The user's own Hugging Face switch (read, never written)."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe so a machine without network fails in seconds, not after long time-outs."""
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def download_refusal(offline: bool) -> str | None:
    """Why nothing may be downloaded now ('offline mode', 'no network'), or None if it may."""
    if offline or offline_by_environment():
        return "offline mode"
    if not hub_reachable():
        return "no network"
    return None


def open_clip_weights(name: str, pretrained: str, cache_dir: str | None, offline: bool = False) -> tuple[str, bool]:
    """(checkpoint file or tag for open_clip to download, quick_gelu) for ``name``/``pretrained``.

    Looks in: an explicit file, the Hugging Face cache (``cache_dir`` or HF_HOME), and open_clip's
    URL cache (``cache_dir`` or ~/.cache/clip). Returns the tag itself (open_clip downloads it into
    ``cache_dir``) only when nothing was found and ``download_refusal`` allows it.
    """
    import open_clip

    if name not in open_clip.list_models():
        near = [m for m in open_clip.list_models() if m.lower().startswith(name.lower()[:4])][:8]
        raise BadRequest(f"unknown open_clip model {name[:60]!r}" + (f"; similar: {', '.join(near)}" if near else ""))
    if os.path.exists(pretrained):
        if not os.path.isfile(pretrained):
            raise MissingWeights(f"checkpoint {pretrained!r} is not a regular file")
        return pretrained, False
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained not in tags:
        if os.sep in pretrained or pretrained.endswith(CHECKPOINT_SUFFIXES):
            raise MissingWeights(f"checkpoint file {pretrained!r} does not exist")
        raise BadRequest(f"unknown pretrained tag {pretrained[:60]!r} for {name}; {_tag_list(tags)}")
    cfg = open_clip.get_pretrained_cfg(name, pretrained)
    quick_gelu = bool(cfg.get("quick_gelu", False))
    found, looked = _cached_file(cfg, cache_dir)
    if found:
        return found, quick_gelu
    hub = cfg.get("hf_hub", "")
    refusal = download_refusal(offline)
    if refusal:
        where = f"https://huggingface.co/{hub.rstrip('/')}" if hub else cfg.get("url", "")
        raise MissingWeights(
            f"weights for {name}:{pretrained} are not on this machine and cannot be downloaded ({refusal}); "
            f"looked in: {'; '.join(looked)}. Download them from {where} and set the model to "
            f"{name}:/path/to/file (--model on the command line, Model in Blender), or use the model builtin "
            "(the offline stand-in, not CLIP)")
    return pretrained, quick_gelu


def _tag_list(tags: list[str], limit: int = 6) -> str:
    """A short list of available tags (some models have dozens)."""
    if not tags:
        return "it has no pretrained weights in open_clip"
    more = f" and {len(tags) - limit} more" if len(tags) > limit else ""
    return f"available: {', '.join(tags[:limit])}{more}"


def _cached_file(cfg: dict, cache_dir: str | None) -> tuple[str | None, list[str]]:
    """A cached checkpoint for a pretrained config, and the places looked in."""
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
                    return hit, looked
            looked.append(f"Hugging Face cache {cache_dir or HF_HUB_CACHE} (repo {repo_id})")
        except ImportError:
            pass
    url = cfg.get("url", "")
    if url:
        candidate = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(candidate):
            return candidate, looked
        looked.append(candidate)
    return None, looked
