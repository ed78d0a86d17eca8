"""Cancel latency: from the cancel (a cancel line, SIGINT, SIGTERM) to the final result, per entry point.

    .venv/bin/python scripts/bench_cancel.py [--reps 10] [--strokes 16] [--canvas 64] [--after 3]

Each repetition starts a fresh process on the built-in model (offline), lets it make ``--after``
optimisation steps, then stops it the way its users do:

- worker: ``{"cancel": true}`` on stdin; the final event is ``done`` (cancelled, with the drawing);
- CLI (``python -m synth_core draw``): SIGINT, as Ctrl-C; final: "stopped early ... wrote" (files written);
- render.py (in-process runner): SIGTERM, as ``timeout`` or a render farm; final: the .blend written.

Cancelling is cooperative, at step boundaries, so the target is p95 <= one step + 0.5 s. The table
gives p50 / p95 of cancel -> final result and of cancel -> process exit, with each entry point's
own step time and the machine, for reference. Torch runs on one thread everywhere, so that the
three are comparable on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synth_core.lab.machine import cpu_description, load_average  # noqa: E402

STEPS = 100_000  # never reached: every run is cancelled


@dataclass
class Sample:
    final_s: float  # cancel -> final result
    exit_s: float  # cancel -> process gone
    step_s: list[float] = field(default_factory=list)  # intervals between progress events


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def worker_once(args: argparse.Namespace) -> Sample:
    """Cancel line after ``after`` progress events; the final event is ``done``."""
    req = {"prompt": "a red circle", "model": "builtin", "strokes": args.strokes, "steps": STEPS,
           "canvas": args.canvas, "device": "cpu", "snapshot_every": 0, "threads": 1}
    p = subprocess.Popen([sys.executable, "-m", "synth_core.worker"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env())
    p.stdin.write(json.dumps(req) + "\n")
    p.stdin.flush()
    stamps: list[float] = []
    t0 = final = None
    for line in p.stdout:
        ev = json.loads(line)
        if ev["event"] == "progress" and t0 is None:
            stamps.append(time.perf_counter())
            if len(stamps) == args.after:
                t0 = time.perf_counter()
                p.stdin.write('{"cancel": true}\n')
                p.stdin.flush()
        elif ev["event"] in ("done", "error"):
            final = time.perf_counter()
            assert ev["event"] == "done" and ev["cancelled"], ev
            break
    p.wait(timeout=120)
    return Sample(final - t0, time.perf_counter() - t0, [b - a for a, b in zip(stamps, stamps[1:])])


COUNTER = re.compile(r"\b(\d+)/%d\b" % STEPS)  # tqdm's " 3/100000" and render.py's "step 3/100000"


def _read_until(p: subprocess.Popen, stream, pattern: re.Pattern, counts: list[tuple[float, int]],
                timeout: float = 600) -> re.Match:
    """Read ``stream`` (bytes, also tqdm's carriage returns) until ``pattern`` matches; step counters
    seen on the way go to ``counts`` as (time, step)."""
    buf = ""
    deadline = time.monotonic() + timeout
    fd = stream.fileno()
    while time.monotonic() < deadline:
        chunk = os.read(fd, 4096).decode("utf-8", "replace")
        if not chunk:
            raise RuntimeError(f"the process ended first (exit {p.wait()}): {buf[-500:]}")
        now = time.perf_counter()
        counts.extend((now, int(m.group(1))) for m in COUNTER.finditer(chunk))
        buf += chunk
        m = pattern.search(buf)
        if m:
            return m
        buf = buf[-4000:]
    raise TimeoutError(pattern.pattern)


def step_estimate(counts: list[tuple[float, int]]) -> list[float]:
    """The mean step time between the first and the last step counter seen (printed steps are sparse)."""
    counts = [(t, n) for t, n in counts if n > 0]
    if len(counts) < 2 or counts[-1][1] <= counts[0][1]:
        return []
    (t0, n0), (t1, n1) = counts[0], counts[-1]
    return [(t1 - t0) / (n1 - n0)]


def signal_once(cmd: list[str], stream_name: str, step_re: str, final_re: str, sig: int, after: int) -> Sample:
    """Start ``cmd``, wait for step ``after`` on its ``stream_name``, send ``sig``, time the final line."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env())
    stream = p.stderr if stream_name == "stderr" else p.stdout
    other = p.stdout if stream_name == "stderr" else p.stderr
    drain = subprocess.Popen(["cat"], stdin=other, stdout=subprocess.DEVNULL)  # never let the other pipe fill
    counts: list[tuple[float, int]] = []
    while len({n for _, n in counts if n > 0}) < 2:  # two step counters at least: a step time
        _read_until(p, stream, re.compile(step_re % after), counts)
    t0 = time.perf_counter()
    p.send_signal(sig)
    _read_until(p, stream, re.compile(final_re), [])
    final = time.perf_counter()
    p.wait(timeout=120)
    drain.wait(timeout=10)
    return Sample(final - t0, time.perf_counter() - t0, step_estimate(counts))


def cli_once(args: argparse.Namespace, out: Path) -> Sample:
    cmd = [sys.executable, "-m", "synth_core", "draw", "a red circle", "--model", "builtin", "--strokes",
           str(args.strokes), "--steps", str(STEPS), "--canvas", str(args.canvas), "--device", "cpu",
           "--no-video", "--out", str(out)]
    # tqdm counts steps on stderr: " 3/100000"; step numbers from ``after`` on
    return signal_once(cmd, "stderr", r"\b(?:[%d-9]|\d\d+)/100000", r"stopped early at step \d+; wrote",
                       signal.SIGINT, args.after)


def render_once(args: argparse.Namespace, out: Path) -> Sample:
    cmd = [sys.executable, str(ROOT / "scripts" / "render.py"), "--", "--prompt", "a red circle", "--model",
           "builtin", "--strokes", str(args.strokes), "--steps", str(STEPS), "--canvas", str(args.canvas),
           "--device", "cpu", "--threads", "1", "--runner", "in-process", "--final-only",
           "--out", str(out / "drawing.blend")]
    # render.py prints "CLIPDraw: step N/100000" at most once a second
    return signal_once(cmd, "stdout", r"step (?:[%d-9]|\d\d+)/100000", r"render\.py: wrote ", signal.SIGTERM,
                       args.after)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--canvas", type=int, default=64)
    ap.add_argument("--after", type=int, default=3, help="cancel once this many steps are done (2-9)")
    ap.add_argument("--only", choices=["worker", "cli", "render"], action="append")
    args = ap.parse_args()
    if not 2 <= args.after <= 9:
        ap.error("--after must be between 2 and 9")
    which = args.only or ["worker", "cli", "render"]
    results: dict[str, list[Sample]] = {name: [] for name in which}
    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as tmp:
        for i in range(args.reps):
            for name in which:
                out = Path(tmp) / f"{name}-{i}"
                sample = {"worker": lambda: worker_once(args), "cli": lambda: cli_once(args, out),
                          "render": lambda: render_once(args, out)}[name]()
                results[name].append(sample)
                print(f"rep {i + 1}/{args.reps} {name:6s} final {sample.final_s:6.2f} s  exit {sample.exit_s:6.2f} s",
                      file=sys.stderr, flush=True)
    print(f"\nCPU: {cpu_description()}, load average {load_average():.1f}; torch on 1 thread; builtin model, "
          f"{args.strokes} strokes, {args.canvas} px canvas, cancelled after step {args.after}")
    print("step: median step time of that entry point's own runs (worker: progress intervals; CLI and render.py: "
          "their printed step counters); target: p95 <= step + 0.5 s\n")
    print("| entry point | stopped by | final result | n | step | cancel -> final p50 | p95 | target | "
          "cancel -> exit p50 | p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    how = {"worker": ("cancel line", "`done` event"), "cli": ("SIGINT", "files written"),
           "render": ("SIGTERM", ".blend written")}
    for name, samples in results.items():
        final = [s.final_s for s in samples]
        gone = [s.exit_s for s in samples]
        steps = [x for s in samples for x in s.step_s]
        step = statistics.median(steps) if steps else float("nan")
        p95 = percentile(final, .95)
        verdict = "met" if p95 <= step + 0.5 else "MISSED"
        print(f"| {name} | {how[name][0]} | {how[name][1]} | {len(samples)} | {step:.2f} s | "
              f"{percentile(final, .5):.2f} s | {p95:.2f} s | {verdict} | {percentile(gone, .5):.2f} s | "
              f"{percentile(gone, .95):.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
