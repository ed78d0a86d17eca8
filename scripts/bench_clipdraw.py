"""ms per optimisation step of CLIPDraw or CLIPasso on a device, and what makes the host wait.

    python scripts/bench_clipdraw.py --model builtin --strokes 32
    python scripts/bench_clipdraw.py --untrained ViT-B-32 --device cuda                    # issue 11: <= 15 ms
    python scripts/bench_clipdraw.py --method clipasso --untrained RN101 --device cuda     # <= 30 ms, 3 seeds
    python scripts/bench_clipdraw.py --untrained ViT-B-32 --device cuda --precision float32 --compile

``--untrained ARCH`` builds the open_clip architecture with random weights: the numbers are the
real cost of the real network (timing only; the drawing means nothing). Whole steps are timed
back to back, as the engine runs them (the host waits only where the step itself makes it wait),
then the parts of a CLIPDraw step are timed one by one with a device sync after each. Host reads
per step are counted on any device (``synth_core.lab.host_reads``; rasterizer and the rest apart);
on CUDA the device syncs are counted too (``torch.cuda.set_sync_debug_mode``). The CPU model and the
GPU name are printed: absolute times hold only for them. ``--under-load`` times the same whole
steps again while one busy process competes for the CPU (bench_raster's competitor, paused and
resumed step by step, interleaved) and prints loaded / quiet (issue 11: within 2x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import synth_core.clipasso as clipasso_module  # noqa: E402
import synth_core.clipdraw as clipdraw_module  # noqa: E402
from synth_core.accelerate import accelerate  # noqa: E402
from synth_core.clipasso import Clipasso, ClipassoConfig  # noqa: E402
from synth_core.clipdraw import ClipDraw, ClipDrawConfig  # noqa: E402
from synth_core.encoders import load_encoder, resolve_device  # noqa: E402
from synth_core.encoders.openclip import OpenClipEncoder  # noqa: E402
from synth_core.lab.host_reads import step_reads  # noqa: E402
from synth_core.lab.machine import cpu_description  # noqa: E402
from synth_core.request import PRECISIONS  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device):
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return out, (time.perf_counter() - t) * 1e3


def build(args, enc, dev):
    """The method under test, ready to step."""
    if args.method == "clipasso":
        cfg = ClipassoConfig(strokes=args.strokes or 16, steps=100_000, canvas=args.canvas, seeds=args.seeds,
                             augmentations=args.augmentations, early_stop_delta=-1.0)  # never stops early
        target = torch.rand(1, 3, args.canvas, args.canvas, generator=torch.Generator().manual_seed(0))
        return Clipasso(cfg, enc, target.to(dev)), clipasso_module
    cfg = ClipDrawConfig(strokes=args.strokes or 256, width=args.canvas, height=args.canvas, steps=100_000,
                         augmentations=args.augmentations)
    return ClipDraw(cfg, enc, "a red circle"), clipdraw_module


def whole_steps(run, steps: int, dev: torch.device) -> list[float]:
    """ms of each step, timed back to back with one sync at the end of each (as the engine reads)."""
    return whole_steps_from(run, 0, steps, dev)


def whole_steps_from(run, first: int, steps: int, dev: torch.device) -> list[float]:
    times = []
    for t in range(first, first + steps):
        start = time.perf_counter()
        result = run.step(t)
        if result.loss is not None:
            float(result.loss)  # the engine's read (every K steps on a GPU; here every step: worst case)
        sync(dev)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def quiet_and_loaded(run, steps: int, dev: torch.device, start: int) -> tuple[list[float], list[float]]:
    """ms of whole steps alternately quiet and with one busy process competing (interleaved, so that a
    change in the machine's other load hits both alike)."""
    from bench_raster import Competitor  # scripts/ is on sys.path when run as a script

    competitor = Competitor()
    quiet, loaded = [], []
    try:
        for i in range(steps):
            for busy, out in ((False, quiet), (True, loaded)):
                competitor.set(busy)
                out.extend(whole_steps_from(run, start + 2 * i + busy, 1, dev))
    finally:
        competitor.close()
    return quiet, loaded


def device_syncs(run, t: int) -> int:
    """Device syncs of one CUDA step, as torch reports them."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.step(t)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def clipdraw_parts(run, enc, dev, steps: int) -> dict[str, float]:
    parts = {k: [] for k in ("rasterize", "augment", "encode", "backward")}
    for _ in range(steps):
        img, a = timed(run.render, dev)
        views, b = timed(lambda: run.views(img), dev)
        emb, c = timed(lambda: enc.encode_image(views), dev)
        loss = -(emb @ run.text.T).sum()
        _, d = timed(loss.backward, dev)
        for p in (run.strokes.points, run.strokes.half_widths, run.strokes.colors):
            p.grad = None
        for k, v in zip(parts, (a, b, c, d)):
            parts[k].append(v)
    return {k: statistics.median(v) for k, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", choices=["clipdraw", "clipasso"], default="clipdraw")
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--untrained", metavar="ARCH", help="open_clip architecture with random weights")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--strokes", type=int, default=None, help="default 256 (clipdraw), 16 (clipasso)")
    ap.add_argument("--seeds", type=int, default=3, help="clipasso: seeds in one batch")
    ap.add_argument("--canvas", type=int, default=224)
    ap.add_argument("--augmentations", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="steps not timed (a compiled encoder compiles here)")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch (1 holds up on a busy machine)")
    ap.add_argument("--under-load", action="store_true", help="also time whole steps with one competing busy process")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    base = OpenClipEncoder.untrained(args.untrained, dev) if args.untrained else load_encoder(args.model, dev)
    enc = accelerate(base, args.precision, args.compile)
    run, module = build(args, enc, dev)
    start = time.perf_counter()
    whole_steps(run, args.warmup, dev)
    warm_s = time.perf_counter() - start
    times = whole_steps_from(run, args.warmup, args.steps, dev)
    reads = step_reads(run, module, args.warmup + args.steps)
    gpu = f", {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else ""
    dtype = getattr(enc, "dtype", None)
    what = (f"{args.seeds} seeds x {args.strokes or 16} strokes" if args.method == "clipasso"
            else f"{args.strokes or 256} strokes")
    print(f"{args.method}: {enc.label} on {dev}{gpu}; CPU {cpu_description()}, {torch.get_num_threads()} torch threads")
    print(f"  {what}, canvas {args.canvas}, {args.augmentations} augmentations, precision "
          f"{'bfloat16 autocast' if dtype is not None else 'float32'}, compiled {args.compile}")
    print(f"  warm-up {args.warmup} steps: {warm_s:.1f} s")
    print(f"  whole step: median {statistics.median(times):.1f} ms, min {min(times):.1f} ms ({args.steps} steps)")
    print("  host reads in a step: " + ", ".join(f"{k} {v}" for k, v in reads.items()))
    if args.under_load:
        quiet, loaded = quiet_and_loaded(run, args.steps, dev, args.warmup + args.steps + 1)
        q, lo = statistics.median(quiet), statistics.median(loaded)
        print(f"  under load (interleaved, {args.steps} each): quiet {q:.1f} ms, loaded {lo:.1f} ms, "
              f"loaded / quiet {lo / q:.2f}")
    if dev.type == "cuda":
        print(f"  CUDA syncs per step: {device_syncs(run, args.warmup + args.steps + 1)}")
    if args.method == "clipdraw":
        parts = clipdraw_parts(run, enc, dev, max(3, args.steps // 2))
        print("  parts, each timed alone: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()))


if __name__ == "__main__":
    main()
