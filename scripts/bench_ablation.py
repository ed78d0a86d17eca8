"""Ablation: does the judge recognise CLIPDraw drawings made against the built-in model?

For every (colour, shape) prompt ("a red circle", ... 30 prompts) and each condition (4
augmented copies per step vs none), draw with the default offline settings and let the
independent judge name the colour and the shape; the person-like eye (no learned weights,
synth_core/lab/eye.py) judges the same drawings: its pass rate (purity >= 0.6 and the right
shape) and the median colour purity stand beside the learned judge's columns. Prints one row per
condition and writes a contact sheet per condition (see evaluate.contact_sheet: the learned
judge's bar, the eye's bar and the eye's words under each drawing).
Targets for the shipped pair, with augmentations: colour >= 0.9, shape >= 0.7; and shape
recognition with augmentations above that without (the paper's finding). Person-like targets:
eye pass >= 0.7 and median purity >= 0.75. With --tidy every drawing is judged again after
the tidy pass (the same runs), in a second row per condition with the mean stroke count.

    python scripts/bench_ablation.py [--augmentations 4 0] [--seeds 1] [--steps 200] [--tidy] [--out out/ablation]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from synth_core.builtin import COLOURS, SHAPES, load_builtin_encoder, load_judge  # noqa: E402
from synth_core.builtin.model import BuiltinEncoder  # noqa: E402
from synth_core.drawing import atomic_write_bytes  # noqa: E402
from synth_core.lab.evaluate import OFFLINE, contact_sheet, draw_judge_tidy  # noqa: E402
from synth_core.outputs import png_bytes  # noqa: E402
from synth_core.tidy import TidyConfig  # noqa: E402


def _rate(verdicts: list, value) -> float:
    return sum(value(v) for v in verdicts) / len(verdicts)


def _by_shape(verdicts: list, value) -> str:
    return ", ".join(f"{s} {_rate([v for v in verdicts if v.shape == s], value):.2f}" for s in SHAPES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--augmentations", type=int, nargs="+", default=[4, 0])
    ap.add_argument("--seeds", type=int, default=1, help="seeds per prompt (30 prompts each)")
    ap.add_argument("--steps", type=int, default=OFFLINE.steps)
    ap.add_argument("--strokes", type=int, default=OFFLINE.strokes)
    ap.add_argument("--canvas", type=int, default=OFFLINE.width)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tidy", action="store_true",
                    help="also judge each drawing after the tidy pass (same runs; a 'tidy' row per condition)")
    ap.add_argument("--out", type=Path, default=Path("out/ablation"))
    ap.add_argument("--weights", type=Path, default=None,
                    help="a built-in model checkpoint to draw against instead of the shipped one (a retrained teacher)")
    args = ap.parse_args()

    encoder = BuiltinEncoder.load(args.device, args.weights) if args.weights else load_builtin_encoder(args.device)
    judge = load_judge(args.device)
    print(f"{encoder.label}; judge {type(judge.net).__name__}; {torch.get_num_threads()} threads; "
          f"{args.strokes} strokes, {args.steps} steps, canvas {args.canvas}")
    print(f"{'augs':>4} {'tidy':>4} {'n':>4} {'colour':>7} {'shape':>6} {'both':>6} {'eye pass':>8} {'purity':>6} "
          f"{'strokes':>7} {'sim start':>9} {'sim end':>8} {'s/drawing':>9}")
    for augs in args.augmentations:
        cfg = replace(OFFLINE, augmentations=augs, steps=args.steps, strokes=args.strokes, width=args.canvas,
                      height=args.canvas)
        tidy_cfg = TidyConfig() if args.tidy else None
        pairs = [draw_judge_tidy(colour, shape, encoder, judge, cfg, seed, tidy_cfg)
                 for seed in range(args.seeds) for shape in SHAPES for colour in COLOURS]
        rows = [("off", [b for b, _ in pairs])] + ([("on", [a for _, a in pairs])] if args.tidy else [])
        for tidy, verdicts in rows:
            report(augs, tidy, verdicts)
            atomic_write_bytes(args.out / f"sheet_aug{augs}{'_tidy' if tidy == 'on' else ''}.png",
                               png_bytes(contact_sheet(verdicts)))
    print(f"contact sheets in {args.out}/")


def report(augs: int, tidy: str, verdicts: list) -> None:
    """One table row and the per-shape rates of one condition."""
    n = len(verdicts)
    both = _rate(verdicts, lambda v: v.colour_ok and v.shape_ok)
    purity = statistics.median(v.eye.purity for v in verdicts)
    print(f"{augs:>4} {tidy:>4} {n:>4} {_rate(verdicts, lambda v: v.colour_ok):>7.2f} "
          f"{_rate(verdicts, lambda v: v.shape_ok):>6.2f} {both:>6.2f} "
          f"{_rate(verdicts, lambda v: v.eye.passed):>8.2f} {purity:>6.2f} "
          f"{_rate(verdicts, lambda v: v.strokes):>7.1f} "
          f"{_rate(verdicts, lambda v: v.similarity_start):>9.3f} "
          f"{_rate(verdicts, lambda v: v.similarity_end):>8.3f} "
          f"{_rate(verdicts, lambda v: v.seconds):>9.1f}", flush=True)
    print("      shape by prompt: " + _by_shape(verdicts, lambda v: v.shape_ok))
    print("      eye pass by prompt: " + _by_shape(verdicts, lambda v: v.eye.passed))


if __name__ == "__main__":
    main()
