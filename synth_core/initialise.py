"""Where strokes start: CLIPDraw's random walk (saliency-guided CLIPasso init comes with its method)."""

from __future__ import annotations

import torch

from .strokes import StrokeTensors, Topology


def random_strokes(
    num_strokes: int,
    width: int,
    height: int,
    *,
    segments: tuple[int, int] = (1, 3),
    walk: float = 0.1,
    half_width: float = 1.0,
    random_color: bool = True,
    batch: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> StrokeTensors:
    """CLIPDraw's initialisation (algorithms.md section 1), ``batch`` independent scenes.

    Each stroke has ``randint(segments)`` cubic segments; its first point is uniform on the
    canvas and each next control point moves by ``walk * (U - 0.5)`` of the canvas (+-0.05 for
    the reference 0.1). Half-width 1.0 (diffvg convention, i.e. 2 px thick), RGBA uniform in [0, 1]
    (alpha too), or opaque black when ``random_color`` is False. The segment counts are drawn
    once and shared by the whole batch (one topology).
    """
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    lo, hi = segments
    seg = torch.randint(lo, hi + 1, (num_strokes,), generator=g)
    topo = Topology.from_segments(seg.numpy())
    starts = torch.rand(batch, num_strokes, 1, 2, generator=g, dtype=torch.float64)
    per_stroke = []
    for i, s in enumerate(seg.tolist()):
        steps = walk * (torch.rand(batch, 3 * s, 2, generator=g, dtype=torch.float64) - 0.5)
        per_stroke.append(torch.cat([starts[:, i], starts[:, i] + torch.cumsum(steps, 1)], 1))
    scale = torch.tensor([width, height], dtype=torch.float64)
    points = (torch.cat(per_stroke, 1) * scale).float() if per_stroke else torch.zeros(batch, 0, 2)
    if random_color:
        colors = torch.rand(batch, num_strokes, 4, generator=g)
    else:
        colors = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(batch, num_strokes, 4).clone()
    widths = torch.full((batch, num_strokes), float(half_width))
    return StrokeTensors(points.to(device), widths.to(device), colors.to(device), topo.to(device))
