"""What a run reports, as small immutable records with one wire form each (docs/wire-format.md)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .drawing import Drawing, finite_or_none
from .wire import PROTOCOL_VERSION


@dataclass(frozen=True)
class Started:
    steps: int
    device: str
    model: str
    method: str

    def to_wire(self) -> dict[str, Any]:
        return {"event": "started", "protocol": PROTOCOL_VERSION, "steps": self.steps, "device": self.device,
                "model": self.model, "method": self.method}


@dataclass(frozen=True)
class WarningEvent:
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"event": "warning", "message": self.message}


@dataclass(frozen=True)
class Progress:
    step: int
    steps: int
    loss: float | None
    similarity: float | None
    eta_s: float
    elapsed_s: float

    def to_wire(self) -> dict[str, Any]:
        return {"event": "progress", "step": self.step, "steps": self.steps,
                "loss": None if self.loss is None else finite_or_none(self.loss),
                "similarity": None if self.similarity is None else finite_or_none(self.similarity),
                "eta_s": round(self.eta_s, 2), "elapsed_s": round(self.elapsed_s, 2)}


Picture = Union[Drawing, np.ndarray]  # strokes, or an RGB uint8 image for the pixel baseline


def picture_to_wire(picture: Picture) -> dict[str, Any]:
    if isinstance(picture, Drawing):
        return {"drawing": picture.to_dict()}
    return {"image": image_to_wire(picture)}


def image_to_wire(image: np.ndarray) -> dict[str, Any]:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return {"width": int(image.shape[1]), "height": int(image.shape[0]),
            "png_base64": base64.b64encode(buf.getvalue()).decode("ascii")}


@dataclass(frozen=True)
class Snapshot:
    step: int
    picture: Picture
    frame: int | None = None  # where it belongs on a timeline (keyed prompts: the morph between keys)

    def to_wire(self) -> dict[str, Any]:
        at = {} if self.frame is None else {"frame": self.frame}
        return {"event": "snapshot", "step": self.step, **at, **picture_to_wire(self.picture)}


@dataclass(frozen=True)
class Stage:
    """One finished part of a run made of several: a rung of a ladder, or a keyed prompt's drawing."""

    index: int  # 0-based
    stages: int
    step: int
    picture: Picture
    label: str  # for people: "32 strokes", "frame 48: a blue square"
    frame: int | None = None  # keyed prompts: the prompt's frame
    prompt: str | None = None

    def to_wire(self) -> dict[str, Any]:
        extra = {k: v for k, v in (("frame", self.frame), ("prompt", self.prompt)) if v is not None}
        return {"event": "stage", "index": self.index, "stages": self.stages, "step": self.step,
                "label": self.label, **extra, **picture_to_wire(self.picture)}


@dataclass(frozen=True)
class Done:
    step: int
    picture: Picture
    cancelled: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"event": "done", "step": self.step, "cancelled": self.cancelled, **picture_to_wire(self.picture)}


@dataclass(frozen=True)
class Error:
    kind: str
    message: str

    def to_wire(self) -> dict[str, Any]:
        return {"event": "error", "kind": self.kind, "message": self.message}


Event = Union[Started, WarningEvent, Progress, Snapshot, Stage, Done, Error]
