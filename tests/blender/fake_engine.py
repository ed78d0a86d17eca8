"""TEST DOUBLE: a fake method driven by the engine's real loop, request parser and wire code.

Only the maths is fake: ``FakeMethod`` draws synthetic Drawings (strokes that move down one
pixel per step), so the add-on's event handling can be tested deterministically and quickly.
Everything around it is the engine's own code (``synth_core.jobs.run_job`` with its error
handling, ``synth_core.engine.optimise``, the events' wire form and, in the fake worker process,
``synth_core.worker.main``), so these tests exercise the real protocol.
"""

from __future__ import annotations

import os
import sys
import time

from drawings import lines_drawing

from synth_core import jobs
from synth_core.engine import StepResult, optimise
from synth_core.events import Started, WarningEvent


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
        return lines_drawing(self.n, width=self.width, height=self.height, shift=self.done)


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
