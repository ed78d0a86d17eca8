"""The three methods end to end with the project's own model, checked by its independent judge.

The built-in model is an offline stand-in for CLIP (not CLIP); the judge is another network
trained on other images. These runs are short versions of the default offline settings; the
full-size numbers come from scripts/bench_ablation.py and scripts/bench_methods.py.

Which way one optimisation run ends depends on the CPU's float kernels (AVX-512, AVX2, ATen's
portable ones): rounding differences grow over the steps. So every claim about a result is over
several targets or seeds with a margin, never one run's exact order, and .ci/run runs this file a
second time under ATEN_CPU_CAPABILITY=default. The exact-equality tests compare runs made with
the same kernels, which holds on any CPU.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from synth_core.builtin import load_builtin_encoder, load_judge
from synth_core.clipasso import Clipasso, ClipassoConfig
from synth_core.clipdraw import ClipDraw, ClipDrawConfig, style_weight
from synth_core.engine import optimise
from synth_core.events import Done
from synth_core.lab.evaluate import OFFLINE, draw_and_judge
from synth_core.lab.evaluate import edge_chamfer as chamfer
from synth_core.lab.shapes import render_shape
from synth_core.style import StyleLoss, StyleSampling, vgg16_extractor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def encoder():
    return load_builtin_encoder("cpu")


@pytest.fixture(scope="module")
def judge():
    return load_judge("cpu")


# -- CLIPDraw ------------------------------------------------------------------------------
PROMPTS = [("red", "circle"), ("blue", "star"), ("green", "triangle"), ("black", "cross"), ("yellow", "square"),
           ("red", "line")]


def test_clipdraw_similarity_rises_and_the_judge_names_the_colour(encoder, judge):
    """Six prompts: each one's similarity rises by more than 0.15 (by 0.22 on average), and the judge
    names at least 5 colours.

    Measured with the offline defaults of 2026-12-01 (12 strokes; seed 0): rises 0.221 to 0.406, mean
    0.312, and 6 of 6 colours, the same to the third decimal with AVX2 and with
    ATEN_CPU_CAPABILITY=default on a 2-core AMD EPYC (200 CLIPDraw steps do not amplify rounding the
    way CLIPasso's do); seed 1 gives 0.195 to 0.308, mean 0.261, and 6 of 6 with both. (An earlier
    model, with 16 strokes: 0.36 to 0.58; the robust model's cosines span less.)
    """
    verdicts = [draw_and_judge(c, s, encoder, judge, OFFLINE, seed=0) for c, s in PROMPTS]
    rises = [v.similarity_end - v.similarity_start for v in verdicts]
    assert min(rises) > 0.15 and np.mean(rises) > 0.22, [(v.shape, round(r, 3)) for v, r in zip(verdicts, rises)]
    assert sum(v.colour_ok for v in verdicts) >= 5, [(v.colour, v.judged_colour) for v in verdicts]


# -- StyleCLIPDraw -------------------------------------------------------------------------
def _palette(picture_rgb: torch.Tensor) -> tuple[float, float]:
    """(blue minus red of the ink-weighted mean colour, share of clearly inked pixels that are blue)."""
    img = picture_rgb[0]
    ink = 1 - img.min(0).values  # how far the most saturated channel is from white
    mean = (img * ink / ink.sum()).sum((1, 2))
    px = img[:, ink > 0.3]
    blue = (px[2] > px[0] + 0.15) & (px[2] > px[1] + 0.1)
    return float(mean[2] - mean[0]), float(blue.float().mean())


def test_a_one_colour_style_moves_the_palette_and_its_loss_falls(encoder):
    """Blue stripes as the style: the same prompt and seed draw bluer with the style than without.

    The prompt names red, so the model pulls the other way: the shift measured here (default
    strength 50, 80 steps, seeds 1 and 2; AVX-512 / ATEN_CPU_CAPABILITY=default; the robust model
    of 2026-12-01, whose card keeps strokes at most 4 px per 224, so 2 px on this 96 px canvas) is
    +0.10 and +0.16 / +0.11 and +0.14 in blue-minus-red and +0.09 and +0.11 / +0.08 and +0.07 in the
    share of blue ink. The style loss is measured as the mean of 8 draws of its random samples, the
    same draws before and after (2026-12-01): it ends at 0.67 and 0.46 of where it started on a
    2-core AVX2 AMD EPYC, 0.80 and 0.45 with ATEN_CPU_CAPABILITY=default there (shifts +0.09 and
    +0.17 / +0.10 and +0.16). Measured with one draw, as before, seed 1 ended at 1.32 of its start
    under ATEN's kernels on that machine and failed: one draw of the same image varies from 0.7 to
    1.5 of another. (Single draws on AVX-512 gave 0.62 and 0.62 / 0.62 and 0.57; strokes up to
    100 px: shifts +0.30 and +0.30, losses 0.71 and 0.60; the plain model: shifts +0.15 and +0.10,
    losses 0.61 and 0.56.) Relaxed
    EMD rewards having *some* of each style colour rather than only style colours, which is why
    the drawing does not turn wholly blue.
    """
    style_img = torch.ones(1, 3, 96, 96)
    for x in range(6, 96, 16):  # blue strokes only
        style_img[0, :, :, x : x + 5] = torch.tensor([0.1, 0.2, 0.9])[:, None, None]
    extractor = vgg16_extractor(None, "cpu", seed=0)

    def measured(image: torch.Tensor) -> float:
        """The style loss averaged over 8 draws of its random samples, the same draws for every image
        measured (one draw varies by a factor of two from draw to draw, so a ratio of single draws
        measures the draws more than the drawing)."""
        ruler = StyleLoss(extractor, style_img, StyleSampling(600, 256), torch.Generator().manual_seed(7))
        with torch.no_grad():
            return float(np.mean([float(ruler(image)) for _ in range(8)]))

    shifts, blue_gain, loss_ratio = [], [], []
    for seed in (1, 2):
        cfg = ClipDrawConfig(strokes=24, steps=80, width=96, height=96, augmentations=4, seed=seed)
        plain = ClipDraw(cfg, encoder, "a red circle")
        list(optimise(plain, cfg.steps, snapshot_every=0))
        style = StyleLoss(extractor, style_img, StyleSampling(600, 256),
                          torch.Generator().manual_seed(0))
        styled = ClipDraw(replace(cfg, style_weight=style_weight(50), clip_until=0.9), encoder, "a red circle",
                          style=style)
        first = measured(styled.render().detach())
        list(optimise(styled, cfg.steps, snapshot_every=0))
        loss_ratio.append(measured(styled.render().detach()) / first)
        (p_shift, p_blue), (s_shift, s_blue) = _palette(plain.render().detach()), _palette(styled.render().detach())
        shifts.append(s_shift - p_shift)
        blue_gain.append(s_blue - p_blue)
    print("style loss ratios", loss_ratio, "blue-minus-red shifts", shifts, "blue share gains", blue_gain)
    assert np.mean(loss_ratio) < 0.78 and max(loss_ratio) < 0.85, loss_ratio
    assert np.mean(shifts) > 0.06 and min(shifts) > 0, shifts
    assert np.mean(blue_gain) > 0.04 and min(blue_gain) > 0, blue_gain


# -- CLIPasso ------------------------------------------------------------------------------
# 100 steps (150 until 2026-12-01: the suite took 16 min on a 2-core AVX2 machine; the claims below
# were measured again at 100 with both kernel sets and hold with the same margins)
SKETCH = ClipassoConfig(strokes=16, steps=100, canvas=128, seeds=2, half_width=1.2, eval_every=10)


def target(shape: str, seed: int = 0) -> torch.Tensor:
    img = render_shape(shape, "black", size=128, rng=np.random.default_rng(seed), filled=False, clutter=False)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def sketch(encoder, cfg, tgt):
    run = Clipasso(cfg, encoder, tgt)
    done = next(e for e in optimise(run, cfg.steps, snapshot_every=0) if isinstance(e, Done))
    return run, done


def final_picture(run: Clipasso, done: Done) -> torch.Tensor:
    """The sketch the run hands out (its best seed), rendered: RGB [1, 3, S, S]."""
    return run.render(torch.as_tensor(done.picture.points, dtype=torch.float32).reshape(1, -1, 2)).detach()


# Five shapes, each drawn with two generator seeds (other sizes, places and wobble) and sketched
# with that seed. One run is chaotic: a CPU with other float kernels (AVX-512, AVX2, or
# ATEN_CPU_CAPABILITY=default) ends it somewhere else, so the claims below are about all ten.
TARGETS = [(shape, seed) for shape in ("circle", "square", "triangle", "star", "cross") for seed in (0, 1)]


@pytest.fixture(scope="module")
def sketches(encoder, tmp_path_factory):
    """``get(shape, seed, strokes)``: the final picture of a one-seed sketch of ``target(shape, seed)``,
    made once for all the tests of this module, and once for all the test processes: the tests run
    in parallel processes (pytest-xdist), and the first one to need a sketch makes it under a file
    lock in the run's shared temporary folder while another that needs it waits and loads it (the
    same run everywhere: same seed, same kernels)."""
    from filelock import FileLock  # torch's own dependency

    shared = tmp_path_factory.getbasetemp().parent / "end-to-end-sketches"
    shared.mkdir(exist_ok=True)
    made: dict[tuple[str, int, int], torch.Tensor] = {}

    def get(shape: str, seed: int, strokes: int) -> torch.Tensor:
        key = (shape, seed, strokes)
        if key not in made:
            path = shared / f"{shape}-{seed}-{strokes}.pt"
            with FileLock(str(path) + ".lock"):
                if not path.exists():
                    cfg = replace(SKETCH, strokes=strokes, seeds=1, seed=seed)
                    torch.save(final_picture(*sketch(encoder, cfg, target(shape, seed))), path)
                made[key] = torch.load(path, weights_only=True)
        return made[key]

    return get


def test_sketches_of_five_shapes_are_recognised(judge, sketches):
    """The judge names the shape of at least 8 of the 10 sixteen-stroke sketches.

    Measured: 10 of 10 with AVX-512 and with ATEN_CPU_CAPABILITY=default (150 steps), and at 100
    steps 10 of 10 with AVX2 and with ATEN's kernels on a 2-core AMD EPYC; the four-stroke sketches
    of the next test got 8 and 7 of 10, so the judge is not simply pleased by any sketch.
    """
    judged = [judge.predict(sketches(shape, seed, 16))[0][1] for shape, seed in TARGETS]
    right = sum(j == shape for j, (shape, _) in zip(judged, TARGETS))
    assert right >= 8, list(zip(TARGETS, judged))


def test_more_strokes_follow_the_image_more_closely(sketches):
    """16 strokes follow the target's edges more closely than 4 (chamfer distance, px), over all ten.

    Measured (AVX-512 / ATEN_CPU_CAPABILITY=default, 150 steps): mean 1.18 / 1.50 px with 4 strokes
    against 0.37 / 0.41 px with 16 (ratio 3.2 / 3.7), and 16 strokes closer for 10 of 10 targets with
    both (closest pair: 0.42 against 0.35 px). At 100 steps (AVX2 / ATEN default, 2-core AMD EPYC):
    1.03 / 1.15 px against 0.31 / 0.32 px (ratio 3.3 / 3.6), 10 of 10 with both (closest pair: 0.35
    against 0.30 px). One target swings between kernels (the first star with
    4 strokes: 2.5 / 6.0 px), which is why no one target's order is asserted: the 8-vs-16 order of
    one star, asserted before, flipped on an AVX2 machine. Were the stroke count to make no
    difference, the ratio would be about 1 and the wins about 5 of 10.
    """
    few = np.array([chamfer(sketches(shape, seed, 4), target(shape, seed)) for shape, seed in TARGETS])
    many = np.array([chamfer(sketches(shape, seed, 16), target(shape, seed)) for shape, seed in TARGETS])
    assert few.mean() > 1.3 * many.mean(), (few.round(3), many.round(3))
    assert (many < few).sum() >= 8, (few.round(3), many.round(3))


def test_best_of_n_is_the_lowest_evaluation_loss(encoder):
    run, done = sketch(encoder, replace(SKETCH, seeds=3, steps=60), target("triangle"))
    best = done.picture.meta["eval_loss"]
    assert done.picture.meta["seed"] == run.seeds[int(np.argmin(best))]
    assert len(set(best)) == 3  # the seeds really differ


def test_batched_seeds_equal_sequential_runs(encoder):
    """Same start and same first step exactly; after 30 steps the same losses and the same winner.

    Points themselves drift apart later: Adam at lr 1.0 turns float-rounding-sized gradients of
    idle control points into pixel-sized moves, so only the losses are compared after step 1
    (measured: within 0.1% with AVX-512, 0.3% with ATEN_CPU_CAPABILITY=default; 2% allowed).
    """
    tgt = target("square")
    for steps in (1, 30):
        cfg = replace(SKETCH, seeds=2, steps=steps, batch_seeds=True)
        batched, done = sketch(encoder, cfg, tgt)
        for i, seed in enumerate(batched.seeds):
            single, single_done = sketch(encoder, replace(cfg, seeds=1, seed=seed), tgt)
            if steps == 1:
                assert torch.allclose(single.strokes.points[0], batched.strokes.points[i], atol=1e-4)
            else:
                one, = single_done.picture.meta["eval_loss"]
                assert one == pytest.approx(done.picture.meta["eval_loss"][i], rel=0.02)
    assert done.picture.meta["seed"] == batched.seeds[int(np.argmin(done.picture.meta["eval_loss"]))]


def test_seeds_taking_turns_equal_separate_runs_exactly(encoder):
    """``batch_seeds=False`` (seeds one after another inside a step) does what separate runs do, bit for bit."""
    tgt = target("square")
    cfg = replace(SKETCH, seeds=2, steps=30, batch_seeds=False)
    turns, done = sketch(encoder, cfg, tgt)
    for i, seed in enumerate(turns.seeds):
        single, single_done = sketch(encoder, replace(cfg, seeds=1, seed=seed), tgt)
        assert torch.equal(single.strokes.points[0], turns.strokes.points[i])
        assert single_done.picture.meta["eval_loss"] == [done.picture.meta["eval_loss"][i]]


@pytest.mark.parametrize("batch_seeds", [True, False])
def test_a_stopped_seed_is_frozen_and_skipped(encoder, batch_seeds):
    run = Clipasso(replace(SKETCH, seeds=3, steps=5, batch_seeds=batch_seeds), encoder, target("circle"))
    run.frozen[1] = True
    before = run.strokes.points.detach().clone()
    calls = []
    render = run.render
    run.render = lambda *a, **k: calls.append(k.get("seeds")) or render(*a, **k)
    for t in range(3):
        assert run.step(t).loss is not None
    assert torch.equal(run.strokes.points[1], before[1])
    assert not torch.equal(run.strokes.points[0], before[0]) and not torch.equal(run.strokes.points[2], before[2])
    assert calls == ([[0, 2]] if batch_seeds else [[0], [2]]) * 3
