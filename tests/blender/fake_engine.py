"""TEST DOUBLE: a fake method driven by the engine's real loop, request parser and wire code.

Only the maths is fake: ``FakeMethod`` draws synthetic Drawings (strokes that move down one
pixel per step), so the add-on's event handling can be tested deterministically and quickly.
``fake_stages_run_job`` adds runs made of stages: keyed prompts through the engine's own
``series.keyed`` (so the frames are the engine's), and a ladder whose rungs are plain fewer lines;
``fake_sequence_run_job`` answers a picture sequence (``frames``) as ``synth_core.sequence`` does.
Everything around it is the engine's own code (``synth_core.jobs.run_job`` with its error
handling, ``synth_core.engine.optimise``, the events' wire form and, in the fake worker process,
``synth_core.worker.main``), so these tests exercise the real protocol.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from drawings import lines_drawing

from synth_core import formats, jobs, series
from synth_core.engine import StepResult, optimise
from synth_core.events import Done, Snapshot, Stage, Started, WarningEvent


class FakeMethod:
    """The engine's Method protocol with synthetic drawings; can be slow, fail or kill its process."""

    def __init__(self, strokes: int, width: int, height: int, delay: float = 0.0, fail_at: int | None = None,
                 exit_at: int | None = None) -> None:
        self.n, self.width, self.height = strokes, width, height
        self.delay, self.fail_at, self.exit_at = delay, fail_at, exit_at
        self.done = 0

    def step(self, t: int) -> StepResult:
        time.sleep(self.delay)
        if self.exit_at is not None and t + 1 == self.exit_at:
            print("fake worker: simulated crash", flush=True, file=sys.stderr)
            os._exit(3)
        if self.fail_at is not None and t + 1 == self.fail_at:
            raise RuntimeError("fake engine failure")
        self.done = t + 1
        return StepResult(loss=-self.done / 100, similarity=self.done / 100)

    def picture(self):
        return lines_drawing(self.n, width=self.width, height=self.height, shift=self.done + self.offset)

    offset = 0.0  # where a followed prompt starts (the drawing goes on moving from there)

    def follow(self, prompt: str, steps: int) -> FakeMethod:
        """The next keyed prompt: the same strokes go on from where they are."""
        nxt = FakeMethod(self.n, self.width, self.height, self.delay)
        nxt.offset = self.offset + self.done
        return nxt


def fake_run_job(delay: float = 0.0, crash_at: int | None = None, exit_after_snapshots: int | None = None,
                 ignore_cancel: bool = False):
    """A ``run_job`` with the engine's code around ``FakeMethod`` (``crash_at``: an engine error at
    that step; ``exit_after_snapshots``: the process dies in the step after that many in-run
    snapshots; ``ignore_cancel``: a hung engine)."""

    def events(req: jobs.JobRequest, should_stop):
        yield Started(req.steps, "cpu", "fake", req.method)
        yield WarningEvent("fake engine: synthetic drawings")
        exit_at = None if exit_after_snapshots is None else exit_after_snapshots * req.snapshot_every + 1
        method = FakeMethod(req.strokes, req.canvas[0], req.canvas[1], delay, crash_at, exit_at)
        stop = (lambda: False) if ignore_cancel else should_stop
        yield from optimise(method, req.steps, req.snapshot_every, stop)

    return lambda request, should_stop: jobs.run_job(request, should_stop, events=events)


def fake_stages_run_job(delay: float = 0.0):
    """A ``run_job`` for ladders and keyed prompts: keyed prompts run the engine's ``series.keyed``
    around ``FakeMethod``; a ladder runs each rung as ``FakeMethod`` with that many strokes."""

    def events(req: jobs.JobRequest, should_stop):
        yield Started(req.total_steps, "cpu", "fake", req.method)
        strokes = len(formats.load(req.init)) + req.add if req.init else req.strokes  # a continued drawing's too
        method = FakeMethod(strokes, req.canvas[0], req.canvas[1], delay)
        if req.keyed_prompts:
            yield from series.keyed(method, req, should_stop)
        elif req.ladder:
            yield from _ladder(req, should_stop, delay)
        else:
            yield from optimise(method, req.steps, req.snapshot_every, should_stop)

    return lambda request, should_stop: jobs.run_job(request, should_stop, events=events)


def _ladder(req: jobs.JobRequest, should_stop, delay: float):
    offset = 0
    done = None
    for i, count in enumerate(req.ladder):
        steps = req.steps if i == 0 else req.rung_steps(i)
        for ev in optimise(FakeMethod(count, req.canvas[0], req.canvas[1], delay), steps, req.snapshot_every,
                           should_stop):
            if isinstance(ev, Done):
                done = Done(offset + ev.step, ev.picture, ev.cancelled)
                offset += ev.step
                break
            if ev.step or i == 0:  # a later rung's step 0 is the last rung's drawing
                yield dataclasses.replace(ev, step=offset + ev.step)
        if done.cancelled:
            break
        yield Stage(i, len(req.ladder), done.step, done.picture, f"{count} strokes")
    yield done


def fake_sequence_run_job(delay: float = 0.0, cancel_in_frame: int | None = None, blank_frames: int = 0):
    """A ``run_job`` that answers a sequence request the way ``synth_core.sequence`` does (events and
    meta), with the fake method's synthetic strokes: snapshots carrying the frame being sketched,
    one stage per frame, then done (``cancel_in_frame``: the run is cancelled in that frame, 0-based;
    ``blank_frames``: the first frames show nothing of the object, so their drawings have no strokes)."""

    def events(req: jobs.JobRequest, should_stop):
        from synth_core.sequence import empty_drawing

        yield Started(req.total_steps, "cpu", "fake", req.method)
        step, last = 0, None
        for i, number in enumerate(req.frame_numbers):
            if i < blank_frames:
                yield WarningEvent(f"frame {number}: nothing of the object in view")
                last = empty_drawing(req).with_meta(frame=number, start="kept")
                yield Stage(i, len(req.frames), step, last, f"frame {i + 1}/{len(req.frames)}", frame=number)
                continue
            for k in range(req.steps):
                time.sleep(delay)
                step += 1
                picture = lines_drawing(req.strokes, *req.canvas, shift=i * 10 + k).with_meta(frame=number)
                if req.snapshot_every and step % req.snapshot_every == 0:
                    yield Snapshot(step, picture, frame=number)
                if should_stop() or (cancel_in_frame is not None and i == cancel_in_frame and k == 1):
                    yield Done(step, picture, cancelled=True)
                    return
            last = picture.with_meta(frame=number, start="warm" if i else "cold", frame_steps=req.steps,
                                     image_loss=0.5 - 0.1 * i, image=req.frames[i])
            yield Stage(i, len(req.frames), step, last, f"frame {i + 1}/{len(req.frames)}", frame=number)
        yield Done(step, last)

    return lambda request, should_stop: jobs.run_job(request, should_stop, events=events)
