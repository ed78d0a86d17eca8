"""Continuing a drawing: the strokes a run starts from, the ones it must not touch, the ones it adds.

A request may name a drawing to continue (``init``), strokes of it that stay as they are
(``lock``) and a number of new strokes drawn after it (``add``). Every method takes part the same
way: its strokes start as the drawing's strokes followed by the new ones (initialised as the
method always does), locked strokes are rendered and seen by the encoder like any other, and
after every optimiser step their values are written back. The drawings a run reports carry the
file's own values for the locked strokes (float64, bit for bit), not the float32 copies the
optimiser held, so "locked" means identical in the output file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .drawing import Drawing, DrawingFormatError
from .errors import BadRequest
from .request import MAX_STROKES, JobRequest
from .strokes import StrokeTensors, from_drawing


def load_drawing(req: JobRequest) -> Drawing:
    """The drawing to continue, read and checked against the request (canvas, locks, stroke limit)."""
    from . import formats

    try:
        drawing = formats.load(req.init)
    except DrawingFormatError as e:
        raise BadRequest(f"cannot continue from {req.init}: {e}") from None
    if (drawing.width, drawing.height) != tuple(req.canvas):
        raise BadRequest(f"the drawing to continue is {drawing.width}x{drawing.height} px but the canvas is "
                         f"{req.canvas[0]}x{req.canvas[1]}: give canvas {drawing.width}x{drawing.height}")
    n = len(drawing)
    if req.lock and max(req.lock) >= n:
        raise BadRequest(f"lock names stroke {max(req.lock)} but the drawing has {n} strokes (0 to {n - 1})")
    if n + req.add > MAX_STROKES:
        raise BadRequest(f"the drawing has {n} strokes; adding {req.add} makes more than {MAX_STROKES}")
    if n + req.add == 0:
        raise BadRequest("the drawing to continue has no strokes: add some (add > 0)")
    return drawing


@dataclass(frozen=True)
class Locks:
    """Which of a run's strokes came from the continued drawing, and which of those are locked."""

    origin: Drawing  # the drawing continued from: the truth for locked strokes
    source: np.ndarray  # [N] int, each stroke's index in ``origin``, -1 for a new stroke
    locked: np.ndarray  # [N] bool

    @classmethod
    def start(cls, origin: Drawing, lock: Sequence[int], added: int) -> "Locks":
        """The drawing's strokes in order, then ``added`` new ones; ``lock`` indexes the drawing."""
        n = len(origin)
        source = np.concatenate([np.arange(n), np.full(added, -1)]).astype(np.int64)
        locked = np.zeros(n + added, dtype=bool)
        locked[list(lock)] = True
        return cls(origin, source, locked)

    @property
    def count(self) -> int:
        return int(self.locked.sum())

    def keep(self, kept: np.ndarray | torch.Tensor) -> "Locks":
        """The same locks after removing strokes (``kept`` [N] bool, in order)."""
        kept = np.asarray(kept.cpu() if isinstance(kept, torch.Tensor) else kept, dtype=bool)
        if np.any(self.locked & ~kept):
            raise ValueError("a locked stroke cannot be removed")
        return Locks(self.origin, self.source[kept], self.locked[kept])

    def locked_mask(self) -> torch.Tensor:
        return torch.as_tensor(self.locked)

    def hold(self, strokes: StrokeTensors) -> "Held":
        """The locked strokes' current values, to write back after each optimiser step."""
        return Held.of(strokes, self.locked)

    def splice(self, drawing: Drawing) -> Drawing:
        """``drawing`` with the locked strokes' values replaced by the original file's, exactly."""
        if not self.locked.any():
            return drawing
        if len(drawing) != len(self.locked):
            raise ValueError(f"{len(drawing)} strokes but locks for {len(self.locked)}")
        points, widths, rgba = drawing.points.copy(), drawing.widths.copy(), drawing.rgba.copy()
        mine, theirs = drawing.offsets, self.origin.offsets
        for i in np.flatnonzero(self.locked):
            j = int(self.source[i])
            points[mine[i]:mine[i + 1]] = self.origin.points[theirs[j]:theirs[j + 1]]
            widths[i], rgba[i] = self.origin.widths[j], self.origin.rgba[j]
        return Drawing(drawing.width, drawing.height, points, drawing.segments, widths, rgba,
                       drawing.background, drawing.meta)


@dataclass(frozen=True)
class Held:
    """Saved values of locked strokes in StrokeTensors (every scene of the batch)."""

    rows: torch.Tensor  # control-point rows of the locked strokes
    strokes: torch.Tensor  # locked stroke indices
    points: torch.Tensor
    half_widths: torch.Tensor
    colors: torch.Tensor

    @classmethod
    @torch.no_grad()
    def of(cls, s: StrokeTensors, locked: np.ndarray) -> "Held":
        seg = s.topology.segments.cpu()
        point_stroke = torch.repeat_interleave(torch.arange(len(seg)), 3 * seg + 1)
        mask = torch.as_tensor(locked, dtype=torch.bool)
        rows = torch.nonzero(mask[point_stroke]).flatten().to(s.points.device)
        idx = torch.nonzero(mask).flatten().to(s.points.device)
        return cls(rows, idx, s.points[:, rows].clone(), s.half_widths[:, idx].clone(), s.colors[:, idx].clone())

    @torch.no_grad()
    def restore(self, s: StrokeTensors) -> None:
        """Write the saved values back (after an optimiser step moved them)."""
        if self.strokes.numel() == 0:
            return
        s.points[:, self.rows] = self.points
        s.half_widths[:, self.strokes] = self.half_widths
        s.colors[:, self.strokes] = self.colors


def prefix(drawing: Drawing, batch: int, device: torch.device | str) -> StrokeTensors:
    """The continued drawing's strokes as ``batch`` identical scenes."""
    s = from_drawing(drawing, device)
    return StrokeTensors(s.points.expand(batch, -1, -1).clone(), s.half_widths.expand(batch, -1).clone(),
                         s.colors.expand(batch, -1, -1).clone(), s.topology)
