"""Training and held-out evaluation of the built-in model (offline stand-in for CLIP, not CLIP) and its judge.

Imported by scripts/train_builtin.py and the tests only (never by ``synth_core.builtin`` itself).
Deterministic on the CPU: fixed seeds, ``torch.use_deterministic_algorithms(True)``, a fixed
thread count, and training images made from fixed seeds in fixed-size chunks.

Both are trained on augmented copies like the ones the CLIPDraw engine feeds the model: random
perspective (0.5, white fill) and a random resized crop, plus flips, quarter turns and fading.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..augment import AugmentConfig, identity_warp, sample_warps
from ..builtin.judge import ConvTransformer, JudgeConfig
from ..builtin.model import ModelConfig, ToyClip
from ..builtin.tokenizer import tokenize
from . import shapes

Log = Callable[[str], None]

TEMPLATES = ("a {c} {s}", "{c} {s}", "a drawing of a {c} {s}", "a sketch of a {c} {s}", "a simple {c} {s}",
             "a picture of a {c} {s}", "the {c} {s}", "a {c} {s} on a white background", "one {c} {s}",
             "a painting of a {c} {s}", "a {c} {s} shape")
SHAPE_WORDS = (*shapes.SHAPES, shapes.SCRIBBLE)  # shape index NONE -> "scribble"
N_CLASSES = len(shapes.COLOURS) * len(SHAPE_WORDS)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``images`` are made once (seeded) and seen ``steps * batch / images`` times."""

    steps: int = 2000
    batch: int = 128
    images: int = 30000
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup: float = 0.1  # fraction of the steps
    seed: int = 0
    scribble_frac: float = 0.15
    broken_frac: float = 0.15
    augment_prob: float = 0.85
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(distortion=0.5, crop_scale=(0.6, 1.0)))
    fade_prob: float = 0.2  # blend towards white (fainter, semi-transparent strokes)
    workers: int = 1  # processes that make the images (same images for any number)
    log_every: int = 100
    completion_margin: float = 0.0  # M of the completion-margin term (0: off, the shipped recipe)
    completion_pairs: int = 5000  # (whole, broken) pairs drawn once for that term
    completion_share: float = 0.125  # pairs per step, as a share of ``batch`` (images: twice that, a quarter)
    completion_range: tuple[float, float] = (0.6, 0.95)  # completeness f of the broken copy
    adversarial_eps: float = 0.0  # L2 radius of the PGD attack on each training image (0: off, the shipped recipe)
    adversarial_steps: int = 2  # PGD steps per training step


def deterministic(seed: int, threads: int | None, device: str = "cpu") -> None:
    """Same seed, same thread count, same machine -> the same weights (on the CPU; a GPU only warns)."""
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=torch.device(device).type != "cpu")


# ---------------------------------------------------------------------------------------------
# Augmentation (the engine's, per image)
def warp_each(images: torch.Tensor, warps: torch.Tensor, fill: float = 1.0) -> torch.Tensor:
    """Resample image i [B, C, S, S] with output->input pixel map i [B, 3, 3]; outside is ``fill``."""
    B, C, H, W = images.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64),
                            indexing="ij")
    grid = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)
    src = grid @ warps.transpose(1, 2)  # [B, HW, 3]
    src = src[..., :2] / src[..., 2:3]
    norm = torch.stack([(src[..., 0] + 0.5) / W * 2 - 1, (src[..., 1] + 0.5) / H * 2 - 1], -1)
    norm = norm.reshape(B, H, W, 2).to(images.device, images.dtype)
    return F.grid_sample(images - fill, norm, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def augment(x_u8: torch.Tensor, g: torch.Generator, cfg: TrainConfig, device: torch.device,
            copies: int = 1) -> torch.Tensor:
    """uint8 [B, 3, S, S] -> float augmented copies: warp (or not), flip, quarter turn, fade.

    ``copies`` > 1: the batch is ``copies`` blocks of B / copies images that get the same
    augmentation, image i of every block alike (a whole outline and its broken copy)."""
    B, _, S, _ = x_u8.shape
    B //= copies
    warps = sample_warps(B, S, S, S, cfg.augment, g)
    keep = torch.rand(B, generator=g) >= cfg.augment_prob
    warps[keep] = identity_warp(S, S, S)
    flip = torch.rand(B, generator=g) < 0.5
    turns = torch.randint(4, (B,), generator=g)
    fade = torch.where(torch.rand(B, generator=g) < cfg.fade_prob, torch.rand(B, generator=g) * 0.5, torch.zeros(B))
    if copies > 1:
        warps, flip, turns, fade = (t.repeat(copies, *([1] * (t.dim() - 1))) for t in (warps, flip, turns, fade))
    x = warp_each(x_u8.to(device).float() / 255, warps)
    x = torch.where(flip.to(device)[:, None, None, None], x.flip(-1), x)
    for k in range(1, 4):
        m = (turns == k).to(device)
        x[m] = torch.rot90(x[m], k, (2, 3))
    f = fade.to(device)[:, None, None, None]
    return x * (1 - f) + f


# ---------------------------------------------------------------------------------------------
# Data
def dataset(n: int, seed: int, style: shapes.Style, cfg: TrainConfig) -> shapes.Batch:
    return shapes.make_dataset(n, seed, style, cfg.scribble_frac, cfg.broken_frac, workers=cfg.workers)


def _pair_chunk(n: int, seed: tuple[int, ...], style: shapes.Style,
                frange: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` (whole, broken) pairs of closed outlines, each pair drawn from one rng state.

    Single-coloured pens only: a multicoloured outline's pieces take their colours from the rng
    after the broken copy has drawn where its outline starts, so the two would differ in colour."""
    rng = np.random.default_rng(seed)
    style = replace(style, multicolour_prob=0.0)
    S = style.size
    whole, broken = np.empty((n, 3, S, S), np.uint8), np.empty((n, 3, S, S), np.uint8)
    colour, shape, f = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32)
    closed = [shapes.SHAPES.index(s) for s in shapes.CLOSED]
    for i in range(n):
        colour[i] = int(rng.integers(len(shapes.COLOURS)))
        shape[i] = closed[int(rng.integers(len(closed)))]
        f[i] = rng.uniform(*frange)
        state = int(rng.integers(2**63))  # the same colours, pen, pose and clutter for both
        for out, c in ((whole, 1.0), (broken, float(f[i]))):
            img = shapes.render_shape(shapes.SHAPES[shape[i]], shapes.COLOURS[colour[i]], rng=np.random.default_rng(state),
                                      filled=False, completeness=c, style=style)
            out[i] = (img.transpose(2, 0, 1) * 255 + 0.5).astype(np.uint8)
    return whole, broken, colour, shape, f


def completion_pairs(n: int, seed: int, style: shapes.Style, frange: tuple[float, float] = (0.6, 0.95),
                     chunk: int = 500, workers: int = 1) -> tuple[np.ndarray, ...]:
    """(whole, broken, colour, shape, f) for ``n`` pairs: a whole unfilled outline and the same
    drawing (same rng state: colour, pen, pose, clutter) with only a fraction f of its outline.
    Made in chunks seeded (seed, 7777, chunk index), so any number of workers gives the same."""
    jobs = [(min(chunk, n - i), (seed, 7_777, i // chunk), style, frange) for i in range(0, n, chunk)]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            parts = pool.starmap(_pair_chunk, jobs)
    else:
        parts = [_pair_chunk(*j) for j in jobs]
    return tuple(np.concatenate(p) for p in zip(*parts))


def shape_targets(shape: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """[B, 7] soft shape labels: ``weight`` on the shape, the rest on "scribble"/"none"."""
    t = torch.zeros(len(shape), len(SHAPE_WORDS))
    t[torch.arange(len(shape)), shape] += weight
    t[:, shapes.NONE] += 1 - weight
    return t


def class_targets(colour: torch.Tensor, shape: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """[B, 35] soft labels over (colour, shape-or-scribble) classes, colour-major."""
    t = torch.zeros(len(colour), len(shapes.COLOURS), len(SHAPE_WORDS))
    t[torch.arange(len(colour)), colour] = shape_targets(shape, weight)
    return t.reshape(len(colour), N_CLASSES)


def class_captions(g: torch.Generator) -> list[str]:
    """One caption per class, each with a random template (colour-major, as class_targets)."""
    t = torch.randint(len(TEMPLATES), (N_CLASSES,), generator=g).tolist()
    return [TEMPLATES[t[i * len(SHAPE_WORDS) + j]].format(c=c, s=s)
            for i, c in enumerate(shapes.COLOURS) for j, s in enumerate(SHAPE_WORDS)]


def _schedule(opt: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine decay to zero."""
    warm = max(1, int(cfg.warmup * cfg.steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, cfg.steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


# ---------------------------------------------------------------------------------------------
# The model
def clip_loss(model: ToyClip, images: torch.Tensor, targets: torch.Tensor, captions: list[str]) -> torch.Tensor:
    """Symmetric InfoNCE between images and the class captions, with soft labels.

    Image -> text: cross-entropy over all 35 captions. Text -> image: for every caption with
    images in the batch, cross-entropy over the batch with all its images as positives.
    """
    ie = model.encode_image(images)
    te = model.encode_text(tokenize(captions).to(images.device))
    return _infonce(model, ie, te, targets)


def _infonce(model: ToyClip, ie: torch.Tensor, te: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model.logit_scale.exp().clamp(max=100) * ie @ te.T  # [B, 35]
    i2t = -(targets * logits.log_softmax(1)).sum(1).mean()
    pos = targets.T  # [35, B]
    present = pos.sum(1) > 0
    t2i_logp = logits.T[present].log_softmax(1)
    t2i = -((t2i_logp * pos[present]).sum(1) / pos[present].sum(1)).mean()
    return (i2t + t2i) / 2


def clip_and_margin_loss(model: ToyClip, images: torch.Tensor, targets: torch.Tensor, captions: list[str],
                         whole: torch.Tensor, broken: torch.Tensor, caption_idx: torch.Tensor, f: torch.Tensor,
                         margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """clip_loss plus the completion margin: mean of relu(M (1 - f) - (cos(whole, c) - cos(broken, c)))
    over (whole, broken) pairs, c the pair's class caption of this step. Returns (total, hinge)."""
    B, P = len(images), len(whole)
    ie = model.encode_image(torch.cat([images, whole, broken]))
    te = model.encode_text(tokenize(captions).to(images.device))
    c = te[caption_idx]
    gap = (ie[B : B + P] * c).sum(1) - (ie[B + P :] * c).sum(1)
    hinge = F.relu(margin * (1 - f) - gap).mean()
    return _infonce(model, ie[:B], te, targets) + hinge, hinge


def adversarial(model: ToyClip, images: torch.Tensor, targets: torch.Tensor, captions: list[str], eps: float,
                steps: int, g: torch.Generator) -> torch.Tensor:
    """The images moved, within an L2 ball of radius ``eps`` each (and [0, 1]), to raise clip_loss.

    Projected gradient ascent with a random start (Madry et al. 2018). Training on these makes a
    model whose input gradient points at what a person sees of the class ("robust models have
    perceptually aligned gradients", Santurkar et al. 2019), which is what an optimiser that
    draws by following the gradient needs; a plain model's gradient points at whatever raises
    its cosine, and the optimiser's drawings stay tangles it scores highly."""
    with torch.no_grad():
        te = model.encode_text(tokenize(captions).to(images.device))
    noise = torch.randn(images.shape, generator=g).to(images.device)
    delta = noise * (eps * 0.5 / noise.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, 1, 1, 1)
    step = 2.5 * eps / max(steps, 1)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = _infonce(model, model.encode_image((images + delta).clamp(0, 1)), te, targets)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + step * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
            delta = delta * (eps / norm).clamp(max=1.0).view(-1, 1, 1, 1)
    return (images + delta.detach()).clamp(0, 1)


def train_model(cfg: TrainConfig, model_cfg: ModelConfig = ModelConfig(), data: shapes.Batch | None = None,
                device: str = "cpu", log: Log = print, style: shapes.Style = shapes.MODEL_STYLE,
                init: dict | None = None) -> tuple[ToyClip, dict]:
    """Train ToyClip on drawings of ``style``, from scratch or from the state dict ``init`` (a
    fine-tune); returns the model (eval mode, CPU) and a summary."""
    t0 = time.perf_counter()
    dev = torch.device(device)
    if data is None:
        data = dataset(cfg.images, cfg.seed, style, cfg)
        log(f"model: {len(data.images)} training images in {time.perf_counter() - t0:.0f} s")
    data = shapes.Batch(*(a[data.colour >= 0] for a in data))  # captions need a colour
    x = torch.from_numpy(data.images)
    targets = class_targets(torch.from_numpy(data.colour), torch.from_numpy(data.shape), torch.from_numpy(data.weight))
    torch.manual_seed(cfg.seed)
    model = ToyClip(model_cfg).to(dev)
    if init is not None:
        model.load_state_dict(init)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    ga = torch.Generator().manual_seed(cfg.seed + 3)  # the attack's own stream: the main one is unchanged
    if cfg.completion_margin > 0:  # pairs drawn once; their own generator, so the main stream is unchanged
        t1 = time.perf_counter()
        pw, pb, pc, ps, pf = (torch.from_numpy(a) for a in completion_pairs(
            cfg.completion_pairs, cfg.seed, style, cfg.completion_range, workers=cfg.workers))
        pair_caption = pc * len(SHAPE_WORDS) + ps  # colour-major, as class_captions
        n_pairs = max(1, round(cfg.completion_share * cfg.batch))
        gp = torch.Generator().manual_seed(cfg.seed + 2)
        log(f"model: {len(pw)} completion pairs in {time.perf_counter() - t1:.0f} s, {n_pairs} a step, "
            f"margin {cfg.completion_margin}")
    model.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(x), (cfg.batch,), generator=g)
        imgs = augment(x[idx], g, cfg, dev)
        if cfg.completion_margin > 0:
            captions = class_captions(g)
            j = torch.randint(len(pw), (n_pairs,), generator=gp)
            pair = augment(torch.cat([pw[j], pb[j]]), gp, cfg, dev, copies=2)
            loss, hinge = clip_and_margin_loss(model, imgs, targets[idx].to(dev), captions, pair[:n_pairs],
                                               pair[n_pairs:], pair_caption[j].to(dev), pf[j].to(dev),
                                               cfg.completion_margin)
        else:
            captions = class_captions(g)
            if cfg.adversarial_eps > 0:
                imgs = adversarial(model, imgs, targets[idx].to(dev), captions, cfg.adversarial_eps,
                                   cfg.adversarial_steps, ga)
            loss = clip_loss(model, imgs, targets[idx].to(dev), captions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            extra = f" margin hinge {hinge.item():.3f}" if cfg.completion_margin > 0 else ""
            log(f"model step {step}/{cfg.steps} loss {loss.item():.3f}{extra} "
                f"temperature {1 / model.logit_scale.exp().item():.3f} ({time.perf_counter() - t0:.0f} s)")
    skip = ({"workers"} | ({"completion_margin", "completion_pairs", "completion_share", "completion_range"}
                           if cfg.completion_margin <= 0 else set())
            | ({"adversarial_eps", "adversarial_steps"} if cfg.adversarial_eps <= 0 else set()))  # shipped metadata unchanged
    return model.cpu().eval(), {"seconds": round(time.perf_counter() - t0, 1), "steps": cfg.steps,
                                "train": {k: v for k, v in asdict(cfg).items() if k not in skip}}


@torch.no_grad()
def zero_shot(model: ToyClip, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted (colour, shape) indices over the 30 captions "a {colour} {shape}"."""
    names = [shapes.caption(c, s) for c in shapes.COLOURS for s in shapes.SHAPES]
    te = model.encode_text(tokenize(names))
    pred = torch.cat([(model.encode_image(images[i : i + batch]) @ te.T).argmax(1) for i in range(0, len(images), batch)])
    return pred // len(shapes.SHAPES), pred % len(shapes.SHAPES)


def accuracy(pc: torch.Tensor, ps: torch.Tensor, colour: np.ndarray, shape: np.ndarray) -> dict:
    """Joint, colour and shape accuracy; drawings without a colour (a mess) count for shape only."""
    c, s = torch.from_numpy(colour), torch.from_numpy(shape)
    has = c != shapes.NO_COLOUR
    colour_ok = (pc == c) | ~has
    return {"joint": round(float((colour_ok & (ps == s)).float().mean()), 4),
            "colour": round(float((pc == c)[has].float().mean()), 4), "shape": round(float((ps == s).float().mean()), 4)}


def evaluate_model(model: ToyClip, n: int, seed: int, style: shapes.Style = shapes.MODEL_STYLE) -> dict:
    """Zero-shot accuracy over the 30 shape captions on fresh whole shapes (no scribbles)."""
    data = shapes.make_batch(n, seed, style, scribble_frac=0.0, broken_frac=0.0)
    pc, ps = zero_shot(model, torch.from_numpy(shapes.to_float(data.images)))
    return accuracy(pc, ps, data.colour, data.shape)


# ---------------------------------------------------------------------------------------------
# The judge
def train_judge(cfg: TrainConfig, judge_cfg: JudgeConfig = JudgeConfig(), data: shapes.Batch | None = None,
                device: str = "cpu", log: Log = print) -> tuple[ConvTransformer, dict]:
    """Train the judge classifier from scratch on the judge's own style of images."""
    t0 = time.perf_counter()
    dev = torch.device(device)
    if data is None:
        data = dataset(cfg.images, cfg.seed, shapes.JUDGE_STYLE, cfg)
        log(f"judge: {len(data.images)} training images in {time.perf_counter() - t0:.0f} s")
    x = torch.from_numpy(data.images)
    colour = torch.from_numpy(data.colour)
    shape_t = shape_targets(torch.from_numpy(data.shape), torch.from_numpy(data.weight))
    torch.manual_seed(cfg.seed)
    net = ConvTransformer(judge_cfg).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _schedule(opt, cfg)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    net.train()
    for step in range(1, cfg.steps + 1):
        idx = torch.randint(len(x), (cfg.batch,), generator=g)
        lc, ls = net(augment(x[idx], g, cfg, dev))
        colour_loss = F.cross_entropy(lc, colour[idx].to(dev), ignore_index=shapes.NO_COLOUR)
        loss = colour_loss - (shape_t[idx].to(dev) * ls.log_softmax(1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % cfg.log_every == 0 or step == cfg.steps:
            log(f"judge step {step}/{cfg.steps} loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    return net.cpu().eval(), {"seconds": round(time.perf_counter() - t0, 1), "steps": cfg.steps,
                              "train": {k: v for k, v in asdict(cfg).items() if k != "workers"}}


@torch.no_grad()
def evaluate_judge(net: ConvTransformer, n: int, seed: int, style: shapes.Style, scribble_frac: float = 0.15) -> dict:
    """Colour and shape accuracy (shape "none" for scribbles) on fresh whole shapes and scribbles."""
    data = shapes.make_batch(n, seed, style, scribble_frac, broken_frac=0.0)
    x = torch.from_numpy(shapes.to_float(data.images))
    lc, ls = zip(*(net(x[i : i + 500]) for i in range(0, len(x), 500)))
    return accuracy(torch.cat(lc).argmax(1), torch.cat(ls).argmax(1), data.colour, data.shape)
