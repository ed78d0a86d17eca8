"""Sketching a picture sequence frame by frame, coherent over time (CLIPasso for animation).

The first frame is a CLIPasso run as always (saliency start, best of ``seeds``). Every later
frame starts from the previous frame's final strokes: the same strokes in the same order, so
each stroke keeps its identity and can be followed through the shot. A warm frame starts near
its answer, so it runs one seed and stops on a plateau of its evaluation loss (``PLATEAU_WARM``),
and it pays ``coherence`` x the mean squared displacement of its control points from the
previous frame's beyond the whole drawing's own motion (in canvas units, so the weight does not
depend on the canvas size): the drawing may move, turn and zoom with the picture freely, but
strokes that slide or jump relative to each other pay, which is what removes flicker.

A frame with nothing of the object in view (an empty mask, or a blank picture) keeps the
previous drawing and says so in a warning. ``boil`` jitters the drawings that are sent (never
the strokes the next frame starts from) by a small deterministic amount per frame, for the
hand-drawn "line boil" look; a drawing carries its boil in its meta, so a run that continues
from a boiled file (a resumed or chunked render) starts from the clean strokes again.

Events: ``Stage`` per finished frame (``frame`` = its scene frame), ``Progress`` over the whole
run against ``frames x steps`` (an upper bound: frames stop early), one ``Done`` at the end with
the last frame's drawing. Cancelling ends the run with ``Done(cancelled=True)`` carrying the
unfinished frame's best state; every finished frame's Stage has been sent by then.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Generator, Iterator

import numpy as np
import torch

from .clipasso import Clipasso, ClipassoConfig
from .drawing import Drawing
from .encoders.base import Encoder
from .engine import optimise
from .events import Done, Event, Progress, Snapshot, Stage, WarningEvent
from .request import MAX_FRAME, JobRequest
from .strokes import from_drawing

# (k, r): a frame stops when its best evaluation improved by less than r (relative) over its last
# k evaluations (k x eval_every steps). A cold start passes through stalls (a stroke crossing over
# to the outline) and needs patience; a warm frame starts at its answer and settles in a few
# evaluations. Measured with scripts/bench_sketch_frames.py (docs/methods.md).
PLATEAU_COLD = (5, 0.05)
PLATEAU_WARM = (2, 0.1)
BOIL_STREAM = 0xB011  # the boil's random stream: a function of the frame number only
EMPTY_CONTRAST = 1 / 64  # a picture without a mask whose values span less than this shows nothing


def shape_change(points: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
    """[B, P, 2]: where ``points`` are beyond the previous frame's ``anchor`` points carried by the whole
    drawing's own best motion (the least-squares translation, rotation and uniform scale).

    Moving, turning and zooming together is free; strokes moving relative to each other (sliding
    along the outline, jumping) is what is left: the drawing's own flicker."""
    p = points - points.mean(-2, keepdim=True)
    a = anchor - anchor.mean(-2, keepdim=True)
    size = (a ** 2).sum((-2, -1)).clamp_min(1e-12)[..., None]
    c = (a * p).sum((-2, -1))[..., None] / size  # scale x cos(turn)
    s = (a[..., 0] * p[..., 1] - a[..., 1] * p[..., 0]).sum(-1, keepdim=True) / size  # scale x sin(turn)
    fit = torch.stack([c * a[..., 0] - s * a[..., 1], c * a[..., 1] + s * a[..., 0]], -1)
    return p - fit


class WarmFrame(Clipasso):
    """A later frame: starts exactly at the previous frame's strokes and pays for changing their shape."""

    free_motion = True  # False: pay for every displacement, the drawing's own motion too (the benchmark's "plain")

    def __init__(self, cfg: ClipassoConfig, encoder: Encoder, target: torch.Tensor, previous: Drawing,
                 coherence: float, meta: dict | None = None) -> None:
        start = from_drawing(previous, encoder.device)
        super().__init__(cfg, encoder, target, None, meta, init=start)
        self.anchor = start.points.detach().clone()  # [1, P, 2]
        self.coherence = coherence

    def penalty(self, seeds: list[int]) -> torch.Tensor | None:
        """coherence x the mean squared displacement of the control points from the previous frame's, beyond
        the drawing's own motion (``shape_change``), in canvas units."""
        if not self.coherence:
            return None
        points = self.strokes.points[seeds] / self.cfg.canvas
        anchor = self.anchor.expand_as(points) / self.cfg.canvas
        moved = shape_change(points, anchor) if self.free_motion else points - anchor
        return self.coherence * (moved ** 2).sum(-1).mean(-1)


def frame_config(req: JobRequest, warm: bool) -> ClipassoConfig:
    """CLIPasso's settings for one frame: a cold frame as a single picture, a warm one with one seed."""
    cfg = ClipassoConfig(strokes=req.strokes, steps=req.steps, canvas=req.canvas[0], seeds=req.seeds, seed=req.seed,
                         augmentations=req.augmentations_or_default, plateau=PLATEAU_COLD)
    return replace(cfg, seeds=1, saliency_init=False, plateau=PLATEAU_WARM) if warm else cfg


def boil(drawing: Drawing, px: float, frame: int) -> Drawing:
    """The drawing with every control point moved by up to ``px`` in x and y, the same way every time
    for the same frame; its meta records the boil so that ``unboil`` can take it off again."""
    if not px or len(drawing) == 0:
        return drawing.with_meta(boil=px) if px else drawing
    offsets = _jitter(drawing.points.shape, px, frame)
    return Drawing(drawing.width, drawing.height, drawing.points + offsets, drawing.segments, drawing.widths,
                   drawing.rgba, drawing.background, {**drawing.meta, "boil": px})


def unboil(drawing: Drawing) -> Drawing:
    """The clean strokes of a drawing ``boil`` made (its meta names the boil and the frame); others as they are."""
    px, frame = drawing.meta.get("boil"), drawing.meta.get("frame")
    if not px or not isinstance(frame, int) or isinstance(px, bool) or not isinstance(px, (int, float)):
        return drawing
    points = drawing.points - _jitter(drawing.points.shape, float(px), frame)
    meta = {k: v for k, v in drawing.meta.items() if k != "boil"}
    return Drawing(drawing.width, drawing.height, points, drawing.segments, drawing.widths, drawing.rgba,
                   drawing.background, meta)


def _jitter(shape: tuple[int, ...], px: float, frame: int) -> np.ndarray:
    rng = np.random.default_rng([BOIL_STREAM, int(frame) + MAX_FRAME])
    return rng.uniform(-px, px, shape)


def is_empty(target: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Nothing of the object in view: no pixel of the mask is at least half object, or (without a mask)
    the picture is blank."""
    if mask is not None:
        return not bool((mask > 0.5).any())
    return float(target.max() - target.min()) < EMPTY_CONTRAST


def empty_drawing(req: JobRequest) -> Drawing:
    """What a sequence shows before its object has been in view: no strokes."""
    size = req.canvas[0]
    return Drawing(size, size, np.zeros((0, 2)), [], [], np.zeros((0, 4)), meta=req.meta())


def motion_px(a: Drawing, b: Drawing) -> float | None:
    """Mean distance (px) each control point moved from ``a`` to ``b``; None when the strokes differ."""
    if len(a) == 0 or not np.array_equal(a.segments, b.segments):
        return None
    return float(np.linalg.norm(b.points - a.points, axis=1).mean())


def shape_px(a: Drawing, b: Drawing) -> float | None:
    """Mean distance (px) each control point moved from ``a`` to ``b`` beyond the drawing's own motion."""
    if len(a) == 0 or not np.array_equal(a.segments, b.segments):
        return None
    res = shape_change(torch.as_tensor(b.points)[None], torch.as_tensor(a.points)[None])[0]
    return float(res.norm(dim=-1).mean())


class _Clock:
    """Steps over the whole run (each frame counts its own) and an ETA from the frames so far."""

    def __init__(self, total: int, frames: int, steps: int) -> None:
        self.total, self.frames, self.steps = total, frames, steps
        self.offset, self.finished, self.start = 0, 0, time.perf_counter()
        self.last = 0  # steps of the last frame

    def eta(self, in_frame: int) -> float:
        done = self.offset + in_frame
        per_frame = self.offset / self.finished if self.finished else self.steps
        left = max(0.0, per_frame - in_frame) + per_frame * (self.frames - self.finished - 1)
        return (time.perf_counter() - self.start) / max(1, done) * left

    def frame(self, method, steps: int, every: int, stop: Callable[[], bool] | None, number: int | None = None
              ) -> Generator[Event, None, Done]:
        """One frame's events with steps counted from the run's start; returns its (unsent) Done.
        Snapshots carry the scene frame ``number`` they preview."""
        for ev in optimise(method, steps, every, stop):
            if isinstance(ev, Progress):
                step = self.offset + ev.step
                yield Progress(step, self.total, ev.loss, ev.similarity, self.eta(ev.step),
                               time.perf_counter() - self.start)
            elif isinstance(ev, Snapshot):
                if ev.step or not self.offset:  # a later frame's step 0 is the last frame's drawing
                    yield Snapshot(self.offset + ev.step, ev.picture, frame=number)
            elif isinstance(ev, Done):
                self.offset += ev.step
                self.last = ev.step
                self.finished += not ev.cancelled
                return Done(self.offset, ev.picture, ev.cancelled)
            else:
                yield ev
        raise RuntimeError("a frame ended without Done")

    def skip(self) -> None:
        """A frame that kept the previous drawing (no steps)."""
        self.finished += 1


def load_frame(path: str, number: int, size: int, use_mask: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One picture of the sequence on the square canvas, and its object mask (alpha) when it has one."""
    from .images import fit_square, load_image

    target, mask = fit_square(load_image(path, f"frame {number}"), size)
    return target, mask if use_mask else None


def check_frames(req: JobRequest) -> None:
    """Refuse a sequence with a missing or unreadable picture before any work (headers only: cheap)."""
    from PIL import Image

    from .errors import BadRequest
    from .files import FileRefused, open_regular
    from .images import MAX_FILE_BYTES

    for path, number in zip(req.frames, req.frame_numbers):
        try:
            with open_regular(path, MAX_FILE_BYTES, f"frame {number}") as f, Image.open(f) as im:
                im.size  # noqa: B018  (the header is read)
        except FileRefused as e:
            raise BadRequest(str(e)) from None
        except Exception as e:  # Pillow raises many kinds for files that are not images
            raise BadRequest(f"frame {number} ({path}) is not a readable image: {type(e).__name__}") from None


def label(req: JobRequest, i: int) -> str:
    """"frame 3/24", or "frame 103 (3/24)" when the scene frames are not 1 ... N."""
    n, number = len(req.frames), req.frame_numbers[i]
    return f"frame {i + 1}/{n}" if number == i + 1 else f"frame {number} ({i + 1}/{n})"


def sketch_frames(req: JobRequest, encoder: Encoder, init: Drawing | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Iterator[Event]:
    """The whole sequence: one Stage per frame, then Done (module docstring)."""
    stop = should_stop or (lambda: False)
    clock = _Clock(req.total_steps, len(req.frames), req.steps)
    previous = unboil(init) if init is not None else None  # the clean strokes the next frame starts from
    last: Drawing | None = None  # the last drawing sent
    for i, (path, number) in enumerate(zip(req.frames, req.frame_numbers)):
        if stop():  # between frames: the last drawing sent (or where the run started) is the last good state
            shown = last if last is not None else previous if previous is not None else empty_drawing(req)
            yield Done(clock.offset, shown, cancelled=True)
            return
        target, mask = load_frame(path, number, req.canvas[0], req.mask)
        meta = {**req.meta(), "warm": req.warm_or_default, "coherence": req.coherence_or_default, "image": path,
                "frame": number}
        if is_empty(target, mask):
            what = "mask" if mask is not None else "picture"
            has = previous is not None and len(previous) > 0
            yield WarningEvent(f"{label(req, i)}: nothing of the object in view (its {what} is empty): "
                               f"{'kept the previous drawing' if has else 'no strokes yet'}")
            clean = kept(previous if previous is not None else empty_drawing(req), meta)
            clock.skip()
        else:
            method, start = frame_method(req, encoder, target, mask, previous, meta)
            done = yield from clock.frame(method, req.steps, req.snapshot_every, stop, number)
            if done.cancelled:
                yield Done(done.step, boil(done.picture, req.boil_or_default, number), cancelled=True)
                return
            clean = finished(method, done.picture, previous, start, clock.last)
        previous = clean
        last = boil(clean, req.boil_or_default, number)
        yield Stage(i, len(req.frames), clock.offset, last, label(req, i), frame=number)
    yield Done(clock.offset, last)


def frame_method(req: JobRequest, encoder: Encoder, target: torch.Tensor, mask: torch.Tensor | None,
                 previous: Drawing | None, meta: dict) -> tuple[Clipasso, str]:
    """A warm frame from ``previous``'s strokes, or a cold CLIPasso start (first frame, ``warm`` off)."""
    if previous is not None and len(previous) and req.warm_or_default:
        return WarmFrame(frame_config(req, True), encoder, target, previous, req.coherence_or_default, meta), "warm"
    return Clipasso(frame_config(req, False), encoder, target, mask, meta), "cold"


def finished(method: Clipasso, picture: Drawing, previous: Drawing | None, start: str, steps: int) -> Drawing:
    """The frame's drawing with its meta: how it started, its steps, its image loss (CLIPasso's evaluation
    loss without the motion penalty) and how far its control points moved from the previous frame."""
    image_loss = float(method.objective(method.tidy_strokes())[0])
    warm = start == "warm" and previous is not None
    moved = motion_px(previous, picture) if warm else None
    changed = shape_px(previous, picture) if warm else None
    return picture.with_meta(start=start, frame_steps=steps, image_loss=round(image_loss, 6),
                             motion_px=None if moved is None else round(moved, 4),
                             shape_px=None if changed is None else round(changed, 4))


def kept(previous: Drawing, meta: dict) -> Drawing:
    """The previous drawing again, for a frame that shows nothing of the object."""
    stale = ("eval_loss", "image_loss", "motion_px", "shape_px")
    return Drawing(previous.width, previous.height, previous.points, previous.segments, previous.widths,
                   previous.rgba, previous.background,
                   {**{k: v for k, v in previous.meta.items() if k not in stale}, **meta, "start": "kept",
                    "frame_steps": 0})
