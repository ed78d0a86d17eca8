"""Train the built-in model (an OFFLINE STAND-IN FOR CLIP, NOT CLIP) and its independent judge.

Deterministic (fixed seeds, deterministic algorithms, fixed thread count): the same command on
the same machine gives the same weights. CPU-sized: each trains in a few minutes on 2 cores.
Writes builtin_clip.pt and judge.pt (atomically) into --out-dir (default synth_core/weights/)
and prints held-out accuracies, which are also stored in the checkpoints' metadata.

    python scripts/train_builtin.py                          # both, the shipped settings
    python scripts/train_builtin.py --only judge             # one of them
    python scripts/train_builtin.py --steps 5 --images 64 --eval-images 64 --out-dir /tmp/w   # a tiny run
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from synth_core.builtin import checkpoint  # noqa: E402
from synth_core.builtin.judge import JudgeConfig  # noqa: E402
from synth_core.builtin.model import LABEL, BuiltinEncoder, ModelConfig, parameter_count  # noqa: E402
from synth_core.lab import shapes, training  # noqa: E402

VERSION = 1
MODEL_DEFAULTS = training.TrainConfig(steps=1800, images=30000, seed=0)
# The second phase: the plain model fine-tuned on adversarial images (issue 8): its gradient then points at
# shapes a person sees, so CLIPDraw's strokes form them (docs/builtin-model.md, "A robust teacher").
ROBUST_DEFAULTS = training.TrainConfig(steps=600, images=30000, seed=0, lr=5e-4, adversarial_eps=1.5,
                                       adversarial_steps=2)
NEGATIVES = ("a scribble",)  # the model's own negative prompt, in its metadata (BuiltinEncoder.default_negatives)
# The widest stroke a CLIPDraw run grows against it by default, as a share of the canvas's long edge
# (4 px on 224 px, 1.1 px as the model sees it at 64): thick strokes scrub shapes full (Encoder.max_width_share)
MAX_WIDTH_SHARE = 4 / 224
JUDGE_DEFAULTS = training.TrainConfig(steps=2000, images=30000, seed=50_000, lr=2e-3, weight_decay=0.05,
                                      scribble_frac=0.2, broken_frac=0.15)


def _meta(args: argparse.Namespace, what: str, info: dict, heldout: dict, params: int) -> dict:
    return {"what": what, "disclaimer": checkpoint.DISCLAIMER, "version": VERSION, "seed": info["train"]["seed"],
            "train": info["train"], "seconds": info["seconds"], "threads": args.threads, "parameters": params,
            "heldout": heldout, "torch": str(torch.__version__), "trained_by": "scripts/train_builtin.py",
            **({"phases": info["phases"]} if "phases" in info else {})}


def _model_style(args: argparse.Namespace) -> tuple[shapes.Style, float | None]:
    """The teacher's drawing style, and the share of broken outlines if the style changes it."""
    style = shapes.MODEL_STYLE if args.lenient_colour else shapes.TEACHER_STYLE
    broken = None
    if args.strict_shape:
        style, broken = replace(style, **shapes.STRICT_SHAPE), 0.3  # broken outlines shown twice as often
    if args.graded_shape:
        style, broken = replace(style, **shapes.GRADED_SHAPE), 0.3
    if args.clean_outline:
        style = replace(style, **shapes.CLEAN_OUTLINE)
    if args.asterisks:
        style = replace(style, **shapes.ASTERISKS)
    return style, broken


def run_model(args: argparse.Namespace, init: dict | None = None) -> None:
    """Phase 1 (from scratch, plain) unless ``init`` (the state dict of --init) is its result; phase 2
    (adversarial fine-tune) unless --adversarial 0."""
    cfg = replace(MODEL_DEFAULTS, steps=args.model_steps or args.steps or MODEL_DEFAULTS.steps,
                  images=args.images or MODEL_DEFAULTS.images, seed=MODEL_DEFAULTS.seed + args.seed,
                  workers=args.workers, **({"batch": args.batch} if args.batch else {}))
    if args.completion_margin:
        cfg = replace(cfg, completion_margin=args.completion_margin)
    style, broken = _model_style(args)
    if broken is not None:
        cfg = replace(cfg, broken_frac=broken)
    model_cfg = ModelConfig(stem_pool=not args.no_stem_pool)
    training.deterministic(cfg.seed, args.threads, args.device)
    t0 = time.perf_counter()
    data = training.dataset(cfg.images, cfg.seed, style, cfg)
    print(f"model: {len(data.images)} training images in {time.perf_counter() - t0:.0f} s")
    phases = {}
    if init is not None:
        phases["init"] = str(args.init)
    else:
        model, info = training.train_model(cfg, model_cfg, data, device=args.device, style=style)
        init, phases["plain"] = model.state_dict(), info
    if args.adversarial > 0:  # (--init without it is refused in main)
        robust = replace(cfg, steps=args.robust_steps or args.steps or ROBUST_DEFAULTS.steps, lr=ROBUST_DEFAULTS.lr,
                         adversarial_eps=args.adversarial, adversarial_steps=args.adversarial_steps)
        training.deterministic(robust.seed, args.threads, args.device)
        model, phases["robust"] = training.train_model(robust, model_cfg, data, device=args.device, style=style,
                                                       init=init)
    info = {"seconds": round(sum(p["seconds"] for p in phases.values() if isinstance(p, dict)), 1),
            "train": phases.get("robust", phases.get("plain"))["train"],
            **({"phases": phases} if len(phases) > 1 else {})}
    n, s = args.eval_images, 10_000 + args.seed
    heldout = {
        "model_style": training.evaluate_model(model, n, s),
        "judge_style": training.evaluate_model(model, n, s + 1, shapes.JUDGE_STYLE),
        "clean": training.evaluate_model(model, n, s + 2, replace(shapes.MODEL_STYLE, clutter_prob=0.0)),
    }
    params = parameter_count(model)
    print(f"model ({params:,} parameters) held-out zero-shot accuracy: {heldout}; trained in {info['seconds']:.0f} s")
    meta = {**_meta(args, LABEL, info, heldout, params), "negatives": list(NEGATIVES),
            "max_width_share": MAX_WIDTH_SHARE}
    path = checkpoint.save(args.out_dir / checkpoint.MODEL_FILE.name, model, model.cfg, meta)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def run_judge(args: argparse.Namespace) -> None:
    cfg = replace(JUDGE_DEFAULTS, steps=args.judge_steps or args.steps or JUDGE_DEFAULTS.steps,
                  images=args.images or JUDGE_DEFAULTS.images, seed=JUDGE_DEFAULTS.seed + args.seed,
                  workers=args.workers, **({"batch": args.batch} if args.batch else {}))
    training.deterministic(cfg.seed, args.threads, args.device)
    net, info = training.train_judge(cfg, JudgeConfig(), device=args.device)
    n, s = args.eval_images, 60_000 + args.seed
    heldout = {
        "judge_style": training.evaluate_judge(net, n, s, shapes.JUDGE_STYLE),
        "model_style": training.evaluate_judge(net, n, s + 1, shapes.MODEL_STYLE),
        "cluttered": training.evaluate_judge(net, n, s + 2, replace(shapes.JUDGE_STYLE, clutter_prob=1.0)),
        "clean": training.evaluate_judge(net, n, s + 3, replace(shapes.MODEL_STYLE, clutter_prob=0.0)),
    }
    params = parameter_count(net)
    print(f"judge ({params:,} parameters) held-out accuracy: {heldout}; trained in {info['seconds']:.0f} s")
    path = checkpoint.save(args.out_dir / checkpoint.JUDGE_FILE.name, net, net.cfg,
                           _meta(args, "independent judge of the built-in model's drawings", info, heldout, params))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["model", "judge"], help="train one of them (default: both)")
    ap.add_argument("--steps", type=int, help=f"training steps of each (default {MODEL_DEFAULTS.steps})")
    ap.add_argument("--model-steps", type=int, help="override --steps for the model")
    ap.add_argument("--judge-steps", type=int, help="override --steps for the judge")
    ap.add_argument("--images", type=int, help=f"training images of each (default {MODEL_DEFAULTS.images})")
    ap.add_argument("--batch", type=int, help=f"batch size (default {MODEL_DEFAULTS.batch})")
    ap.add_argument("--eval-images", type=int, default=2000, help="held-out images per evaluation")
    ap.add_argument("--seed", type=int, default=0, help="added to the fixed seeds")
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (part of what makes a run repeatable; the shipped weights used 2)")
    ap.add_argument("--workers", type=int, default=2, help="processes that draw the training images (same images)")
    ap.add_argument("--device", default="cpu", help="cpu (deterministic) or cuda (fast, for experiments)")
    ap.add_argument("--out-dir", type=Path, default=checkpoint.WEIGHTS_DIR)
    ap.add_argument("--strict-shape", action="store_true",
                    help="the teacher also pays nothing for an outline drawn to less than 75 %% (shapes.STRICT_SHAPE)")
    ap.add_argument("--graded-shape", action="store_true",
                    help="the teacher pays for an outline in proportion to how much of it is drawn, from 40 %% to all "
                         "of it (shapes.GRADED_SHAPE)")
    ap.add_argument("--clean-outline", action="store_true",
                    help="the teacher also takes label weight for strokes of the shape's colour off its outline "
                         "(shapes.CLEAN_OUTLINE)")
    ap.add_argument("--asterisks", action="store_true",
                    help="a share of the teacher's scribbles are asterisks (3-4 lines through one point), so "
                         "that strokes radiating from a point are not a star (shapes.ASTERISKS)")
    ap.add_argument("--completion-margin", type=float, default=0.0, metavar="M",
                    help="add a margin term: a whole outline must beat the same drawing with only a fraction f "
                         "of its outline (f in 0.6-0.95) by M (1 - f) in cosine to its caption (default 0: off)")
    ap.add_argument("--adversarial", type=float, default=ROBUST_DEFAULTS.adversarial_eps, metavar="EPS",
                    help="the model's second phase fine-tunes it on images moved by a PGD attack within an L2 ball "
                         "of radius EPS (64 px, [0, 1]), so that its gradient is perceptually aligned "
                         f"(default {ROBUST_DEFAULTS.adversarial_eps}; 0: the plain model, no second phase)")
    ap.add_argument("--adversarial-steps", type=int, default=ROBUST_DEFAULTS.adversarial_steps,
                    help=f"PGD steps of that attack (default {ROBUST_DEFAULTS.adversarial_steps})")
    ap.add_argument("--robust-steps", type=int, help=f"steps of the second phase (default {ROBUST_DEFAULTS.steps})")
    ap.add_argument("--init", type=Path,
                    help="skip the first phase: fine-tune these weights (a plain model) adversarially")
    ap.add_argument("--no-stem-pool", action="store_true",
                    help="the model's CNN sees its 64 px input whole instead of after a 2x2 average pool "
                         "(about 4x the compute; an experiment on how much detail the teacher can reward)")
    ap.add_argument("--lenient-colour", action="store_true",
                    help="train the model on the earlier teacher, which was not strict on colour (shipped until "
                         "2026-11-30; the default is shapes.TEACHER_STYLE)")
    args = ap.parse_args(argv)
    if args.strict_shape and args.graded_shape:
        ap.error("--strict-shape and --graded-shape are two different teachers; choose one")
    if args.init and args.adversarial <= 0:
        ap.error("--init starts the adversarial phase; with --adversarial 0 there is nothing to train")
    init = None
    if args.init and args.only in (None, "model"):  # checked before minutes of drawing training images
        from synth_core.errors import MissingWeights

        try:
            init = BuiltinEncoder.load("cpu", args.init).model.state_dict()  # the runtime's own checks
        except MissingWeights as e:
            ap.error(str(e))
    t0 = time.perf_counter()
    if args.only in (None, "model"):
        run_model(args, init)
    if args.only in (None, "judge"):
        run_judge(args)
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
