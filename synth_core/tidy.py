"""The tidy pass: strokes that do not help the drawing are removed, for every method and encoder.

After the main run, each stroke's contribution to the method's own objective is measured
exactly: the loss of the drawing with that stroke hidden minus the loss with it shown, for all
strokes as one batch of scenes under the same fixed augmentations. Strokes that contribute
less than a share of the strongest one are removed, the rest is fine-tuned briefly, and this
repeats while the objective stays within a tolerance of where it was. For CLIPasso this is
abstraction by removal; for StyleCLIPDraw the style loss counts in the contribution.

A method takes part by offering ``tidy_strokes()`` (the one scene that is its result),
``objective(strokes)`` (deterministic loss of B scenes), ``restart(kept, steps)`` (a new run of
the same method from the strokes ``kept``) and ``locked_strokes()`` (strokes never to remove: the
ones an artist locked in a continued drawing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generator, Iterator, Protocol

import torch

from .engine import Method, StepResult
from .events import Done, Event, Progress, Snapshot
from .strokes import StrokeTensors


@dataclass(frozen=True)
class TidyConfig:
    share: float = 0.1  # a stroke is removed when it contributes less than this share of the strongest one
    rounds: int = 4  # removal + fine-tune rounds at most
    finetune_steps: int = 40
    tolerance: float = 0.02  # a round is kept while the objective rises by at most this share of its size
    min_strokes: int = 1
    chunk: int = 32  # scenes per batched contribution measurement


class Tidyable(Method, Protocol):
    def tidy_strokes(self) -> StrokeTensors: ...

    def objective(self, strokes: StrokeTensors) -> torch.Tensor: ...

    def restart(self, kept: torch.Tensor, steps: int) -> "Tidyable": ...

    def locked_strokes(self) -> torch.Tensor: ...


def supports(method: object) -> bool:
    return all(callable(getattr(method, name, None))
               for name in ("tidy_strokes", "objective", "restart", "locked_strokes"))


@torch.no_grad()
def contributions(method: Tidyable, strokes: StrokeTensors, chunk: int = 32) -> torch.Tensor:
    """[N] loss with each stroke hidden minus loss with all shown (positive: the stroke helps).

    Every chunk carries the untouched scene as its own reference, so a method whose objective
    draws fresh samples per call still compares like with like.
    """
    n = strokes.topology.num_strokes
    out = torch.empty(n)
    for start in range(0, n, chunk):
        idx = list(range(start, min(n, start + chunk)))
        loss = method.objective(strokes.without_each(idx)).float().cpu()
        out[idx] = loss[1:] - loss[0]
    return out


def removable(contrib: torch.Tensor, share: float, min_strokes: int, locked: torch.Tensor | None = None
              ) -> torch.Tensor:
    """[N] bool: the strokes to remove this round (weakest first, keeping ``min_strokes`` and every locked one)."""
    strongest = float(contrib.max())
    if strongest <= 0:
        return torch.zeros_like(contrib, dtype=torch.bool)
    weak = contrib < share * strongest
    if locked is not None:
        weak &= ~locked.to(torch.bool)
    return weakest(contrib, int(weak.sum()), min_strokes, locked)


def weakest(contrib: torch.Tensor, count: int, min_strokes: int = 1, locked: torch.Tensor | None = None
            ) -> torch.Tensor:
    """[N] bool: the ``count`` strokes that contribute least, never a locked one, keeping ``min_strokes``."""
    free = torch.ones_like(contrib, dtype=torch.bool) if locked is None else ~locked.to(torch.bool)
    count = min(count, int(free.sum()), max(0, contrib.numel() - min_strokes))
    order = torch.argsort(torch.where(free, contrib, torch.full_like(contrib, float("inf"))))
    out = torch.zeros_like(contrib, dtype=torch.bool)
    out[order[:max(0, count)]] = True
    return out


@dataclass(frozen=True)
class TidyResult:
    method: Tidyable  # the run whose picture is the tidied drawing
    removed: int
    step: int  # steps done in all, fine-tuning included
    kept: torch.Tensor  # [N] bool over the strokes the pass started with: the ones ``method`` holds, in order


def tidy(method: Tidyable, cfg: TidyConfig, step: int, should_stop: Callable[[], bool] | None = None
         ) -> Generator[Event, None, TidyResult]:
    """Rounds of removal and fine-tuning; yields Progress and Snapshot events, returns the result."""
    stop = should_stop or (lambda: False)
    current, removed = method, 0
    kept = torch.ones(method.tidy_strokes().topology.num_strokes, dtype=torch.bool)
    with torch.no_grad():
        best = float(current.objective(current.tidy_strokes())[0])
    for _ in range(cfg.rounds):
        if stop():
            break
        strokes = current.tidy_strokes()
        weak = removable(contributions(current, strokes, cfg.chunk), cfg.share, cfg.min_strokes,
                         current.locked_strokes())
        if not weak.any():
            break
        candidate = current.restart(~weak, cfg.finetune_steps)
        for t in range(cfg.finetune_steps):
            if stop():
                break
            result: StepResult = candidate.step(t).read()  # a short fine-tune: read every step
            step += 1
            yield Progress(step, step + cfg.finetune_steps - 1 - t, result.loss, result.similarity, 0.0, 0.0)
        with torch.no_grad():
            value = float(candidate.objective(candidate.tidy_strokes())[0])
        if value > best + cfg.tolerance * abs(best):
            break  # this round cost too much: keep the drawing of the round before
        current, best, removed = candidate, value, removed + int(weak.sum())
        kept[kept.clone()] = ~weak.cpu()
        yield Snapshot(step, current.picture())
    return TidyResult(current, removed, step, kept)


def quietly(method: Tidyable, cfg: TidyConfig, step: int = 0) -> TidyResult:
    """The tidy pass without its events (benchmarks and tests that only want the result)."""
    rounds = tidy(method, cfg, step)
    while True:
        try:
            next(rounds)
        except StopIteration as end:
            return end.value


def after(events: Iterator[Event], method: Method, cfg: TidyConfig,
          should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """The run's events with the tidy pass between its last step and its ``Done``.

    A cancelled run is not tidied; a cancel during the pass keeps the last accepted round.
    """
    stop = should_stop or (lambda: False)
    for ev in events:
        if not isinstance(ev, Done) or ev.cancelled or not supports(method):
            yield ev
            continue
        result = yield from tidy(method, cfg, ev.step, stop)
        picture = result.method.picture()
        picture.meta["tidied"] = {"removed": result.removed, "strokes": len(picture)}
        yield Done(result.step, picture, cancelled=stop())
