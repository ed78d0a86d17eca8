"""Time CLIPasso (3 seeds: one batch, taking turns in each step, separate runs) and StyleCLIPDraw.

    python scripts/bench_methods.py [--device cpu|cuda] [--model builtin] [--steps 100]
    python scripts/bench_methods.py --untrained RN101 --device cuda     # CLIPasso's own encoder, random weights

CLIPasso: a 16-stroke sketch of a generated shape with 3 seeds, run as one batch (the default),
with the seeds taking turns inside each step (batch_seeds=False) and as three separate runs,
early stop off so all do the same number of steps. StyleCLIPDraw: 256 strokes, VGG-16
style loss (untrained weights unless --style-weights is given: the cost is the same).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synth_core.lab.shapes import render_shape  # noqa: E402
from synth_core.clipasso import Clipasso, ClipassoConfig  # noqa: E402
from synth_core.clipdraw import ClipDraw, ClipDrawConfig, style_weight  # noqa: E402
from synth_core.encoders import load_encoder, resolve_device  # noqa: E402
from synth_core.encoders.openclip import OpenClipEncoder  # noqa: E402
from synth_core.engine import optimise  # noqa: E402
from synth_core.style import StyleLoss, vgg16_extractor  # noqa: E402

from bench_clipdraw import timed  # noqa: E402  (scripts/ is on sys.path)


def run_timed(method, steps: int, dev: torch.device) -> float:
    """Seconds for ``steps`` steps of ``method`` (the device synchronised before and after)."""
    return timed(lambda: list(optimise(method, steps, snapshot_every=0)), dev)[1] / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--untrained", metavar="ARCH", help="open_clip architecture with random weights (timing only)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--style-steps", type=int, default=30)
    ap.add_argument("--style-weights", default=None, help="VGG-16 weights (default: untrained, same cost)")
    args = ap.parse_args()
    dev = resolve_device(args.device)
    if args.untrained:
        enc = OpenClipEncoder.untrained(args.untrained, dev)
    else:
        enc = load_encoder(args.model, dev)
    print(f"{enc.label} on {dev}, {torch.get_num_threads()} CPU threads")

    img = render_shape("star", "black", size=224, rng=np.random.default_rng(0), filled=False, clutter=False)
    tgt = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    cfg = ClipassoConfig(strokes=16, steps=args.steps, seeds=3, early_stop_delta=-1.0)  # never stops early
    for seeds in (3, 1):  # warm-up: the first steps of a shape pay for allocations and kernel selection
        run_timed(Clipasso(replace(cfg, seeds=seeds, batch_seeds=True), enc, tgt), 2, dev)
    tb = run_timed(Clipasso(replace(cfg, batch_seeds=True), enc, tgt), args.steps, dev)
    turns = Clipasso(replace(cfg, batch_seeds=False), enc, tgt)
    tt = run_timed(turns, args.steps, dev)
    ts = 0.0
    for seed in turns.seeds:
        ts += run_timed(Clipasso(replace(cfg, seeds=1, seed=seed), enc, tgt), args.steps, dev)
    ms = lambda t: f"{t:.1f} s ({t / args.steps * 1e3:.0f} ms/step)"  # noqa: E731
    print(f"CLIPasso 16 strokes x 3 seeds, {args.steps} steps: one batch {ms(tb)}, taking turns {ms(tt)}, "
          f"separate runs {ms(ts)}; one batch is {tt / tb:.2f}x as fast as taking turns")

    scfg = ClipDrawConfig(steps=args.style_steps, augmentations=10, style_weight=style_weight(50), clip_until=0.9)
    style_img = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    extractor = vgg16_extractor(args.style_weights, dev)
    run = ClipDraw(scfg, enc, "a red circle", style=StyleLoss(extractor, style_img.to(dev)))
    t = run_timed(run, args.style_steps, dev)
    print(f"StyleCLIPDraw 256 strokes, 10 augmentations, {extractor.label}: {t / args.style_steps * 1e3:.0f} ms/step, "
          f"{t / args.style_steps * 500 / 60:.1f} min for the reference 500 steps")


if __name__ == "__main__":
    main()
