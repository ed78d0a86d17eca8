"""The differentiable rasterizer: geometry, compositing, gradients, fast path vs reference, diffvg parity."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from synth_core.drawing import Drawing, Stroke
from synth_core.initialise import random_strokes
from synth_core.rasterize import over_background, rasterize, render_drawing, render_supersampled
from synth_core.rasterize.geometry import (
    coverage, coverage_xy, distance_and_normal, distance_and_normal_xy, edge_area, point_segment_distance,
    segment_distance_xy,
)
from synth_core.strokes import StrokeTensors, Topology, from_drawing

# diffvg's own renders of a CLIPasso scene (a copy of ../shared/fixtures/diffvg: its README says how
# they were made; the two .npy renders are stored losslessly in renders.npz)
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diffvg"


def straight_stroke(x0, y0, x1, y1, half_width, rgba=(0, 0, 0, 1), dtype=torch.float64) -> StrokeTensors:
    p0, p1 = torch.tensor([x0, y0], dtype=dtype), torch.tensor([x1, y1], dtype=dtype)
    pts = torch.stack([p0 + (p1 - p0) * t for t in (0, 1 / 3, 2 / 3, 1)])
    return StrokeTensors(pts[None], torch.tensor([[half_width]], dtype=dtype),
                         torch.tensor([[rgba]], dtype=dtype), Topology.from_segments([1]))


def scene(n=6, size=32, half_width=2.0, seed=0, dtype=torch.float64, batch=1) -> StrokeTensors:
    g = torch.Generator().manual_seed(seed)
    st = random_strokes(n, size, size, walk=0.6, half_width=half_width, batch=batch, generator=g)
    return StrokeTensors(st.points.to(dtype), st.half_widths.to(dtype) * (1 + torch.rand(batch, n, generator=g).to(dtype)),
                         st.colors.to(dtype).clamp(0.1, 0.9), st.topology)


@pytest.mark.parametrize("half_width,length,angle", [(1.0, 40.0, 0.0), (3.0, 30.0, 0.7), (8.0, 50.0, 2.0), (0.4, 60.0, 1.1)])
def test_straight_stroke_covers_its_area(half_width, length, angle):
    c = 64.0
    dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
    st = straight_stroke(c - dx, c - dy, c + dx, c + dy, half_width)
    for backend in ("fast", "reference"):
        area = float(rasterize(st, 128, 128, backend)[0, 3].sum())
        expected = 2 * half_width * length + math.pi * half_width**2
        assert area == pytest.approx(expected, rel=0.05), backend


@pytest.mark.parametrize("angle", [0.0, 0.3, math.pi / 4, 1.2, 2.9])
def test_edge_profile_is_the_pixel_area_cut_off_by_a_straight_edge(angle):
    n = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float64)
    t = torch.linspace(-0.8, 0.8, 33, dtype=torch.float64)
    k = 400  # k x k sample points: the counted area is within ~2/k of the exact one
    s = (torch.arange(k, dtype=torch.float64) + 0.5) / k - 0.5
    proj = (s[:, None] * n[0] + s[None, :] * n[1]).reshape(-1)
    counted = (proj[None, :] <= t[:, None]).double().mean(1)
    assert (edge_area(t, n.expand(33, 2)) - counted).abs().max() < 0.005


def test_alpha_over_compositing_matches_formula():
    c1, c2 = (0.9, 0.1, 0.2, 0.6), (0.1, 0.3, 0.8, 0.7)
    a = straight_stroke(4, 16, 28, 16, 6.0, c1)
    b = straight_stroke(16, 4, 16, 28, 6.0, c2)
    both = StrokeTensors(torch.cat([a.points, b.points], 1), torch.cat([a.half_widths, b.half_widths], 1),
                         torch.cat([a.colors, b.colors], 1), Topology.from_segments([1, 1]))
    img = over_background(rasterize(both, 32, 32), (1.0, 1.0, 1.0, 1.0))[0, :, 16, 16]
    a1, a2 = c1[3], c2[3]
    for ch in range(3):
        expected = c2[ch] * a2 + (c1[ch] * a1 + 1.0 * (1 - a1)) * (1 - a2)
        assert float(img[ch]) == pytest.approx(expected, abs=1e-9)
    assert float(img[3]) == pytest.approx(1.0)
    layer = rasterize(both, 32, 32)[0, 3, 16, 16]
    assert float(layer) == pytest.approx(a1 + a2 - a1 * a2, abs=1e-9)


@pytest.mark.parametrize("backend", ["fast", "reference"])
def test_gradients_match_finite_differences(backend):
    st = scene(n=3, size=20, half_width=1.5, seed=3)
    weights = torch.rand(1, 4, 20, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def f(points, half_widths, colors):
        return (rasterize(StrokeTensors(points, half_widths, colors, st.topology), 20, 20, backend) * weights).sum()

    inputs = tuple(t.clone().requires_grad_() for t in (st.points, st.half_widths, st.colors))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_fully_opaque_stroke_keeps_its_alpha_gradient():
    st = straight_stroke(4, 10, 28, 10, 3.0, (0.2, 0.4, 0.6, 1.0))
    colors = st.colors.clone().requires_grad_()
    layer = rasterize(StrokeTensors(st.points, st.half_widths, colors, st.topology), 20, 32)
    over_background(layer, (1, 1, 1, 1))[:, :3].sum().backward()
    assert torch.isfinite(colors.grad).all()
    assert float(colors.grad[0, 0, 3]) < 0  # more opacity of a dark stroke darkens the white canvas


@pytest.mark.parametrize("half_width", [0.3, 1.0, 4.0, 15.0])
def test_fast_path_equals_reference(half_width):
    st = scene(n=12, size=48, half_width=half_width, seed=int(half_width * 10), batch=2)
    # kinks and a zero-length stroke: joins of every angle must be handled
    st.points[:, 5] += torch.tensor([9.0, -7.0], dtype=torch.float64)
    st.points[:, :4] = st.points[:, :1]
    for t in (st.points, st.half_widths, st.colors):
        t.requires_grad_()
    fast = rasterize(st, 40, 48, "fast")
    ref = rasterize(st, 40, 48, "reference")
    assert (fast - ref).abs().max() < 1e-4
    w = torch.rand_like(fast)
    g_fast = torch.autograd.grad((fast * w).sum(), (st.points, st.half_widths, st.colors))
    g_ref = torch.autograd.grad((ref * w).sum(), (st.points, st.half_widths, st.colors))
    # the zero-length stroke's pieces all tie: any split of its gradient among its 4 points is
    # a valid subgradient (amin splits evenly, the fast path picks one), so compare their sum
    assert torch.allclose(g_fast[0][:, :4].sum(1), g_ref[0][:, :4].sum(1), atol=1e-6, rtol=1e-5)
    assert torch.allclose(g_fast[0][:, 4:], g_ref[0][:, 4:], atol=1e-6, rtol=1e-5)
    for a, b in zip(g_fast[1:], g_ref[1:]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_batched_scenes_render_like_single_scenes():
    st = scene(n=8, size=32, batch=3, seed=5)
    batched = rasterize(st, 32, 32)
    for b in range(3):
        assert torch.allclose(batched[b : b + 1], rasterize(st.scenes([b]), 32, 32), atol=1e-12)
    assert not torch.allclose(batched[0], batched[1])


def test_fast_path_matches_supersampled_ground_truth():
    g = torch.Generator().manual_seed(0)
    st = random_strokes(64, 96, 96, generator=g)
    st.half_widths.uniform_(0.8, 4.0, generator=g)
    ours = over_background(rasterize(st, 96, 96), (1, 1, 1, 1))[0, :3]
    truth = over_background(render_supersampled(st, 96, 96, samples=16), (1, 1, 1, 1))[0, :3]
    assert float((ours - truth).abs().mean()) * 255 < 1.0


def test_strokes_off_canvas_and_empty_scenes():
    st = straight_stroke(-50, -50, -20, -30, 2.0)
    assert float(rasterize(st, 16, 16).abs().sum()) == 0.0
    empty = StrokeTensors(torch.zeros(1, 0, 2), torch.zeros(1, 0), torch.zeros(1, 0, 4), Topology.from_segments([]))
    assert rasterize(empty, 8, 8).shape == (1, 4, 8, 8)


def test_rejects_inconsistent_shapes():
    st = straight_stroke(0, 0, 5, 5, 1.0)
    with pytest.raises(ValueError, match="half_widths"):
        rasterize(StrokeTensors(st.points, torch.ones(1, 2), st.colors, st.topology), 8, 8)


def _fixture_scene() -> tuple[dict, StrokeTensors]:
    sc = json.loads((FIXTURES / "scene_clipasso_16.json").read_text())
    pts = np.concatenate([np.asarray(p["points"]) for p in sc["paths"]])
    st = StrokeTensors(
        torch.tensor(pts)[None], torch.tensor([p["width"] for p in sc["paths"]])[None],
        torch.tensor([p["rgba"] for p in sc["paths"]])[None],
        Topology.from_segments([(len(p["points"]) - 1) // 3 for p in sc["paths"]]),
    )
    return sc, st


@pytest.mark.parametrize("render", ["render_clipasso_16", "render_clipasso_16_ss16"])
def test_same_geometry_as_diffvg(render):
    sc, st = _fixture_scene()
    raw = np.load(FIXTURES / "renders.npz")[render]  # straight alpha over transparent black
    theirs = raw[..., :3] * raw[..., 3:4] + (1 - raw[..., 3:4])
    ours = over_background(rasterize(st, sc["height"], sc["width"]), sc["background"])[0, :3]
    ours = ours.permute(1, 2, 0).numpy()
    assert np.abs(ours - theirs).mean() * 255 <= 1.0


def test_render_drawing_png_pixels():
    d = Drawing.from_strokes(40, 20, [Stroke(np.array([[5, 10], [15, 10], [25, 10], [35, 10]]), 6.0, (1, 0, 0, 1))],
                             background=(1, 1, 1, 0))
    img = render_drawing(d, scale=2)
    assert img.shape == (40, 80, 4) and img.dtype == np.uint8
    assert tuple(img[20, 40]) == (255, 0, 0, 255)
    assert img[2, 2, 3] == 0  # transparent background stays transparent
    d2 = from_drawing(d)
    assert float(d2.half_widths[0, 0]) == 3.0  # Drawing widths are full thickness


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    st = scene(n=40, size=96, half_width=3.0, seed=11, dtype=torch.float32, batch=2)
    outs, grads = [], []
    for dev in ("cpu", "cuda"):
        s = StrokeTensors(*(t.to(dev).clone().requires_grad_() for t in (st.points, st.half_widths, st.colors)),
                          st.topology.to(dev))
        img = rasterize(s, 96, 96)
        w = torch.linspace(0, 1, img.numel(), device=dev).reshape(img.shape)
        grads.append([g.cpu() for g in torch.autograd.grad((img * w).sum(), (s.points, s.half_widths, s.colors))])
        outs.append(img.detach().cpu())
    assert (outs[0] - outs[1]).abs().max() < 1e-4
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-3, rtol=1e-3)


def test_distance_and_normal_against_their_definitions():
    """The geometry every backend shares (x and y apart; the vector forms stack them): the distance is
    the brute-force nearest distance to the segment, the normal is unit length and points from the
    nearest curve point to the pixel; on the centre line it is the segment's own normal, for a
    zero-length piece (0, 1); gradients agree with finite differences."""
    g = torch.Generator().manual_seed(3)
    p = torch.rand(200, 2, generator=g, dtype=torch.float64) * 20
    a = torch.rand(200, 2, generator=g, dtype=torch.float64) * 20
    b = a + torch.randn(200, 2, generator=g, dtype=torch.float64) * 6
    b[:20] = a[:20]  # zero-length pieces
    p[:10] = a[:10]  # ... with the pixel on them
    p[20:40] = a[20:40] + 0.3 * (b[20:40] - a[20:40])  # on the centre line
    d, n = distance_and_normal(p, a, b)
    samples = a[:, None] + torch.linspace(0, 1, 20001, dtype=torch.float64)[None, :, None] * (b - a)[:, None]
    assert torch.allclose(d, (samples - p[:, None]).norm(dim=-1).amin(1), atol=1e-3)
    assert torch.allclose(point_segment_distance(p, a, b), d, atol=1e-15)
    assert torch.allclose(n.norm(dim=-1), torch.ones(200, dtype=torch.float64), atol=1e-12)
    nearest = p - d[:, None] * n
    assert torch.allclose(point_segment_distance(nearest[40:], a[40:], b[40:]), torch.zeros(160, dtype=torch.float64),
                          atol=1e-5)
    assert torch.equal(n[:10], torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(10, 2))
    u = (b[20:40] - a[20:40]) / (b[20:40] - a[20:40]).norm(dim=-1, keepdim=True)
    assert torch.allclose(n[20:40], torch.stack([-u[:, 1], u[:, 0]], 1), atol=1e-12)
    # coverage of the x/y form equals the vector form (the fast path uses the first)
    h = torch.rand(200, generator=g, dtype=torch.float64) * 3
    assert torch.equal(coverage_xy(d, n[:, 0], n[:, 1], h), coverage(d, n, h))
    off = [t[40:60].clone().requires_grad_() for t in (p[:, 0], p[:, 1], a[:, 0], a[:, 1], b[:, 0], b[:, 1])]
    assert torch.autograd.gradcheck(lambda *xs: distance_and_normal_xy(*xs), off)
    assert torch.autograd.gradcheck(lambda *xs: segment_distance_xy(*xs), off)
