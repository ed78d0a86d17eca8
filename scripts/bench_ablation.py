"""Ablation: does the judge recognise CLIPDraw drawings made against the built-in model?

For every (colour, shape) prompt ("a red circle", ... 30 prompts) and each condition (4
augmented copies per step vs none), draw with the default offline settings and let the
independent judge name the colour and the shape. Prints one row per condition and writes a
contact sheet per condition (green bar = judged right; left half colour, right half shape).
Targets for the shipped pair, with augmentations: colour >= 0.9, shape >= 0.7; and shape
recognition with augmentations above that without (the paper's finding).

    python scripts/bench_ablation.py [--augmentations 4 0] [--seeds 1] [--steps 200] [--out out/ablation]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from synth_core.builtin import COLOURS, SHAPES, load_builtin_encoder, load_judge  # noqa: E402
from synth_core.builtin.evaluate import OFFLINE, contact_sheet, draw_and_judge  # noqa: E402
from synth_core.drawing import atomic_write_bytes  # noqa: E402
from synth_core.outputs import png_bytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--augmentations", type=int, nargs="+", default=[4, 0])
    ap.add_argument("--seeds", type=int, default=1, help="seeds per prompt (30 prompts each)")
    ap.add_argument("--steps", type=int, default=OFFLINE.steps)
    ap.add_argument("--strokes", type=int, default=OFFLINE.strokes)
    ap.add_argument("--canvas", type=int, default=OFFLINE.width)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("out/ablation"))
    args = ap.parse_args()

    encoder, judge = load_builtin_encoder(args.device), load_judge(args.device)
    print(f"{encoder.label}; judge {type(judge.net).__name__}; {torch.get_num_threads()} threads; "
          f"{args.strokes} strokes, {args.steps} steps, canvas {args.canvas}")
    print(f"{'augs':>4} {'n':>4} {'colour':>7} {'shape':>6} {'both':>6} {'sim start':>9} {'sim end':>8} {'s/drawing':>9}")
    for augs in args.augmentations:
        cfg = replace(OFFLINE, augmentations=augs, steps=args.steps, strokes=args.strokes, width=args.canvas,
                      height=args.canvas)
        verdicts = []
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            for shape in SHAPES:
                for colour in COLOURS:
                    verdicts.append(draw_and_judge(colour, shape, encoder, judge, cfg, seed=seed))
        n = len(verdicts)
        mean = lambda xs: sum(xs) / n  # noqa: E731
        print(f"{augs:>4} {n:>4} {mean([v.colour_ok for v in verdicts]):>7.2f} {mean([v.shape_ok for v in verdicts]):>6.2f} "
              f"{mean([v.colour_ok and v.shape_ok for v in verdicts]):>6.2f} "
              f"{mean([v.similarity_start for v in verdicts]):>9.3f} {mean([v.similarity_end for v in verdicts]):>8.3f} "
              f"{(time.perf_counter() - t0) / n:>9.1f}", flush=True)
        per_shape = {s: sum(v.shape_ok for v in verdicts if v.shape == s) / (n / len(SHAPES)) for s in SHAPES}
        print("      shape by prompt: " + ", ".join(f"{s} {a:.2f}" for s, a in per_shape.items()))
        atomic_write_bytes(args.out / f"sheet_aug{augs}.png", png_bytes(contact_sheet(verdicts)))
    print(f"contact sheets in {args.out}/")


if __name__ == "__main__":
    main()
