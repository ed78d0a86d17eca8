"""Does the tidy pass keep a CLIPasso sketch faithful? Chamfer to the picture's edges before and after.

    python scripts/bench_tidy_sketch.py [--strokes 16] [--steps 150] [--seeds 0 1]

Ten generated pictures (five outlined shapes, two generator seeds each) are sketched with
CLIPasso and the built-in model; each sketch is then tidied (the same run). Fidelity is the
symmetric chamfer distance (px) between the sketch's ink and the picture's edges. Target
(issue 8): the tidied sketches' mean within 10 % of the untidied ones', with fewer strokes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synth_core.builtin import load_builtin_encoder  # noqa: E402
from synth_core.clipasso import Clipasso, ClipassoConfig  # noqa: E402
from synth_core.engine import optimise  # noqa: E402
from synth_core.events import Done  # noqa: E402
from synth_core.lab.evaluate import drawing_rgb, edge_chamfer  # noqa: E402
from synth_core.lab.machine import cpu_description, load_average  # noqa: E402
from synth_core.lab.shapes import render_shape  # noqa: E402
from synth_core.tidy import TidyConfig, quietly  # noqa: E402

SHAPES = ("circle", "square", "triangle", "star", "cross")


def target(shape: str, seed: int, size: int) -> torch.Tensor:
    img = render_shape(shape, "black", size=size, rng=np.random.default_rng(seed), filled=False, clutter=False)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--canvas", type=int, default=128)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (two on two shared cores stall)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    encoder = load_builtin_encoder("cpu")
    before, after, kept = [], [], []
    for shape in SHAPES:
        for seed in args.seeds:
            tgt = target(shape, seed, args.canvas)
            cfg = ClipassoConfig(strokes=args.strokes, steps=args.steps, canvas=args.canvas, seeds=2, seed=seed)
            run = Clipasso(cfg, encoder, tgt)
            done = next(e for e in optimise(run, cfg.steps, snapshot_every=0) if isinstance(e, Done))
            tidied = quietly(run, TidyConfig(), done.step).method.picture()
            before.append(edge_chamfer(drawing_rgb(done.picture), tgt))
            after.append(edge_chamfer(drawing_rgb(tidied), tgt))
            kept.append(len(tidied))
            print(f"{shape} {seed}: {before[-1]:.2f} -> {after[-1]:.2f} px, {len(done.picture)} -> {kept[-1]} strokes",
                  file=sys.stderr, flush=True)
    b, a = statistics.mean(before), statistics.mean(after)
    print(f"\nCPU: {cpu_description()}, load average {load_average():.1f}; CLIPasso, built-in model, 2 seeds, "
          f"{args.canvas} px, {args.steps} steps, {len(before)} pictures, {args.threads} thread(s)")
    print(f"chamfer to the edges (px, mean): untidied {b:.2f}, tidied {a:.2f}, ratio {a / b:.2f} (target <= 1.10); "
          f"strokes {args.strokes} -> {statistics.mean(kept):.1f}")
    return 0 if a <= 1.10 * b else 1


if __name__ == "__main__":
    sys.exit(main())
