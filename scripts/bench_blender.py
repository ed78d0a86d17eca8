"""Build times of the Blender builders: 100 snapshots x 256 strokes as Grease Pencil and as curves.

    python scripts/bench_blender.py [--snapshots 100] [--strokes 256] [--segments 3] [--repeat 3]

Synthetic random drawings (the builders' cost does not depend on what is drawn) go through the
same ResultWriter the add-on uses: one ``add`` per snapshot (what the live view does while the
engine runs) and ``finish`` (curves: the F-curves of every snapshot). Prints the median build time
of each output and the size of the saved .blend, compressed and not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def drawings(n_snapshots: int, strokes: int, segments: int, size: int = 224):
    import numpy as np

    from synth_core.drawing import Drawing

    rng = np.random.default_rng(0)
    pts = rng.uniform(0, size, (strokes * (3 * segments + 1), 2))
    out = []
    for _ in range(n_snapshots):  # strokes drift and recolour a little each snapshot, like an optimisation
        pts = pts + rng.normal(0, 0.5, pts.shape)
        out.append(Drawing(size, size, pts, np.full(strokes, segments), rng.uniform(1, 6, strokes),
                           rng.uniform(0, 1, (strokes, 4))))
    return out


def build(output: str, snaps) -> tuple[float, object]:
    import bpy

    from blender_addon import placement, results

    bpy.ops.wm.read_factory_settings(use_empty=True)
    plane = placement.front_plane((0, 0, 0), None, 2.0, snaps[0].width, snaps[0].height)
    writer = results.ResultWriter(bpy.context.scene, results.OutputSpec(output, plane, name="bench"))
    t0 = time.perf_counter()
    for i, d in enumerate(snaps[:-1]):
        writer.add(d, i)
    writer.finish(snaps[-1], len(snaps) - 1)
    return time.perf_counter() - t0, writer


def blend_sizes() -> tuple[float, float]:
    import bpy

    with tempfile.TemporaryDirectory() as tmp:
        plain, packed = os.path.join(tmp, "plain.blend"), os.path.join(tmp, "packed.blend")
        bpy.ops.wm.save_as_mainfile(filepath=plain, copy=True, compress=False)
        bpy.ops.wm.save_as_mainfile(filepath=packed, copy=True, compress=True)
        return os.path.getsize(plain) / 1e6, os.path.getsize(packed) / 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snapshots", type=int, default=100)
    p.add_argument("--strokes", type=int, default=256)
    p.add_argument("--segments", type=int, default=3, help="cubic segments per stroke (CLIPDraw: 1-3)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="clipdraw-bench-"))
    import bpy

    snaps = drawings(args.snapshots, args.strokes, args.segments)
    print(f"Blender {bpy.app.version_string}: {args.snapshots} snapshots x {args.strokes} strokes "
          f"x {args.segments} segments, median of {args.repeat}")
    for output in ("GREASE_PENCIL", "CURVES"):
        times = []
        for _ in range(args.repeat):
            seconds, writer = build(output, snaps)
            times.append(seconds)
        plain, packed = blend_sizes()
        what = "frames" if output == "GREASE_PENCIL" else "keyed snapshots"
        print(f"  {output:<14} build {statistics.median(times):6.3f} s (min {min(times):.3f})  "
              f"{len(writer.frames)} {what}  .blend {plain:6.1f} MB, compressed {packed:5.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
