"""The optimisation loop shared by every method: steps, progress, snapshots, cancel, bad steps.

A method is an object with ``step(t) -> StepResult`` and ``picture() -> Drawing | image``;
this loop owns timing, the event stream and cancellation, so methods stay pure maths.
Cancelling is cooperative: ``should_stop`` is polled between steps and the run then ends with
a snapshot of the last good state and ``Done(cancelled=True)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Protocol

from .events import Done, Event, Picture, Progress, Snapshot, WarningEvent


@dataclass(frozen=True)
class StepResult:
    loss: float | None  # None: the step was skipped (non-finite loss or gradients)
    similarity: float | None = None  # mean cosine to the prompt, for people to watch
    note: str | None = None  # why a step was skipped, for a warning event


class Method(Protocol):
    def step(self, t: int) -> StepResult: ...

    def picture(self) -> Picture: ...

    # optional: ``finished() -> bool`` ends the run early and successfully (CLIPasso's early stop)


def optimise(
    method: Method,
    steps: int,
    snapshot_every: int = 10,
    should_stop: Callable[[], bool] | None = None,
    progress_every: int = 1,
) -> Iterator[Event]:
    """Run ``steps`` steps of ``method``; yields Snapshot(0), Progress, Snapshot every K steps, Done.

    The final drawing comes once, with ``Done`` (not also as a snapshot).
    """
    stop = should_stop or (lambda: False)
    finished = getattr(method, "finished", lambda: False)
    yield Snapshot(0, method.picture())
    start = time.perf_counter()
    done = 0
    skipped = 0
    cancelled = False
    for t in range(steps):
        if stop():
            cancelled = True
            break
        result = method.step(t)
        done = t + 1
        if result.loss is None:
            skipped += 1
            if skipped <= 5 or skipped % 100 == 0:
                yield WarningEvent(f"step {done}: {result.note or 'non-finite values'}; step skipped, "
                              f"the drawing keeps its last good state ({skipped} skipped so far)")
        elapsed = time.perf_counter() - start
        if done % progress_every == 0 or done == steps:
            eta = elapsed / done * (steps - done)
            yield Progress(done, steps, result.loss, result.similarity, eta, elapsed)
        if finished():
            break
        if snapshot_every and done % snapshot_every == 0 and done != steps:
            yield Snapshot(done, method.picture())
    yield Done(done, method.picture(), cancelled=cancelled)
