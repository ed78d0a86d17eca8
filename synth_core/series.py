"""Runs made of several stages: an abstraction ladder, and prompts keyed on a timeline.

Both stand on one engine capability: a method continues from its own strokes. A ladder runs the
first rung in full, then for each next rung removes the strokes that contribute least to the
method's objective (``tidy.contributions``, the tidy pass's measure; locked strokes never go) and
fine-tunes the rest briefly, so 64 -> 32 -> 16 -> 8 -> 4 costs one run plus short ones.
Keyed prompts run one stretch per (frame, prompt): each starts from the last one's strokes (same
strokes in the same order, so the drawing morphs), and the snapshots of a stretch are placed on
the frames between the two keys, so that scrubbing the timeline plays the morph. With the tidy
pass (the method's default), each stretch ends with it, except that the strokes it would remove
are hidden where they are (alpha 0; ``StrokeTensors.merged``): the stroke count and order stay, the
key shows only what its prompt needs, and a later prompt may bring a hidden stroke back.

Every stage ends with a ``Stage`` event carrying its drawing; steps and progress count the whole
run; the run ends with one ``Done`` (the last stage's drawing, or the last good state on cancel).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Generator, Iterator

from .clipasso import Clipasso
from .engine import optimise
from .errors import BadRequest
from .events import Done, Event, Progress, Snapshot, Stage
from .request import JobRequest
from .tidy import TidyConfig, Tidyable, contributions, supports, tidy, weakest

if TYPE_CHECKING:
    from .clipdraw import ClipDraw

Frames = Callable[[int], int]  # a stage's step -> timeline frame
RUNG_PLATEAU = (2, 0.1)  # a CLIPasso rung stops when its best evaluation gained < 10 % over 2 evaluations


class _Clock:
    """Steps and ETA over the whole run, while each stage counts its own."""

    def __init__(self, total: int) -> None:
        self.total, self.offset, self.start = total, 0, time.perf_counter()

    def stage(self, method, steps: int, every: int, stop: Callable[[], bool] | None,
              frames: Frames | None = None) -> Generator[Event, None, Done]:
        """One stage's events with steps counted from the run's start; returns its (unsent) Done."""
        for ev in optimise(method, steps, every, stop):
            if isinstance(ev, Progress):
                step = self.offset + ev.step
                elapsed = time.perf_counter() - self.start
                yield Progress(step, self.total, ev.loss, ev.similarity, elapsed / step * (self.total - step), elapsed)
            elif isinstance(ev, Snapshot):
                if ev.step or not self.offset:  # a later stage's step 0 is the last stage's drawing
                    yield Snapshot(self.offset + ev.step, ev.picture, frames(ev.step) if frames else None)
            elif isinstance(ev, Done):
                self.offset += ev.step
                return Done(self.offset, ev.picture, ev.cancelled)
            else:
                yield ev
        raise RuntimeError("a stage ended without Done")

    def fade(self, method: ClipDraw, stop: Callable[[], bool] | None
             ) -> Generator[Event, None, tuple[ClipDraw, Done]]:
        """The tidy pass after a stage, at its stroke count: what it removes is hidden where it was.
        Returns the run that holds the result (for the next stage to follow) and its Done."""
        later = self.total - self.offset  # the steps of the stages still to come
        pass_ = tidy(method, TidyConfig(), self.offset, stop)
        while True:
            try:
                ev = next(pass_)
            except StopIteration as end:
                result = end.value
                break
            if isinstance(ev, Progress):  # (its snapshots hold fewer strokes: the Done shows the result)
                elapsed, total = time.perf_counter() - self.start, ev.steps + later
                eta = elapsed / ev.step * (total - ev.step)
                yield Progress(ev.step, total, ev.loss, ev.similarity, eta, elapsed)
        self.offset, self.total = result.step, result.step + later
        strokes = method.tidy_strokes().merged(result.kept, result.method.tidy_strokes())
        settled = method.follow(method.prompt, 0, strokes)
        picture = settled.picture()
        picture.meta["tidied"] = {"hidden": result.removed, "strokes": len(picture)}
        return settled, Done(self.offset, picture, bool(stop and stop()))


def check_ladder(req: JobRequest, strokes: int, locked: int) -> None:
    """Refuse a ladder that cannot be climbed with these strokes, before any work."""
    if strokes != req.ladder[0]:
        raise BadRequest(f"the ladder starts at {req.ladder[0]} strokes but the run has {strokes} "
                         "(the drawing's strokes plus add)")
    if locked > req.ladder[-1]:
        raise BadRequest(f"{locked} strokes are locked: the ladder cannot go down to {req.ladder[-1]}")


def ladder(method: Tidyable, req: JobRequest, should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """The first rung in full, then each next rung by removal and fine-tuning."""
    clock = _Clock(req.total_steps)
    levels = req.ladder
    done = yield from clock.stage(method, req.steps, req.snapshot_every, should_stop)
    for i, count in enumerate(levels):
        if i:
            method = fewer(method, count, req.rung_steps(i))
            done = yield from clock.stage(method, req.rung_steps(i), req.snapshot_every, should_stop)
        if done.cancelled:
            break
        yield Stage(i, len(levels), done.step, done.picture, f"{count} strokes")
    yield done


def fewer(method: Tidyable, count: int, steps: int) -> Tidyable:
    """The method restarted from its ``count`` most useful strokes (locked ones always kept).

    A CLIPasso rung starts near its answer, like a warm frame of a sequence, so it stops on a plateau
    of its evaluation loss (``RUNG_PLATEAU``) and ``steps`` is only its cap."""
    strokes = method.tidy_strokes()
    n = strokes.topology.num_strokes
    drop = weakest(contributions(method, strokes), n - count, 1, method.locked_strokes())
    if isinstance(method, Clipasso):
        return method.restart(~drop, steps, plateau=RUNG_PLATEAU)
    return method.restart(~drop, steps)


def keyed(method, req: JobRequest, should_stop: Callable[[], bool] | None = None, fade: bool = False
          ) -> Iterator[Event]:
    """One stretch per keyed prompt, each continuing from the last; snapshots between keys carry frames.
    ``fade``: each stretch ends with the tidy pass, hiding the strokes it would remove (``_Clock.fade``)."""
    clock = _Clock(req.total_steps)
    keys = req.keyed_prompts
    done = None
    for i, (frame, prompt) in enumerate(keys):
        frames = None
        if i:
            method = method.follow(prompt, req.steps)
            frames = _between(keys[i - 1][0], frame, req.steps)
        done = yield from clock.stage(method, req.steps, req.snapshot_every, should_stop, frames)
        if fade and not done.cancelled and supports(method):
            method, done = yield from clock.fade(method, should_stop)
        if done.cancelled:
            break
        yield Stage(i, len(keys), done.step, done.picture, f"frame {frame}: {prompt}", frame=frame, prompt=prompt)
    yield done


def _between(first: int, last: int, steps: int) -> Frames:
    """Step s of a stretch of ``steps`` -> its frame between the keys (the key frames themselves excluded
    where there is room)."""
    def frame(s: int) -> int:
        f = first + round(s / steps * (last - first))
        return min(max(f, first + 1), last - 1) if last - first > 1 else last
    return frame
