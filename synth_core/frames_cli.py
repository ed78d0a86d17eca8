"""``python -m synth_core sketch-frames 'shot/*.png' --out dir/``: a picture sequence to a sketch animation.

Each frame is written as it finishes (frame-0001.svg, .png, then .json last, each atomically), so
the JSON of a frame exists only when the frame is complete. That makes a run resumable and
splittable: a rerun skips every frame whose JSON exists (no work for it) and starts the first
missing one warm from the frame before it, read back from its JSON; ``--chunk I/N`` takes one
contiguous part of the sequence (a render farm's task) and starts it warm from the previous
chunk's last frame when that file is already in --out, else cold. At the end (also after Ctrl-C)
animation.gif shows every finished frame of the sequence in order.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
from pathlib import Path
from typing import Any

from .console import speed_options
from .request import DEFAULT_MODEL

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
GIF = "animation.gif"
GIF_MS = 40  # 25 frames a second (GIF delays are in hundredths of a second)


def add_parser(sub: Any) -> None:
    """The ``sketch-frames`` subcommand."""
    k = sub.add_parser("sketch-frames", help="a picture sequence to a sketch animation (CLIPasso, frame by frame)",
                       description="Sketch every picture of a sequence with the same strokes, each frame starting "
                                   "from the last (coherent over time). Resumable: a rerun skips finished frames.")
    k.add_argument("frames", nargs="+", help="the pictures: a quoted glob such as 'shot/*.png' or files; "
                                             "sorted naturally (frame2 before frame10)")
    k.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    k.add_argument("--strokes", type=int, default=None, help="strokes per frame (default 16, or the finished frames')")
    k.add_argument("--steps", type=int, default=None, help="at most this many steps per frame (default 2000; frames "
                                                           "stop early on a plateau)")
    k.add_argument("--coherence", type=float, default=None, metavar="W",
                   help="weight of the penalty on strokes moving relative to each other between frames "
                        "(default 100; 0 = off)")
    k.add_argument("--boil", type=float, default=None, metavar="PX",
                   help="deterministic per-frame jitter of the strokes, for a hand-drawn look (default 0)")
    k.add_argument("--cold", action="store_true", help="sketch every frame from scratch (no warm start; for comparison)")
    k.add_argument("--seeds", type=int, default=3, help="best of N seeds for a cold frame (default 3)")
    k.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    k.add_argument("--canvas", type=int, default=None, metavar="PX", help="square canvas (default 224, or the "
                                                                          "finished frames')")
    k.add_argument("--frames-from", type=int, default=1, metavar="N", help="scene frame of the first picture (default 1)")
    k.add_argument("--chunk", type=_chunk, default=None, metavar="I/N",
                   help="only part I of N of the sequence (render farms); warm from part I-1's last frame if it is done")
    k.add_argument("--model", default=DEFAULT_MODEL, help=f"open_clip NAME:TAG, a checkpoint, or 'builtin' "
                                                          f"(default {DEFAULT_MODEL})")
    k.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, mps")
    speed_options(k)
    k.add_argument("--augmentations", type=int, default=None, metavar="N", help="augmented copies per step (default 4)")
    k.add_argument("--cache-dir", default=None, help="where model weights are looked for / downloaded")
    k.add_argument("--no-mask", action="store_true", help="ignore the pictures' alpha channel (the object mask)")
    k.add_argument("--no-video", action="store_true", help=f"skip {GIF}")
    k.add_argument("--quiet", action="store_true", help="no progress bar")


def _chunk(text: str) -> tuple[int, int]:
    """--chunk I/N with 1 <= I <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise argparse.ArgumentTypeError(f"must be I/N with 1 <= I <= N, e.g. 2/4, got {text!r}")
    return int(m[1]), int(m[2])


def natural_key(path: str) -> list:
    """frame2 before frame10: digit runs compare as numbers."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", path) if t]


def expand(patterns: list[str]) -> list[str]:
    """Files and globs -> the pictures, each once, in natural order; BadRequest when one names nothing."""
    from .errors import BadRequest

    found: list[str] = []
    for p in patterns:
        if os.path.exists(p):
            found.append(p)
        elif glob.has_magic(p):
            hits = [h for h in glob.glob(p) if os.path.isfile(h)]
            if not hits:
                raise BadRequest(f"no file matches {p!r}")
            found += hits
        else:
            raise BadRequest(f"frame {p!r} does not exist")
    return sorted(dict.fromkeys(found), key=natural_key)


def chunk_of(count: int, chunk: tuple[int, int] | None) -> range:
    """The indices of part I of N of ``count`` frames (parts differ by at most one frame)."""
    if chunk is None:
        return range(count)
    i, n = chunk
    return range((i - 1) * count // n, i * count // n)


def frame_name(number: int) -> str:
    return f"frame-{number:04d}"


def pending_runs(indices: range, numbers: list[int], out: Path) -> list[list[int]]:
    """The unfinished frames (no JSON yet) of ``indices``, in runs of consecutive frames."""
    runs: list[list[int]] = []
    for i in indices:
        if (out / f"{frame_name(numbers[i])}.json").exists():
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def check_outputs(out: Path, names: list[str], inputs: list[str]) -> None:
    """Refuse outputs that would replace an input picture, a folder or a device, before any work."""
    from .errors import BadRequest
    from .files import UnwritableTarget, check_target

    sources = {os.path.realpath(p) for p in inputs}
    for name in names:
        path = out / name
        if os.path.realpath(path) in sources:
            raise BadRequest(f"the run would overwrite its own input {str(path)!r}: choose another --out")
        try:
            check_target(path)
        except UnwritableTarget as e:
            raise BadRequest(f"cannot write {e.filename}: {e.strerror}") from None


def requests(args: argparse.Namespace, paths: list[str], numbers: list[int], runs: list[list[int]],
             out: Path) -> list[dict]:
    """One request per run of unfinished frames, each warm from the finished frame before it when there is one."""
    from .errors import BadRequest

    if args.cold and args.coherence:
        raise BadRequest("--coherence needs warm frames (strokes followed from frame to frame): leave out --cold")
    reqs = []
    for run in runs:
        req: dict[str, Any] = {
            "method": "clipasso", "frames": [paths[i] for i in run], "frame_numbers": [numbers[i] for i in run],
            "seed": args.seed, "seeds": args.seeds, "model": args.model, "device": args.device,
            "cache_dir": args.cache_dir, "mask": not args.no_mask, "warm": not args.cold, "snapshot_every": 0}
        for key in ("steps", "coherence", "boil", "augmentations", "precision", "compile"):
            if getattr(args, key) is not None:
                req[key] = getattr(args, key)
        before = out / f"{frame_name(numbers[run[0] - 1])}.json" if run[0] > 0 else None
        start = _warm_start(before, args) if before is not None and before.exists() and not args.cold else None
        if start is not None:
            req.update(init=str(before), canvas=args.canvas or start)
        else:
            req.update(canvas=args.canvas or 224, **({"strokes": args.strokes} if args.strokes is not None else {}))
        reqs.append(req)
    return reqs


def _warm_start(path: Path, args: argparse.Namespace) -> int | None:
    """The canvas of the finished frame a run continues from, or None when it has no strokes (start cold)."""
    from .drawing import Drawing, DrawingFormatError
    from .errors import BadRequest

    try:
        d = Drawing.load(path)
    except DrawingFormatError as e:
        raise BadRequest(f"cannot continue from {path}: {e}; remove it to sketch that frame again") from None
    if len(d) == 0:
        return None
    if args.strokes is not None and args.strokes != len(d):
        raise BadRequest(f"the finished frames have {len(d)} strokes but --strokes is {args.strokes}: "
                         "give the same --strokes, or another --out")
    return d.width


def cmd_sketch_frames(args: argparse.Namespace) -> int:
    """Sketch the unfinished frames; SIGINT / SIGTERM stop after the current step and keep every finished frame."""
    from .console import fail, say_stopping
    from .interrupts import Interrupted, StopOnSignals

    with StopOnSignals(on_stop=say_stopping) as signals:
        try:
            return _sketch(args, signals)
        except Interrupted as e:
            what = "aborted" if signals.keeping else "interrupted before the run started"
            return fail(f"{what} by {e.name}: finished frames are kept", e.code)


def _sketch(args: argparse.Namespace, signals) -> int:
    from .console import fail, internal
    from .errors import BadRequest, SynthError
    from .jobs import parse_request
    from .outputs import check_writable

    try:
        paths = expand(args.frames)
        numbers = list(range(args.frames_from, args.frames_from + len(paths)))
        indices = chunk_of(len(paths), args.chunk)
        out = check_writable(args.out, names=(GIF,), inputs=tuple(paths))
        check_outputs(out, [f"{frame_name(numbers[i])}.{x}" for i in indices for x in ("svg", "png", "json")], paths)
        runs = pending_runs(indices, numbers, out)
        reqs = [parse_request(r) for r in requests(args, paths, numbers, runs, out)]
    except BadRequest as e:
        return fail(str(e), EXIT_USAGE)
    code = EXIT_OK
    if not indices:
        print(f"chunk {args.chunk[0]}/{args.chunk[1]} has no frames ({len(paths)} in all): nothing to do",
              file=sys.stderr)
    elif not reqs:
        print(f"all {len(indices)} frames are done in {out}: nothing to do", file=sys.stderr)
    else:
        try:
            code = _run_all(reqs, args, out, signals)
        except BadRequest as e:
            code = fail(str(e), EXIT_USAGE)
        except SynthError as e:
            code = fail(str(e), EXIT_FAILED)
        except OSError as e:
            code = fail(f"cannot write to {out}: {e.strerror or e}; the frames before are kept", EXIT_FAILED)
        except Exception as e:  # a bug or the environment: one line
            code = internal(e)
    signals.holding = True
    if not args.no_video:
        _write_gif(out, numbers)
    return code


def _run_all(reqs: list, args: argparse.Namespace, out: Path, signals) -> int:
    """Run each request in turn (one model load); stop at a cancel."""
    from tqdm import tqdm

    from .encoders.registry import load_encoder
    from .events import Done, Progress, Stage, Started, WarningEvent
    from .jobs import run_events

    first = reqs[0]
    encoder = load_encoder(first.model, first.device, first.cache_dir, offline=first.offline)
    bar = tqdm(total=sum(r.total_steps for r in reqs), disable=args.quiet, unit="step", dynamic_ncols=True)
    say = bar.write if not args.quiet else (lambda text, file=None: print(text, file=sys.stderr))
    base, written, total = 0, 0, sum(len(r.frames) for r in reqs)
    try:
        for req in reqs:
            for ev in run_events(req, signals.flag.is_set, encoder=encoder):
                if isinstance(ev, Started):
                    signals.keeping = True
                    start = "from " + Path(req.init).name if req.init else "cold"
                    first, last = req.frame_numbers[0], req.frame_numbers[-1]
                    what = f"frame {first}" if first == last else f"frames {first} to {last}"
                    say(f"{what} ({start}) with {ev.model} on {ev.device}", file=sys.stderr)
                elif isinstance(ev, WarningEvent):
                    say(f"warning: {ev.message}", file=sys.stderr)
                elif isinstance(ev, Progress):
                    bar.update(base + ev.step - bar.n)
                elif isinstance(ev, Stage):
                    write_frame(out, ev.picture, ev.frame)
                    written += 1
                    m = ev.picture.meta
                    say(f"frame {ev.frame} ({written}/{total}): {m.get('start')}, {m.get('frame_steps')} steps",
                        file=sys.stderr)
                elif isinstance(ev, Done):
                    base += ev.step
                    if ev.cancelled:
                        say(f"stopped: {written} frame(s) written to {out}; run again to go on", file=sys.stderr)
                        return signals.code or EXIT_CANCELLED
    finally:
        bar.close()
    print(f"wrote {written} frame(s) to {out}", file=sys.stderr)
    return EXIT_OK


def write_frame(out: Path, drawing, number: int) -> None:
    """frame-NNNN.svg and .png, then .json: the JSON is there only when the frame is complete."""
    from .drawing import atomic_write_bytes
    from .outputs import png_bytes, render_rgba
    from .svg import to_svg

    name = frame_name(number)
    atomic_write_bytes(out / f"{name}.svg", to_svg(drawing).encode("utf-8"))
    atomic_write_bytes(out / f"{name}.png", png_bytes(render_rgba(drawing)))
    atomic_write_bytes(out / f"{name}.json", drawing.to_json().encode("utf-8"))


def _write_gif(out: Path, numbers: list[int], size: int = 256) -> None:
    """animation.gif of every finished frame of the sequence, in order (a warning line if it cannot be written)."""
    import numpy as np
    from PIL import Image

    from .drawing import atomic_write_bytes
    from .outputs import gif_bytes

    frames = []
    for n in numbers:
        name = frame_name(n)
        if not (out / f"{name}.json").exists():
            continue
        try:
            with Image.open(out / f"{name}.png") as im:
                rgb = Image.new("RGB", im.size, (255, 255, 255))
                rgb.paste(im.convert("RGBA"), mask=im.convert("RGBA").split()[3])
                rgb.thumbnail((size, size), Image.LANCZOS)
                frames.append(np.asarray(rgb))
        except OSError:
            continue  # a frame's PNG that cannot be read is left out of the preview
    if not frames:
        return
    try:
        atomic_write_bytes(out / GIF, gif_bytes(frames, frame_ms=GIF_MS, hold_last_ms=GIF_MS))
    except OSError as e:
        print(f"warning: cannot write {out / GIF}: {e.strerror or e}", file=sys.stderr)
