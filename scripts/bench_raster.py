"""Rasterizer benchmark: time, peak memory and image error, against a baseline timed in the same run.

Scenes (256 strokes each):
- ``init``: CLIPDraw's initialisation (1-3 cubic segments, random walk, half-width ``--widths``,
  random RGBA);
- ``mid``: CLIPDraw mid-run: longer strokes, half-widths 1-3, alpha 0.5-1, every 8th stroke laid
  across its neighbour, so strokes overlap.
For each scene, canvas size and device it prints the median forward and forward+backward time,
the peak extra memory of one forward+backward, and the fast path's mean absolute error against a
16x16-supersampled ground truth.

Absolute times depend on the CPU (its model and AVX flags are printed first) and on whatever else
runs on it, so the fast path is timed INTERLEAVED with a baseline and the ratio is what to compare
across machines: diffvg on the same scenes when ``import pydiffvg`` works, otherwise the
project's dense reference path on a small scene (32 init strokes, 96x96), with the fast path on
that same scene. ``--under-load`` also runs one competing CPU-bound process, paused and resumed so
that quiet and loaded calls alternate, and prints both medians and their ratio.

    python scripts/bench_raster.py [--sizes 224 512] [--repeats 20] [--widths 1 3] [--threads 1]
                                   [--under-load] [--no-error]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from synth_core.lab.machine import cpu_description  # noqa: E402

from synth_core.initialise import random_strokes  # noqa: E402
from synth_core.rasterize import has_diffvg, over_background, rasterize, render_supersampled  # noqa: E402
from synth_core.strokes import StrokeTensors  # noqa: E402

SMALL = {"strokes": 32, "size": 96}  # the reference baseline's scene: the dense path is ~400x slower


# ---- machine -------------------------------------------------------------------------------

# ---- scenes --------------------------------------------------------------------------------

def _trainable(st: StrokeTensors, device: str) -> StrokeTensors:
    return StrokeTensors(st.points.to(device).requires_grad_(), st.half_widths.to(device).requires_grad_(),
                         st.colors.to(device).requires_grad_(), st.topology.to(device))


def init_scene(size: int, device: str, half_width: float, seed: int = 0, strokes: int = 256) -> StrokeTensors:
    """CLIPDraw's initial scene."""
    g = torch.Generator().manual_seed(seed)
    st = random_strokes(strokes, size, size, half_width=half_width, generator=g)
    return _trainable(st, device)


def mid_scene(size: int, device: str, seed: int = 0, strokes: int = 256) -> StrokeTensors:
    """CLIPDraw some hundred steps in: longer strokes, half-widths 1-3, alpha 0.5-1, overlaps."""
    g = torch.Generator().manual_seed(seed)
    st = random_strokes(strokes, size, size, walk=0.15, generator=g)
    first = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), 3 * st.topology.segments + 1]), 0)
    points = st.points.clone()
    for i in range(8, strokes, 8):  # lay stroke i across the middle of stroke i - 1
        prev = points[0, first[i - 1] : first[i]]
        points[0, first[i] : first[i + 1]] += prev.mean(0) - points[0, first[i]]
    colors = st.colors.clone()
    colors[..., 3] = 0.5 + 0.5 * colors[..., 3]
    half_widths = 1 + 2 * torch.rand(st.half_widths.shape, generator=g)
    return _trainable(StrokeTensors(points, half_widths, colors, st.topology), device)


def make_scene(name: str, size: int, device: str, half_width: float) -> StrokeTensors:
    if name == "init":
        return init_scene(size, device, half_width)
    if name == "mid":
        return mid_scene(size, device)
    if name == "small":
        return init_scene(size, device, half_width, strokes=SMALL["strokes"])
    raise ValueError(name)


# ---- timing --------------------------------------------------------------------------------

def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_call(st: StrokeTensors, size: int, device: str, backend: str) -> tuple[float, float]:
    """One forward (no grad) and one forward+backward, in ms."""
    _sync(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        rasterize(st, size, size, backend)
    _sync(device)
    t1 = time.perf_counter()
    rasterize(st, size, size, backend).sum().backward()
    _sync(device)
    return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3


class Competitor:
    """One CPU-bound busy loop in another process, paused (SIGSTOP) or running (SIGCONT)."""

    def __init__(self) -> None:
        self.proc = mp.get_context("spawn").Process(target=_busy_loop, daemon=True)
        self.proc.start()
        self.running = True
        self.set(False)

    def set(self, running: bool) -> None:
        if running != self.running:
            os.kill(self.proc.pid, signal.SIGCONT if running else signal.SIGSTOP)
            self.running = running
            time.sleep(0.02)  # let the scheduler notice

    def close(self) -> None:
        self.set(True)
        self.proc.terminate()
        self.proc.join()


def _busy_loop() -> None:
    x = 0
    while True:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF


@dataclass
class Task:
    """One backend on one scene; samples are collected per load state (False = quiet)."""

    label: str
    run: Callable[[], tuple[float, float]]
    every: int = 1  # runs once every ``every`` rounds (slow baselines)
    samples: dict = field(default_factory=lambda: {False: [], True: []})


def run_interleaved(tasks: list[Task], rounds: int, competitor: Competitor | None) -> None:
    """Alternate the tasks (and, under load, quiet/loaded) call by call; 2 warm-up calls each."""
    for task in tasks:
        for _ in range(2):
            task.run()
    for r in range(rounds):
        for loaded in ((False, True) if competitor else (False,)):
            if competitor:
                competitor.set(loaded)
            for task in tasks:
                if r % task.every == 0:
                    task.samples[loaded].append(task.run())
    if competitor:
        competitor.set(False)


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    if not samples:
        return math.nan, math.nan
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


# ---- memory and error ----------------------------------------------------------------------

def _proc_status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM, so the import-time peak does not hide ours."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _proc_status_kb("VmHWM") is not None


def peak_memory_mb(scene: str, size: int, device: str, backend: str, half_width: float) -> float:
    """Extra peak memory of one forward+backward: CUDA allocator peak, or peak RSS growth on CPU."""
    st = make_scene(scene, size, device, half_width)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        rasterize(st, size, size, backend).sum().backward()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    base = _proc_status_kb("VmRSS")  # first call in a fresh process: the allocator has cached nothing
    if base is not None and _reset_peak_rss():
        rasterize(st, size, size, backend).sum().backward()
        return (_proc_status_kb("VmHWM") - base) / 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: max RSS growth
    rasterize(st, size, size, backend).sum().backward()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def memory_in_subprocess(scene: str, size: int, device: str, backend: str, half_width: float) -> float:
    """Max RSS only grows, so each CPU memory reading runs in a fresh process."""
    if device.startswith("cuda"):
        return peak_memory_mb(scene, size, device, backend, half_width)
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_raster as b; "
            f"b.make_scene({scene!r}, {size}, {device!r}, {half_width}); "
            f"print(b.peak_memory_mb({scene!r}, {size}, {device!r}, {backend!r}, {half_width}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def image_error(scene: str, size: int, half_width: float) -> float:
    """Mean |fast - 16x16 supersampled| over white, in 1/255."""
    st = make_scene(scene, size, "cpu", half_width).detach()
    with torch.no_grad():
        ours = over_background(rasterize(st, size, size), (1, 1, 1, 1))[0, :3]
        truth = over_background(render_supersampled(st, size, size, samples=16), (1, 1, 1, 1))[0, :3]
    return float((ours - truth).abs().mean()) * 255


# ---- table ---------------------------------------------------------------------------------

def configurations(args) -> list[tuple[str, int, float]]:
    """(scene, size, half-width) rows; the mid-run scene has its own half-widths (1-3)."""
    rows = [("init", size, hw) for size in args.sizes for hw in args.widths]
    return rows + [("mid", size, math.nan) for size in args.sizes]


def baseline_for(args, device: str) -> str | None:
    if args.no_reference:
        return None
    if has_diffvg() and device == "cpu":
        return "diffvg"
    return "reference"


def bench_group(args, device: str, scene: str, size: int, hw: float, baseline: str | None,
                competitor: Competitor | None) -> list[dict]:
    """Time fast (and the baseline) on one configuration, interleaved; one row per backend."""
    tasks = []
    for backend in ["fast"] + ([baseline] if baseline else []):
        st = make_scene(scene, size, device, 1.0 if math.isnan(hw) else hw)
        tasks.append(Task(backend, lambda st=st, backend=backend: time_call(st, size, device, backend)))
    if baseline:  # one baseline call every few rounds: --reference-repeats calls in all
        tasks[1].every = max(1, math.ceil(args.repeats / max(1, args.reference_repeats)))
    run_interleaved(tasks, args.repeats, competitor)
    fast_full = medians(tasks[0].samples[False])[1]
    rows = []
    for task in tasks:
        fwd, full = medians(task.samples[False])
        row = {"device": device, "scene": scene, "size": size, "half_width": hw, "backend": task.label,
               "fwd_ms": fwd, "fwd_bwd_ms": full, "x_fast": full / fast_full}
        if competitor:
            loaded_fwd, loaded_full = medians(task.samples[True])
            row.update(loaded_fwd_ms=loaded_fwd, loaded_fwd_bwd_ms=loaded_full,
                       loaded_over_quiet=loaded_full / full)
        rows.append(row)
    return rows


def add_memory_and_error(row: dict, args) -> None:
    hw = 1.0 if math.isnan(row["half_width"]) else row["half_width"]
    row["peak_mb"] = memory_in_subprocess(row["scene"], row["size"], row["device"], row["backend"], hw)
    wants_error = row["backend"] == "fast" and row["device"] == "cpu" and not args.no_error
    row["error_255"] = image_error(row["scene"], row["size"], hw) if wants_error else math.nan


HEADER = (f"{'device':6} {'scene':5} {'size':>5} {'hw':>4} {'backend':9} {'fwd ms':>9} {'fwd+bwd ms':>11} "
          f"{'x fast':>7} {'peak MB':>8} {'err /255':>9}")


def print_row(row: dict, under_load: bool) -> None:
    hw = "1-3" if math.isnan(row["half_width"]) else f"{row['half_width']:g}"
    line = (f"{row['device']:6} {row['scene']:5} {row['size']:>5} {hw:>4} {row['backend']:9} "
            f"{row['fwd_ms']:>9.1f} {row['fwd_bwd_ms']:>11.1f} {row['x_fast']:>7.1f} {row['peak_mb']:>8.1f} "
            f"{row['error_255']:>9.3f}")
    if under_load:
        line += f" {row['loaded_fwd_bwd_ms']:>11.1f} {row['loaded_over_quiet']:>7.2f}"
    print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 512])
    ap.add_argument("--widths", type=float, nargs="+", default=[1.0],
                    help="half-widths of the init scene (CLIPDraw: 1)")
    ap.add_argument("--repeats", type=int, default=20, help="timed calls of the fast path per row")
    ap.add_argument("--reference-repeats", type=int, default=5, help="timed calls of the baseline per row")
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--no-reference", action="store_true",
                    help="no baseline (neither diffvg nor the dense reference)")
    ap.add_argument("--no-error", action="store_true", help="skip the (slow) supersampled image error")
    ap.add_argument("--under-load", action="store_true", help="also time with one competing busy process")
    ap.add_argument("--threads", type=int,
                    help="torch CPU threads (default: torch's; diffvg always uses all cores)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
          + f"; diffvg {'importable' if has_diffvg() else 'not importable'}")
    print("times are medians; 'x fast' = this backend's fwd+bwd / the fast path's, timed interleaved"
          + ("; 'loaded' columns: the same calls while one busy process competes" if args.under_load else ""))
    print(HEADER + (f" {'loaded f+b':>11} {'load x':>7}" if args.under_load else ""))
    competitor = Competitor() if args.under_load else None
    rows = []
    try:
        for device in args.devices:
            baseline = baseline_for(args, device)
            groups = [(scene, size, hw, baseline if baseline == "diffvg" else None)
                      for scene, size, hw in configurations(args)]
            if baseline == "reference":
                groups.append(("small", SMALL["size"], 1.0, "reference"))
            for scene, size, hw, base in groups:
                for row in bench_group(args, device, scene, size, hw, base, competitor):
                    add_memory_and_error(row, args)
                    print_row(row, args.under_load)
                    rows.append(row)
    finally:
        if competitor:
            competitor.close()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
