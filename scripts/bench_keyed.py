"""Prompts keyed on the timeline, judged at each key: both judges, with and without the tidy pass.

    python scripts/bench_keyed.py [--seeds 4] [--tidy on off] [--out out/keyed]

Three prompts ("a red circle" at frame 1, "a blue square" at 48, "a green triangle" at 96; the
built-in model, 16 strokes, 200 steps per prompt, 224 px: the offline defaults when it was measured,
12 strokes since; --strokes), through the same
request path as every entry point. Each key's drawing is judged as its prompt by the learned judge
and by the person-like eye (issue 13); the stroke count at every key and the largest jump of a
control point between consecutive keyed drawings (share of the canvas, target <= 0.10) are
checked too. With tidy on (clipdraw's default), each stretch ends with the tidy pass and the
strokes it would remove are hidden in place. Writes one contact sheet per setting (a row per seed,
a column per key) and prints the CPU it ran on.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from synth_core.builtin import load_builtin_encoder, load_judge  # noqa: E402
from synth_core.drawing import atomic_write_bytes  # noqa: E402
from synth_core.events import Snapshot, Stage  # noqa: E402
from synth_core.jobs import parse_request, run_events  # noqa: E402
from synth_core.lab.evaluate import contact_sheet, judge_drawing  # noqa: E402
from synth_core.lab.machine import cpu_description, load_average  # noqa: E402
from synth_core.outputs import png_bytes  # noqa: E402

KEYS = ((1, "red", "circle"), (48, "blue", "square"), (96, "green", "triangle"))


def keyed_request(seed: int, tidy: bool, steps: int, strokes: int, canvas: int) -> dict:
    return {"model": "builtin", "offline": True, "threads": 1, "seed": seed, "steps": steps,
            "strokes": strokes, "canvas": canvas, "snapshot_every": 10, "tidy": tidy,
            "keyed_prompts": [[frame, f"a {colour} {shape}"] for frame, colour, shape in KEYS]}


def largest_jump(events: list, canvas: int) -> float:
    """The largest move of a control point between consecutive drawings on the timeline (share of
    the canvas)."""
    keyed = sorted(((e.frame, e.picture) for e in events
                    if isinstance(e, (Snapshot, Stage)) and e.frame is not None), key=lambda k: k[0])
    return max(float(np.abs(b.points - a.points).max()) / canvas for (_, a), (_, b) in zip(keyed, keyed[1:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--tidy", nargs="+", choices=["on", "off"], default=["on", "off"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--canvas", type=int, default=224)
    ap.add_argument("--out", type=Path, default=Path("out/keyed"))
    args = ap.parse_args()
    encoder, judge = load_builtin_encoder("cpu"), load_judge("cpu")
    print(f"CPU: {cpu_description()}; load {load_average()}")
    args.out.mkdir(parents=True, exist_ok=True)
    for setting in args.tidy:
        verdicts, counts, jumps, hidden = [], set(), [], []
        t0 = time.perf_counter()
        for seed in range(args.seeds):
            req = keyed_request(seed, setting == "on", args.steps, args.strokes, args.canvas)
            events = list(run_events(parse_request(req), encoder=encoder))
            stages = [e.picture for e in events if isinstance(e, Stage)]
            counts |= {len(p) for p in stages}
            jumps.append(largest_jump(events, args.canvas))
            hidden += [int((p.rgba[:, 3] == 0).sum()) for p in stages]
            for picture, (_, colour, shape) in zip(stages, KEYS):
                v = judge_drawing(picture, colour, shape, encoder, judge)
                verdicts.append(v)
                print(f"tidy {setting} seed {seed} {colour} {shape}: judge {v.judged_colour} "
                      f"{v.judged_shape}, eye purity {v.eye.purity:.2f} shape {v.eye.seen_shape}", flush=True)
        n = len(verdicts)
        learned = sum(v.colour_ok and v.shape_ok for v in verdicts)
        eye = sum(v.eye.passed for v in verdicts)
        purity = np.median([v.eye.purity for v in verdicts])
        print(f"tidy {setting}: {n} keys; learned judge {learned}/{n}, eye pass {eye}/{n}, median purity "
              f"{purity:.2f}; strokes at every key {sorted(counts)}, hidden per key {np.mean(hidden):.1f}; "
              f"largest jump {max(jumps):.3f} of the canvas (target <= 0.10); "
              f"{time.perf_counter() - t0:.0f} s")
        sheet = args.out / f"keyed_tidy_{setting}.png"
        atomic_write_bytes(sheet, png_bytes(contact_sheet(verdicts, columns=len(KEYS))))
        print(f"contact sheet: {sheet} (a row per seed, a column per key)")


if __name__ == "__main__":
    main()
