"""Headless entry: draw a prompt (or sketch an image) into a .blend, optionally render it and its animation.

Works both ways, arguments after ``--``:
    blender -b -P scripts/render.py -- --prompt "a red circle" --out out/drawing.blend --render out/final.png
    python scripts/render.py -- --prompt "a red circle" --model builtin --out out/drawing.blend
    python scripts/render.py -- --method styleclipdraw --prompt "a cat" --style starry.png --out out/style.blend
    python scripts/render.py -- --method clipasso --image photo.png --strokes 16 --seeds 3 --out out/sketch.blend
    python scripts/render.py -- --prompt "a cat" --init start.json --lock 0-5,8 --add 16 --out out/more.blend
    python scripts/render.py -- --prompt "a cat" --ladder 64,32,16,8,4 --out out/ladder.blend
    python scripts/render.py -- --prompt-at 1:"a red circle" --prompt-at 48:"a blue square" --out out/morph.blend
    blender -b -P scripts/render.py -- --method clipasso --from-camera --frames 1-48 --open scene.blend --out shot.blend --animation frames/

It enables the add-on (an installed CLIPDraw extension if there is one, else the repository's
``blender_addon``), copies the options into the scene's settings and the add-on's preferences,
and runs the same ``clipdraw.run`` operator as the panel (blocking in background mode). The
.blend is saved compressed, first; then ``--drawing``, ``--render`` (the last snapshot frame) and
``--animation`` (every frame). Every argument and output path is checked before Blender starts.

Exit codes: 0 done; 1 the run or a write failed (one line each; the .blend is still written with
the last good drawing, in a temporary folder if --out no longer takes it; 1 wins over the signal
codes below); 2 bad arguments (one line, nothing run or written; also a run the add-on refuses, such as
--init-active without a drawing to continue); 130 (SIGINT, Ctrl-C) or
143 (SIGTERM: ``timeout``, ``kill``, render farms) when a signal stopped the run after its current
step: the .blend and ``--drawing`` are written with the drawing so far, renders are skipped. A
second Ctrl-C during the run aborts at once (a repeated SIGTERM does not: ``timeout`` sends it
twice); a signal before the run started writes nothing.
"""

from __future__ import annotations

import signal

EARLY_SIGNALS: list[int] = []  # SIGINT/SIGTERM that came while Python was still loading this script
if __name__ == "__main__":  # noted, not a traceback; ``main`` takes them over
    for _sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(_sig, lambda signum, frame: EARLY_SIGNALS.append(signum))

import argparse
import contextlib
import importlib
import math
import os
import stat
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from synth_core import (
    files,  # torch-free, like everything imported here
    formats,
)
from synth_core import request as rules  # the engine's own request rules and limits
from synth_core.interrupts import SIGNALS, exit_code, exit_now, signal_name

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_FRAME = rules.MAX_FRAME
MAX_SEED = 2**31 - 1  # the Seed setting is a Blender int
MAX_SAMPLES = 1 << 24  # Cycles' most samples
MIN_RENDER_PX, MAX_RENDER_PX = 4, 16384  # Blender's smallest resolution; a sane largest
BLEND_MAGIC = (b"BLENDER", b"\x1f\x8b", b"\x28\xb5\x2f\xfd")  # plain, gzip- and zstd-compressed .blend
LIMITS = {"strokes": (1, rules.MAX_STROKES), "steps": (1, rules.MAX_STEPS),
          "canvas": (rules.MIN_CANVAS, rules.MAX_CANVAS), "snapshot_every": (1, rules.MAX_STEPS),
          "frames_per_snapshot": (1, 100_000), "augmentations": (0, rules.MAX_AUGMENTATIONS), "strength": (0, 100),
          "seeds": (1, rules.MAX_SEEDS), "threads": (0, rules.MAX_THREADS)}
METHODS = ("clipdraw", "styleclipdraw", "clipasso")
PANEL_METHOD = {"clipdraw": "CLIPDRAW", "styleclipdraw": "STYLE", "clipasso": "SKETCH"}
# options that belong to one method: given with another one, they are a mistake, not ignored
ONLY_FOR = {"style": "styleclipdraw", "strength": "styleclipdraw", "style_weights": "styleclipdraw",
            "image": "clipasso", "seeds": "clipasso", "no_mask": "clipasso", "no_overlay": "clipasso",
            "from_camera": "clipasso"}
# options of the camera's picture sequence: given without --from-camera, they are a mistake
CAMERA_ONLY = ("frames", "mask_collection", "coherence", "boil", "render_engine")
DEFAULTS = {"strokes": 128, "sketch_strokes": 16, "strength": 50.0, "style_weights": "imagenet", "seeds": 3,
            "canvas": [224]}
KEEP = {"none": "NONE", "selected": "SELECTED", "locked": "LOCKED"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line on stderr, exit code 2
        print(f"render.py: error: {message} (see --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scripts/render.py", description="Draw a prompt, or sketch an image, with CLIP into a .blend "
                "(headless).",
                usage="blender -b -P scripts/render.py -- --prompt TEXT --out FILE.blend [options]\n"
                      "       python scripts/render.py -- --method clipasso --image IMAGE --out FILE.blend [options]")
    job = p.add_argument_group("job (as the synth_core CLI)")
    job.add_argument("--method", default="clipdraw", choices=METHODS,
                     help="clipdraw: text to drawing (default); styleclipdraw: text + style image; "
                          "clipasso: image to sketch")
    job.add_argument("--prompt", default=None, help='what to draw, e.g. "a red circle" (not for clipasso)')
    job.add_argument("--negative", action="append", default=[], metavar="TEXT", help="negative prompt (repeatable)")
    job.add_argument("--style", default=None, metavar="IMAGE", help="styleclipdraw: the style image")
    job.add_argument("--strength", type=float, default=None, help="styleclipdraw: style strength 0-100 (default 50)")
    job.add_argument("--style-weights", default=None, metavar="W",
                     help="styleclipdraw: VGG-16 weights: imagenet (default), a .pth file, or untrained")
    job.add_argument("--image", default=None, metavar="IMAGE", help="clipasso: the picture to sketch")
    job.add_argument("--seeds", type=int, default=None, help="clipasso: best of N seeds, one batch (default 3)")
    job.add_argument("--no-mask", action="store_true", default=None, help="clipasso: ignore the image's alpha")
    job.add_argument("--strokes", type=int, default=None, help="number of strokes (default 128; clipasso 16)")
    job.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    job.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    job.add_argument("--canvas", type=int, nargs="+", default=None, metavar="PX",
                     help="canvas size: PX or W H (default 224; with --init the drawing's)")
    job.add_argument("--model", default=rules.DEFAULT_MODEL, help="open_clip NAME:TAG, a checkpoint, or builtin")
    job.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    job.add_argument("--precision", default="auto", choices=["auto", "float32"],
                     help="the model's arithmetic: auto (bfloat16 on an NVIDIA GPU, float32 elsewhere) or float32")
    job.add_argument("--augmentations", type=int, default=0, metavar="N", help="augmented copies per step (0: default)")
    job.add_argument("--max-width", type=float, default=None, metavar="PX", dest="max_width",
                     help="clipdraw/styleclipdraw: the widest a stroke may grow, in canvas pixels (default: the "
                          "model's own limit)")
    job.add_argument("--tidy", action=argparse.BooleanOptionalAction, default=None,
                     help="after the run remove the strokes that do not help and fine-tune the rest; with "
                          "--prompt-at, hide them at each key instead (default: the method's own setting, on "
                          "for clipdraw)")
    job.add_argument("--cache-dir", default="", help="where model weights are looked for / downloaded")
    job.add_argument("--threads", type=int, default=0, metavar="N",
                     help="CPU threads for torch (default 0: every core; no UI to keep responsive here)")
    more = p.add_argument_group("drawing with the artist")
    more.add_argument("--init", default=None, metavar="DRAWING",
                      help="continue this drawing (.json or .svg): its strokes come first, on its canvas")
    more.add_argument("--init-active", action="store_true",
                      help="continue the active Grease Pencil or curve object of the --open scene (current frame)")
    more.add_argument("--lock", default=None, metavar="INDICES",
                      help="--init: strokes that never change, e.g. 0-5,8")
    more.add_argument("--keep", default=None, choices=list(KEEP),
                      help="--init-active: strokes that never change: none, selected or those on locked layers")
    more.add_argument("--add", type=int, default=None, metavar="N",
                      help="--init / --init-active: new strokes drawn after the drawing's (default 0)")
    more.add_argument("--ladder", default=None, metavar="COUNTS",
                      help="abstraction ladder, e.g. 64,32,16,8,4: one level per count (the first is the stroke "
                           "count); one Grease Pencil layer, or curve object, each")
    cam = p.add_argument_group("sketching what the scene camera sees (clipasso)")
    cam.add_argument("--from-camera", action="store_true", default=None,
                     help="sketch the --open scene's camera view frame by frame (a sketch animation, one drawing per "
                          "frame, each from the last one's strokes) instead of --image")
    cam.add_argument("--frames", default=None, metavar="FIRST-LAST",
                     help="--from-camera: the scene frames to sketch, e.g. 1-48 (default: the scene's range)")
    cam.add_argument("--mask-collection", default=None, metavar="NAME",
                     help="--from-camera: the collection of objects to sketch (default: every object that renders)")
    cam.add_argument("--coherence", type=float, default=None, metavar="W",
                     help=f"--from-camera: how much strokes pay for moving relative to each other "
                          f"(default {rules.DEFAULT_COHERENCE:g}; 0: off)")
    cam.add_argument("--boil", type=float, default=None, metavar="PX",
                     help="--from-camera: hand-drawn line boil, px of per-frame jitter (default 0)")
    cam.add_argument("--render-engine", default=None, choices=["workbench", "scene"],
                     help="--from-camera: how the camera's pictures are rendered (default workbench; scene: the "
                          "scene's own engine); the mask is always Workbench")
    more.add_argument("--prompt-at", action="append", default=[], metavar="FRAME:PROMPT",
                      help='key a prompt on a frame, e.g. 1:"a red circle" (repeatable; replaces --prompt): the '
                           "drawing morphs from one to the next")
    out = p.add_argument_group("Blender output")
    out.add_argument("--out", required=True, help="the .blend file to write (compressed)")
    out.add_argument("--open", default="", metavar="FILE.blend",
                     help="draw into this file's scene (with 'blender -b FILE.blend -P' it is already open); "
                          "without one the drawing goes into an empty scene")
    out.add_argument("--output", default="grease-pencil", choices=["grease-pencil", "curves"])
    out.add_argument("--placement", default="camera", choices=["camera", "cursor"],
                     help="fit the scene camera's view (a camera is added if needed) or the front plane at the cursor")
    out.add_argument("--snapshot-every", type=int, default=10, metavar="K", help="keyframe every K steps (default 10)")
    out.add_argument("--final-only", action="store_true", help="keep only the final drawing (no animation)")
    out.add_argument("--start-frame", type=int, default=1)
    out.add_argument("--frames-per-snapshot", type=int, default=1)
    out.add_argument("--drawing", default="", metavar="FILE.json", help="also write the final Drawing (engine format)")
    out.add_argument("--no-overlay", action="store_true", default=None,
                     help="clipasso: no image empty showing the source image under the sketch")
    ren = p.add_argument_group("rendering")
    ren.add_argument("--render", default="", metavar="FILE.png", help="render the last frame to this PNG")
    ren.add_argument("--animation", default="", metavar="DIR", help="render every frame as PNGs into DIR")
    ren.add_argument("--engine", default="workbench", choices=["workbench", "eevee", "cycles"])
    ren.add_argument("--samples", type=int, default=16, help="EEVEE/Cycles samples (default 16)")
    ren.add_argument("--scale", type=float, default=1.0, help="render size as a multiple of the canvas (default 1)")
    run = p.add_argument_group("engine process")
    run.add_argument("--runner", default="auto", choices=["auto", "in-process", "subprocess"])
    run.add_argument("--python", default="", help="worker Python for the subprocess runner (default: automatic)")
    return p


def script_args(argv: list[str]) -> list[str]:
    """The arguments after ``--`` (Blender's own come before it), else everything after the script."""
    return argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_method_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Each method's required inputs, and no option of another method (a likely mistake)."""
    for name, method in ONLY_FOR.items():
        if getattr(args, name) is not None and args.method != method:
            parser.error(f"{_option(name)} is for --method {method}, not {args.method}")
    if args.method == "clipasso":
        if args.prompt is not None or args.negative or args.prompt_at:
            parser.error("--method clipasso sketches --image: it takes no --prompt, --prompt-at or --negative")
        if args.image is None and not args.from_camera:
            parser.error("--method clipasso needs --image IMAGE (the picture to sketch) or --from-camera")
        if args.image is not None and args.from_camera:
            parser.error("--image and --from-camera both name what to sketch: give one")
    elif args.prompt_at:
        if args.prompt is not None:
            parser.error("--prompt-at replaces --prompt: give one or the other")
    else:
        if args.prompt is None:
            parser.error(f"--method {args.method} needs --prompt TEXT: say what to draw")
        if not args.prompt.strip():
            parser.error("--prompt is empty: say what to draw")
    if args.method == "styleclipdraw" and args.style is None:
        parser.error("--method styleclipdraw needs --style IMAGE: the style image")
    for name in ("style", "image"):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            parser.error(f"{_option(name)} {path!r} does not exist")


def check_camera_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--from-camera with its options, read into ``args.frame_range`` ((first, last), or None for the
    scene's range); one line and exit 2 for a mistake."""
    args.frame_range = None
    for name in CAMERA_ONLY:
        if getattr(args, name) is not None and not args.from_camera:
            parser.error(f"{_option(name)} needs --from-camera")
    if not args.from_camera:
        return
    if args.init is not None or args.init_active:
        parser.error("--from-camera sketches a new animation: it cannot continue a drawing (--init, --init-active)")
    if args.frames is not None:
        try:
            args.frame_range = frame_range(args.frames)
        except ValueError as e:
            parser.error(f"--frames: {e}")
    if args.coherence is not None and not (math.isfinite(args.coherence) and 0 <= args.coherence <= rules.MAX_COHERENCE):
        parser.error(f"--coherence must be between 0 and {rules.MAX_COHERENCE:g}, got {args.coherence:g}")
    if args.boil is not None and not (math.isfinite(args.boil) and 0 <= args.boil <= rules.MAX_BOIL):
        parser.error(f"--boil must be between 0 and {rules.MAX_BOIL:g} px, got {args.boil:g}")
    if not args.open and not _blend_is_open():
        parser.error("--from-camera needs --open FILE.blend: the scene whose camera is sketched")


def frame_range(text: str) -> tuple[int, int]:
    """"1-48" -> (1, 48), "7" -> (7, 7): scene frames, in the spelling of the other range options;
    ValueError for an empty, reversed or out-of-range one."""
    part = text.strip()
    if not part:
        raise ValueError("the frame range is empty: give FIRST-LAST, e.g. 1-48")
    first, dash, last = part.partition("-")
    if not (first.strip().isdigit() and (not dash or last.strip().isdigit())):
        raise ValueError(f"a frame range is FIRST-LAST, e.g. 1-48: {part!r} is not one")
    lo, hi = int(first), int(last) if dash else int(first)
    if hi < lo:
        raise ValueError(f"the frame range {lo}-{hi} is reversed: give the first frame first, e.g. {hi}-{lo}")
    if hi > MAX_FRAME:
        raise ValueError(f"frames go up to {MAX_FRAME}, got {hi}")
    return lo, hi


def check_stage_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--init / --init-active with their --lock / --keep / --add, --ladder and --prompt-at: each
    read into plain values (``args.init_drawing``, ``args.lock_list``, ``args.ladder_list``,
    ``args.keys``), or one line and exit 2."""
    args.init_drawing, args.lock_list, args.ladder_list, args.keys = None, [], [], []
    continuing = args.init is not None or args.init_active
    for name, needs in (("lock", "init"), ("keep", "init_active"), ("add", None)):
        if getattr(args, name) is not None and not (continuing if needs is None else getattr(args, needs)):
            wanted = "--init or --init-active" if needs is None else _option(needs)
            parser.error(f"{_option(name)} needs {wanted}: the drawing to continue")
    if args.init is not None and args.init_active:
        parser.error("--init and --init-active both name a drawing to continue: give one")
    if continuing and args.strokes is not None:
        parser.error("--strokes is for a new drawing: when continuing, --add N gives the new strokes")
    if args.add is not None and not 0 <= args.add <= rules.MAX_STROKES:
        parser.error(f"--add must be between 0 and {rules.MAX_STROKES}, got {args.add}")
    args.add = args.add or 0
    if args.init_active and not args.open and not _blend_is_open():
        parser.error("--init-active needs --open FILE.blend: the scene whose active object is continued")
    if args.init is not None:
        args.init_drawing = _init_drawing(parser, args)
    try:
        args.lock_list = rules.parse_indices(args.lock) if args.lock is not None else []
    except ValueError as e:
        parser.error(f"--lock: {e}")
    try:
        args.ladder_list = rules.parse_counts(args.ladder) if args.ladder else []
    except ValueError as e:
        parser.error(f"--ladder: {e}")
    if args.lock_list and args.init_drawing is not None:
        n = len(args.init_drawing)
        if args.lock_list[-1] >= n:
            parser.error(f"--lock names stroke {args.lock_list[-1]} but the --init drawing has {n} strokes "
                         f"(0 to {n - 1})")
        if len(args.lock_list) == n and not args.add:
            parser.error(f"--lock keeps all {n} strokes and --add is 0: there is nothing to draw")
    if args.prompt_at and args.ladder:
        parser.error("--prompt-at and --ladder cannot be combined: a ladder draws one prompt")
    args.keys = [prompt_at(parser, text) for text in args.prompt_at]
    frames = sorted(frame for frame, _ in args.keys)
    if len(set(frames)) != len(frames):
        parser.error(f"--prompt-at keys two prompts on frame {next(f for f in frames if frames.count(f) > 1)}: "
                     "one per frame")
    args.keys.sort()
    check_ladder_fit(parser, args)


def _blend_is_open() -> bool:
    """Blender was started with a .blend (``blender -b FILE.blend -P render.py``)."""
    bpy = sys.modules.get("bpy")
    return bool(bpy is not None and getattr(bpy.data, "filepath", ""))


def _init_drawing(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The --init drawing, read now; its canvas is the run's (a different --canvas is a mistake)."""
    if not Path(args.init).is_file():
        parser.error(f"--init {args.init!r} does not exist")
    try:
        drawing = formats.load(args.init)
    except (OSError, ValueError) as e:
        parser.error(f"cannot read --init {args.init!r}: {e}")
    size = [drawing.width, drawing.height]
    if args.canvas is not None and (args.canvas * 2 if len(args.canvas) == 1 else args.canvas) != size:
        parser.error(f"--canvas {' '.join(map(str, args.canvas))} is not the --init drawing's {size[0]}x{size[1]}: "
                     "leave --canvas out")
    args.canvas = size
    return drawing


def prompt_at(parser: argparse.ArgumentParser, text: str) -> tuple[int, str]:
    """One --prompt-at FRAME:PROMPT."""
    try:
        frame, prompt = rules.parse_keyed_prompt(text)
    except ValueError as e:
        parser.error(f"--prompt-at: {e}")
    if not 0 <= frame <= MAX_FRAME:  # a scene starts at frame 0 or later
        parser.error(f"--prompt-at frames must be between 0 and {MAX_FRAME}, got {frame}")
    return frame, prompt


def check_ladder_fit(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A ladder starts at the run's stroke count: --strokes (or left out), or the drawing's plus --add."""
    if not args.ladder_list:
        return
    first = args.ladder_list[0]
    if args.init_drawing is not None:
        total = len(args.init_drawing) + args.add
        if first != total:
            parser.error(f"--ladder starts at {first} strokes but the --init drawing has {len(args.init_drawing)} "
                         f"and --add is {args.add} ({total}): start the ladder at {total}")
    elif args.strokes is not None and args.strokes != first:
        parser.error(f"--ladder starts at {first} strokes but --strokes is {args.strokes}: leave --strokes out")
    elif not args.init_active:
        args.strokes = first


def fill_defaults(args: argparse.Namespace) -> None:
    """Defaults that depend on the method (a sketch has 16 strokes by default)."""
    if args.canvas is None:
        args.canvas = DEFAULTS["canvas"]
    if args.strokes is None:
        args.strokes = DEFAULTS["sketch_strokes" if args.method == "clipasso" else "strokes"]
    for name in ("strength", "style_weights", "seeds"):
        if getattr(args, name) is None:
            setattr(args, name, DEFAULTS[name])
    args.no_mask, args.no_overlay = bool(args.no_mask), bool(args.no_overlay)
    args.from_camera = bool(args.from_camera)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_method_options(parser, args)
    check_camera_options(parser, args)
    check_stage_options(parser, args)
    fill_defaults(args)
    if len(args.canvas) not in (1, 2):
        parser.error("--canvas takes one size or a width and a height")
    args.canvas = args.canvas * 2 if len(args.canvas) == 1 else args.canvas
    if args.method == "clipasso" and args.canvas[0] != args.canvas[1]:
        parser.error("--method clipasso sketches on a square canvas: give --canvas one size")
    for name, (lo, hi) in LIMITS.items():
        values = args.canvas if name == "canvas" else [getattr(args, name)]
        for v in values:
            if not lo <= v <= hi:
                parser.error(f"{_option(name)} must be between {lo} and {hi}, got {v:g}")
    for problem in (number_problem(args), model_problem(args.model), request_problem(args), input_problem(args),
                    output_problem(args)):
        if problem:
            parser.error(problem)
    return args


def number_problem(args: argparse.Namespace) -> str | None:
    """Numbers Blender itself would refuse with a traceback, or clamp without a word."""
    if not 0 <= args.seed <= MAX_SEED:
        return f"--seed must be between 0 and {MAX_SEED}, got {args.seed}"
    if not 1 <= args.samples <= MAX_SAMPLES:
        return f"--samples must be between 1 and {MAX_SAMPLES}, got {args.samples}"
    snapshots = 1 if args.final_only or args.keys or args.ladder_list else args.steps // args.snapshot_every + 1
    last = args.start_frame + (snapshots - 1) * args.frames_per_snapshot
    if not 0 <= args.start_frame or last > MAX_FRAME:
        return (f"--start-frame must be 0 or more and the last snapshot's frame ({last}) at most {MAX_FRAME}: "
                "lower --start-frame or --frames-per-snapshot, or raise --snapshot-every")
    if not math.isfinite(args.scale) or args.scale <= 0:
        return f"--scale must be a positive number, got {args.scale}"
    if round(min(args.canvas) * args.scale) < MIN_RENDER_PX or max(args.canvas) * args.scale > MAX_RENDER_PX:
        return f"--scale must keep the render between {MIN_RENDER_PX} and {MAX_RENDER_PX} px, got {args.scale:g}"
    return None


def model_problem(spec: str) -> str | None:
    """The engine's torch-free model-spec check (synth_core.request), in this script's option words."""
    spec = spec.strip()
    if not spec:
        return f"--model is empty: use {rules.DEFAULT_MODEL} (the default), NAME:TAG, a checkpoint, or builtin"
    problem = rules.model_problem(spec)
    return f"--{problem}" if problem else None


def engine_request(args: argparse.Namespace) -> dict:
    """The request the add-on will send (as ``properties.request_from`` builds it), for the engine's rules."""
    req = {"method": args.method, "strokes": args.strokes, "steps": args.steps, "seed": args.seed,
           "canvas": list(args.canvas), "model": args.model, "device": args.device,
           "snapshot_every": args.snapshot_every, "threads": args.threads, "precision": args.precision}
    if args.method != "clipasso":
        req.update(prompt=args.prompt, negative=list(args.negative))
    if args.keys:
        del req["prompt"]
        req["keyed_prompts"] = [[frame, prompt] for frame, prompt in args.keys]
    if args.ladder_list:
        req["ladder"] = list(args.ladder_list)
    if args.init is not None or args.init_active:  # the active object's drawing is only known in Blender
        del req["strokes"]
        req.update(init=args.init or "the active object", lock=list(args.lock_list), add=args.add)
    if args.method == "styleclipdraw":
        req.update(style_image=args.style, style_strength=args.strength, style_weights=args.style_weights)
    if args.method == "clipasso":
        req.update(image=args.image, seeds=args.seeds, mask=not args.no_mask)
    if args.from_camera:  # the frames are rendered in Blender: stand-ins for the engine's rules
        del req["image"]
        first, last = args.frame_range or (1, 1)
        numbers = list(range(first, last + 1))
        req.update(frames=[f"camera frame {f}" for f in numbers], frame_numbers=numbers)
        for name in ("coherence", "boil"):
            if getattr(args, name) is not None:
                req[name] = getattr(args, name)
    if args.augmentations > 0:
        req["augmentations"] = args.augmentations
    if args.tidy is not None:
        req["tidy"] = args.tidy
    if args.max_width is not None:
        req["max_width"] = args.max_width
    if args.cache_dir.strip():
        req["cache_dir"] = args.cache_dir
    return req


def request_problem(args: argparse.Namespace) -> str | None:
    """The engine's own request rules (synth_core.request), applied here before Blender starts."""
    try:
        rules.parse_request(engine_request(args))
    except rules.BadRequest as e:
        return str(e)
    return None


def input_problem(args: argparse.Namespace) -> str | None:
    """Files the run reads: there, and of the right kind."""
    if args.open:
        problem = blend_problem(args.open)
        if problem:
            return problem
    if args.python and not (os.path.isfile(args.python) and os.access(args.python, os.X_OK)):
        return f"--python {args.python!r} is not an executable file"
    weights = args.style_weights if args.method == "styleclipdraw" else "imagenet"
    if weights not in ("imagenet", "untrained") and not os.path.isfile(weights):
        return f"--style-weights must be imagenet, untrained or a .pth file; {weights!r} is not a file"
    if args.cache_dir.strip() and os.path.exists(args.cache_dir) and not os.path.isdir(args.cache_dir):
        return f"--cache-dir {args.cache_dir!r} is not a folder"
    return None


def blend_problem(path: str) -> str | None:
    """Why ``--open`` is not a .blend Blender can open (checked by its first bytes), or None."""
    try:
        with files.open_regular(path, 1 << 40, "--open file") as f:
            head = f.read(len(BLEND_MAGIC[0]))
    except files.FileRefused as e:
        return str(e)
    except OSError as e:
        return f"cannot read --open file {path!r}: {e.strerror or e}"
    if not head.startswith(BLEND_MAGIC):
        return f"--open {path!r} is not a .blend file"
    return None


def output_problem(args: argparse.Namespace) -> str | None:
    """Every file the run will write: a writable place, not a folder or device, no output over an input."""
    if not args.out.lower().endswith(".blend"):
        return f"--out must name a .blend file, got {args.out!r}"
    if args.render and not args.render.lower().endswith(".png"):
        return f"--render must name a .png file, got {args.render!r}"
    outputs = [(f"--{k}", getattr(args, k)) for k in ("out", "drawing", "render") if getattr(args, k)]
    for option, path in outputs:
        problem = target_problem(path, option)
        if problem:
            return problem
    if args.animation:
        problem = target_problem(args.animation, "--animation", folder=True)
        if problem:
            return problem
    return clash_problem(args, outputs)


def clash_problem(args: argparse.Namespace, outputs: list[tuple[str, str]]) -> str | None:
    """Two outputs on one file, or an output over one of the run's inputs."""
    inputs = [(f"--{k.replace('_', '-')}", getattr(args, k)) for k in ("image", "style", "style_weights", "python",
                                                                       "model", "open", "init") if getattr(args, k)]
    seen: dict[str, str] = {}
    for option, path in outputs:
        real = os.path.realpath(path)
        if real in seen:
            return f"{seen[real]} and {option} name the same file {path!r}"
        seen[real] = option
        for source, given in inputs:
            if (option, source) != ("--out", "--open") and os.path.isfile(given) and os.path.realpath(given) == real:
                return f"{option} {path!r} would overwrite the {source} file"
    return None


def target_problem(path: str, option: str, folder: bool = False) -> str | None:
    """Why nothing can be written at ``path`` (a file, or with ``folder`` a folder of files), or None.

    Proven with a probe file in the nearest existing folder, as root's permission bits say
    nothing about /proc or a read-only mount.
    """
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as e:  # ENOTDIR: a parent is a file; ELOOP, EACCES...
        return f"cannot write {option} {path!r}: {e.strerror or e}"
    if st is not None and folder and not stat.S_ISDIR(st.st_mode):
        return f"{option} {path!r} is not a folder"
    if st is not None and not folder and not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return f"{option} {path!r} is {kind}: refusing to replace it"
    where = real if st is not None and folder else real.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    if not where.is_dir():
        return f"cannot write {option} {path!r}: {where} is not a folder"
    try:
        fd, probe = tempfile.mkstemp(prefix=".render-py-probe-", dir=where)
    except OSError as e:
        return f"cannot write {option} {path!r}: {where} does not take files ({e.strerror or e})"
    os.close(fd)
    os.unlink(probe)
    return None


def enable_addon():
    """The add-on's package: an enabled CLIPDraw extension, else the repository's blender_addon."""
    import addon_utils
    import bpy

    for name in bpy.context.preferences.addons.keys():
        if name == "blender_addon" or name.endswith(".clipdraw"):
            return importlib.import_module(name)
    def fail(exc: BaseException) -> None:
        raise exc

    mod = addon_utils.enable("blender_addon", default_set=True, handle_error=fail)
    if mod is None:
        raise RuntimeError("the CLIPDraw add-on could not be enabled")
    return mod


def apply_settings(args: argparse.Namespace, package: str) -> None:
    import bpy

    scene = bpy.context.scene
    s = scene.clipdraw
    s.method = PANEL_METHOD[args.method]
    s.prompt, s.negative = args.prompt or "", "; ".join(args.negative)
    s.keyed_prompts.clear()
    for frame, prompt in args.keys:
        key = s.keyed_prompts.add()
        key.frame, key.prompt = frame, prompt
    s.ladder = ",".join(map(str, args.ladder_list))
    s.continue_active, s.keep, s.add_strokes = args.init_active, KEEP[args.keep or "none"], args.add
    if args.method == "clipasso":
        s.sketch_strokes, s.seeds, s.use_mask, s.show_overlay = args.strokes, args.seeds, not args.no_mask, \
            not args.no_overlay
        if args.from_camera:
            apply_camera_settings(args, s)
        else:
            s.source_image.source, s.source_image.filepath = "FILE", os.path.abspath(args.image)
    elif args.strokes is not None:
        s.strokes = args.strokes
    if args.method == "styleclipdraw":
        s.style_image.source, s.style_image.filepath = "FILE", os.path.abspath(args.style)
        s.style_strength, s.style_weights = args.strength, args.style_weights
    s.steps, s.seed = args.steps, args.seed
    s.canvas = args.canvas
    s.model, s.augmentations = args.model, args.augmentations
    if args.tidy is not None:
        s.tidy = s.sketch_tidy = args.tidy
    s.max_width = args.max_width or 0.0  # 0: the model's own limit
    s.output = "CURVES" if args.output == "curves" else "GREASE_PENCIL"
    s.target = "NEW"
    s.placement = "CAMERA" if args.placement == "camera" else "CURSOR"
    s.animation = "FINAL" if args.final_only else "KEYFRAMES"
    s.snapshot_every, s.start_frame = args.snapshot_every, args.start_frame
    s.frames_per_snapshot = args.frames_per_snapshot
    prefs = bpy.context.preferences.addons[package].preferences
    prefs.runner = {"auto": "AUTO", "in-process": "IN_PROCESS", "subprocess": "SUBPROCESS"}[args.runner]
    prefs.python_path = os.path.abspath(args.python) if args.python else ""
    prefs.device = args.device.upper()
    prefs.precision = args.precision.upper()
    prefs.cache_dir = args.cache_dir
    prefs.threads = args.threads or (os.cpu_count() or 1)  # the preference's 0 would leave a core idle
    if s.placement == "CAMERA" and not args.from_camera:  # the camera's own view is sketched: keep its resolution
        rendering = importlib.import_module(f"{package}.rendering")
        cam = rendering.ensure_camera(scene, args.canvas[0], args.canvas[1], args.scale)
        s.camera_distance = 10.0 if cam.name == "CLIPDraw Camera" else s.camera_distance


def apply_camera_settings(args: argparse.Namespace, s) -> None:
    """--from-camera's settings: the Camera source, its frames, objects, engine, coherence and boil."""
    import bpy

    src = s.source_image
    src.source = "CAMERA"
    src.use_scene_range = args.frame_range is None
    if args.frame_range is not None:
        src.frame_start, src.frame_end = args.frame_range
    src.mask_collection = bpy.data.collections[args.mask_collection] if args.mask_collection else None
    src.render_engine = (args.render_engine or "workbench").upper()
    s.coherence = rules.DEFAULT_COHERENCE if args.coherence is None else args.coherence
    s.boil = args.boil or 0.0


def scene_problem(args: argparse.Namespace) -> str | None:
    """What only the opened scene can say is wrong with the options (one line, exit 2)."""
    import bpy

    if args.from_camera and args.mask_collection and args.mask_collection not in bpy.data.collections:
        return f"--mask-collection {args.mask_collection!r} is not a collection of the --open scene"
    return None


def open_scene(args: argparse.Namespace) -> None:
    """The scene to draw into: --open FILE, the file Blender was started with, or an empty one."""
    import bpy

    if args.open:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.open))
    elif not bpy.data.filepath:  # the startup file's cube and light are not part of a drawing
        bpy.ops.wm.read_homefile(use_empty=True)


class Signals:
    """SIGINT and SIGTERM, as in the engine's CLI and worker (synth_core.interrupts).

    Before the run a signal is noted and the script stops at its next checkpoint, having written
    nothing; during the run the first one stops the drawing after its current step (the .blend is
    then saved with it) and a second Ctrl-C aborts at once; afterwards it skips the renders.
    Handlers only set flags: raising inside Blender's operators would print a traceback.
    """

    def __init__(self) -> None:
        self.signum: int | None = EARLY_SIGNALS[0] if EARLY_SIGNALS else None
        self.stop_run = None  # set while the run goes on: asks it to stop after the current step

    def install(self) -> None:
        for sig in SIGNALS:
            signal.signal(sig, self._handle)
        if self.signum is None and EARLY_SIGNALS:  # one came just before the handlers changed
            self.signum = EARLY_SIGNALS[0]

    @property
    def code(self) -> int | None:
        return None if self.signum is None else exit_code(self.signum)

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is None:
            self.signum = signum
            if self.stop_run is not None:
                say(f"{signal_name(signum)}: stopping after this step, then saving the drawing so far "
                    "(Ctrl-C again to abort)")
                self.stop_run()
        elif self.stop_run is not None and signum == signal.SIGINT:  # a repeated SIGTERM is the same request
            say(f"error: aborted by {signal_name(signum)}: nothing was written", error=True)
            exit_now(exit_code(signum))

    def stopped(self, when: str) -> int | None:
        """At a checkpoint: the exit code if a signal came, after saying so."""
        if self.signum is None:
            return None
        say(f"error: stopped by {signal_name(self.signum)} {when}: nothing was written", error=True)
        return self.code


EGL_PROBE = "EGL Error (0x3009)"  # Mesa turning down an OpenGL version Blender asks for first


def start_gpu_quietly(bpy) -> None:
    """Make Blender's GPU context with a 4 px render of a throwaway scene, stderr caught meanwhile.

    The first render in background mode probes OpenGL versions through EGL, and Mesa answers the
    ones it lacks with three "EGL Error (0x3009)" lines on stderr: harmless, but in a render log
    they read as failures. Every other line caught is passed on; nothing of the scene stays.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            _probe_render(bpy)
        except Exception:  # no GPU at all: the real render says so in its own words
            pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        caught.seek(0)
        rest = [line for line in caught.read().decode(errors="replace").splitlines(True) if EGL_PROBE not in line]
    sys.stderr.write("".join(rest))
    sys.stderr.flush()


def _probe_render(bpy) -> None:
    scene = bpy.data.scenes.new("CLIPDraw GPU probe")
    camera = bpy.data.cameras.new("CLIPDraw GPU probe")
    obj = bpy.data.objects.new("CLIPDraw GPU probe", camera)
    try:
        scene.collection.objects.link(obj)
        scene.camera = obj
        scene.render.engine = 'BLENDER_WORKBENCH'
        scene.render.resolution_x = scene.render.resolution_y = 4
        bpy.ops.render.render(scene=scene.name)
    finally:
        bpy.data.objects.remove(obj)
        bpy.data.cameras.remove(camera)
        bpy.data.scenes.remove(scene)


def say(text: str, error: bool = False) -> None:
    print(f"render.py: {text}", file=sys.stderr if error else sys.stdout, flush=True)


def run(args: argparse.Namespace, signals: Signals) -> int:
    """Open the scene, draw, then save the .blend and the extras; the exit code of the whole job."""
    import bpy

    try:
        open_scene(args)
    except RuntimeError as e:
        say(f"error: --open {args.open!r}: Blender cannot open it ({_first_line(e)})", error=True)
        return EXIT_USAGE
    problem = scene_problem(args)
    if problem:
        say(f"error: {problem}", error=True)
        return EXIT_USAGE
    try:
        package = enable_addon().__name__
        apply_settings(args, package)
    except Exception as e:  # an installed extension that fails to register, a setting Blender refuses
        say(f"error: cannot set up the CLIPDraw add-on: {_first_line(e)}", error=True)
        return EXIT_FAILED
    session = importlib.import_module(f"{package}.session")
    operators = importlib.import_module(f"{package}.operators")
    if args.render or args.animation or args.from_camera:
        start_gpu_quietly(bpy)
    stopped = signals.stopped("before the drawing started")
    if stopped is not None:
        return stopped
    say(f"{what_is_drawn(args)} with {args.method} and {args.model} ({args.steps} steps)")
    code = draw(bpy, signals, operators.stop_blocking_run, args.init or "", ",".join(map(str, args.lock_list)))
    last = session.last_run()
    obj = bpy.data.objects.get(last.object_name) if last.object_name else None
    if obj is None and (last.refused or last.error_kind == "bad_request"):  # bad input: nothing ran
        say(f"error: {_first_line(last.error)}", error=True)
        return signals.code or EXIT_USAGE
    if obj is None:
        reason = last.error or last.status or "the run did not start"
        say(f"error: no drawing was made: {_first_line(reason)}", error=True)
        return signals.code or EXIT_FAILED
    if code != EXIT_OK:
        say(f"error: the run failed ({_first_line(last.error)}); saving the last good drawing", error=True)
    return save_all(args, bpy.context.scene, obj, last, importlib.import_module(f"{package}.rendering"),
                    signals, code)


def what_is_drawn(args: argparse.Namespace) -> str:
    """The run in words, for the first line it prints."""
    if args.from_camera:
        frames = "{}-{}".format(*args.frame_range) if args.frame_range else "the scene's range"
        what = f"sketching the scene camera's view, frames {frames},"
    elif args.method == "clipasso":
        what = f"sketching {args.image!r}"
    elif args.keys:
        what = "drawing " + " then ".join(f"{p!r} at frame {f}" for f, p in args.keys)
    else:
        what = f"drawing {args.prompt!r}"
    if args.init is not None or args.init_active:
        source = repr(args.init) if args.init is not None else "the active object"
        what += f", continuing {source} with {args.add} new strokes"
    elif not args.ladder_list:
        what += f" in {args.strokes} strokes"
    if args.ladder_list:
        what += f", ladder {','.join(map(str, args.ladder_list))}"
    return what


def draw(bpy, signals: Signals, stop_run, init_file: str = "", lock: str = "") -> int:
    """The blocking ``clipdraw.run`` with signals turned into "stop after this step"; EXIT_FAILED if it failed."""
    signals.stop_run = stop_run
    if signals.signum is not None:  # came between the last checkpoint and now
        stop_run()
    try:
        bpy.ops.clipdraw.run(init_file=init_file, lock=lock)
    except RuntimeError:  # the operator reported an error; Blender printed it, session.last_run() has it
        return EXIT_FAILED
    finally:
        signals.stop_run = None
    return EXIT_OK


def save_all(args: argparse.Namespace, scene, obj, last, rendering, signals: Signals, code: int) -> int:
    """The .blend first (it holds the drawing), then each extra; every failure is one line and exit 1."""
    import bpy

    first, final = (int(f) for f in obj.get("clipdraw_frames", (args.start_frame, args.start_frame)))
    background = last.drawing.background if last.drawing is not None else (1, 1, 1, 1)
    # the render settings go into the .blend (not a --from-camera scene's: it keeps its own look)
    if not args.from_camera and not configure_renders(args, scene, rendering, background):
        code = EXIT_FAILED
    scene.frame_start, scene.frame_end = first, final
    scene.frame_set(final)
    out = os.path.abspath(args.out)
    try:
        _save_blend(bpy, out)
        say(f"wrote {out} ('{obj.name}', frames {first}-{final})")
    except (OSError, RuntimeError) as e:
        rescue_blend(bpy, out, e)
        code = EXIT_FAILED
    if args.drawing and last.drawing is not None:
        if _write(lambda: last.drawing.save(args.drawing), "--drawing", args.drawing):
            say(f"wrote the drawing to {args.drawing}")
        else:
            code = EXIT_FAILED
    if signals.signum is not None:
        if args.render or args.animation:
            say(f"skipped --render and --animation: stopped by {signal_name(signals.signum)}", error=True)
        return code if code != EXIT_OK else signals.code  # a failed write matters more
    if args.from_camera and (args.render or args.animation) and not configure_renders(args, scene, rendering,
                                                                                        background):
        code = EXIT_FAILED
    with sketch_only(args, scene, rendering):
        if args.render and not render_still(rendering, scene, os.path.abspath(args.render), final):
            code = EXIT_FAILED
        if args.animation:
            done = render_frames(rendering, scene, os.path.abspath(args.animation), first, final, signals)
            if signals.signum is not None:
                return code if code != EXIT_OK else signals.code
            code = code if done else EXIT_FAILED
    return code


def configure_renders(args: argparse.Namespace, scene, rendering, background) -> bool:
    """Flat colours on the drawing's background with --engine; False (one line said) if Blender refuses."""
    try:
        rendering.configure(scene, args.engine, background, args.samples)
        return True
    except Exception as e:  # e.g. a render engine this Blender lacks
        say(f"error: cannot set up --engine {args.engine}: {_first_line(e)}", error=True)
        return False


def sketch_only(args: argparse.Namespace, scene, rendering):
    """--from-camera: the sketched objects hidden from --render and --animation (their flags come
    back afterwards), so the frames show the sketch through the scene's own camera."""
    if not args.from_camera:
        return contextlib.nullcontext()
    import bpy

    camera_shot = importlib.import_module(f"{rendering.__name__.rpartition('.')[0]}.camera_shot")
    traced = camera_shot.chosen_objects(scene, bpy.context.view_layer, args.mask_collection or "")
    return camera_shot.hidden_from_render(traced)


def rescue_blend(bpy, out: str, error: BaseException) -> None:
    """--out stopped taking files during the run (removed, disk full): save the drawing elsewhere."""
    reason = error.strerror if isinstance(error, OSError) and error.strerror else _first_line(error)
    try:
        rescued = os.path.join(tempfile.mkdtemp(prefix="render-py-rescued-"), os.path.basename(out))
        _save_blend(bpy, rescued)
    except (OSError, RuntimeError):
        say(f"error: cannot write --out {out!r}: {reason}; nor a copy in a temporary folder", error=True)
        return
    say(f"error: cannot write --out {out!r}: {reason}; the drawing is saved in {rescued}", error=True)


def _save_blend(bpy, out: str) -> None:
    os.makedirs(os.path.dirname(out), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=out, compress=True)
    if not os.path.isfile(out):
        raise OSError(f"Blender did not write {out}")


def _write(action, option: str, path: str) -> bool:
    """Run one write; a failure is one line on stderr. True if it was written."""
    try:
        action()
        return True
    except (OSError, RuntimeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else _first_line(e)
        say(f"error: cannot write {option} {path!r}: {reason}", error=True)
        return False


def render_still(rendering, scene, path: str, frame: int) -> bool:
    if not _write(lambda: _render_to(rendering, scene, path, frame), "--render", path):
        return False
    say(f"rendered frame {frame} to {path}")
    return True


def render_frames(rendering, scene, folder: str, first: int, last: int, signals: Signals) -> bool:
    """Every frame as ``frame_NNNN.png``, one render at a time so that a signal stops between frames."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        say(f"error: cannot write --animation {folder!r}: {e.strerror or e}", error=True)
        return False
    for frame in range(first, last + 1):
        if signals.signum is not None:
            say(f"stopped by {signal_name(signals.signum)} after frame {frame - 1}: frames {first}-{frame - 1} "
                f"are in {folder}", error=True)
            return False
        path = os.path.join(folder, f"frame_{frame:04d}.png")
        if not _write(lambda p=path, f=frame: _render_to(rendering, scene, p, f), "--animation", path):
            return False
    say(f"rendered frames {first}-{last} into {folder}")
    return True


def _render_to(rendering, scene, path: str, frame: int) -> None:
    """Render ``frame`` to ``path``. Blender only prints when it cannot write an image: a new file must be there."""
    before = _stamp(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rendering.render_still(scene, path, frame)
    after = _stamp(path)
    if after is None or after == before:
        raise OSError(f"Blender wrote no image to {path}")


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _first_line(e: object) -> str:
    text = str(e).strip().removeprefix("Error: ")
    return (text.splitlines() or [type(e).__name__])[0][:300]


def main(argv: list[str] | None = None) -> int:
    signals = Signals()
    signals.install()  # first of all: a Ctrl-C while Blender loads must not end in a traceback
    args = parse(script_args(sys.argv if argv is None else argv))
    stopped = signals.stopped("before the drawing started")
    if stopped is not None:
        return stopped
    try:
        return run(args, signals)
    except Exception as e:  # a bug: one line (the traceback with SYNTH_CORE_DEBUG=1)
        if os.environ.get("SYNTH_CORE_DEBUG"):
            import traceback

            traceback.print_exc()
        say(f"error: internal error: {type(e).__name__}: {_first_line(e)} (SYNTH_CORE_DEBUG=1 shows the "
            "traceback)", error=True)
        return EXIT_FAILED


if __name__ == "__main__":
    exit_now(main())
