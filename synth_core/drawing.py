"""The Drawing: the only data that crosses from the engine to its users (CLI, worker, Blender).

Plain numpy, no torch, so that the Blender add-on can read and write it without the engine.
Conventions (see docs/wire-format.md):
- canvas pixels, origin top-left, y down;
- each stroke is an open cubic Bezier path of S >= 1 segments: 3*S + 1 control points;
- ``width`` is the full stroke thickness in pixels, as SVG ``stroke-width`` (diffvg's
  ``stroke_width`` is half of it);
- ``rgba`` is straight (not premultiplied) colour in [0, 1], strokes are layered in order.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

FORMAT = "drawing"
VERSION = 1


class DrawingFormatError(ValueError):
    """A drawing file or dict that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Stroke:
    """One open cubic Bezier path; a view used for convenience, the Drawing stores arrays."""

    points: np.ndarray  # (3*S+1, 2) float64, canvas pixels, y down
    width: float  # full thickness in px
    rgba: tuple[float, float, float, float]

    @property
    def num_segments(self) -> int:
        return (len(self.points) - 1) // 3


@dataclass(frozen=True)
class Drawing:
    """A canvas and its strokes as packed arrays (cheap to stream, slice and build from).

    ``points`` concatenates every stroke's control points; ``segments[i]`` is the number of
    cubic segments of stroke i, so stroke i owns ``3*segments[i] + 1`` consecutive rows.
    """

    width: int
    height: int
    points: np.ndarray  # (P, 2) float64
    segments: np.ndarray  # (N,) int64, >= 1
    widths: np.ndarray  # (N,) float64, full thickness in px
    rgba: np.ndarray  # (N, 4) float64 in [0, 1]
    background: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", np.asarray(self.points, dtype=np.float64).reshape(-1, 2))
        object.__setattr__(self, "segments", np.asarray(self.segments, dtype=np.int64).reshape(-1))
        object.__setattr__(self, "widths", np.asarray(self.widths, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "rgba", np.asarray(self.rgba, dtype=np.float64).reshape(-1, 4))
        object.__setattr__(self, "background", tuple(float(c) for c in self.background))
        self.validate()

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_strokes(
        cls,
        width: int,
        height: int,
        strokes: Sequence[Stroke],
        background: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        meta: dict[str, Any] | None = None,
    ) -> "Drawing":
        pts = [np.asarray(s.points, dtype=np.float64).reshape(-1, 2) for s in strokes]
        return cls(
            width=int(width),
            height=int(height),
            points=np.concatenate(pts) if pts else np.zeros((0, 2)),
            segments=np.array([(len(p) - 1) // 3 for p in pts], dtype=np.int64),
            widths=np.array([s.width for s in strokes], dtype=np.float64),
            rgba=np.array([s.rgba for s in strokes], dtype=np.float64).reshape(-1, 4),
            background=tuple(background),
            meta=dict(meta or {}),
        )

    def validate(self) -> None:
        """Raise DrawingFormatError naming the first inconsistency."""
        if self.width < 1 or self.height < 1:
            raise DrawingFormatError(f"canvas must be at least 1x1 px, got {self.width}x{self.height}")
        n = len(self.segments)
        if np.any(self.segments < 1):
            raise DrawingFormatError("every stroke needs at least one cubic segment")
        expected = int(np.sum(3 * self.segments + 1))
        if len(self.points) != expected:
            raise DrawingFormatError(
                f"strokes with {int(self.segments.sum())} segments need {expected} points, got {len(self.points)}"
            )
        if len(self.widths) != n or len(self.rgba) != n:
            raise DrawingFormatError(
                f"{n} strokes but {len(self.widths)} widths and {len(self.rgba)} colours"
            )
        if len(self.background) != 4:
            raise DrawingFormatError("background must be RGBA")
        for name, arr in (("points", self.points), ("widths", self.widths), ("rgba", self.rgba)):
            if not np.all(np.isfinite(arr)):
                raise DrawingFormatError(f"{name} contain NaN or infinity")

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.segments)

    @property
    def offsets(self) -> np.ndarray:
        """Row of each stroke's first control point in ``points`` (N+1 entries)."""
        return np.concatenate([[0], np.cumsum(3 * self.segments + 1)])

    def stroke(self, i: int) -> Stroke:
        o = self.offsets
        return Stroke(self.points[o[i] : o[i + 1]], float(self.widths[i]), tuple(self.rgba[i]))

    def strokes(self) -> Iterator[Stroke]:
        for i in range(len(self)):
            yield self.stroke(i)

    def with_meta(self, **meta: Any) -> "Drawing":
        return Drawing(
            self.width, self.height, self.points, self.segments, self.widths, self.rgba,
            self.background, {**self.meta, **meta},
        )

    def scaled(self, factor: float) -> "Drawing":
        """The same picture on a canvas ``factor`` times larger (points and widths scale)."""
        return Drawing(
            max(1, round(self.width * factor)), max(1, round(self.height * factor)),
            self.points * factor, self.segments, self.widths * factor, self.rgba,
            self.background, dict(self.meta),
        )

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self, precision: int = 3) -> dict[str, Any]:
        """The wire format; ``precision`` decimals keep files small (1e-3 px is invisible)."""
        def r(x: np.ndarray) -> list:
            return np.round(x, precision).tolist()

        o = self.offsets
        strokes = [
            {"points": r(self.points[o[i] : o[i + 1]]), "width": round(float(self.widths[i]), precision),
             "rgba": r(self.rgba[i])}
            for i in range(len(self))
        ]
        d: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "canvas": {"width": self.width, "height": self.height, "background": list(self.background)},
            "strokes": strokes,
        }
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Drawing":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DrawingFormatError('not a drawing: expected {"format": "drawing", ...}')
        version = d.get("version")
        if version != VERSION:
            raise DrawingFormatError(f"drawing version {version!r} is not supported (this build reads {VERSION})")
        try:
            canvas = d["canvas"]
            strokes = [
                Stroke(np.asarray(s["points"], dtype=np.float64), float(s["width"]), tuple(s["rgba"]))
                for s in d["strokes"]
            ]
            for i, s in enumerate(strokes):
                if s.points.ndim != 2 or s.points.shape[1] != 2 or (len(s.points) - 1) % 3 or len(s.points) < 4:
                    raise DrawingFormatError(f"stroke {i}: points must be 3*S+1 pairs (S >= 1)")
                if len(s.rgba) != 4:
                    raise DrawingFormatError(f"stroke {i}: rgba must have 4 values")
            return cls.from_strokes(
                int(canvas["width"]), int(canvas["height"]), strokes,
                background=canvas.get("background", (1, 1, 1, 1)), meta=d.get("meta") or {},
            )
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, DrawingFormatError):
                raise
            raise DrawingFormatError(f"malformed drawing: {e!r}") from None

    def to_json(self, precision: int = 3) -> str:
        return json.dumps(self.to_dict(precision), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Drawing":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise DrawingFormatError(f"not valid JSON: {e}") from None

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Drawing":
        path = Path(path)
        if path.suffix.lower() == ".svg":
            from .svg import read_svg

            return read_svg(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DrawingFormatError(f"cannot read {path}: {e.strerror or e}") from None
        except DrawingFormatError as e:
            raise DrawingFormatError(f"{path}: {e}") from None


def cubic_points(ctrl: np.ndarray, samples: int) -> np.ndarray:
    """Sample every cubic segment of one stroke at ``samples`` values of t in [0, 1].

    Returns ((S*(samples-1))+1, 2): shared segment ends appear once. Used by builders that
    need polylines (Grease Pencil v2) and by previews; the rasterizer has its own flattening.
    """
    ctrl = np.asarray(ctrl, dtype=np.float64)
    s = (len(ctrl) - 1) // 3
    t = np.linspace(0.0, 1.0, samples)
    basis = np.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3], axis=1)
    segs = np.stack([ctrl[3 * k : 3 * k + 4] for k in range(s)])  # (S, 4, 2)
    pts = np.einsum("tj,sjd->std", basis, segs)  # (S, samples, 2)
    return np.concatenate([pts[0]] + [p[1:] for p in pts[1:]]) if s > 1 else pts[0]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file beside ``path`` and rename it, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: report non-finite numbers as null."""
    return float(x) if math.isfinite(x) else None
