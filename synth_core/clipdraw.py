"""CLIPDraw (Frans et al. 2021): coloured Bezier strokes optimised so that an encoder sees a prompt.

Defaults are the reference notebook's (algorithms.md section 1): 256 strokes of 1-3 cubic
segments, random-walk init, half-width 1 clamped to [1, 50] (diffvg convention), random RGBA,
Adam 1.0 / 0.1 / 0.01 for points / widths / colours, points' rate x0.4 at 50 % and x0.1 at 75 %
of the run, 4 augmented copies per step, loss = sum over copies of -cos(prompt) + 0.3 cos(negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import torch

from .augment import AugmentConfig, apply_warps, identity_warp, sample_warps
from .continuation import Locks, prefix
from .drawing import Drawing
from .encoders.base import Encoder
from .engine import StepResult
from .initialise import random_strokes
from .losses import semantic_loss
from .rasterize import over_background, rasterize
from .request import MIN_WIDTH, REFERENCE_MAX_WIDTH
from .safe_step import guarded_update
from .strokes import StrokeTensors, to_drawing


TIDY_VIEWS = 8  # fixed augmented copies per scene when the tidy pass weighs strokes
TIDY_SEED = 7_919


@dataclass(frozen=True)
class ClipDrawConfig:
    strokes: int = 256
    segments: tuple[int, int] = (1, 3)
    steps: int = 1000
    width: int = 224
    height: int = 224
    augmentations: int = 4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    walk: float = 0.1  # init: each control point moves +-walk/2 of the canvas
    init_half_width: float = 1.0  # diffvg half-width (2 px thick) on a canvas the encoder's input size
    half_width_range: tuple[float, float] = (MIN_WIDTH / 2, REFERENCE_MAX_WIDTH / 2)  # the reference's [1, 50]
    max_width: float | None = None  # px (full width): replaces the range's top; None: the encoder's card may lower it
    lr_points: float = 1.0
    lr_widths: float = 0.1
    lr_colors: float = 0.01
    anneal: tuple[tuple[float, float], ...] = ((0.5, 0.4), (0.75, 0.1))  # (fraction of run, points lr factor)
    negative_weight: float = 0.3
    background: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    seed: int = 0
    # StyleCLIPDraw (Replicate schedule): style loss every step, CLIP term only before clip_until
    style_weight: float = 0.0
    clip_until: float = 1.0  # fraction of the run


def style_weight(strength: float) -> float:
    """StyleCLIPDraw's user-facing strength 0-100 -> loss weight (50 -> 2.0)."""
    return 4.0 * strength / 100.0


def half_width_range(cfg: ClipDrawConfig, encoder: Encoder) -> tuple[float, float]:
    """The half-widths strokes keep to: the user's ``max_width`` / 2 as the top, else the reference
    range lowered to the model card's widest stroke for this canvas (``Encoder.default_max_width``)."""
    lo, hi = cfg.half_width_range
    if cfg.max_width is not None:
        return lo, max(lo, cfg.max_width / 2.0)
    cap = encoder.default_max_width(cfg.width, cfg.height)
    return (lo, max(lo, min(hi, cap / 2.0))) if cap is not None else (lo, hi)


def initial_half_width(cfg: ClipDrawConfig, encoder: Encoder, top: float) -> float:
    """New strokes' half-width: the reference's (``cfg.init_half_width``, meant for a canvas the size of
    the encoder's input) scaled to this canvas, so that the encoder sees them as the reference's model
    did, and at most ``top``. A model that sees a 224 px canvas at 64 px (the built-in one) would see
    2 px strokes as 0.6 px: too faint to steer by, and a page of them can fade to blank (measured:
    docs/builtin-model.md, "Blank pages"). CLIP at its own 224 px keeps the reference's 2 px."""
    scale = max(cfg.width, cfg.height) / encoder.input_size
    return min(top, cfg.init_half_width * max(1.0, scale))


def points_lr_factor(cfg: ClipDrawConfig, t: int) -> float:
    """The reference anneal: step t (0-based) of ``cfg.steps`` -> multiplier of the points' rate."""
    factor = 1.0
    for frac, f in cfg.anneal:
        if t >= int(frac * cfg.steps):
            factor = f
    return factor


class ClipDraw:
    """One CLIPDraw run: state (strokes, optimisers, random streams) and one step at a time."""

    def __init__(self, cfg: ClipDrawConfig, encoder: Encoder, prompt: str, negatives: Sequence[str] = (),
                 meta: dict | None = None, style: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 init: StrokeTensors | None = None, continues: Locks | None = None) -> None:
        """``init``: the exact strokes to start from (a restart); else ``cfg.strokes`` new random ones,
        after the strokes of the drawing that ``continues`` names, whose locked strokes never change."""
        self.cfg = cfg
        self.continues = continues
        self.encoder = encoder
        self.style = style  # image [B, 3, H, W] -> style loss [B] (StyleCLIPDraw)
        negatives = (*negatives, *(n for n in encoder.default_negatives if n not in negatives))
        self.prompt, self.negative_prompts = prompt, tuple(negatives)
        self.half_width_range = half_width_range(cfg, encoder)
        dev = encoder.device
        texts = encoder.encode_text([prompt, *negatives]).detach()
        self.text, self.negatives = texts[:1], texts[1:]
        self.aug_gen = torch.Generator().manual_seed(cfg.seed + 1_000_003)
        s = init if init is not None else self._initial_strokes()
        self.strokes = StrokeTensors(s.points.detach().clone().to(dev).requires_grad_(),
                                     s.half_widths.detach().clone().to(dev).requires_grad_(),
                                     s.colors.detach().clone().to(dev).requires_grad_(), s.topology.to(dev))
        self.held = continues.hold(self.strokes) if continues is not None else None
        self.opt = torch.optim.Adam([
            {"params": [self.strokes.points], "lr": cfg.lr_points},
            {"params": [self.strokes.half_widths], "lr": cfg.lr_widths},
            {"params": [self.strokes.colors], "lr": cfg.lr_colors},
        ])
        # the points' rate anneals; widths and colours keep theirs (one factor per parameter group)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.opt, [lambda t: points_lr_factor(cfg, t), lambda t: 1.0, lambda t: 1.0])
        self.meta = dict(meta or {})

    def _initial_strokes(self) -> StrokeTensors:
        cfg, dev = self.cfg, self.encoder.device
        fresh = random_strokes(cfg.strokes, cfg.width, cfg.height, segments=cfg.segments, walk=cfg.walk,
                               half_width=initial_half_width(cfg, self.encoder, self.half_width_range[1]),
                               generator=torch.Generator().manual_seed(cfg.seed), device=dev)
        return fresh if self.continues is None else prefix(self.continues.origin, 1, dev).then(fresh)

    def render(self) -> torch.Tensor:
        """The canvas as CLIP sees it: RGB [1, 3, H, W] over the (opaque) background."""
        layer = rasterize(self.strokes, self.cfg.height, self.cfg.width)
        return over_background(layer, self.cfg.background)[:, :3]

    def views(self, image: torch.Tensor) -> torch.Tensor:
        """Augmented copies at the encoder's input size (a plain resize when augmentations = 0)."""
        size = self.encoder.input_size
        cfg = self.cfg
        if cfg.augmentations > 0:
            warps = sample_warps(cfg.augmentations, cfg.width, cfg.height, size, cfg.augment, self.aug_gen)
        else:
            warps = identity_warp(cfg.width, cfg.height, size)
        return apply_warps(image, warps, size, fill=cfg.augment.fill)

    def loss(self, t: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Loss of step t and the mean similarity to the prompt (None when the CLIP term is off), both
        0-d tensors on the device (no host read)."""
        cfg = self.cfg
        image = self.render()
        loss = image.new_zeros(())
        sim = None
        if self.style is None or t < cfg.clip_until * cfg.steps:  # StyleCLIPDraw ends on style alone
            views = self.views(image)
            semantic, s = semantic_loss(self.encoder.encode_image(views), self.text, self.negatives,
                                        cfg.negative_weight, copies=views.shape[0])
            loss = loss + semantic.sum()
            sim = s.mean().detach()
        if self.style is not None:
            loss = loss + cfg.style_weight * self.style(image).sum()
        return loss, sim

    def step(self, t: int) -> StepResult:
        """One optimisation step; the schedule advances even when the step is skipped (it follows t)."""
        try:
            return self._update(t)
        finally:
            self.schedule.step()

    def _update(self, t: int) -> StepResult:
        self.opt.zero_grad(set_to_none=True)
        loss, sim = self.loss(t)
        loss.backward()
        params = (self.strokes.points, self.strokes.half_widths, self.strokes.colors)
        applied = guarded_update(self.opt, params, loss, self._keep_in_range)
        return StepResult(loss.detach(), sim, note="non-finite loss, gradients or update", applied=applied)

    def _keep_in_range(self) -> None:
        """After each update: widths and colours in range, locked strokes back where they were."""
        self.strokes.half_widths.clamp_(*self.half_width_range)
        self.strokes.colors.clamp_(0.0, 1.0)
        if self.held is not None:
            self.held.restore(self.strokes)

    # -- the tidy pass (synth_core.tidy) ------------------------------------------------------
    def tidy_strokes(self) -> StrokeTensors:
        return self.strokes.detach()

    @torch.no_grad()
    def objective(self, strokes: StrokeTensors) -> torch.Tensor:
        """The loss of B scenes under fixed augmentations (the same for every call), per scene.

        The semantic term is scaled to the run's number of copies so that it keeps its balance
        with the style term, as in ``loss``.
        """
        cfg, size = self.cfg, self.encoder.input_size
        image = over_background(rasterize(strokes, cfg.height, cfg.width), cfg.background)[:, :3]
        warps = sample_warps(TIDY_VIEWS, cfg.width, cfg.height, size, cfg.augment,
                             torch.Generator().manual_seed(cfg.seed + TIDY_SEED))
        views = apply_warps(image, warps, size, fill=cfg.augment.fill)
        semantic, _ = semantic_loss(self.encoder.encode_image(views), self.text, self.negatives,
                                    cfg.negative_weight, copies=TIDY_VIEWS)
        loss = semantic * max(1, cfg.augmentations) / TIDY_VIEWS
        if self.style is not None:
            loss = loss + cfg.style_weight * self.style(image)
        return loss

    def locked_strokes(self) -> torch.Tensor:
        """[N] bool: the strokes a continued drawing locked (never removed, never moved)."""
        n = self.strokes.topology.num_strokes
        return self.continues.locked_mask() if self.continues is not None else torch.zeros(n, dtype=torch.bool)

    def restart(self, kept: torch.Tensor, steps: int, prompt: str | None = None) -> "ClipDraw":
        """A short run from the strokes ``kept`` [N] (bool) at the points' final (annealed) learning
        rate; ``prompt`` replaces the prompt (a keyed prompt's stretch starts where the last ended)."""
        cfg = self.cfg
        fine = replace(cfg, strokes=int(kept.sum()), steps=steps, anneal=(),
                       lr_points=cfg.lr_points * points_lr_factor(cfg, cfg.steps - 1), clip_until=1.0)
        continues = self.continues.keep(kept) if self.continues is not None else None
        return ClipDraw(fine, self.encoder, prompt or self.prompt, self.negative_prompts, self.meta, self.style,
                        init=self.tidy_strokes().keep(kept), continues=continues)

    def follow(self, prompt: str, steps: int, strokes: StrokeTensors | None = None) -> "ClipDraw":
        """A new run of ``steps`` steps towards ``prompt`` from these very strokes (or ``strokes``, as many
        in the same order), on the full schedule (a keyed prompt's stretch: the drawing morphs)."""
        init = strokes if strokes is not None else self.tidy_strokes()
        cfg = replace(self.cfg, strokes=init.topology.num_strokes, steps=steps)
        return ClipDraw(cfg, self.encoder, prompt, self.negative_prompts, self.meta, self.style, init=init,
                        continues=self.continues)

    def picture(self) -> Drawing:
        d = to_drawing(self.strokes, self.cfg.width, self.cfg.height, self.cfg.background, meta=self.meta)
        return self.continues.splice(d) if self.continues is not None else d
