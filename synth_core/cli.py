"""Command line: ``python -m synth_core draw "a red circle" --out out/`` and ``... render file --out x.png``.

argv is parsed into a request dict, validated by the same code as worker requests, and run
through ``jobs.run_events``; this module only prints and writes files.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from .console import fail as _fail
from .console import internal as _internal
from .console import say_stopping as _say_stopping
from .console import speed_options
from .interrupts import Interrupted, StopOnSignals
from .request import DEFAULT_MODEL, parse_counts, parse_indices, parse_keyed_prompt

if TYPE_CHECKING:  # torch-free, but loaded only when a run needs them
    from .events import Done
    from .outputs import RunRecorder

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def _scale(text: str) -> float:
    """--scale: a finite number above 0, refused while parsing (before any work is done)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text!r}")
    return value


def _spelling(parse):
    """An argparse type from one of request.py's parsers (ValueError -> a usage error)."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = parse.__name__.removeprefix("parse_")
    return convert


def _continue_options(p: argparse.ArgumentParser) -> None:
    """Continue a drawing, lock some of it, climb an abstraction ladder."""
    g = p.add_argument_group("continue a drawing, abstraction ladder")
    g.add_argument("--init", type=Path, metavar="DRAWING",
                   help="start from this drawing (.json or .svg); the canvas becomes its canvas")
    g.add_argument("--lock", type=_spelling(parse_indices), metavar="I", default=None,
                   help="strokes of --init that never change, e.g. 0-5,8")
    g.add_argument("--add", type=int, default=None, metavar="N", help="new strokes drawn after --init's (default 0)")
    g.add_argument("--ladder", type=_spelling(parse_counts), metavar="COUNTS", default=None,
                   help="an abstraction ladder, e.g. 64,32,16,8,4: one run, then each level by removing the "
                        "strokes that help least and fine-tuning; one SVG/PNG per level")
    g.add_argument("--level-steps", type=int, default=None, metavar="N",
                   help="at most this many fine-tuning steps per later level (default: clipasso --steps x the share "
                        "of strokes removed, stopping on a plateau; otherwise a quarter of --steps, at least 20)")


def _run_options(p: argparse.ArgumentParser, strokes: int, steps: int, augs: str) -> None:
    """Options shared by draw / style / sketch."""
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--strokes", type=int, default=None, help=f"number of strokes; fewer = more abstract (default {strokes})")
    p.add_argument("--steps", type=int, default=None, help=f"optimisation steps (default {steps})")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed + device = same result (default 0)")
    p.add_argument("--canvas", type=int, default=None, metavar="PX",
                   help="canvas size in pixels (default 224, or the --init drawing's)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=(
        f"open_clip NAME:TAG, NAME:path/to/checkpoint, or 'builtin' for the offline stand-in "
        f"(not CLIP) (default {DEFAULT_MODEL})"))
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    speed_options(p)
    p.add_argument("--augmentations", type=int, default=None, metavar="N", help=f"augmented copies per step (default {augs})")
    p.add_argument("--snapshot-every", type=int, default=10, metavar="K", help="keep a snapshot every K steps")
    p.add_argument("--cache-dir", default=None, help="where model weights are looked for / downloaded")
    p.add_argument("--scale", type=_scale, default=1.0,
                   help="PNG size as a multiple of the canvas (default 1; at most 16384 px a side)")
    p.add_argument("--tidy", action=argparse.BooleanOptionalAction, default=None,
                   help="after the run, remove the strokes that do not help and fine-tune the rest; with "
                        "--prompt-at, hide them at each key instead (default: the method's own setting)")
    p.add_argument("--no-video", action="store_true", help="skip process.gif")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _continue_options(p)


def _width_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-width", type=float, default=None, metavar="PX", dest="max_width",
                   help="the widest a stroke may grow, in canvas pixels (default: the model's own limit; "
                        "builtin: 4 px on a 224 px canvas; CLIP: 100 px)")


def _keyed_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt-at", type=_spelling(parse_keyed_prompt), action="append", default=[],
                   metavar="FRAME:PROMPT", dest="prompt_at",
                   help='a prompt keyed at a frame, e.g. 1:"a red circle" --prompt-at 48:"a blue square" '
                        "(repeatable, instead of PROMPT): each stretch of --steps morphs the last drawing "
                        "into the next prompt; one SVG/PNG per key")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m synth_core", description=(
        "Draw with CLIP: optimise Bezier strokes until a CLIP model sees your prompt (draw), in the "
        "style of an image (style), or sketch a picture with a few strokes (sketch); render saved drawings."),
        epilog="Each command writes OUT/drawing.svg, .png and .json, OUT/snapshots.jsonl and OUT/process.gif. "
               "Ctrl-C stops early and still writes everything.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("draw", help="text to drawing (CLIPDraw)", description="Coloured strokes for a text prompt (CLIPDraw).")
    d.add_argument("prompt", nargs="?", help='what to draw, e.g. "a red circle" (or --prompt-at)')
    _keyed_option(d)
    d.add_argument("--negative", action="append", default=[], metavar="TEXT",
                   help="something the drawing should NOT look like (repeatable)")
    d.add_argument("--method", default="clipdraw", choices=["clipdraw", "pixels"],
                   help="strokes (clipdraw) or the paper's pixel-optimisation baseline")
    _width_option(d)
    _run_options(d, 256, 1000, "4 for strokes, 16 for pixels")

    s = sub.add_parser("style", help="text + style image (StyleCLIPDraw)",
                       description="A prompt drawn in the style of an image (StyleCLIPDraw).")
    s.add_argument("prompt", nargs="?", help='what to draw, e.g. "a red circle" (or --prompt-at)')
    _keyed_option(s)
    s.add_argument("--style", required=True, type=Path, metavar="IMAGE", help="style image (PNG, JPEG, WebP...)")
    s.add_argument("--strength", type=float, default=50.0, help="style strength 0-100 (default 50)")
    s.add_argument("--style-weights", default="imagenet", metavar="W",
                   help="VGG-16 for the style loss: imagenet (default), a .pth file, or untrained")
    s.add_argument("--negative", action="append", default=[], metavar="TEXT", help="negative prompt (repeatable)")
    _width_option(s)
    _run_options(s, 256, 500, 10)

    k = sub.add_parser("sketch", help="image to abstract sketch (CLIPasso)",
                       description="A few black strokes that capture a picture (CLIPasso); fewer strokes = more abstract.")
    k.add_argument("image", type=Path, help="the picture to sketch (PNG, JPEG, WebP; transparency = object mask)")
    k.add_argument("--seeds", type=int, default=3, help="best of N seeds, run as one batch (default 3)")
    k.add_argument("--no-mask", action="store_true", help="ignore the image's alpha channel")
    _run_options(k, 16, 2000, 4)

    from .frames_cli import add_parser as add_sketch_frames

    add_sketch_frames(sub)

    r = sub.add_parser("render", help="render a saved drawing (.json or .svg) to PNG")
    r.add_argument("drawing", type=Path, help="drawing.json or an SVG of stroked paths")
    r.add_argument("--out", required=True, type=Path, help="PNG file to write")
    r.add_argument("--scale", type=_scale, default=1.0,
                   help="size as a multiple of the canvas (default 1; at most 16384 px a side)")
    return p


def _request(args: argparse.Namespace) -> dict:
    req = {"seed": args.seed, "canvas": _canvas(args), "model": args.model, "device": args.device,
           "snapshot_every": args.snapshot_every, "cache_dir": args.cache_dir}
    if args.command in ("draw", "style"):
        prompts = {"keyed_prompts": args.prompt_at} if args.prompt_at else {"prompt": args.prompt}
        if args.prompt is None and not args.prompt_at:
            prompts = {}  # the request says what is missing
        req.update(negative=args.negative, **prompts)
    if args.command == "draw":
        req.update(method=args.method)
    elif args.command == "style":
        req.update(method="styleclipdraw", style_image=str(args.style), style_strength=args.strength,
                   style_weights=args.style_weights)
    else:
        req.update(method="clipasso", image=str(args.image), seeds=args.seeds, mask=not args.no_mask)
    if args.init is not None:
        req["init"] = str(args.init)
    for key in ("strokes", "steps", "augmentations", "tidy", "lock", "add", "ladder", "level_steps", "precision",
                "compile", "max_width"):
        if getattr(args, key, None) is not None:
            req[key] = getattr(args, key)
    if getattr(args, "prompt", None) is not None and getattr(args, "prompt_at", None):
        req["prompt"] = args.prompt  # both given: the request refuses it in one line
    return req


def _canvas(args: argparse.Namespace) -> int | list[int]:
    """--canvas, else the --init drawing's canvas (read once more by the run), else 224."""
    if args.canvas is not None:
        return args.canvas
    if args.init is None:
        return 224
    from . import formats
    from .drawing import DrawingFormatError
    from .errors import BadRequest

    try:
        d = formats.load(args.init)
    except DrawingFormatError as e:
        raise BadRequest(f"cannot continue from {args.init}: {e}") from None
    return [d.width, d.height]


def cmd_run(args: argparse.Namespace) -> int:
    """draw / style / sketch. SIGINT and SIGTERM stop after the current step and write everything
    (exit 130 / 143); before the run has started, or on a second Ctrl-C, they abort at once."""
    with StopOnSignals(on_stop=_say_stopping) as signals:
        try:
            return _run(args, signals)
        except Interrupted as e:
            what = "aborted" if signals.keeping else "interrupted before the run started"
            return _fail(f"{what} by {e.name}: nothing was written", e.code)


def _run(args: argparse.Namespace, signals: StopOnSignals) -> int:
    from tqdm import tqdm

    from .errors import BadRequest, SynthError
    from .events import Done, Progress, Snapshot, Stage, Started, WarningEvent
    from .jobs import parse_request, run_events
    from .outputs import RunRecorder, check_writable, scale_problem

    try:
        req = parse_request(_request(args))
        problem = scale_problem(max(req.canvas), args.scale)  # the PNG size, refused before the run
        if problem:
            raise BadRequest(problem)
        out_dir = check_writable(args.out, inputs=(req.image, req.style_image))
    except BadRequest as e:
        return _fail(str(e), EXIT_USAGE)
    recorder = RunRecorder(out_dir, video=not args.no_video)
    bar = None
    try:
        for ev in run_events(req, signals.flag.is_set):
            if isinstance(ev, Started):
                signals.keeping = True
                what = repr(req.prompt) if req.method != "clipasso" else req.image
                print(f"{ev.method}: {what} with {ev.model} on {ev.device}, {ev.steps} steps",
                      file=sys.stderr)
                bar = tqdm(total=ev.steps, disable=args.quiet, unit="step", dynamic_ncols=True)
            elif isinstance(ev, WarningEvent):
                (bar.write if bar else print)(f"warning: {ev.message}", file=sys.stderr)
            elif isinstance(ev, Progress):
                if ev.steps > bar.total:  # the tidy pass fine-tunes past the run's steps
                    bar.total = ev.steps
                bar.update(ev.step - bar.n)
                if ev.loss is not None:
                    bar.set_postfix(loss=f"{ev.loss:.3f}", sim=f"{ev.similarity:.3f}", refresh=False)
            elif isinstance(ev, Snapshot):
                recorder.snapshot(ev.step, ev.picture)
            elif isinstance(ev, Stage):
                recorder.stage(_stage_name(ev), ev.picture)
                (bar.write if bar else print)(f"{ev.label} (step {ev.step})", file=sys.stderr)
            elif isinstance(ev, Done):
                if bar:
                    bar.close()
                signals.holding = True  # the files are written whatever comes now
                return _write_results(recorder, ev, args.scale, signals.code)
    except BadRequest as e:
        return _fail(str(e), EXIT_USAGE)
    except SynthError as e:
        return _fail(str(e), EXIT_FAILED)
    except Exception as e:  # a bug or the environment: one line (the traceback with SYNTH_CORE_DEBUG=1)
        return _internal(e)
    finally:
        if bar:
            bar.close()
    return _fail("the run ended without a result", EXIT_FAILED)


def _stage_name(stage) -> str:
    """File name of a stage's drawing: level-2-32-strokes, key-3-frame-96."""
    if stage.frame is None:
        return f"level-{stage.index + 1}-{len(stage.picture)}-strokes"
    return f"key-{stage.index + 1}-frame-{stage.frame}"


def _write_results(recorder: RunRecorder, done: Done, scale: float, signal_code: int | None) -> int:
    """The run's files; a stopped run exits with the signal's code once they are written.

    If the output folder stopped taking files during the run (removed, disk full), the results go
    to a new temporary folder instead: hours of work are not lost to a full disk.
    """
    recorder.snapshot(done.step, done.picture)  # the final drawing ends the record
    try:
        files = recorder.finish(done.picture, scale)
    except OSError as e:
        return _rescue(recorder, done, scale, f"{e.strerror or e}")
    state = "stopped early at" if done.cancelled else "finished"
    print(f"{state} step {done.step}; wrote " + ", ".join(sorted(files.values())), file=sys.stderr)
    if not done.cancelled:
        return EXIT_OK
    return signal_code or EXIT_CANCELLED


def _rescue(recorder: RunRecorder, done: Done, scale: float, reason: str) -> int:
    import dataclasses
    import tempfile

    try:
        folder = tempfile.mkdtemp(prefix="synth_core-rescued-")
        dataclasses.replace(recorder, out_dir=Path(folder)).finish(done.picture, scale)
    except OSError:
        return _fail(f"cannot write the results to {recorder.out_dir} ({reason}), nor to a temporary folder",
                     EXIT_FAILED)
    return _fail(f"cannot write the results to {recorder.out_dir} ({reason}); they are in {folder}", EXIT_FAILED)


def cmd_render(args: argparse.Namespace) -> int:
    """Drawing file -> PNG. Bad input exits 2 before anything is written; the target is only ever
    replaced whole, and never when it is the input itself or not a regular file."""
    from . import formats
    from .drawing import DrawingFormatError, atomic_write_bytes
    from .files import UnwritableTarget, check_target, same_file
    from .outputs import png_bytes, render_rgba, scale_problem

    if same_file(args.drawing, args.out):
        return _fail(f"--out {str(args.out)!r} is the drawing itself: choose another file", EXIT_USAGE)
    try:
        check_target(args.out)
    except UnwritableTarget as e:
        return _fail(f"cannot write {e.filename}: {e.strerror}", EXIT_USAGE)
    try:
        drawing = formats.load(args.drawing)
    except DrawingFormatError as e:
        return _fail(str(e), EXIT_USAGE)
    problem = scale_problem(max(drawing.width, drawing.height), args.scale)
    if problem:
        return _fail(problem, EXIT_USAGE)
    try:
        png = png_bytes(render_rgba(drawing, args.scale))
    except (RuntimeError, ValueError, MemoryError) as e:  # DrawingFormatError included
        return _fail(f"cannot render {args.drawing}: {type(e).__name__}: {str(e)[:160]}", EXIT_FAILED)
    try:
        atomic_write_bytes(args.out, png)
    except OSError as e:
        return _fail(f"cannot write {args.out}: {e.strerror or e}", EXIT_FAILED)
    print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "render":
        return cmd_render(args)
    if args.command == "sketch-frames":
        from .frames_cli import cmd_sketch_frames

        return cmd_sketch_frames(args)
    return cmd_run(args)
