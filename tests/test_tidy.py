"""The tidy pass: per-stroke contributions, removal, fine-tuning, and its place in the event stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth_core import tidy
from synth_core.builtin import load_builtin_encoder
from synth_core.clipdraw import ClipDraw, ClipDrawConfig
from synth_core.engine import optimise
from synth_core.events import Done, Progress, Snapshot, WarningEvent
from synth_core.jobs import parse_request, run_events
from synth_core.strokes import StrokeTensors, Topology


@pytest.fixture(scope="module")
def encoder():
    return load_builtin_encoder("cpu")


def three_strokes() -> StrokeTensors:
    topo = Topology.from_segments([1, 2, 1])
    pts = torch.arange(2 * topo.num_points, dtype=torch.float32).reshape(1, -1, 2)
    return StrokeTensors(pts, torch.tensor([[1.0, 2.0, 3.0]]), torch.rand(1, 3, 4), topo)


def test_keep_selects_strokes_with_their_points():
    s = three_strokes()
    k = s.keep(torch.tensor([True, False, True]))
    assert k.topology.segments.tolist() == [1, 1] and k.topology.num_points == 8
    assert torch.equal(k.points[0, :4], s.points[0, :4]) and torch.equal(k.points[0, 4:], s.points[0, 11:])
    assert torch.equal(k.half_widths, s.half_widths[:, [0, 2]]) and torch.equal(k.colors, s.colors[:, [0, 2]])


def test_without_each_hides_one_stroke_per_scene():
    s = three_strokes()
    w = s.without_each([0, 2])
    assert w.batch == 3 and torch.equal(w.colors[0], s.colors[0])
    assert w.colors[1, 0, 3] == 0 and w.colors[2, 2, 3] == 0
    assert torch.equal(w.colors[1, 1:], s.colors[0, 1:]) and torch.equal(w.points[2], s.points[0])


def test_merged_puts_the_kept_strokes_back_in_place_and_hides_the_others():
    s = three_strokes()
    kept = torch.tensor([True, False, True])
    other = s.keep(kept)
    other = StrokeTensors(other.points + 100, other.half_widths * 2, torch.ones_like(other.colors),
                          other.topology)
    m = s.merged(kept, other)
    assert torch.equal(m.topology.segments, s.topology.segments)
    assert torch.equal(m.points[0, :4], s.points[0, :4] + 100)
    assert torch.equal(m.points[0, 11:], s.points[0, 11:] + 100)
    assert torch.equal(m.points[0, 4:11], s.points[0, 4:11])  # the hidden stroke stays where it was
    assert m.half_widths[0].tolist() == [2.0, 2.0, 6.0] and m.colors[0, [0, 2]].eq(1).all()
    assert torch.equal(m.colors[0, 1, :3], s.colors[0, 1, :3]) and m.colors[0, 1, 3] == 0  # hidden: alpha 0
    with pytest.raises(ValueError, match="segments"):
        s.merged(torch.tensor([False, True, True]), other)  # 1 and 1 segments put where 2 and 1 were


def test_removable_keeps_the_strongest_and_a_minimum():
    c = torch.tensor([0.5, 0.01, -0.2, 0.3, 0.04])
    assert tidy.removable(c, 0.1, 1).tolist() == [False, True, True, False, True]
    assert tidy.removable(c, 0.1, 4).tolist() == [False, False, True, False, False]  # the weakest goes first
    assert not tidy.removable(torch.tensor([-0.1, -0.2]), 0.1, 1).any()  # nothing helps: nothing to measure by


def test_an_invisible_stroke_contributes_nothing_and_a_drawn_one_does(encoder):
    run = ClipDraw(ClipDrawConfig(strokes=6, steps=30, width=64, height=64, seed=1), encoder, "a red circle")
    list(optimise(run, 30, snapshot_every=0))
    s = run.tidy_strokes()
    s.colors[0, 2, 3] = 0.0  # stroke 2 is hidden already: hiding it again changes nothing
    c = tidy.contributions(run, s, chunk=4)  # two chunks, each with its own reference scene
    assert c.shape == (6,) and abs(float(c[2])) < 1e-6
    assert float(c.abs().max()) > 1e-4


def test_the_pass_removes_strokes_fine_tunes_and_reports_them(encoder):
    cfg = ClipDrawConfig(strokes=16, steps=120, width=96, height=96, seed=0)
    run = ClipDraw(cfg, encoder, "a blue square")
    events = list(tidy.after(optimise(run, cfg.steps, snapshot_every=0), run, tidy.TidyConfig(finetune_steps=10)))
    done = events[-1]
    assert isinstance(done, Done) and not done.cancelled
    removed = done.picture.meta["tidied"]["removed"]
    assert removed > 0 and len(done.picture) == 16 - removed
    result = tidy.quietly(run, tidy.TidyConfig(finetune_steps=10), cfg.steps)  # the same pass, again
    assert int((~result.kept).sum()) == result.removed == removed and result.kept.shape == (16,)
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == list(range(1, len(steps) + 1)) and done.step == steps[-1] > cfg.steps  # fine-tuning counts on
    assert any(isinstance(e, Snapshot) and e.step > cfg.steps for e in events)


def test_a_cancelled_run_is_not_tidied(encoder):
    cfg = ClipDrawConfig(strokes=8, steps=50, width=64, height=64)
    run = ClipDraw(cfg, encoder, "a red circle")
    calls = []
    stop = lambda: len(calls.append(1) or calls) > 5  # noqa: E731
    done = list(tidy.after(optimise(run, cfg.steps, 0, stop), run, tidy.TidyConfig(), stop))[-1]
    assert done.cancelled and len(done.picture) == 8 and "tidied" not in done.picture.meta


def test_the_pixel_baseline_says_it_has_nothing_to_tidy(encoder):
    req = parse_request({"prompt": "a red circle", "method": "pixels", "steps": 2, "canvas": 32, "model": "builtin",
                         "tidy": True})
    events = list(run_events(req, encoder=encoder))
    assert any(isinstance(e, WarningEvent) and "nothing" not in e.message and "tidy" in e.message for e in events)
    assert isinstance(events[-1], Done)


def test_clipasso_tidies_its_winning_seed(encoder):
    from synth_core.clipasso import Clipasso, ClipassoConfig

    img = np.ones((1, 3, 64, 64), np.float32)
    img[:, :, 20:44, 20:44] = 0.0  # a black square on white
    cfg = ClipassoConfig(strokes=10, steps=40, canvas=64, seeds=2, eval_every=10)
    run = Clipasso(cfg, encoder, torch.from_numpy(img))
    done = list(tidy.after(optimise(run, cfg.steps, 0), run, tidy.TidyConfig(finetune_steps=10)))[-1]
    kept = len(done.picture)
    assert kept == 10 - done.picture.meta["tidied"]["removed"] and done.picture.meta["seeds"] == [done.picture.meta["seed"]] \
        or done.picture.meta["tidied"]["removed"] == 0
