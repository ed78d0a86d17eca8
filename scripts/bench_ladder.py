"""An abstraction ladder against independent runs: fidelity per level and the time of the whole.

    python scripts/bench_ladder.py [--levels 64,32,16,8,4] [--steps 150] [--sheet ladder.png]

Five generated pictures (outlines of a circle, square, triangle, star and cross) are sketched
with CLIPasso and the built-in model, through the same request path as every entry point:
once as a ladder (one run at the first level, then each next level by removing the strokes that
contribute least and fine-tuning), and once as independent runs at each level's stroke count.
Fidelity is the symmetric chamfer distance (px) between the sketch's ink and the picture's edges
(lower is closer). Targets (issue 13): the ladder's mean at each level within 5 % of the
independent runs', and the whole ladder in at most 60 % of the independent runs' time together.
Times are ratios from the same process and machine; the CPU is printed with them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from synth_core.builtin import load_builtin_encoder  # noqa: E402
from synth_core.drawing import Drawing, atomic_write_bytes  # noqa: E402
from synth_core.events import Done, Stage  # noqa: E402
from synth_core.jobs import parse_request, run_events  # noqa: E402
from synth_core.lab.evaluate import drawing_rgb, edge_chamfer  # noqa: E402
from synth_core.lab.machine import cpu_description, load_average  # noqa: E402
from synth_core.lab.shapes import render_shape  # noqa: E402
from synth_core.outputs import png_bytes  # noqa: E402
from synth_core.request import parse_counts  # noqa: E402

SHAPES = ("circle", "square", "triangle", "star", "cross")


def make_target(shape: str, seed: int, size: int, folder: Path) -> tuple[str, torch.Tensor]:
    """A black outline on white, as a PNG file (what a user gives) and as the tensor the chamfer uses."""
    img = render_shape(shape, "black", size=size, rng=np.random.default_rng(seed), filled=False, clutter=False)
    rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    path = folder / f"{shape}-{seed}.png"
    Image.fromarray(rgb).save(path)
    return str(path), torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def timed_run(request: dict, encoder) -> tuple[float, list[Drawing], Drawing]:
    """Seconds, the stage drawings, and the final drawing of one request."""
    t0 = time.perf_counter()
    stages, final = [], None
    for ev in run_events(parse_request(request), encoder=encoder):
        if isinstance(ev, Stage):
            stages.append(ev.picture)
        elif isinstance(ev, Done):
            final = ev.picture
    return time.perf_counter() - t0, stages, final


def fidelity(drawing: Drawing, target: torch.Tensor) -> float:
    return edge_chamfer(drawing_rgb(drawing), target)


def sheet(rows: list[list[Drawing]], tile: int = 96) -> np.ndarray:
    """One row per picture and method: the drawings side by side."""
    out = np.full((len(rows) * tile, max(len(r) for r in rows) * tile, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, d in enumerate(row):
            rgb = (drawing_rgb(d)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
            out[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile] = np.asarray(
                Image.fromarray(rgb).resize((tile, tile), Image.LANCZOS))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=parse_counts, default=[64, 32, 16, 8, 4])
    ap.add_argument("--steps", type=int, default=150, help="steps of the first level and of each independent run")
    ap.add_argument("--level-steps", type=int, default=None, help="fine-tuning steps per later level")
    ap.add_argument("--seeds", type=int, default=2, help="CLIPasso's best-of-N seeds")
    ap.add_argument("--canvas", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: two threads on two shared cores stall, see docs/engine.md)")
    ap.add_argument("--sheet", type=Path, default=None, help="write a PNG: per picture a ladder row and an independent row")
    args = ap.parse_args()

    encoder = load_builtin_encoder("cpu")
    base = {"method": "clipasso", "model": "builtin", "offline": True, "steps": args.steps, "seeds": args.seeds,
            "canvas": args.canvas, "threads": args.threads, "snapshot_every": 0}
    levels = args.levels
    ladder_s, alone_s = 0.0, 0.0
    ladder_fid = {n: [] for n in levels}
    alone_fid = {n: [] for n in levels}
    rows: list[list[Drawing]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
        for k, shape in enumerate(SHAPES):
            path, target = make_target(shape, k, args.canvas, Path(tmp))
            extra = {} if args.level_steps is None else {"level_steps": args.level_steps}
            seconds, stages, _ = timed_run({**base, "image": path, "ladder": levels, **extra}, encoder)
            ladder_s += seconds
            singles = []
            for n in levels:
                s, _, final = timed_run({**base, "image": path, "strokes": n}, encoder)
                alone_s += s
                singles.append(final)
            for n, lad, one in zip(levels, stages, singles):
                ladder_fid[n].append(fidelity(lad, target))
                alone_fid[n].append(fidelity(one, target))
            rows += [stages, singles]
            print(f"{shape}: ladder {seconds:.1f} s; " + ", ".join(
                f"{n}: {ladder_fid[n][-1]:.2f}/{alone_fid[n][-1]:.2f} px" for n in levels), file=sys.stderr, flush=True)
    req = parse_request({**base, "image": "x", "ladder": levels, **(
        {} if args.level_steps is None else {"level_steps": args.level_steps})})
    level_steps = ", ".join(str(req.rung_steps(i)) for i in range(1, len(levels)))
    print(f"\nCPU: {cpu_description()}, load average {load_average():.1f}; torch {torch.__version__} on "
          f"{args.threads} threads; CLIPasso, built-in model, {args.seeds} seeds, {args.canvas} px, {args.steps} steps "
          f"(ladder: at most {level_steps} fine-tuning steps at the later levels), {len(SHAPES)} pictures\n")
    print("| strokes | ladder chamfer (px, mean) | independent (px, mean) | ladder / independent | target |")
    print("|---|---|---|---|---|")
    worst = 0.0
    for n in levels:
        a, b = statistics.mean(ladder_fid[n]), statistics.mean(alone_fid[n])
        worst = max(worst, a / b)
        print(f"| {n} | {a:.2f} | {b:.2f} | {a / b:.2f} | <= 1.05 |")
    print(f"\ntime: ladder {ladder_s:.1f} s, independent runs together {alone_s:.1f} s, ratio "
          f"{ladder_s / alone_s:.2f} (target <= 0.60)")
    print(f"fidelity: worst level ratio {worst:.2f} (target <= 1.05)")
    if args.sheet:
        atomic_write_bytes(args.sheet, png_bytes(sheet(rows)))
        print(f"wrote {args.sheet}: per picture a ladder row then an independent row, levels left to right")
    return 0 if worst <= 1.05 and ladder_s <= 0.6 * alone_s else 1


if __name__ == "__main__":
    sys.exit(main())
