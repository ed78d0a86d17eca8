"""Headless entry: draw a prompt (or sketch an image) into a .blend, optionally render it and its animation.

Works both ways, arguments after ``--``:
    blender -b -P scripts/render.py -- --prompt "a red circle" --out out/drawing.blend --render out/final.png
    python scripts/render.py -- --prompt "a red circle" --model builtin --out out/drawing.blend
    python scripts/render.py -- --method styleclipdraw --prompt "a cat" --style starry.png --out out/style.blend
    python scripts/render.py -- --method clipasso --image photo.png --strokes 16 --seeds 3 --out out/sketch.blend

It enables the add-on (an installed CLIPDraw extension if there is one, else the repository's
``blender_addon``), copies the options into the scene's settings and the add-on's preferences,
and runs the same ``clipdraw.run`` operator as the panel (blocking in background mode). The
.blend is saved compressed; ``--render`` writes the last snapshot frame, ``--animation`` every
frame. Exit codes: 0 done (also when cancelled with Ctrl-C), 1 the run failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LIMITS = {"strokes": (1, 10_000), "steps": (1, 100_000), "canvas": (16, 4096), "snapshot_every": (1, 100_000),
          "frames_per_snapshot": (1, 100_000), "augmentations": (0, 64), "strength": (0, 100), "seeds": (1, 16),
          "threads": (0, 1024)}
METHODS = ("clipdraw", "styleclipdraw", "clipasso")
PANEL_METHOD = {"clipdraw": "CLIPDRAW", "styleclipdraw": "STYLE", "clipasso": "SKETCH"}
# options that belong to one method: given with another one, they are a mistake, not ignored
ONLY_FOR = {"style": "styleclipdraw", "strength": "styleclipdraw", "style_weights": "styleclipdraw",
            "image": "clipasso", "seeds": "clipasso", "no_mask": "clipasso", "no_overlay": "clipasso"}
DEFAULTS = {"strokes": 128, "sketch_strokes": 16, "strength": 50.0, "style_weights": "imagenet", "seeds": 3}


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
    job.add_argument("--canvas", type=int, nargs="+", default=[224], metavar="PX",
                     help="canvas size: PX or W H (default 224)")
    job.add_argument("--model", default="ViT-B-32:openai", help="open_clip NAME:TAG, a checkpoint, or builtin")
    job.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    job.add_argument("--augmentations", type=int, default=0, metavar="N", help="augmented copies per step (0: default)")
    job.add_argument("--cache-dir", default="", help="where model weights are looked for / downloaded")
    job.add_argument("--threads", type=int, default=0, metavar="N",
                     help="CPU threads for torch (default 0: every core; no UI to keep responsive here)")
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
        if args.prompt is not None or args.negative:
            parser.error("--method clipasso sketches --image: it takes no --prompt or --negative")
        if args.image is None:
            parser.error("--method clipasso needs --image IMAGE: the picture to sketch")
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


def fill_defaults(args: argparse.Namespace) -> None:
    """Defaults that depend on the method (a sketch has 16 strokes by default)."""
    if args.strokes is None:
        args.strokes = DEFAULTS["sketch_strokes" if args.method == "clipasso" else "strokes"]
    for name in ("strength", "style_weights", "seeds"):
        if getattr(args, name) is None:
            setattr(args, name, DEFAULTS[name])
    args.no_mask, args.no_overlay = bool(args.no_mask), bool(args.no_overlay)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_method_options(parser, args)
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
    if args.seed < 0:
        parser.error(f"--seed must be 0 or more, got {args.seed}")
    if not args.out.lower().endswith(".blend"):
        parser.error(f"--out must name a .blend file, got {args.out!r}")
    if args.render and not args.render.lower().endswith(".png"):
        parser.error(f"--render must name a .png file, got {args.render!r}")
    if args.scale <= 0 or max(args.canvas) * args.scale > 16384:
        parser.error("--scale must be positive and keep the render under 16384 px")
    if args.open and not Path(args.open).is_file():
        parser.error(f"--open {args.open!r} does not exist")
    if args.python and not Path(args.python).is_file():
        parser.error(f"--python {args.python!r} does not exist")
    return args


def enable_addon():
    """The add-on's package: an enabled CLIPDraw extension, else the repository's blender_addon."""
    import addon_utils
    import bpy

    for name in bpy.context.preferences.addons.keys():
        if name == "blender_addon" or name.endswith(".clipdraw"):
            return importlib.import_module(name)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

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
    if args.method == "clipasso":
        s.sketch_strokes, s.seeds, s.use_mask, s.show_overlay = args.strokes, args.seeds, not args.no_mask, \
            not args.no_overlay
        s.source_image.source, s.source_image.filepath = "FILE", os.path.abspath(args.image)
    else:
        s.strokes = args.strokes
    if args.method == "styleclipdraw":
        s.style_image.source, s.style_image.filepath = "FILE", os.path.abspath(args.style)
        s.style_strength, s.style_weights = args.strength, args.style_weights
    s.steps, s.seed = args.steps, args.seed
    s.canvas = args.canvas
    s.model, s.augmentations = args.model, args.augmentations
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
    prefs.cache_dir = args.cache_dir
    prefs.threads = args.threads or (os.cpu_count() or 1)  # the preference's 0 would leave a core idle
    if s.placement == "CAMERA":
        rendering = importlib.import_module(f"{package}.rendering")
        cam = rendering.ensure_camera(scene, args.canvas[0], args.canvas[1], args.scale)
        s.camera_distance = 10.0 if cam.name == "CLIPDraw Camera" else s.camera_distance


def open_scene(args: argparse.Namespace) -> None:
    """The scene to draw into: --open FILE, the file Blender was started with, or an empty one."""
    import bpy

    if args.open:
        bpy.ops.wm.open_mainfile(filepath=os.path.abspath(args.open))
    elif not bpy.data.filepath:  # the startup file's cube and light are not part of a drawing
        bpy.ops.wm.read_homefile(use_empty=True)


def run(args: argparse.Namespace) -> int:
    import bpy

    open_scene(args)
    addon = enable_addon()
    package = addon.__name__
    session = importlib.import_module(f"{package}.session")
    rendering = importlib.import_module(f"{package}.rendering")
    apply_settings(args, package)
    what = f"sketching {args.image!r}" if args.method == "clipasso" else f"drawing {args.prompt!r}"
    print(f"render.py: {what} with {args.method} and {args.model} ({args.strokes} strokes, {args.steps} steps)",
          flush=True)
    code = EXIT_OK
    try:
        bpy.ops.clipdraw.run()
    except RuntimeError as e:  # the operator reported an error (it is also in session.last_run())
        print(f"render.py: {str(e).strip()}", file=sys.stderr, flush=True)
        code = EXIT_FAILED
    last = session.last_run()
    obj = bpy.data.objects.get(last.object_name) if last.object_name else None
    if obj is None:
        print(f"render.py: no drawing was made: {last.error or last.status}", file=sys.stderr)
        return EXIT_FAILED
    if args.drawing and last.drawing is not None:
        last.drawing.save(args.drawing)
    first, final = (int(f) for f in obj.get("clipdraw_frames", (args.start_frame, args.start_frame)))
    scene = bpy.context.scene
    background = last.drawing.background if last.drawing is not None else (1, 1, 1, 1)
    rendering.configure(scene, args.engine, background, args.samples)
    scene.frame_start, scene.frame_end = first, final
    scene.frame_set(final)
    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=out, compress=True)
    print(f"render.py: wrote {out} ('{obj.name}', frames {first}-{final})", flush=True)
    if args.render:
        path = rendering.render_still(scene, os.path.abspath(args.render), final)
        print(f"render.py: rendered frame {final} to {path}", flush=True)
    if args.animation:
        folder = os.path.abspath(args.animation)
        os.makedirs(folder, exist_ok=True)
        rendering.render_frames(scene, folder, first, final)
        print(f"render.py: rendered frames {first}-{final} into {folder}", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    args = parse(script_args(sys.argv if argv is None else argv))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
