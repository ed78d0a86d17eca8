"""Rasterizer benchmark: time, peak memory and image error on the reference CLIPDraw scene.

Scene: CLIPDraw's initialisation (256 strokes of 1-3 cubic segments, random walk, half-width 1,
random RGBA). For each canvas size, device and backend it prints the median forward and
forward+backward time, the peak extra memory of one forward+backward, and the fast path's mean
absolute error against a 16x16-supersampled ground truth. Targets (2 CPU cores): fast path
fwd+bwd <= 20 ms at 224x224 and <= 40 ms at 512x512; error <= 1/255.
diffvg's CPU build measured on the same machines: fwd+bwd 624 ms (224) and 2,732 ms (512).

    python scripts/bench_raster.py [--sizes 224 512] [--repeats 20] [--widths 1 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from synth_core.initialise import random_strokes  # noqa: E402
from synth_core.rasterize import over_background, rasterize, render_supersampled  # noqa: E402
from synth_core.strokes import StrokeTensors  # noqa: E402


def scene(size: int, device: str, half_width: float, seed: int = 0) -> StrokeTensors:
    st = random_strokes(256, size, size, half_width=half_width, generator=torch.Generator().manual_seed(seed))
    return StrokeTensors(st.points.to(device).requires_grad_(), st.half_widths.to(device).requires_grad_(),
                         st.colors.to(device).requires_grad_(), st.topology.to(device))


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_backend(size: int, device: str, backend: str, repeats: int, half_width: float) -> dict:
    st = scene(size, device, half_width)
    fwd, full = [], []
    for i in range(repeats + 2):  # 2 warm-up runs
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            rasterize(st, size, size, backend)
        _sync(device)
        t1 = time.perf_counter()
        img = rasterize(st, size, size, backend)
        img.sum().backward()
        _sync(device)
        t2 = time.perf_counter()
        if i >= 2:
            fwd.append((t1 - t0) * 1e3)
            full.append((t2 - t1) * 1e3)
    return {"fwd_ms": statistics.median(fwd), "fwd_bwd_ms": statistics.median(full)}


def peak_memory_mb(size: int, device: str, backend: str, half_width: float) -> float:
    """Extra peak memory of one forward+backward: CUDA allocator peak, or max RSS growth on CPU."""
    st = scene(size, device, half_width)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        rasterize(st, size, size, backend).sum().backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rasterize(st, size, size, backend).sum().backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def image_error(size: int, half_width: float) -> float:
    st = scene(size, "cpu", half_width)
    with torch.no_grad():
        ours = over_background(rasterize(st.detach(), size, size), (1, 1, 1, 1))[0, :3]
        truth = over_background(render_supersampled(st.detach(), size, size, samples=16), (1, 1, 1, 1))[0, :3]
    return float((ours - truth).abs().mean()) * 255


def _memory_in_subprocess(size: int, device: str, backend: str, half_width: float) -> float:
    """Max RSS only grows, so each CPU memory reading runs in a fresh process."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import bench_raster as b; import torch; b.scene({size}, {device!r}, {half_width}); "
            f"torch.manual_seed(0); "
            f"print(b.peak_memory_mb({size}, {device!r}, {backend!r}, {half_width}))")
    if device.startswith("cuda"):
        return peak_memory_mb(size, device, backend, half_width)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    ap.add_argument("--widths", type=float, nargs="+", default=[1.0], help="half-widths of the strokes (init: 1)")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--reference-repeats", type=int, default=2)
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--no-reference", action="store_true", help="skip the slow dense reference")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(f"{'device':6} {'size':>5} {'hw':>4} {'backend':9} {'fwd ms':>9} {'fwd+bwd ms':>11} {'peak MB':>8} {'err /255':>9}")
    rows = []
    for device in args.devices:
        for size in args.sizes:
            for hw in args.widths:
                backends = ["fast"] + ([] if args.no_reference else ["reference"])
                for backend in backends:
                    reps = args.repeats if backend == "fast" else args.reference_repeats
                    t = time_backend(size, device, backend, reps, hw)
                    mem = _memory_in_subprocess(size, device, backend, hw)
                    err = image_error(size, hw) if (backend == "fast" and device == "cpu") else float("nan")
                    row = {"device": device, "size": size, "half_width": hw, "backend": backend, **t,
                           "peak_mb": mem, "error_255": err}
                    rows.append(row)
                    print(f"{device:6} {size:>5} {hw:>4g} {backend:9} {t['fwd_ms']:>9.1f} {t['fwd_bwd_ms']:>11.1f} "
                          f"{mem:>8.1f} {err:>9.3f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
