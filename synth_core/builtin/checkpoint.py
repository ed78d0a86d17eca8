"""Checkpoint files of the built-in model and its judge: state dict + config + metadata.

Written atomically (never half a file), read with ``torch.load(weights_only=True)`` (no code
runs from a weights file), and every way a file can be wrong becomes ``MissingWeights`` with a
one-line message that says how to fix it.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, TypeVar

import torch

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
MODEL_FILE = WEIGHTS_DIR / "builtin_clip.pt"
JUDGE_FILE = WEIGHTS_DIR / "judge.pt"
DISCLAIMER = "offline stand-in for CLIP, not CLIP"
RETRAIN = "retrain with: python scripts/train_builtin.py"

C = TypeVar("C")


def save(path: str | Path, module: torch.nn.Module, config: Any, meta: dict) -> Path:
    """``{"state_dict", "config", "meta"}`` to ``path`` via a temporary file and a rename."""
    from ..drawing import atomic_write_bytes

    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    plain = json.loads(json.dumps(meta, default=str))  # only plain types load with weights_only=True
    torch.save({"state_dict": state, "config": asdict(config), "meta": plain}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path, what: str) -> dict:
    """The checkpoint dict, or MissingWeights naming the file and the reason (missing, corrupt, wrong)."""
    from ..errors import MissingWeights

    path = Path(path)
    if not path.is_file():
        raise MissingWeights(f"{what} weights are missing: {path} ({RETRAIN})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or foreign files
        raise MissingWeights(f"{what} weights at {path} are unreadable ({type(e).__name__}: corrupt or not a "
                             f"checkpoint; {RETRAIN})") from None
    if not isinstance(ckpt, dict) or not {"state_dict", "config"} <= set(ckpt):
        raise MissingWeights(f"{path} is not a {what} checkpoint (no state_dict/config; {RETRAIN})")
    return ckpt


def config_from(ckpt: dict, cls: type[C], path: str | Path, what: str) -> C:
    """Rebuild a config dataclass (lists back to tuples); unknown keys mean another version."""
    from ..errors import MissingWeights

    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    raw = ckpt["config"]
    if not isinstance(raw, dict) or set(raw) - known:
        raise MissingWeights(f"{path} was written by another version of the {what} ({RETRAIN})")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def load_state(module: torch.nn.Module, ckpt: dict, path: str | Path, what: str) -> None:
    from ..errors import MissingWeights

    try:
        module.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise MissingWeights(f"{path} does not fit the {what}: {first} ({RETRAIN})") from None
