"""Checkpoint files of the built-in model and its judge: state dict + config + metadata.

Written atomically (never half a file), read with ``torch.load(weights_only=True)`` (no code
runs from a weights file), and every way a file can be wrong becomes ``MissingWeights`` with a
one-line message that says how to fix it. Cheap checks come first (a regular file, not empty,
not huge, a zip archive or pickle as ``torch.save`` writes), so a damaged file fails at once; a
checkpoint of another architecture names its missing, unexpected and mis-shaped tensors.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import MISSING, Field, asdict, fields
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from ..files import MB, FileRefused, open_regular

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MODEL_FILE = WEIGHTS_DIR / "builtin_clip.pt"
JUDGE_FILE = WEIGHTS_DIR / "judge.pt"
DISCLAIMER = "offline stand-in for CLIP, not CLIP"
RETRAIN = "retrain with: python scripts/train_builtin.py"
MAX_BYTES = 256 * MB  # the shipped files are 1-3 MB
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive...
PICKLE_MAGIC = b"\x80"  # ...or, with the legacy format, a pickle
MAX_DIM = 4096  # any integer of a config (widths, sizes, depths): far above the shipped ones
MAX_ITEMS = 65536  # any tuple of a config (channels, vocabulary)

C = TypeVar("C")
M = TypeVar("M", bound=torch.nn.Module)


def save(path: str | Path, module: torch.nn.Module, config: Any, meta: dict) -> Path:
    """``{"state_dict", "config", "meta"}`` to ``path`` via a temporary file and a rename."""
    from ..files import atomic_write_bytes

    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    plain = json.loads(json.dumps(meta, default=str))  # only plain types load with weights_only=True
    torch.save({"state_dict": state, "config": asdict(config), "meta": plain}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path, what: str) -> dict:
    """The checkpoint dict, or MissingWeights naming the file and the reason (missing, corrupt, wrong)."""
    from ..errors import MissingWeights

    path = Path(path)
    if not os.path.lexists(path):
        raise MissingWeights(f"{what} weights are missing: {path} ({RETRAIN})")
    try:
        f = open_regular(path, MAX_BYTES, f"{what} weights")
    except FileRefused as e:
        raise MissingWeights(str(e)) from None
    with f:
        head = f.read(len(ZIP_MAGIC))
        if not head:
            raise MissingWeights(f"{what} weights at {path} are an empty file ({RETRAIN})")
        if head != ZIP_MAGIC and not head.startswith(PICKLE_MAGIC):
            raise MissingWeights(f"{what} weights at {path} are not a PyTorch checkpoint ({RETRAIN})")
        f.seek(0)
        try:
            ckpt = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for damaged or foreign files
            raise MissingWeights(f"{what} weights at {path} are unreadable ({type(e).__name__}: corrupt or "
                                 f"truncated; {RETRAIN})") from None
    if not isinstance(ckpt, dict) or not {"state_dict", "config"} <= set(ckpt):
        raise MissingWeights(f"{path} is not a {what} checkpoint (no state_dict/config; {RETRAIN})")
    state = ckpt["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise MissingWeights(f"{path} is not a {what} checkpoint (its state_dict is not named tensors; "
                             f"{RETRAIN})")
    if not isinstance(ckpt.get("meta"), (dict, type(None))):
        raise MissingWeights(f"{path} is not a {what} checkpoint (its meta is not a dict; {RETRAIN})")
    return ckpt


def config_from(ckpt: dict, cls: type[C], path: str | Path, what: str) -> C:
    """Rebuild a config dataclass (lists back to tuples); unknown keys mean another version.

    Every value must have its field's type and a sane size, so that a damaged config cannot ask
    for a model of billions of parameters (or a crash) before the weights are even compared.
    """
    from ..errors import MissingWeights

    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    raw = ckpt["config"]
    if not isinstance(raw, dict) or set(raw) - set(known):
        raise MissingWeights(f"{path} was written by another version of the {what} ({RETRAIN})")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    for name, value in values.items():
        if not _plausible(value, _default(known[name])):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise MissingWeights(f"{path} is not a usable {what} checkpoint: config {name} = {shown} "
                                 f"({RETRAIN})")
    return cls(**values)


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _plausible(value: Any, like: Any) -> bool:
    """``value`` has the type of the field's default ``like`` and a size this project could train."""
    if like is None:
        return True
    if isinstance(like, bool):
        return isinstance(value, bool)
    if isinstance(like, int):
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_DIM
    if isinstance(like, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if isinstance(like, str):
        return isinstance(value, str) and len(value) <= MAX_DIM
    if isinstance(like, tuple):
        if not isinstance(value, tuple) or not 0 < len(value) <= MAX_ITEMS:
            return False
        return not like or all(_plausible(v, like[0]) for v in value)
    return True


def _few(items: list[str], n: int = 3) -> str:
    """The first ``n`` items, and how many more: a message stays one readable line."""
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def mismatch(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """What keeps ``state`` from loading into ``module`` (missing, unexpected, mis-shaped), or None."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch (file vs model) {_few(shapes)}")
    return "; ".join(problems) or None


def load_state(module: torch.nn.Module, ckpt: dict, path: str | Path, what: str) -> None:
    """Load the weights, or MissingWeights naming the keys and shapes that do not fit."""
    from ..errors import MissingWeights

    state = ckpt["state_dict"]
    problem = mismatch(module, state)
    if problem:
        raise MissingWeights(f"{path} does not fit the {what}: {problem} ({RETRAIN})")
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise MissingWeights(f"{path} has NaN or infinite weights in {_few(bad)} ({RETRAIN})")
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise MissingWeights(f"{path} does not fit the {what}: {first} ({RETRAIN})") from None


def build(factory: Callable[[C], M], cfg: C, ckpt: dict, path: str | Path, what: str) -> M:
    """``factory(cfg)`` with the checkpoint's weights, or MissingWeights; nothing big is allocated first.

    The module is first built on the meta device (no memory) and compared with the state dict, so
    a damaged config that asks for a giant model, or that its constructor rejects, fails at once.
    """
    from ..errors import MissingWeights

    try:
        with torch.device("meta"):
            probe = factory(cfg)
    except Exception as e:  # a config the constructor rejects (GroupNorm groups, attention heads...)
        detail = " ".join(str(e).split())[:120]
        raise MissingWeights(f"{path} is not a usable {what} checkpoint: its config does not build "
                             f"({type(e).__name__}: {detail}; {RETRAIN})") from None
    problem = mismatch(probe, ckpt["state_dict"])
    if problem:
        raise MissingWeights(f"{path} does not fit the {what}: {problem} ({RETRAIN})")
    module = factory(cfg)
    load_state(module, ckpt, path, what)
    return module
