"""Command line: ``python -m synth_core draw "a red circle" --out out/`` and ``... render file --out x.png``.

argv is parsed into a request dict, validated by the same code as worker requests, and run
through ``jobs.run_events``; this module only prints and writes files.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from .encoders import DEFAULT_MODEL

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _run_options(p: argparse.ArgumentParser, strokes: int, steps: int, augs: str) -> None:
    """Options shared by draw / style / sketch."""
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--strokes", type=int, default=None, help=f"number of strokes; fewer = more abstract (default {strokes})")
    p.add_argument("--steps", type=int, default=None, help=f"optimisation steps (default {steps})")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed + device = same result (default 0)")
    p.add_argument("--canvas", type=int, default=224, metavar="PX", help="canvas size in pixels (default 224)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=(
        f"open_clip NAME:TAG, NAME:path/to/checkpoint, or 'builtin' for the offline stand-in "
        f"(not CLIP) (default {DEFAULT_MODEL})"))
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    p.add_argument("--augmentations", type=int, default=None, metavar="N", help=f"augmented copies per step (default {augs})")
    p.add_argument("--snapshot-every", type=int, default=10, metavar="K", help="keep a snapshot every K steps")
    p.add_argument("--cache-dir", default=None, help="where model weights are looked for / downloaded")
    p.add_argument("--scale", type=float, default=1.0, help="PNG size as a multiple of the canvas (default 1)")
    p.add_argument("--no-video", action="store_true", help="skip process.gif")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m synth_core", description=(
        "Draw with CLIP: optimise Bezier strokes until a CLIP model sees your prompt (draw), in the "
        "style of an image (style), or sketch a picture with a few strokes (sketch); render saved drawings."),
        epilog="Each command writes OUT/drawing.svg, .png and .json, OUT/snapshots.jsonl and OUT/process.gif. "
               "Ctrl-C stops early and still writes everything.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    d = sub.add_parser("draw", help="text to drawing (CLIPDraw)", description="Coloured strokes for a text prompt (CLIPDraw).")
    d.add_argument("prompt", help='what to draw, e.g. "a red circle"')
    d.add_argument("--negative", action="append", default=[], metavar="TEXT",
                   help="something the drawing should NOT look like (repeatable)")
    d.add_argument("--method", default="clipdraw", choices=["clipdraw", "pixels"],
                   help="strokes (clipdraw) or the paper's pixel-optimisation baseline")
    _run_options(d, 256, 1000, "4 for strokes, 16 for pixels")

    s = sub.add_parser("style", help="text + style image (StyleCLIPDraw)",
                       description="A prompt drawn in the style of an image (StyleCLIPDraw).")
    s.add_argument("prompt", help='what to draw, e.g. "a red circle"')
    s.add_argument("--style", required=True, type=Path, metavar="IMAGE", help="style image (PNG, JPEG, WebP...)")
    s.add_argument("--strength", type=float, default=50.0, help="style strength 0-100 (default 50)")
    s.add_argument("--style-weights", default="imagenet", metavar="W",
                   help="VGG-16 for the style loss: imagenet (default), a .pth file, or untrained")
    s.add_argument("--negative", action="append", default=[], metavar="TEXT", help="negative prompt (repeatable)")
    _run_options(s, 256, 500, 10)

    k = sub.add_parser("sketch", help="image to abstract sketch (CLIPasso)",
                       description="A few black strokes that capture a picture (CLIPasso); fewer strokes = more abstract.")
    k.add_argument("image", type=Path, help="the picture to sketch (PNG, JPEG, WebP; transparency = object mask)")
    k.add_argument("--seeds", type=int, default=3, help="best of N seeds, run as one batch (default 3)")
    k.add_argument("--no-mask", action="store_true", help="ignore the image's alpha channel")
    _run_options(k, 16, 2000, 4)

    r = sub.add_parser("render", help="render a saved drawing (.json or .svg) to PNG")
    r.add_argument("drawing", type=Path, help="drawing.json or an SVG of stroked paths")
    r.add_argument("--out", required=True, type=Path, help="PNG file to write")
    r.add_argument("--scale", type=float, default=1.0, help="size as a multiple of the canvas (default 1)")
    return p


def _fail(message: str, code: int) -> int:
    print(f"synth_core: error: {message}", file=sys.stderr)
    return code


def _request(args: argparse.Namespace) -> dict:
    req = {"seed": args.seed, "canvas": args.canvas, "model": args.model, "device": args.device,
           "snapshot_every": args.snapshot_every, "cache_dir": args.cache_dir}
    if args.command == "draw":
        req.update(method=args.method, prompt=args.prompt, negative=args.negative)
    elif args.command == "style":
        req.update(method="styleclipdraw", prompt=args.prompt, negative=args.negative, style_image=str(args.style),
                   style_strength=args.strength, style_weights=args.style_weights)
    else:
        req.update(method="clipasso", image=str(args.image), seeds=args.seeds, mask=not args.no_mask)
    for key in ("strokes", "steps", "augmentations"):
        if getattr(args, key) is not None:
            req[key] = getattr(args, key)
    return req


class _StopOnSigint:
    """First Ctrl-C asks the run to stop after the current step; a second one aborts."""

    def __init__(self) -> None:
        self.flag = threading.Event()
        self._old = None

    def __enter__(self) -> "_StopOnSigint":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.flag.is_set():
            raise KeyboardInterrupt
        self.flag.set()
        print("\nstopping after this step (Ctrl-C again to abort)...", file=sys.stderr)

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .errors import BadRequest, SynthError
    from .events import Done, Progress, Snapshot, Started, Warning
    from .jobs import parse_request, run_events
    from .outputs import RunRecorder, check_writable

    if args.scale <= 0:
        return _fail("--scale must be positive", EXIT_USAGE)
    try:
        req = parse_request(_request(args))
        out_dir = check_writable(args.out)
    except BadRequest as e:
        return _fail(str(e), EXIT_USAGE)
    recorder = RunRecorder(out_dir, video=not args.no_video)
    bar = None
    try:
        with _StopOnSigint() as stop:
            for ev in run_events(req, stop.flag.is_set):
                if isinstance(ev, Started):
                    what = repr(req.prompt) if req.method != "clipasso" else req.image
                    print(f"{ev.method}: {what} with {ev.model} on {ev.device}, {ev.steps} steps",
                          file=sys.stderr)
                    bar = tqdm(total=ev.steps, disable=args.quiet, unit="step", dynamic_ncols=True)
                elif isinstance(ev, Warning):
                    (bar.write if bar else print)(f"warning: {ev.message}", file=sys.stderr)
                elif isinstance(ev, Progress):
                    bar.update(ev.step - bar.n)
                    if ev.loss is not None:
                        bar.set_postfix(loss=f"{ev.loss:.3f}", sim=f"{ev.similarity:.3f}", refresh=False)
                elif isinstance(ev, Snapshot):
                    recorder.snapshot(ev.step, ev.picture)
                elif isinstance(ev, Done):
                    if bar:
                        bar.close()
                    files = recorder.finish(ev.picture, args.scale)
                    state = "stopped early at" if ev.cancelled else "finished"
                    print(f"{state} step {ev.step}; wrote " + ", ".join(sorted(files.values())), file=sys.stderr)
                    return EXIT_CANCELLED if ev.cancelled else EXIT_OK
    except BadRequest as e:
        return _fail(str(e), EXIT_USAGE)
    except SynthError as e:
        return _fail(str(e), EXIT_FAILED)
    finally:
        if bar:
            bar.close()
    return _fail("the run ended without a result", EXIT_FAILED)


def cmd_render(args: argparse.Namespace) -> int:
    from .drawing import Drawing, DrawingFormatError, atomic_write_bytes
    from .outputs import png_bytes
    from .rasterize import render_drawing

    if args.scale <= 0:
        return _fail("--scale must be positive", EXIT_USAGE)
    try:
        drawing = Drawing.load(args.drawing)
    except DrawingFormatError as e:
        return _fail(str(e), EXIT_USAGE)
    if max(drawing.width, drawing.height) * args.scale > 16384:
        return _fail("the image would be larger than 16384 px: lower --scale", EXIT_USAGE)
    try:
        atomic_write_bytes(args.out, png_bytes(render_drawing(drawing, args.scale)))
    except OSError as e:
        return _fail(f"cannot write {args.out}: {e.strerror or e}", EXIT_FAILED)
    print(f"wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "render":
        return cmd_render(args)
    return cmd_run(args)
