"""Optional diffvg backend (https://github.com/BachiLi/diffvg), used only when ``import pydiffvg`` works.

UNTESTED HERE: diffvg is not on PyPI and cannot be built on the project's machines. It is kept
small so that people who have diffvg can compare against the reference renderer; it is the only
module that touches diffvg's global state. diffvg's ``stroke_width`` is the half-width, the same
convention as ``StrokeTensors.half_widths``.
"""

from __future__ import annotations

import torch

from ..strokes import StrokeTensors


def has_diffvg() -> bool:
    try:
        import pydiffvg  # noqa: F401
    except Exception:
        return False
    return True


def rasterize_diffvg(strokes: StrokeTensors, height: int, width: int, samples: int = 2, seed: int = 0) -> torch.Tensor:
    """Premultiplied RGBA layer [B, 4, H, W] rendered by diffvg (2x2 jittered samples by default)."""
    import pydiffvg

    pydiffvg.set_use_gpu(strokes.points.is_cuda)
    topo = strokes.topology
    segs = topo.segments.cpu().tolist()
    out = []
    for b in range(strokes.batch):
        shapes, groups, start = [], [], 0
        for i, s in enumerate(segs):
            n = 3 * s + 1
            shapes.append(pydiffvg.Path(
                num_control_points=torch.full((s,), 2, dtype=torch.int32),
                points=strokes.points[b, start : start + n], is_closed=False,
                stroke_width=strokes.half_widths[b, i],
            ))
            groups.append(pydiffvg.ShapeGroup(
                shape_ids=torch.tensor([i]), fill_color=None, stroke_color=strokes.colors[b, i],
            ))
            start += n
        args = pydiffvg.RenderFunction.serialize_scene(width, height, shapes, groups)
        img = pydiffvg.RenderFunction.apply(width, height, samples, samples, seed, None, *args)  # [H, W, 4]
        rgb, a = img[..., :3], img[..., 3:4]
        out.append(torch.cat([rgb * a, a], -1).permute(2, 0, 1))
    return torch.stack(out)
