"""The optimisation loop: event order, cancel, bad steps skipped without losing the drawing, schedules."""

from __future__ import annotations

import numpy as np
import pytest

from synth_core.builtin import load_builtin_encoder
from synth_core.clipdraw import ClipDraw, ClipDrawConfig, points_lr_factor
from synth_core.engine import optimise
from synth_core.events import Done, Progress, Snapshot, Started, WarningEvent
from synth_core.jobs import parse_request, run_events

from faults import NanAt


@pytest.fixture(scope="module")
def encoder():
    return load_builtin_encoder("cpu")


SMALL = ClipDrawConfig(strokes=6, steps=8, width=64, height=64)


def test_events_in_order_and_snapshots_every_k(encoder):
    events = list(optimise(ClipDraw(SMALL, encoder, "a red circle"), SMALL.steps, snapshot_every=3))
    snaps = [e.step for e in events if isinstance(e, Snapshot)]
    assert snaps == [0, 3, 6]  # the final drawing comes once, with Done
    assert [e.step for e in events if isinstance(e, Progress)] == list(range(1, 9))
    assert isinstance(events[-1], Done) and not events[-1].cancelled and events[-1].step == 8
    prog = [e for e in events if isinstance(e, Progress)]
    assert all(p.eta_s >= 0 for p in prog) and prog[-1].eta_s == 0


def test_cancel_returns_the_last_state(encoder):
    run = ClipDraw(SMALL, encoder, "a red circle")
    calls = []
    events = list(optimise(run, 100, snapshot_every=0, should_stop=lambda: len(calls.append(1) or calls) > 4))
    done = events[-1]
    assert isinstance(done, Done) and done.cancelled and done.step == 4
    assert np.allclose(done.picture.points, run.picture().points)


def test_non_finite_steps_are_skipped_and_reported(encoder):
    run = ClipDraw(SMALL, NanAt(encoder, {3, 4}), "a red circle")
    before = None
    events = []
    for ev in optimise(run, 6, snapshot_every=1):
        events.append(ev)
        if isinstance(ev, Snapshot) and ev.step == 2:
            before = ev.picture
        if isinstance(ev, Snapshot) and ev.step == 4:
            assert np.array_equal(ev.picture.points, before.points)  # steps 3 and 4 changed nothing
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 2 and "skipped" in warnings[0].message
    losses = [e.loss for e in events if isinstance(e, Progress)]
    assert losses[2] is None and losses[3] is None and losses[4] is not None
    final = events[-1].picture
    assert np.all(np.isfinite(final.points)) and not np.array_equal(final.points, before.points)


def test_parameters_stay_in_range(encoder):
    cfg = ClipDrawConfig(strokes=6, steps=15, width=64, height=64, lr_widths=5.0, lr_colors=1.0)
    run = ClipDraw(cfg, encoder, "a black square")
    list(optimise(run, cfg.steps, snapshot_every=0))
    d = run.picture()
    assert d.widths.min() >= 2.0 - 1e-6 and d.widths.max() <= 100.0 + 1e-6  # half-width clamp [1, 50]
    assert d.rgba.min() >= 0 and d.rgba.max() <= 1


def test_points_learning_rate_anneals_like_the_reference():
    cfg = ClipDrawConfig(steps=1000)
    assert [points_lr_factor(cfg, t) for t in (0, 499, 500, 749, 750, 999)] == [1.0, 1.0, 0.4, 0.4, 0.1, 0.1]


def test_long_prompts_warn_and_still_run(encoder):
    req = parse_request({"prompt": "a red circle " + "and a big " * 10, "model": "builtin", "strokes": 4,
                         "steps": 2, "canvas": 64, "device": "cpu"})
    events = list(run_events(req, encoder=encoder))
    assert isinstance(events[0], Started)
    assert any(isinstance(e, WarningEvent) and "tokens" in e.message for e in events)
    assert isinstance(events[-1], Done)


def test_words_the_builtin_model_does_not_know_are_named_in_a_warning(encoder):
    req = parse_request({"prompt": "a red cat", "negative": ["blue circles"], "model": "builtin", "strokes": 4,
                         "steps": 1, "canvas": 64, "device": "cpu"})
    messages = [e.message for e in run_events(req, encoder=encoder) if isinstance(e, WarningEvent)]
    assert len(messages) == 1 and "cat" in messages[0] and "not know" in messages[0]  # plurals are known words


def test_pixel_baseline_runs(encoder):
    req = parse_request({"prompt": "a red circle", "method": "pixels", "steps": 3, "canvas": 32, "model": "builtin"})
    events = list(run_events(req, encoder=encoder))
    done = events[-1]
    assert isinstance(done, Done) and done.picture.shape == (32, 32, 3) and done.picture.dtype == np.uint8
    assert done.to_wire()["image"]["png_base64"]


class ColourBlind:
    """The built-in encoder with every colour word read as the same unknown word: a prompt whose colour
    the model cannot know. If any default read the prompt's colour word (a palette, a prior), swapping
    it would still change the drawing."""

    def __init__(self, inner):
        self.inner = inner
        self.input_size, self.device, self.label = inner.input_size, inner.device, inner.label
        self.context_length = inner.context_length

    def encode_text(self, texts):
        from synth_core.builtin import COLOURS

        return self.inner.encode_text([" ".join("zorp" if w in COLOURS else w for w in t.split()) for t in texts])

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("method", ["clipdraw", "pixels"])
def test_no_default_reads_the_prompts_colour_word(encoder, method):
    blind = ColourBlind(encoder)
    pictures = []
    for prompt in ("a red circle", "a blue circle"):
        req = parse_request({"prompt": prompt, "method": method, "model": "builtin", "strokes": 6, "steps": 4,
                             "canvas": 48, "device": "cpu", "seed": 2})
        done = list(run_events(req, encoder=blind))[-1]
        pictures.append(done.picture)
    a, b = pictures
    if method == "pixels":
        assert np.array_equal(a, b)
    else:
        assert np.array_equal(a.rgba, b.rgba) and np.array_equal(a.points, b.points)
        assert a.meta["prompt"] != b.meta["prompt"]  # the requests did differ
