"""CLIPasso's initialisation pieces: XDoG edges, Otsu, start-point sampling, attention maps."""

from __future__ import annotations

import pytest
import torch

from synth_core.saliency import attention_saliency, otsu_threshold, sample_starts, xdog_edges


def square_image(size=224, lo=60, hi=164):
    img = torch.ones(1, 3, size, size)
    img[..., lo:hi, lo:hi] = 0.1
    return img


def test_xdog_marks_the_edges_of_a_square():
    edges = xdog_edges(square_image())[0, 0]
    assert edges[112, 112] == 0 and edges[10, 10] == 0  # flat areas, dark or light
    band = torch.zeros_like(edges, dtype=torch.bool)
    band[52:172, 52:172] = True
    band[72:152, 72:152] = False
    assert edges[60:164, 60:64].mean() > 0.9  # just inside the dark side of the left edge
    assert edges[~band].sum() == 0


@pytest.mark.parametrize("seed", range(5))
def test_otsu_splits_two_clusters(seed):
    g = torch.Generator().manual_seed(seed)
    low, high = torch.rand(500, generator=g) * 0.2, 0.8 + torch.rand(500, generator=g) * 0.2
    v = torch.cat([low, high])
    t = otsu_threshold(v)
    resolution = float(v.max() - v.min()) / 256  # the threshold is a histogram bin's centre
    assert float(low.max()) - resolution <= t < float(high.min())  # in the gap, to the histogram's resolution


def test_starts_are_distinct_and_follow_the_weights():
    w = torch.zeros(32, 32)
    w[10:14, 20:24] = 1.0
    pts = sample_starts(w, 16, generator=torch.Generator().manual_seed(0))
    assert len({tuple(p.tolist()) for p in pts}) == 16
    assert ((pts[:, 0] > 20) & (pts[:, 0] < 24) & (pts[:, 1] > 10) & (pts[:, 1] < 14)).all()
    more = sample_starts(w, 40, generator=torch.Generator().manual_seed(0))  # more than the positive pixels
    assert len(more) == 40 and len({tuple(p.tolist()) for p in more}) == 40


@pytest.mark.slow
def test_attention_saliency_of_an_open_clip_vit():
    import open_clip

    from synth_core.encoders.openclip import OpenClipEncoder

    enc = OpenClipEncoder.__new__(OpenClipEncoder)  # untrained ViT-B-32: checks the plumbing, not the map
    enc.model = open_clip.create_model("ViT-B-32").eval()
    enc.input_size, enc.device = 224, torch.device("cpu")
    enc._mean = torch.zeros(1, 3, 1, 1)
    enc._std = torch.ones(1, 3, 1, 1)
    sal = attention_saliency(enc, square_image(224))
    assert sal.shape == (1, 1, 224, 224) and float(sal.min()) == 0.0 and float(sal.max()) == pytest.approx(1.0)
