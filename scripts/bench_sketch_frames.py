"""Sketch animation, frame by frame (issue 12): warm, warm + coherence, and independent cold runs.

A star outline that moves and turns over 24 frames (synth_core.lab.motion) is sketched with
the built-in model three ways, through the engine's own request path (jobs.run_events):

- warm: each frame starts from the last one's strokes, no motion penalty;
- coherent: warm + the coherence penalty (``--coherence``, one or more weights): strokes pay for
  moving relative to each other, beyond the drawing's own motion;
- plain: warm + a penalty on every displacement, the drawing's own motion too (``--plain``
  weights; what the issue first proposed, kept for comparison);
- cold: every frame an independent CLIPasso run (saliency start, best of ``--seeds``).

``--pulse`` makes the star's inner corners move in and out as well (a shape that deforms, where
a coherence penalty that is too strong makes the sketch lag). The first frame is sketched once
and shared by every way; ``--save DIR --reuse`` loads the ways already saved there instead of
running them again (each way's seconds are saved with its frames).

Per frame: fidelity (symmetric chamfer in px between the sketch's ink and the frame's XDoG
edges, lab.evaluate.edge_chamfer), steps and seconds. Per way: flicker as the mean absolute
difference between consecutive rendered sketches (grey levels of 255; the frames' own outlines
change by the reference amount printed), and the mean control-point displacement between
frames next to the object's own edge motion. Every number is a claim about this CPU only.

    .venv/bin/python scripts/bench_sketch_frames.py --strip out/sketch_frames_strip.png
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_core.builtin import load_builtin_encoder  # noqa: E402
from synth_core.drawing import Drawing  # noqa: E402
from synth_core.events import Stage, Started, WarningEvent  # noqa: E402
from synth_core.images import fit_square, load_image  # noqa: E402
from synth_core.jobs import parse_request, run_events  # noqa: E402
from synth_core.lab import motion  # noqa: E402
from synth_core.lab.evaluate import drawing_rgb, edge_chamfer  # noqa: E402
from synth_core.lab.machine import cpu_description, load_average  # noqa: E402
from synth_core.sequence import WarmFrame, motion_px, shape_px  # noqa: E402


Carry = Callable[[np.ndarray, int], np.ndarray]  # points (px) at frame i -> where the object takes them at i + 1


@dataclass
class Way:
    name: str
    request: dict
    plain: bool = False  # the penalty on every displacement (WarmFrame.free_motion off)
    drawings: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    chamfer: list = field(default_factory=list)
    images: list = field(default_factory=list)  # RGB [3, S, S] per frame

    @property
    def steps(self) -> list[int]:
        return [d.meta["frame_steps"] for d in self.drawings]

    def flicker(self) -> float:
        """Mean absolute difference between consecutive sketches, grey levels of 255."""
        return float(np.mean([(a - b).abs().mean() * 255 for a, b in zip(self.images, self.images[1:])]))

    def carried_flicker(self, carry: Carry) -> float:
        """The same difference after moving each sketch with the object to the next frame (``carry``: the
        object's own motion): what is left is the sketch's own flicker, not the object's motion."""
        diffs = []
        for i, (a, b) in enumerate(zip(self.drawings, self.drawings[1:])):
            moved = Drawing(a.width, a.height, carry(a.points, i), a.segments, a.widths, a.rgba, a.background)
            diffs.append(float((drawing_rgb(moved)[0] - self.images[i + 1]).abs().mean() * 255))
        return float(np.mean(diffs))

    def motion(self) -> float:
        """Mean control-point displacement between consecutive frames, px (strokes taken by index)."""
        moves = [motion_px(a, b) for a, b in zip(self.drawings, self.drawings[1:])]
        return float(np.mean([m for m in moves if m is not None]))

    def shape(self) -> float:
        """The same beyond the whole drawing's own motion (translation, rotation, scale), px."""
        moves = [shape_px(a, b) for a, b in zip(self.drawings, self.drawings[1:])]
        return float(np.mean([m for m in moves if m is not None]))

    def add(self, drawing: Drawing, seconds: float, target: torch.Tensor) -> None:
        image = drawing_rgb(drawing)
        self.drawings.append(drawing)
        self.images.append(image[0])
        self.chamfer.append(edge_chamfer(image, target))
        self.seconds.append(seconds)


def run(way: Way, frames: list[str], targets: list[torch.Tensor], encoder) -> None:
    req = parse_request({**way.request, "frames": frames})
    WarmFrame.free_motion = not way.plain
    try:
        t0 = time.perf_counter()
        for ev in run_events(req, encoder=encoder):  # stage index i is targets[i]
            if isinstance(ev, WarningEvent):
                print(f"  {way.name}: warning: {ev.message}", flush=True)
            elif isinstance(ev, Started):
                t0 = time.perf_counter()
            elif isinstance(ev, Stage):
                way.add(ev.picture, time.perf_counter() - t0, targets[ev.index])
                meta = ev.picture.meta
                print(f"  {way.name} {ev.label}: {meta['start']}, {meta['frame_steps']} steps, "
                      f"{way.seconds[-1]:.1f} s, chamfer {way.chamfer[-1]:.2f} px", flush=True)
                t0 = time.perf_counter()  # the measuring is not the next frame's time
    finally:
        WarmFrame.free_motion = True


def folder_of(way: Way, root: Path) -> Path:
    return root / way.name.replace(" ", "_")


def save(way: Way, root: Path) -> None:
    """Each frame of a way as a drawing file (ROOT/way name/frame-NNNN.json) and its seconds."""
    out = folder_of(way, root)
    out.mkdir(parents=True, exist_ok=True)
    for i, d in enumerate(way.drawings):
        d.save(out / f"frame-{i + 1:04d}.json")
    (out / "seconds.json").write_text(json.dumps(way.seconds))


def load(way: Way, root: Path, targets: list[torch.Tensor], first: int = 0) -> bool:
    """A way saved before (frames ``first`` on), when all its frames and seconds are there."""
    out = folder_of(way, root)
    paths = [out / f"frame-{i + 1:04d}.json" for i in range(first, len(targets))]
    if not (out / "seconds.json").exists() or not all(p.exists() for p in paths):
        return False
    seconds = json.loads((out / "seconds.json").read_text())
    for i, path in zip(range(first, len(targets)), paths):
        way.add(Drawing.load(path), seconds[i], targets[i])
    return True


def target_flicker(targets: list[torch.Tensor]) -> float:
    """The same measure for the frames themselves (outline on white): what the object's motion alone costs."""
    return float(np.mean([(a - b).abs().mean() * 255 for a, b in zip(targets, targets[1:])]))


def per_frame_table(ways: list[Way]) -> None:
    head = " | ".join(f"{w.name} chamfer px | steps | s" for w in ways)
    print(f"| frame | {head} |")
    print("|---:|" + "---:|---:|---:|" * len(ways))
    for i in range(len(ways[0].drawings)):
        cells = " | ".join(f"{w.chamfer[i]:.2f} | {w.steps[i]} | {w.seconds[i]:.1f}" for w in ways)
        print(f"| {i + 1} | {cells} |")


def summary(ways: list[Way], edge_motion: float, reference: float, cold: Way | None, carry: Carry | None) -> None:
    """``carry``: the object's own motion, which gives the flicker with the motion removed (None for a
    shape that deforms: that column is n/a)."""
    print("\n| way | mean chamfer px | flicker (MAD /255) | flicker, motion removed | control-point motion px/frame | "
          "shape change px/frame | steps frame 1 | steps later frames (mean) | s/frame later (mean) | total s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in ways:
        carried = f"{w.carried_flicker(carry):.2f}" if carry else "n/a"
        print(f"| {w.name} | {np.mean(w.chamfer):.3f} | {w.flicker():.2f} | {carried} | {w.motion():.2f} | "
              f"{w.shape():.2f} | {w.steps[0]} | {np.mean(w.steps[1:]):.0f} | {np.mean(w.seconds[1:]):.2f} | "
              f"{sum(w.seconds):.0f} |")
    print(f"\nthe object's own edge motion: {edge_motion:.2f} px/frame; the frames' own MAD: {reference:.2f}")
    if cold is None:
        return
    for w in ways:
        if w is cold:
            continue
        carried = f"{w.carried_flicker(carry) / cold.carried_flicker(carry):.2f}x" if carry else "n/a"
        print(f"{w.name} vs cold: flicker {w.flicker() / cold.flicker():.2f}x, with the motion removed "
              f"{carried} (target <= 0.33), mean chamfer "
              f"{np.mean(w.chamfer) / np.mean(cold.chamfer):.2f}x (target <= 1.10), later frames' steps "
              f"{np.mean(w.steps[1:]) / np.mean(cold.steps):.2f}x of cold frames' (target <= 0.40), "
              f"{sum(w.seconds):.0f} s for {len(w.steps)} frames (target <= 300)")


def strip(ways: list[Way], targets: list[torch.Tensor], path: Path, every: int = 4, tile: int = 112) -> None:
    """One row per way (and the frames on top): every ``every``-th frame."""
    from PIL import Image, ImageDraw

    rows = [("frames", targets)] + [(w.name, w.images) for w in ways]
    cols = list(range(0, len(targets), every))
    left = 130  # the row labels
    sheet = Image.new("RGB", (left + tile * len(cols), tile * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (name, images) in enumerate(rows):
        draw.text((4, r * tile + tile // 2), name, fill=(0, 0, 0))
        for c, i in enumerate(cols):
            rgb = (images[i].reshape(3, *images[i].shape[-2:]).clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            x = left + c * tile
            sheet.paste(Image.fromarray(rgb).resize((tile, tile), Image.LANCZOS), (x, r * tile))
            draw.rectangle([x, r * tile, x + tile - 1, (r + 1) * tile - 1], outline=(200, 200, 200))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    print(f"wrote {path}")


def shared_first_frame(ways: list[Way], frames: list[str], targets: list[torch.Tensor], encoder,
                       reuse: Path | None) -> Way:
    """The cold first frame every way starts from: sketched once (or loaded from a saved way)."""
    for way in ways if reuse else []:
        probe = Way(way.name, {})
        if load(probe, reuse, targets[:1]):
            print(f"first frame: loaded from {folder_of(way, reuse)}", flush=True)
            return probe
    first = Way("first frame", ways[0].request if ways else {})
    print("first frame (cold, shared by every way)", flush=True)
    run(first, frames[:1], targets[:1], encoder)
    return first


def make_ways(base: dict, wanted: list[str], coherence: str = "100", plain: str = "1") -> list[Way]:
    """The ways to compare, from a base request (the sequence's settings): of warm, coherent, plain, cold."""
    ways: list[Way] = []
    if "warm" in wanted:
        ways.append(Way("warm", {**base, "coherence": 0}))
    if "coherent" in wanted:
        ways += [Way(f"warm+coherence {w}", {**base, "coherence": float(w)}) for w in coherence.split(",")]
    if "plain" in wanted:
        ways += [Way(f"warm+plain {w}", {**base, "coherence": float(w)}, plain=True) for w in plain.split(",")]
    if "cold" in wanted:
        ways.append(Way("cold", {**base, "warm": False}))
    return ways


def sketch_ways(ways: list[Way], frames: list[str], targets: list[torch.Tensor], encoder, folder: Path,
                save_to: Path | None = None, reuse: Path | None = None) -> None:
    """Every way on the frames: the cold first frame sketched once and shared, then frames 2 to N."""
    first = shared_first_frame(ways, frames, targets, encoder, reuse)
    start = folder / "first.json"
    first.drawings[0].save(start)
    for way in ways:
        if reuse and load(way, reuse, targets):
            print(f"{way.name}: loaded from {folder_of(way, reuse)}", flush=True)
            continue
        print(f"{way.name}: frames 2 to {len(frames)}", flush=True)
        if way.request.get("warm", True):
            way.request = {**{k: v for k, v in way.request.items() if k != "strokes"}, "init": str(start)}
        run(way, frames[1:], targets[1:], encoder)
        for name in ("drawings", "seconds", "chamfer", "images"):
            setattr(way, name, getattr(first, name) + getattr(way, name))
        if save_to:
            save(way, save_to)


def report(ways: list[Way], edge: float, targets: list[torch.Tensor], carry: Carry | None,
           strip_path: Path | None) -> None:
    """The per-frame table, the summary against the cold runs, and the strip when asked for."""
    per_frame_table(ways)
    cold = next((w for w in ways if w.name == "cold"), None)
    summary(ways, edge, target_flicker(targets), cold, carry)
    if strip_path:
        strip(ways, targets, strip_path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--shape", default="star", choices=["star", "cross"])
    ap.add_argument("--canvas", type=int, default=224)
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000, help="cap per frame (frames stop on a plateau)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--coherence", default="100", help="weights for the coherent way, comma-separated")
    ap.add_argument("--plain", default="1", help="weights for the plain way (every displacement pays), comma-separated")
    ap.add_argument("--ways", default="warm,coherent,cold", help="of warm, coherent, plain, cold")
    ap.add_argument("--pulse", type=float, default=0.0, help="the star's inner corners move in and out by this much")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: two threads on two shared cores stall, docs/engine.md)")
    ap.add_argument("--strip", type=Path, default=None, help="write a PNG strip of every 4th frame")
    ap.add_argument("--save", type=Path, default=None, help="keep every way's frames as JSON drawings here")
    ap.add_argument("--reuse", action="store_true", help="load the ways already saved in --save instead of running them")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_description()}; torch threads {args.threads}; load average {load_average():.1f}")
    shot = motion.Motion(frames=args.frames, pulse=args.pulse)
    folder = Path(tempfile.mkdtemp(prefix="bench_sketch_frames-"))
    frames = motion.write_frames(folder, args.shape, shot, args.canvas)
    targets = [fit_square(load_image(p), args.canvas)[0] for p in frames]
    edge = float(np.mean([motion.edge_motion(args.shape, shot, i, args.canvas) for i in range(1, args.frames)]))
    encoder = load_builtin_encoder("cpu")
    base = {"method": "clipasso", "model": "builtin", "offline": True, "canvas": args.canvas, "strokes": args.strokes,
            "steps": args.steps, "seeds": args.seeds, "snapshot_every": 0, "threads": args.threads}
    ways = make_ways(base, args.ways.split(","), args.coherence, args.plain)
    reuse = args.save if args.reuse and args.save else None
    sketch_ways(ways, frames, targets, encoder, folder, args.save, reuse)
    print(f"\nCPU: {cpu_description()}; load average now {load_average():.1f}; {args.shape}, pulse {args.pulse}, "
          f"{args.frames} frames, "
          f"canvas {args.canvas}, {args.strokes} strokes, seeds {args.seeds}, steps cap {args.steps}\n")
    rigid = shot.pulse == 0  # the exact carry exists for a rigid motion only
    carry = (lambda points, i: motion.carry(points, shot, i, i + 1, args.canvas)) if rigid else None
    report(ways, edge, targets, carry, args.strip)


if __name__ == "__main__":
    main()
