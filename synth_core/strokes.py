"""Strokes as tensors: what the optimiser updates and the rasterizer draws.

A batch of B scenes shares one ``Topology`` (how many cubic segments each stroke has), so the
seeds of a best-of-N run can go through the rasterizer and the encoder as one batch.
Widths here are diffvg HALF-widths (what CLIPDraw/CLIPasso's numbers mean); the Drawing stores
full SVG thickness, and the conversion happens only in ``from_drawing`` / ``to_drawing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .drawing import Drawing


@dataclass(frozen=True)
class Topology:
    """Fixed structure of a set of strokes: which control points form which segment."""

    segments: torch.Tensor  # [N] long, cubic segments per stroke (>= 1)
    seg_index: torch.Tensor  # [M, 4] long, rows of the point tensor for each segment
    seg_stroke: torch.Tensor  # [M] long, stroke of each segment
    num_points: int  # P = sum(3 * segments + 1)

    @classmethod
    def from_segments(cls, segments: Sequence[int] | np.ndarray, device: torch.device | str = "cpu") -> "Topology":
        seg = torch.as_tensor(np.asarray(segments, dtype=np.int64), device="cpu")
        if seg.numel() and int(seg.min()) < 1:
            raise ValueError("every stroke needs at least one segment")
        first_point = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), 3 * seg + 1]), 0)[:-1]
        seg_stroke = torch.repeat_interleave(torch.arange(len(seg)), seg)
        seg_in_stroke = torch.arange(len(seg_stroke)) - torch.repeat_interleave(
            torch.cumsum(seg, 0) - seg, seg
        )
        start = first_point[seg_stroke] + 3 * seg_in_stroke
        seg_index = start[:, None] + torch.arange(4)[None, :]
        return cls(
            segments=seg.to(device),
            seg_index=seg_index.to(device),
            seg_stroke=seg_stroke.to(device),
            num_points=int((3 * seg + 1).sum()),
        )

    @property
    def num_strokes(self) -> int:
        return int(self.segments.numel())

    def to(self, device: torch.device | str) -> "Topology":
        return Topology(self.segments.to(device), self.seg_index.to(device), self.seg_stroke.to(device), self.num_points)


@dataclass
class StrokeTensors:
    """Control points, half-widths and colours of B scenes with a shared topology."""

    points: torch.Tensor  # [B, P, 2] canvas pixels, y down
    half_widths: torch.Tensor  # [B, N] diffvg convention (full thickness = 2x)
    colors: torch.Tensor  # [B, N, 4] straight RGBA in [0, 1]
    topology: Topology

    @property
    def batch(self) -> int:
        return int(self.points.shape[0])

    def detach(self) -> "StrokeTensors":
        return StrokeTensors(self.points.detach(), self.half_widths.detach(), self.colors.detach(), self.topology)

    def scenes(self, idx: list[int]) -> "StrokeTensors":
        """The scenes ``idx`` of the batch (differentiable: gradients reach the whole batch)."""
        return StrokeTensors(self.points[idx], self.half_widths[idx], self.colors[idx], self.topology)

    def keep(self, kept: torch.Tensor) -> "StrokeTensors":
        """Only the strokes where ``kept`` [N] (bool) is true, in their order, with their own topology."""
        kept = kept.to(torch.bool).cpu()
        seg = self.topology.segments.cpu()
        point_stroke = torch.repeat_interleave(torch.arange(len(seg)), 3 * seg + 1)
        rows = torch.nonzero(kept[point_stroke]).flatten().to(self.points.device)
        idx = torch.nonzero(kept).flatten().to(self.points.device)
        topo = Topology.from_segments(seg[kept].numpy(), self.points.device)
        return StrokeTensors(self.points.index_select(1, rows), self.half_widths.index_select(1, idx),
                             self.colors.index_select(1, idx), topo)

    def merged(self, kept: torch.Tensor, other: "StrokeTensors") -> "StrokeTensors":
        """These strokes with the ``kept`` ones [N] (bool) replaced by ``other``'s in order (same segment
        counts) and the others hidden (alpha 0) where they are: a tidied drawing at the count and
        order it started with, so that a drawing keyed on the timeline keeps the same strokes."""
        kept = kept.to(torch.bool).cpu()
        seg = self.topology.segments.cpu()
        if not torch.equal(seg[kept], other.topology.segments.cpu()):
            raise ValueError("the strokes put back do not have the kept strokes' segments")
        point_stroke = torch.repeat_interleave(torch.arange(len(seg)), 3 * seg + 1)
        rows = torch.nonzero(kept[point_stroke]).flatten().to(self.points.device)
        idx = torch.nonzero(kept).flatten().to(self.points.device)
        colors = self.colors.detach().clone()
        colors[:, ~kept.to(colors.device), 3] = 0.0
        return StrokeTensors(self.points.detach().index_copy(1, rows, other.points.detach()),
                             self.half_widths.detach().index_copy(1, idx, other.half_widths.detach()),
                             colors.index_copy(1, idx, other.colors.detach()), self.topology)

    def then(self, other: "StrokeTensors") -> "StrokeTensors":
        """These strokes followed by ``other``'s (same batch size), drawn on top of them."""
        seg = torch.cat([self.topology.segments.cpu(), other.topology.segments.cpu()])
        return StrokeTensors(torch.cat([self.points, other.points], 1), torch.cat([self.half_widths, other.half_widths], 1),
                             torch.cat([self.colors, other.colors], 1),
                             Topology.from_segments(seg.numpy(), self.points.device))

    def without_each(self, strokes: Sequence[int]) -> "StrokeTensors":
        """Scene 0 once as it is, then once per stroke in ``strokes`` with that stroke hidden (alpha 0).

        What the tidy pass measures: the same scene with one stroke fewer, batched.
        """
        n = len(strokes) + 1
        colors = self.colors[:1].detach().expand(n, -1, -1).clone()
        colors[torch.arange(1, n), torch.as_tensor(list(strokes), dtype=torch.long), 3] = 0.0
        return StrokeTensors(self.points[:1].detach().repeat(n, 1, 1), self.half_widths[:1].detach().repeat(n, 1),
                             colors, self.topology)


def from_drawing(drawing: Drawing, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> StrokeTensors:
    """One-scene StrokeTensors of a Drawing (widths halved to the diffvg convention)."""
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    return StrokeTensors(
        points=t(drawing.points)[None],
        half_widths=t(drawing.widths / 2.0)[None],
        colors=t(drawing.rgba)[None],
        topology=Topology.from_segments(drawing.segments, device),
    )


def to_drawing(
    strokes: StrokeTensors,
    width: int,
    height: int,
    background: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
    b: int = 0,
    meta: dict | None = None,
) -> Drawing:
    """Scene ``b`` as a Drawing (full widths, colours clamped to [0, 1])."""
    seg = strokes.topology.segments.detach().cpu().numpy()
    return Drawing(
        width=width,
        height=height,
        points=strokes.points[b].detach().cpu().double().numpy(),
        segments=seg,
        widths=2.0 * strokes.half_widths[b].detach().cpu().double().numpy(),
        rgba=strokes.colors[b].detach().cpu().double().clamp(0, 1).numpy(),
        background=tuple(background),
        meta=dict(meta or {}),
    )
