"""Jobs: the one entry point shared by the CLI, the worker and Blender's in-process runner.

A request is validated by ``synth_core.request`` (torch-free, shared with the add-on).
``run_events`` runs it and yields typed events; ``run_job`` does the same with wire dicts and
never raises: every failure becomes an ``error`` event (docs/wire-format.md). A run changes
nothing in the host process that outlives it (torch's thread count is restored).
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .errors import SynthError
from .events import Error, Event, Started, WarningEvent
from .request import JobRequest, parse_request

if TYPE_CHECKING:  # torch loads with the first run, not with this module
    from .encoders.base import Encoder

RunEvents = Callable[[JobRequest, Callable[[], bool]], Iterator[Event]]

__all__ = ["JobRequest", "build_method", "load_inputs", "parse_request", "run_events", "run_job"]

log = logging.getLogger(__name__)


def load_inputs(req: JobRequest) -> dict[str, Any]:
    """Read the request's images before anything slow happens, so bad files fail at once."""
    from .images import load_image

    inputs: dict[str, Any] = {}
    if req.image:
        inputs["image"] = load_image(req.image, "image to sketch")
    if req.frames:  # a sequence: every picture is checked now, each is read when its turn comes
        from .sequence import check_frames

        check_frames(req)
    if req.style_image:
        inputs["style_image"] = load_image(req.style_image, "style image")
    if req.init:
        from .continuation import load_drawing

        inputs["init"] = load_drawing(req)
    return inputs


def build_method(req: JobRequest, encoder: Encoder, inputs: dict[str, Any] | None = None):
    """The method object for a request (the engine loop drives it)."""
    inputs = inputs if inputs is not None else load_inputs(req)
    augs = req.augmentations_or_default
    continues = _continues(req, inputs.get("init"))
    if req.method == "pixels":
        from .pixels import PixelConfig, PixelOptimisation

        cfg = PixelConfig(steps=req.steps, width=req.canvas[0], height=req.canvas[1], seed=req.seed, augmentations=augs)
        return PixelOptimisation(cfg, encoder, req.prompt, req.negative)
    strokes = req.add if continues is not None else req.strokes  # new strokes to initialise
    if req.method == "clipasso":
        return _clipasso(req, encoder, augs, inputs["image"], strokes, continues)
    from .clipdraw import ClipDraw, ClipDrawConfig, style_weight

    cfg = ClipDrawConfig(strokes=strokes, steps=req.steps, width=req.canvas[0], height=req.canvas[1],
                         seed=req.seed, augmentations=augs, max_width=req.max_width)
    style = None
    if req.method == "styleclipdraw":
        import torch

        from .images import fit_long_edge
        from .style import StyleLoss, vgg16_extractor

        target = fit_long_edge(inputs["style_image"], 224).to(encoder.device)
        weights = None if req.style_weights == "untrained" else req.style_weights
        extractor = vgg16_extractor(weights, encoder.device, req.cache_dir, seed=req.seed, offline=req.offline)
        style = StyleLoss(extractor, target, generator=torch.Generator().manual_seed(req.seed + 17))
        cfg = replace(cfg, style_weight=style_weight(req.style_strength), clip_until=0.9)
    return ClipDraw(cfg, encoder, req.prompt, req.negative, meta=req.meta(), style=style, continues=continues)


def _continues(req: JobRequest, drawing):
    """The locks of a continued drawing (None for a fresh run); a ladder's first rung is checked here."""
    continues = None
    if drawing is not None:
        from .continuation import Locks

        continues = Locks.start(drawing, req.lock, req.add)
    if req.ladder:
        from .series import check_ladder

        total = len(continues.locked) if continues is not None else req.strokes
        check_ladder(req, total, continues.count if continues is not None else 0)
    return continues


def _clipasso(req: JobRequest, encoder: Encoder, augs: int, img, strokes: int, continues):
    from .clipasso import Clipasso, ClipassoConfig
    from .images import fit_square

    target, mask = fit_square(img, req.canvas[0])
    cfg = ClipassoConfig(strokes=strokes, steps=req.steps, canvas=req.canvas[0], seeds=req.seeds,
                         seed=req.seed, augmentations=augs)
    return Clipasso(cfg, encoder, target, mask if req.mask else None, meta=req.meta(), continues=continues)


def prompt_warnings(req: JobRequest, encoder: Encoder) -> Iterator[WarningEvent]:
    if req.method == "clipasso" and (req.prompt or req.negative):
        yield WarningEvent("CLIPasso sketches the image: the prompt and negative prompts are not used")
        return
    if req.keyed_prompts:
        texts = [(f"keyed prompt {i + 1}", p) for i, (_, p) in enumerate(req.keyed_prompts)]
    else:
        texts = [("prompt", req.prompt)] if req.prompt else []
    texts += [(f"negative prompt {i + 1}", n) for i, n in enumerate(req.negative)]
    for what, text in texts:
        n = encoder.count_tokens(text)
        if n > encoder.context_length:
            yield WarningEvent(f"{what} needs {n} tokens but {encoder.label} reads {encoder.context_length}: "
                          "the rest is ignored")
        if missing := encoder.unknown_words(text):
            yield WarningEvent(f"{encoder.label} does not know the word(s) {', '.join(missing)} in the {what}: "
                          "they cannot steer the drawing")


def run_events(req: JobRequest, should_stop: Callable[[], bool] | None = None,
               encoder: Encoder | None = None) -> Iterator[Event]:
    """Load the model, build the method and run it; raises SynthError for expected failures."""
    from .accelerate import accelerate
    from .encoders.registry import load_encoder

    inputs = load_inputs(req)
    with torch_threads(req.threads):
        enc = accelerate(encoder or load_encoder(req.model, req.device, req.cache_dir, offline=req.offline),
                         req.precision, req.compile)
    with torch_threads(req.threads or auto_threads(enc)):
        yield Started(req.total_steps, str(enc.device), enc.label, req.method)
        yield from prompt_warnings(req, enc)
        if req.frames:
            from .sequence import sketch_frames

            yield from sketch_frames(req, enc, inputs.get("init"), should_stop)
            return
        method = build_method(req, enc, inputs)
        events = _plan(req, method, should_stop)
        if req.tidy_or_default and not req.keyed_prompts:  # (keyed prompts tidy each stretch themselves)
            events = _tidied(events, method, req.tidy is not None, should_stop)
        yield from events


def _plan(req: JobRequest, method, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
    """The run's stages: one optimisation, a ladder, or keyed prompts."""
    from . import series
    from .engine import optimise

    if req.ladder:
        return series.ladder(method, req, should_stop)
    if req.keyed_prompts:
        return series.keyed(method, req, should_stop, fade=req.tidy_or_default)
    return optimise(method, req.steps, req.snapshot_every, should_stop)


def _tidied(events: Iterator[Event], method, asked: bool, should_stop: Callable[[], bool] | None) -> Iterator[Event]:
    from . import tidy

    if not tidy.supports(method):
        if asked:
            yield WarningEvent("this method has no strokes to tidy: the tidy pass is skipped")
        yield from events
        return
    yield from tidy.after(events, method, tidy.TidyConfig(), should_stop)


SMALL_MODEL = 20_000_000  # parameters: a step of a smaller model on a CPU is mostly small ops


def auto_threads(encoder: Encoder) -> int:
    """Threads for a run that asks for none (``threads`` 0): 1 on a CPU with a small model, else 0 (the
    host's setting). A small model's step is many small ops: a second thread gains ~10 % on a quiet
    2-core machine and makes the step 2.8x slower when another process competes (docs/engine.md),
    while a CLIP-sized encoder's large matrix products use every core well."""
    import torch

    if encoder.device.type != "cpu":
        return 0
    model = getattr(encoder, "model", None)
    params = sum(p.numel() for p in model.parameters()) if isinstance(model, torch.nn.Module) else SMALL_MODEL
    return 1 if params < SMALL_MODEL else 0


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Use ``threads`` CPU threads for torch during the run (0: leave them), then restore the host's.

    In Blender's process the engine is a guest: its thread count must not outlive the run.
    """
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def run_job(request: dict[str, Any], should_stop: Callable[[], bool] | None = None,
            events: RunEvents = run_events) -> Iterator[dict[str, Any]]:
    """Wire events for a request dict; failures become one ``error`` event, never an exception.

    ``events`` runs the parsed request (the engine by default; protocol tests pass a fake method).
    """
    try:
        req = parse_request(request)
        for ev in events(req, should_stop):
            yield ev.to_wire()
    except SynthError as e:
        yield Error(e.kind, str(e)).to_wire()
    except Exception as e:  # a bug or an environment failure: one line on the wire, details in the log
        log.error("job failed:\n%s", traceback.format_exc())
        first = (str(e).strip().splitlines() or [""])[0][:300]
        yield Error("internal", f"{type(e).__name__}: {first}").to_wire()
