"""Drawing files by format: ``.json`` (the engine's own, docs/wire-format.md) or ``.svg`` (interchange).

The one place that dispatches on the file name, so that ``drawing`` (the data) and ``svg`` (a
format built on it) do not import each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from .drawing import Drawing
from .svg import read_svg, write_svg

SUFFIXES = (".json", ".svg")


def load(path: str | os.PathLike) -> Drawing:
    """The Drawing in a ``.svg`` file, else in a Drawing JSON file."""
    path = Path(path)
    return read_svg(path) if path.suffix.lower() == ".svg" else Drawing.load(path)


def save(drawing: Drawing, path: str | os.PathLike) -> Path:
    """Write ``drawing`` as SVG for a ``.svg`` name, else as Drawing JSON (atomically)."""
    path = Path(path)
    return write_svg(drawing, path) if path.suffix.lower() == ".svg" else drawing.save(path)
