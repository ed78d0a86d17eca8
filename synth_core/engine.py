"""The optimisation loop shared by every method: steps, progress, snapshots, cancel, bad steps.

A method is an object with ``step(t) -> StepResult`` and ``picture() -> Drawing | image``;
this loop owns timing, the event stream and cancellation, so methods stay pure maths.
A step's numbers may stay on the device (0-d tensors): the loop reads them only when it reports,
every ``progress_every`` steps, so a GPU is not made to wait for the host after every step
(``report_every`` picks K per device).
Cancelling is cooperative: ``should_stop`` is polled between steps and the run then ends with
a snapshot of the last good state and ``Done(cancelled=True)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol

from .events import Done, Event, Picture, Progress, Snapshot, WarningEvent


GPU_REPORT_EVERY = 10  # steps between host reads on an accelerator (progress, skipped-step warnings)


def report_every(method: object) -> int:
    """Steps between reports for ``method``: every step on a CPU (a read costs nothing there), K on a
    GPU (its ``encoder``'s device)."""
    device = getattr(getattr(method, "encoder", None), "device", None)
    return 1 if device is None or device.type == "cpu" else GPU_REPORT_EVERY


@dataclass(frozen=True)
class StepResult:
    """What one step did. ``loss`` and ``similarity`` are floats or 0-d tensors read when reported;
    ``applied`` (a bool or a 0-d bool tensor) is false when the step was undone for non-finite
    values (``safe_step``), and ``loss`` None means it was skipped outright."""

    loss: Any  # float | 0-d tensor | None
    similarity: Any = None  # mean cosine to the prompt, for people to watch
    note: str | None = None  # why a step was skipped, for a warning event
    applied: Any = True

    def read(self) -> "StepResult":
        """The same result with plain Python values (a host read of any device tensors)."""
        if self.loss is None or not bool(self.applied):
            return StepResult(None, None, self.note or "non-finite values", False)
        sim = None if self.similarity is None else float(self.similarity)
        return StepResult(float(self.loss), sim, self.note, True)


class Method(Protocol):
    def step(self, t: int) -> StepResult: ...

    def picture(self) -> Picture: ...

    # optional: ``finished() -> bool`` ends the run early and successfully (CLIPasso's early stop)


def optimise(
    method: Method,
    steps: int,
    snapshot_every: int = 10,
    should_stop: Callable[[], bool] | None = None,
    progress_every: int | None = None,
) -> Iterator[Event]:
    """Run ``steps`` steps of ``method``; yields Snapshot(0), Progress, Snapshot every K steps, Done.

    The final drawing comes once, with ``Done`` (not also as a snapshot). Progress comes every
    ``progress_every`` steps (None: ``report_every``), at snapshots and at the end.
    """
    progress_every = progress_every or report_every(method)
    stop = should_stop or (lambda: False)
    finished = getattr(method, "finished", lambda: False)
    yield Snapshot(0, method.picture())
    start = time.perf_counter()
    done = 0
    cancelled = False
    log = _SkipLog()
    pending: list[tuple[int, StepResult]] = []  # steps not read yet
    for t in range(steps):
        if stop():
            cancelled = True
            break
        done = t + 1
        pending.append((done, method.step(t)))
        snapshot = bool(snapshot_every) and done % snapshot_every == 0 and done != steps
        over = finished()
        if done % progress_every and done != steps and not snapshot and not over:
            continue
        result = yield from log.read(pending)
        elapsed = time.perf_counter() - start
        yield Progress(done, steps, result.loss, result.similarity, elapsed / done * (steps - done), elapsed)
        if over:
            break
        if snapshot:
            yield Snapshot(done, method.picture())
    yield from log.read(pending)  # cancelled between reports: those steps are still accounted for
    yield Done(done, method.picture(), cancelled=cancelled)


class _SkipLog:
    """Reads pending step results and warns about skipped ones (the first five, then every 100th)."""

    def __init__(self) -> None:
        self.skipped = 0

    def read(self, pending: list[tuple[int, StepResult]]) -> Iterator[Event]:
        """Yields the warnings; returns the last result read (None when nothing was pending)."""
        result = None
        for step, raw in pending:
            result = raw.read()
            if not result.applied:
                self.skipped += 1
                if self.skipped <= 5 or self.skipped % 100 == 0:
                    yield WarningEvent(f"step {step}: {result.note}; step skipped, the drawing keeps its "
                                       f"last good state ({self.skipped} skipped so far)")
        pending.clear()
        return result
