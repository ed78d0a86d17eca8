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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .files import MB, FileRefused, atomic_write_bytes, atomic_write_text, read_regular

__all__ = ["Drawing", "DrawingFormatError", "Stroke", "cubic_points", "atomic_write_bytes",
           "atomic_write_text", "finite_or_none"]

FORMAT = "drawing"
VERSION = 1
MAX_FILE_BYTES = 64 * MB  # a 10 000-stroke drawing is a few MB; anything far bigger is not a drawing
MAX_SIDE = 65536  # canvas pixels per side
MAX_COORD = 1e6  # |x|, |y| and widths of drawings read from files: beyond this the rasterizer breaks down


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
        bg = np.asarray(self.background)
        arrays = (("points", self.points), ("widths", self.widths), ("rgba", self.rgba), ("background", bg))
        for name, arr in arrays:
            if not np.all(np.isfinite(arr)):
                raise DrawingFormatError(f"{name} contain NaN or infinity")
        if np.any(self.widths <= 0):
            i = int(np.argmax(self.widths <= 0))
            raise DrawingFormatError(f"stroke {i}: width must be above 0, got {self.widths[i]:g}")
        for name, arr in (("rgba", self.rgba), ("background", bg)):
            outside = arr[(arr < 0) | (arr > 1)]
            if outside.size:
                raise DrawingFormatError(f"{name} values must be in [0, 1] (straight colour), "
                                         f"got {outside[0]:g}")

    def check_extent(self) -> "Drawing":
        """Refuse coordinates and widths no real drawing has (files only: the engine is not limited).

        Far-off points make the rasterizer fail or crawl, and canvases beyond ``MAX_SIDE`` cannot
        be rendered; a file with either is damaged or not meant for us.
        """
        if self.width > MAX_SIDE or self.height > MAX_SIDE:
            raise DrawingFormatError(f"canvas {self.width}x{self.height} is over {MAX_SIDE} px a side")
        for name, arr in (("points", self.points), ("widths", self.widths)):
            reach = float(np.abs(arr).max()) if arr.size else 0.0
            if reach > MAX_COORD:
                raise DrawingFormatError(f"{name} reach {reach:.3g} px: over {MAX_COORD:.0e}")
        return self

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
        """A Drawing from its wire dict; DrawingFormatError names the first thing that is wrong.

        Strict on purpose: the add-on and ``render`` read files people edit by hand, and a
        string where a number belongs or a colour of 255 must be reported, not half-drawn.
        """
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise DrawingFormatError('not a drawing: expected {"format": "drawing", ...}')
        version = d.get("version")
        if _integer(version) != VERSION:
            raise DrawingFormatError(f"drawing version {version!r} is not supported (this build reads {VERSION})")
        canvas = d.get("canvas")
        if not isinstance(canvas, dict):
            raise DrawingFormatError('malformed drawing: "canvas" must be {"width": ..., "height": ...}')
        width, height = (_side(canvas.get(k), k) for k in ("width", "height"))
        background = _numbers(canvas.get("background", [1, 1, 1, 1]), 4, "canvas background")
        strokes = d.get("strokes")
        if not isinstance(strokes, list):
            raise DrawingFormatError('malformed drawing: "strokes" must be a list')
        meta = d.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise DrawingFormatError(f'malformed drawing: "meta" must be an object, '
                                     f'got {type(meta).__name__}')
        return cls.from_strokes(
            width, height, [_stroke(s, i) for i, s in enumerate(strokes)], background=background, meta=meta,
        ).check_extent()

    def to_json(self, precision: int = 3) -> str:
        return json.dumps(self.to_dict(precision), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "Drawing":
        """From JSON text, or bytes in UTF-8 (with or without BOM), UTF-16 or UTF-32."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DrawingFormatError(f"not valid JSON: {e}") from None
        except UnicodeDecodeError:
            raise DrawingFormatError("not a JSON text file: its bytes are not UTF-8 (nor UTF-16/32)") \
                from None
        except RecursionError:
            raise DrawingFormatError("not a drawing: JSON nested too deeply") from None
        except ValueError as e:  # e.g. integers over Python's 4300-digit conversion limit
            raise DrawingFormatError(f"not valid JSON: {str(e).splitlines()[0][:120]}") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Drawing":
        """A Drawing JSON file (``synth_core.formats.load`` reads SVG too)."""
        path = Path(path)
        try:
            return cls.from_json(read_regular(path, MAX_FILE_BYTES, "drawing"))
        except FileRefused as e:
            raise DrawingFormatError(str(e)) from None
        except DrawingFormatError as e:
            raise DrawingFormatError(f"{path}: {e}") from None


def _integer(v: Any) -> int | None:
    """An int, or a float that is one (JSON writers differ); None for anything else, bools included."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return None


def _side(v: Any, name: str) -> int:
    n = _integer(v)
    if n is None:
        raise DrawingFormatError(f"canvas {name} must be a whole number of pixels, got {_show(v)}")
    if n < 1:
        raise DrawingFormatError(f"canvas must be at least 1x1 px, got {name} {n}")
    if n > MAX_SIDE:
        raise DrawingFormatError(f"canvas {name} {_show(n)} is over {MAX_SIDE} px")
    return n


def _show(v: Any) -> str:
    """A value for an error message, short even when the file holds something huge."""
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers(v: Any, n: int, what: str) -> tuple[float, ...]:
    if not (isinstance(v, list) and len(v) == n and all(_is_number(x) for x in v)):
        raise DrawingFormatError(f"{what} must be {n} numbers, got {_show(v)}")
    try:
        return tuple(float(x) for x in v)
    except OverflowError:  # an integer too large for a float
        raise DrawingFormatError(f"{what} has a number out of range: {_show(v)}") from None


def _stroke(s: Any, i: int) -> Stroke:
    """One wire stroke, types checked (the numeric ranges are checked by ``Drawing.validate``)."""
    if not isinstance(s, dict):
        raise DrawingFormatError(f"stroke {i} must be an object with points, width and rgba")
    points = s.get("points")
    if not (isinstance(points, list) and len(points) >= 4 and (len(points) - 1) % 3 == 0):
        raise DrawingFormatError(f"stroke {i}: points must be 3*S+1 pairs (S >= 1)")
    pts = [_numbers(p, 2, f"stroke {i}: each point") for p in points]
    width = s.get("width")
    if not _is_number(width):
        raise DrawingFormatError(f"stroke {i}: width must be a number, got {_show(width)}")
    try:
        w = float(width)
    except OverflowError:
        raise DrawingFormatError(f"stroke {i}: width is out of range") from None
    return Stroke(np.array(pts, dtype=np.float64), w, _numbers(s.get("rgba"), 4, f"stroke {i}: rgba"))


def finite_or_none(x: float) -> float | None:
    """JSON has no NaN: report non-finite numbers as null."""
    return float(x) if math.isfinite(x) else None
