"""Time one CLIPDraw step and its parts (rasterize, augment, encoder, update) on a device.

    python scripts/bench_clipdraw.py --model builtin --strokes 32
    python scripts/bench_clipdraw.py --untrained ViT-B-32 --device cuda    # CLIP's architecture, random weights

``--untrained ARCH`` builds the open_clip architecture with random weights: the numbers are the
real cost of the real network (timing only; the drawing means nothing).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from synth_core.clipdraw import ClipDraw, ClipDrawConfig  # noqa: E402
from synth_core.encoders import load_encoder, resolve_device  # noqa: E402
from synth_core.encoders.openclip import OpenClipEncoder  # noqa: E402


def untrained_encoder(arch: str, device: torch.device) -> OpenClipEncoder:
    import open_clip

    enc = OpenClipEncoder.__new__(OpenClipEncoder)
    model = open_clip.create_model(arch, pretrained=None, device=device).eval().requires_grad_(False)
    enc.model, enc.tokenizer, enc.device = model, open_clip.get_tokenizer(arch), device
    enc.name = enc.label = f"{arch} (untrained, timing only)"
    size = model.visual.image_size
    enc.input_size = int(size[0] if isinstance(size, (tuple, list)) else size)
    enc.context_length = 77
    enc._mean = torch.tensor((0.48145466, 0.4578275, 0.40821073), device=device).reshape(1, 3, 1, 1)
    enc._std = torch.tensor((0.26862954, 0.26130258, 0.27577711), device=device).reshape(1, 3, 1, 1)
    return enc


def timed(fn, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, (time.perf_counter() - t) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--untrained", metavar="ARCH", help="open_clip architecture with random weights")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--strokes", type=int, default=256)
    ap.add_argument("--canvas", type=int, default=224)
    ap.add_argument("--augmentations", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    dev = resolve_device(args.device)
    enc = untrained_encoder(args.untrained, dev) if args.untrained else load_encoder(args.model, dev)
    cfg = ClipDrawConfig(strokes=args.strokes, width=args.canvas, height=args.canvas, steps=1000,
                         augmentations=args.augmentations)
    run = ClipDraw(cfg, enc, "a red circle")
    parts = {k: [] for k in ("rasterize", "augment", "encode+loss", "backward", "step total")}
    for t in range(args.steps + 3):
        total = time.perf_counter()
        img, a = timed(run.render, dev)
        views, b = timed(lambda: run.views(img), dev)
        emb, c = timed(lambda: enc.encode_image(views), dev)
        loss = -(emb @ run.text.T).sum()
        _, d = timed(loss.backward, dev)
        for p in (run.strokes.points, run.strokes.half_widths, run.strokes.colors):
            p.grad = None
        _, e = timed(lambda: run.step(t), dev)  # a real step (render, augment, encode, update) on its own
        if t >= 3:
            for k, v in zip(parts, (a, b, c, d, e)):
                parts[k].append(v)
    print(f"{enc.label} on {dev} ({torch.get_num_threads()} CPU threads), {args.strokes} strokes, "
          f"canvas {args.canvas}, {args.augmentations} augmentations, median of {args.steps} steps:")
    for k, v in parts.items():
        print(f"  {k:12} {statistics.median(v):8.1f} ms")


if __name__ == "__main__":
    main()
