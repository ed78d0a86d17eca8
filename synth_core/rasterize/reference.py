"""Reference rasterizer: dense, per stroke, in plain PyTorch. Slow but obviously right.

Every pixel is tested against every line piece of a stroke, and strokes are composited one
after another with the alpha-over formula. The fast backend is tested against this one.
``render_supersampled`` is an independent ground truth (hard inside/outside tests at s x s
sample points per pixel, on a much finer flattening) used to measure image error.
"""

from __future__ import annotations

import torch

from ..strokes import StrokeTensors
from .geometry import DEFAULT_TOLERANCE, coverage, distance_and_normal, flatten, point_segment_distance


def _pixel_centres(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([xs, ys], -1).reshape(-1, 2)  # [H*W, 2]


def rasterize_reference(strokes: StrokeTensors, height: int, width: int, tolerance: float = DEFAULT_TOLERANCE) -> torch.Tensor:
    """Premultiplied RGBA layer [B, 4, H, W] of the strokes over transparent black."""
    pts, topo = strokes.points, strokes.topology
    pix = _pixel_centres(height, width, pts.device, pts.dtype)
    out = []
    for b in range(strokes.batch):
        a, e, seg = flatten(pts[b][topo.seg_index], tolerance)
        piece_stroke = topo.seg_stroke[seg]
        rgb = torch.zeros(height * width, 3, dtype=pts.dtype, device=pts.device)
        alpha = torch.zeros(height * width, dtype=pts.dtype, device=pts.device)
        for i in range(topo.num_strokes):
            sel = piece_stroke == i
            d, n = distance_and_normal(pix[:, None, :], a[sel][None], e[sel][None])
            k = d.argmin(dim=1, keepdim=True)  # the nearest piece decides distance and edge direction
            d, n = d.gather(1, k)[:, 0], n.gather(1, k[..., None].expand(-1, -1, 2))[:, 0]
            cov = coverage(d, n, strokes.half_widths[b, i])
            al = cov * strokes.colors[b, i, 3]
            rgb = rgb * (1 - al)[:, None] + strokes.colors[b, i, :3] * al[:, None]
            alpha = alpha * (1 - al) + al
        out.append(torch.cat([rgb, alpha[:, None]], 1).T.reshape(4, height, width))
    return torch.stack(out)


@torch.no_grad()
def render_supersampled(
    strokes: StrokeTensors, height: int, width: int, samples: int = 16, tolerance: float = 0.01,
    chunk: int = 1 << 22,
) -> torch.Tensor:
    """Ground truth: box-filtered coverage from ``samples``^2 hard point samples per pixel.

    Uses a 20x finer flattening than the default and only the samples inside each stroke's
    bounding box. Returns a premultiplied RGBA layer [B, 4, H, W] (no gradient).
    """
    pts, topo = strokes.points.double(), strokes.topology
    offs = (torch.arange(samples, dtype=torch.float64, device=pts.device) + 0.5) / samples
    out = []
    for b in range(strokes.batch):
        a, e, seg = flatten(pts[b][topo.seg_index], tolerance)
        piece_stroke = topo.seg_stroke[seg]
        rgb = torch.zeros(height, width, 3, dtype=torch.float64, device=pts.device)
        alpha = torch.zeros(height, width, dtype=torch.float64, device=pts.device)
        for i in range(topo.num_strokes):
            sel = piece_stroke == i
            pa, pe = a[sel], e[sel]
            h = float(strokes.half_widths[b, i])
            lo = torch.minimum(pa.amin(0), pe.amin(0)) - h - 1
            hi = torch.maximum(pa.amax(0), pe.amax(0)) + h + 1
            x0, y0 = max(0, int(lo[0])), max(0, int(lo[1]))
            x1, y1 = min(width, int(hi[0]) + 1), min(height, int(hi[1]) + 1)
            if x1 <= x0 or y1 <= y0:
                continue
            xs = (torch.arange(x0, x1, dtype=torch.float64, device=pts.device)[:, None] + offs).reshape(-1)
            ys = (torch.arange(y0, y1, dtype=torch.float64, device=pts.device)[:, None] + offs).reshape(-1)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            sp = torch.stack([gx, gy], -1).reshape(-1, 2)
            step = max(1, chunk // max(1, len(pa)))
            inside = torch.cat([
                (point_segment_distance(sp[j : j + step, None], pa[None], pe[None]).amin(1) <= h)
                for j in range(0, len(sp), step)
            ]).to(torch.float64)
            cov = inside.reshape(y1 - y0, samples, x1 - x0, samples).mean(dim=(1, 3))
            al = cov * float(strokes.colors[b, i, 3])
            c = strokes.colors[b, i, :3].double()
            rgb[y0:y1, x0:x1] = rgb[y0:y1, x0:x1] * (1 - al)[..., None] + c * al[..., None]
            alpha[y0:y1, x0:x1] = alpha[y0:y1, x0:x1] * (1 - al) + al
        out.append(torch.cat([rgb, alpha[..., None]], -1).permute(2, 0, 1))
    return torch.stack(out).to(strokes.points.dtype)
