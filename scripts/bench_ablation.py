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

With --best-of N ... (and --seeds S >= N) the same drawings are also scored as a best-of-N
selection: per prompt, of its first N seeds the one the model itself likes best (highest clean
cosine to the prompt, similarity_end; with --tidy also the lowest ClipDraw.objective, the tidy
pass's loss under 8 fixed augmentations, read off the same runs). No judge picks. Extra rows per
N for the chosen drawings, the oracle (share of prompts with at least one eye-passing seed among
the first N), the correlation of the scores with the eye's pass over all drawings, and a contact
sheet of the chosen drawings for the largest N.

With --set FIELD=VALUE (repeatable) any ClipDrawConfig field is overridden for an experiment on the
optimiser's side (for example --set segments=(3,5) --set walk=0.3), --tidy-set FIELD=VALUE a
TidyConfig field of the tidy pass (--tidy-set share=0.25); --negative TEXT adds a negative prompt
(the same for every prompt, as CLIPDraw's "a badly drawn sketch"); --shapes limits the prompts to
some of the six shapes for a quicker look.

    python scripts/bench_ablation.py [--augmentations 4 0] [--seeds 1] [--steps 200] [--tidy]
                                     [--best-of 2 4] [--shapes circle square] [--set walk=0.3]
                                     [--out out/ablation]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import statistics
import sys
from dataclasses import fields, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from synth_core.builtin import COLOURS, SHAPES, load_builtin_encoder, load_judge  # noqa: E402
from synth_core.builtin.model import BuiltinEncoder  # noqa: E402
from synth_core.clipdraw import ClipDrawConfig, half_width_range  # noqa: E402
from synth_core.drawing import atomic_write_bytes  # noqa: E402
from synth_core.lab import evaluate  # noqa: E402
from synth_core.lab.evaluate import OFFLINE, contact_sheet, draw_judge_tidy  # noqa: E402
from synth_core.outputs import png_bytes  # noqa: E402
from synth_core.tidy import TidyConfig  # noqa: E402


def _rate(verdicts: list, value) -> float:
    return sum(value(v) for v in verdicts) / len(verdicts)


def _by_shape(verdicts: list, value) -> str:
    shapes = [s for s in SHAPES if any(v.shape == s for v in verdicts)]
    return ", ".join(f"{s} {_rate([v for v in verdicts if v.shape == s], value):.2f}" for s in shapes)


def _override(config: type, text: str) -> tuple[str, object]:
    """``FIELD=VALUE`` -> (field, Python literal) for a field of the dataclass ``config``."""
    name, sep, value = text.partition("=")
    known = {f.name for f in fields(config)}
    if not sep or name not in known:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE with FIELD one of {', '.join(sorted(known))}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Python literal") from None


def config_override(text: str) -> tuple[str, object]:
    """argparse's type for --set: a ClipDrawConfig field."""
    return _override(ClipDrawConfig, text)


def tidy_override(text: str) -> tuple[str, object]:
    """argparse's type for --tidy-set: a TidyConfig field."""
    return _override(TidyConfig, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--augmentations", type=int, nargs="+", default=[4, 0])
    ap.add_argument("--seeds", type=int, default=1, help="seeds per prompt (30 prompts each)")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="the first of the seeds (--first-seed 2 --seeds 2: seeds 2 and 3, beside a run of 0 and 1)")
    ap.add_argument("--steps", type=int, default=OFFLINE.steps)
    ap.add_argument("--strokes", type=int, default=OFFLINE.strokes)
    ap.add_argument("--canvas", type=int, default=OFFLINE.width)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tidy", action="store_true",
                    help="also judge each drawing after the tidy pass (same runs; a 'tidy' row per condition)")
    ap.add_argument("--out", type=Path, default=Path("out/ablation"))
    ap.add_argument("--weights", type=Path, default=None,
                    help="a built-in model checkpoint to draw against instead of the shipped one (a retrained teacher)")
    ap.add_argument("--best-of", type=int, nargs="+", default=[],
                    help="also report a best-of-N seed selection by the model's own score for each N (needs --seeds >= N)")
    ap.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES),
                    help="draw only these shapes' prompts (all five colours each)")
    ap.add_argument("--set", dest="overrides", type=config_override, action="append", default=[],
                    metavar="FIELD=VALUE", help="override a ClipDrawConfig field (repeatable)")
    ap.add_argument("--tidy-set", dest="tidy_overrides", type=tidy_override, action="append", default=[],
                    metavar="FIELD=VALUE", help="override a TidyConfig field of the tidy pass (repeatable)")
    ap.add_argument("--negative", dest="negatives", action="append", default=[], metavar="TEXT",
                    help="a negative prompt for every drawing, the same for all prompts (repeatable)")
    args = ap.parse_args()
    if args.best_of and max(args.best_of) > args.seeds:
        ap.error(f"--best-of {max(args.best_of)} needs --seeds >= {max(args.best_of)}")

    encoder = BuiltinEncoder.load(args.device, args.weights) if args.weights else load_builtin_encoder(args.device)
    judge = load_judge(args.device)
    widest = 2 * half_width_range(replace(OFFLINE, width=args.canvas, height=args.canvas, **dict(args.overrides)),
                                  encoder)[1]
    print(f"{encoder.label}; judge {type(judge.net).__name__}; {torch.get_num_threads()} threads; "
          f"{args.strokes} strokes, {args.steps} steps, canvas {args.canvas}, strokes at most {widest:g} px; "
          f"seeds {args.first_seed}-{args.first_seed + args.seeds - 1}"
          + "".join(f"; {k}={v!r}" for k, v in args.overrides)
          + "".join(f"; tidy {k}={v!r}" for k, v in args.tidy_overrides)
          + "".join(f"; negative {n!r}" for n in args.negatives)
          + "".join(f"; the model's negative {n!r}" for n in encoder.default_negatives if n not in args.negatives))
    print(f"{'augs':>4} {'tidy':>4} {'n':>4} {'colour':>7} {'shape':>6} {'both':>6} {'eye pass':>8} {'purity':>6} "
          f"{'strokes':>7} {'sim start':>9} {'sim end':>8} {'s/drawing':>9}")
    for augs in args.augmentations:
        cfg = replace(OFFLINE, augmentations=augs, steps=args.steps, strokes=args.strokes, width=args.canvas,
                      height=args.canvas, **dict(args.overrides))
        tidy_cfg = TidyConfig(**dict(args.tidy_overrides)) if args.tidy else None
        objectives: list[tuple[float, float]] = []  # (before, after the tidy pass) per drawing, with --tidy
        with _recording_objectives(objectives) if args.best_of else contextlib.nullcontext():
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            pairs = [draw_judge_tidy(colour, shape, encoder, judge, cfg, seed, tidy_cfg, args.negatives)
                     for seed in seeds for shape in args.shapes for colour in COLOURS]
        rows = [("off", [b for b, _ in pairs])] + ([("on", [a for _, a in pairs])] if args.tidy else [])
        for tidy, verdicts in rows:
            report(augs, tidy, verdicts)
            atomic_write_bytes(args.out / f"sheet_aug{augs}{'_tidy' if tidy == 'on' else ''}.png",
                               png_bytes(contact_sheet(verdicts)))
        if args.best_of:
            objective = {"off": [o for o, _ in objectives], "on": [o for _, o in objectives]} \
                if len(objectives) == len(pairs) else {}
            best_of_report(augs, rows, objective, args.best_of, args.out, len(args.shapes) * len(COLOURS))
    print(f"contact sheets in {args.out}/")


@contextlib.contextmanager
def _recording_objectives(into: list[tuple[float, float]]):
    """While active, every tidy pass draw_judge_tidy runs also appends (the run's ClipDraw.objective
    before the pass, the tidied run's after it) to ``into``: the same runs, no extra drawing (two
    evaluations of the fixed-augmentation loss, which uses its own seeded generator)."""
    real = evaluate.quietly

    def recording(method, cfg, step=0):
        before = float(method.objective(method.tidy_strokes())[0])
        result = real(method, cfg, step)
        into.append((before, float(result.method.objective(result.method.tidy_strokes())[0])))
        return result

    evaluate.quietly = recording
    try:
        yield
    finally:
        evaluate.quietly = real


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their mean rank."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def best_of_report(augs: int, rows: list, objective: dict, ns: list[int], out: Path, prompts: int) -> None:
    """Best-of-N rows: per prompt, of its first N seeds the one with the highest similarity_end (and,
    where recorded, the lowest objective); the oracle; the scores' correlation with the eye's pass."""
    print(f"  best of N by the model's own score (sim: highest similarity_end; obj: lowest objective); "
          f"{prompts} prompts; oracle = share of prompts with an eye-passing seed among the first N")
    print(f"{'augs':>4} {'tidy':>4} {'n':>4} {'colour':>7} {'shape':>6} {'both':>6} {'eye pass':>8} {'purity':>6} "
          f"{'strokes':>7} {'sim end':>8}  selection")
    for tidy, verdicts in rows:
        seeds = len(verdicts) // prompts
        grid = [[verdicts[s * prompts + p] for s in range(seeds)] for p in range(prompts)]  # [prompt][seed]
        scores = {"sim": [[v.similarity_end for v in g] for g in grid]}
        if tidy in objective:
            scores["obj"] = [[-objective[tidy][s * prompts + p] for s in range(seeds)] for p in range(prompts)]
        for n in ns:
            _row(augs, tidy, [v for g in grid for v in g[:n]], f"all of the first {n} seeds")
            for name, score in scores.items():
                chosen = [g[int(np.argmax(sc[:n]))] for g, sc in zip(grid, score)]
                _row(augs, tidy, chosen, f"best of {n} by {name}")
                if n == max(ns):
                    atomic_write_bytes(out / f"sheet_aug{augs}_best{n}_{name}{'_tidy' if tidy == 'on' else ''}.png",
                                       png_bytes(contact_sheet(chosen)))
            oracle = sum(any(v.eye.passed for v in g[:n]) for g in grid) / prompts
            print(f"{'':>4} {tidy:>4} {prompts:>4} oracle (best of {n}, eye pass): {oracle:.2f}")
        passed = np.array([v.eye.passed for v in verdicts], dtype=float)
        for name, score in scores.items():
            x = np.array([sc[s] for s in range(seeds) for sc in score])  # verdicts' order: seed-major
            sign = 1 if name == "sim" else -1  # report the objective itself (lower is better)
            within = x - np.repeat(np.array([np.mean(sc) for sc in score])[None, :], seeds, 0).ravel()
            mp = sign * x[passed == 1].mean() if passed.any() else float("nan")
            mf = sign * x[passed == 0].mean() if (passed == 0).any() else float("nan")
            print(f"{'':>4} {tidy:>4} {len(x):>4} {'similarity_end' if name == 'sim' else 'objective'}: "
                  f"mean {mp:.4f} eye-passing ({int(passed.sum())}) vs {mf:.4f} failing ({int(len(x) - passed.sum())}); "
                  f"point-biserial r {sign * _pearson(x, passed):+.3f}, Spearman {sign * _pearson(_ranks(x), _ranks(passed)):+.3f}, "
                  f"within-prompt r {sign * _pearson(within, passed):+.3f}")


def _row(augs: int, tidy: str, verdicts: list, label: str) -> None:
    purity = statistics.median(v.eye.purity for v in verdicts)
    print(f"{augs:>4} {tidy:>4} {len(verdicts):>4} {_rate(verdicts, lambda v: v.colour_ok):>7.2f} "
          f"{_rate(verdicts, lambda v: v.shape_ok):>6.2f} "
          f"{_rate(verdicts, lambda v: v.colour_ok and v.shape_ok):>6.2f} "
          f"{_rate(verdicts, lambda v: v.eye.passed):>8.2f} {purity:>6.2f} "
          f"{_rate(verdicts, lambda v: v.strokes):>7.1f} {_rate(verdicts, lambda v: v.similarity_end):>8.3f}  {label}",
          flush=True)


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
