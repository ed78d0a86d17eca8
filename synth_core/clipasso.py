"""CLIPasso (Vinker et al. 2022): an image becomes a few black strokes; fewer strokes, more abstract.

Defaults follow the reference (algorithms.md section 3): 16 one-segment strokes of fixed
half-width 1.5 (3 px thick), opaque black; start points drawn from encoder saliency x XDoG edges
(softmax, temperature 0.3), each next control point a +-0.025-canvas walk; Adam lr 1.0 on the
control points only; loss = L2 between intermediate encoder features of sketch and image
(layer2 + layer3 of a ResNet CLIP) + 0.1 x (1 - cos) of the final embeddings, over one clean
pair and 4 augmented pairs that share their augmentation; evaluation every 10 steps without
augmentation, the best evaluated state kept, early stop when the evaluation loss moves by at
most 1e-5 twice in a row; best of N seeds by the lowest evaluation loss.

The seeds still running go through as ONE batch (rasterizer and encoder see them at once); a
seed that has stopped early leaves the batch. With ``batch_seeds=False`` they take turns inside
each step instead (on two CPU cores with a ResNet CLIP that is a few per cent faster, see
scripts/bench_methods.py). Either way each seed has its own random streams and its own early
stop, and the losses of different seeds never mix, so both give the strokes of running the
seeds one by one (taking turns bit for bit, the batch up to float rounding).

Deviation: augmented copies are filled with white, not black as in the reference code (its
fill=0 puts black borders around a white-background sketch, which the geometric loss then has
to match; white is what the sketch and the image actually continue with).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .augment import AugmentConfig, apply_warps, sample_warps
from .continuation import Locks, prefix
from .drawing import Drawing
from .encoders.base import Encoder
from .engine import StepResult
from .rasterize import over_background, rasterize
from .safe_step import guarded_update
from .saliency import saliency, sample_starts, xdog_edges
from .strokes import StrokeTensors, Topology, to_drawing

SEED_STRIDE = 1000  # seeds s, s + 1000, s + 2000 ... as the reference's 0 / 1000 / 2000


@dataclass(frozen=True)
class ClipassoConfig:
    strokes: int = 16
    steps: int = 2000
    canvas: int = 224
    seeds: int = 3
    seed: int = 0
    half_width: float = 1.5  # diffvg half-width: 3 px thick
    walk: float = 0.05  # each next control point within +-walk/2 of the canvas
    lr: float = 1.0
    augmentations: int = 4
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(
        distortion=0.5, crop_scale=(0.8, 0.8), crop_ratio=(1.0, 1.0), fill=1.0))
    feature_layers: tuple[int, ...] | None = None  # None: the encoder's default (layer2 + layer3)
    semantic_weight: float = 0.1
    eval_every: int = 10
    early_stop_delta: float = 1e-5
    temperature: float = 0.3
    saliency_init: bool = True
    batch_seeds: bool = True  # the running seeds as one batch, else one after another in each step
    # (k, r): a seed also stops when its best evaluation improved by less than the fraction r over
    # its last k evaluations (a sequence's frames: the 1e-5 rule rarely fires, docs/methods.md)
    plateau: tuple[int, float] | None = None


class Clipasso:
    """A batch of seeds sketching one target image [1, 3, S, S] (optionally with an object mask)."""

    def __init__(self, cfg: ClipassoConfig, encoder: Encoder, target: torch.Tensor,
                 mask: torch.Tensor | None = None, meta: dict | None = None, init: StrokeTensors | None = None,
                 continues: Locks | None = None) -> None:
        """``init``: the exact strokes to start from, one scene per seed (a restart); else ``cfg.strokes``
        new strokes from saliency, after the strokes of the drawing that ``continues`` names."""
        self.cfg, self.encoder = cfg, encoder
        self.continues = continues
        dev = encoder.device
        self.target = target.to(dev)
        self.mask = mask
        self.layers = cfg.feature_layers if cfg.feature_layers is not None else encoder.feature_layers
        self.seeds = [cfg.seed + SEED_STRIDE * i for i in range(cfg.seeds)]
        self.aug_gens = [torch.Generator().manual_seed(s + 1_000_003) for s in self.seeds]
        if init is None:
            self.weight_map = self._init_weights(mask)
            self.strokes = self._initial_strokes()
            if continues is not None:
                self.strokes = prefix(continues.origin, cfg.seeds, dev).then(self.strokes)
        else:  # continue from given strokes (one per seed), as they are
            self.strokes = StrokeTensors(init.points.detach().clone().to(dev), init.half_widths.detach().clone().to(dev),
                                         init.colors.detach().clone().to(dev), init.topology.to(dev))
        self.strokes.points.requires_grad_(True)
        self.held = continues.hold(self.strokes) if continues is not None else None
        self.opt = torch.optim.Adam([self.strokes.points], lr=cfg.lr)
        B = cfg.seeds
        self.best_loss = torch.full((B,), float("inf"))
        self.best_points = self.strokes.points.detach().clone()
        self.last_eval = torch.full((B,), float("nan"))
        self.calm = torch.zeros(B, dtype=torch.long)  # consecutive evaluations that moved <= delta
        self.frozen = [False] * B  # seeds that stopped early (host-side: read every step without the device)
        self._still: tuple[list[bool], torch.Tensor, torch.Tensor] | None = None  # stopped seeds: which, rows, points
        self.evals: list[list[float]] = [[] for _ in range(B)]
        self.meta = dict(meta or {})
        with torch.no_grad():
            self.target_emb, self.target_feats = encoder.encode_with_features(self._clean(self.target))

    # -- setup ------------------------------------------------------------------------------
    def _init_weights(self, mask: torch.Tensor | None) -> torch.Tensor:
        """Saliency x edges (x object mask) on the canvas, [S, S] on the CPU."""
        if not self.cfg.saliency_init:
            return torch.ones(self.cfg.canvas, self.cfg.canvas)
        sal = saliency(self.encoder, self.target).detach()
        w = (sal * xdog_edges(self.target.detach()))[0, 0]
        if mask is not None:
            w = w * (mask.to(w.device)[0, 0] > 0.5)
        return w.cpu()

    def _initial_strokes(self) -> StrokeTensors:
        cfg, n, size = self.cfg, self.cfg.strokes, float(self.cfg.canvas)
        topo = Topology.from_segments([1] * n)
        pts = []
        for s in self.seeds:
            g = torch.Generator().manual_seed(s)
            if n == 0:  # continuing a drawing without adding strokes
                pts.append(torch.zeros(0, 2, dtype=torch.float64))
                continue
            starts = sample_starts(self.weight_map, n, cfg.temperature, g)  # [n, 2] pixels
            steps = cfg.walk * size * (torch.rand(n, 3, 2, generator=g, dtype=torch.float64) - 0.5)
            pts.append(torch.cat([starts[:, None], starts[:, None] + torch.cumsum(steps, 1)], 1).reshape(-1, 2))
        dev = self.encoder.device
        points = torch.stack(pts).float().to(dev)
        B = len(self.seeds)
        return StrokeTensors(points, torch.full((B, n), cfg.half_width, device=dev),
                             torch.tensor([0.0, 0.0, 0.0, 1.0], device=dev).expand(B, n, 4).clone(), topo.to(dev))

    # -- maths ------------------------------------------------------------------------------
    def _clean(self, images: torch.Tensor) -> torch.Tensor:
        size = self.encoder.input_size
        if images.shape[-1] == size:
            return images
        return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                                               align_corners=False)

    def render(self, points: torch.Tensor | None = None, seeds: list[int] | None = None) -> torch.Tensor:
        """RGB [B, 3, S, S] of the current strokes (of the ``seeds`` given), or of other control points [b, P, 2]."""
        if points is None:
            s = self.strokes if seeds is None else self.strokes.scenes(seeds)
        else:
            b = points.shape[0]
            s = StrokeTensors(points.to(self.strokes.points.device), self.strokes.half_widths[:b],
                              self.strokes.colors[:b], self.strokes.topology)
        layer = rasterize(s, self.cfg.canvas, self.cfg.canvas)
        return over_background(layer, (1.0, 1.0, 1.0, 1.0))[:, :3]

    def _pairs(self, sketches: torch.Tensor, seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per seed: 1 clean + n augmented views of its sketch and of the target, same warps."""
        cfg, size = self.cfg, self.encoder.input_size
        B, n = sketches.shape[0], cfg.augmentations
        if n == 0:
            return self._clean(sketches), self._clean(self.target).expand(B, -1, -1, -1)
        warps = torch.cat([sample_warps(n, cfg.canvas, cfg.canvas, size, cfg.augment, self.aug_gens[b]) for b in seeds])
        sk = apply_warps(sketches.repeat_interleave(n, 0), warps, size, cfg.augment.fill, per_image=True)
        tg = apply_warps(self.target.expand(B * n, -1, -1, -1), warps, size, cfg.augment.fill, per_image=True)
        views = 1 + n
        sk_all = torch.cat([self._clean(sketches)[:, None], sk.reshape(B, n, *sk.shape[1:])], 1)
        tg_all = torch.cat([self._clean(self.target).expand(B, -1, -1, -1)[:, None], tg.reshape(B, n, *tg.shape[1:])], 1)
        return sk_all.reshape(B * views, *sk.shape[1:]), tg_all.reshape(B * views, *tg.shape[1:])

    def losses(self, sketch_views: torch.Tensor, target_emb: torch.Tensor, target_feats: list[torch.Tensor],
               batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-seed loss [B] and mean cosine sketch-to-image [B] (views are b-major)."""
        emb, feats = self.encoder.encode_with_features(sketch_views)
        geo = sum(((feats[i] - target_feats[i]) ** 2).reshape(batch, -1).mean(1) for i in self.layers)
        cos = (emb * target_emb).sum(-1).reshape(batch, -1)
        return geo + self.cfg.semantic_weight * (1 - cos).mean(1), cos.mean(1).detach()

    def _groups(self) -> list[list[int]]:
        """The running seeds: one batch, or one group per seed when they take turns."""
        live = [b for b in range(self.cfg.seeds) if not self.frozen[b]]
        if not live:
            return []
        return [live] if self.cfg.batch_seeds else [[b] for b in live]

    def step(self, t: int) -> StepResult:
        """One update of the running seeds; the loss and similarity shown are their means, read later."""
        self.opt.zero_grad(set_to_none=True)
        groups = self._groups() or [[0]]  # all stopped: step seed 0 for the loss (its points are kept)
        losses, sims = [], []
        self._note_stopped_seeds()
        for seeds in groups:
            sk, tg = self._pairs(self.render(seeds=seeds), seeds)
            with torch.no_grad():
                t_emb, t_feats = self.encoder.encode_with_features(tg)
            part, part_cos = self.losses(sk, t_emb, t_feats, len(seeds))
            part = self._penalised(part, seeds)
            part.sum().backward()
            losses.append(part.detach())
            sims.append(part_cos)
        loss, cos = torch.cat(losses), torch.cat(sims)
        applied = guarded_update(self.opt, [self.strokes.points], loss, self._hold_stopped_seeds)
        if (t + 1) % self.cfg.eval_every == 0:
            self.evaluate()
        return StepResult(loss.mean(), cos.mean(), note="non-finite loss, gradients or update", applied=applied)

    def _note_stopped_seeds(self) -> None:
        """Before an update: the points of the seeds that have stopped, on the device (only when that set
        changed, so most steps copy nothing to the device)."""
        if any(self.frozen) and (self._still is None or self._still[0] != self.frozen):
            rows = torch.tensor(self.frozen).to(self.strokes.points.device)[:, None, None]
            self._still = (list(self.frozen), rows, self.strokes.points.detach().clone())

    def _hold_stopped_seeds(self) -> None:
        """After each update: seeds that stopped early and locked strokes keep their points."""
        if self._still is not None:
            _, rows, points = self._still
            self.strokes.points.copy_(torch.where(rows, points, self.strokes.points))
        if self.held is not None:
            self.held.restore(self.strokes)

    @torch.no_grad()
    def evaluate(self) -> torch.Tensor:
        """Clean-pair loss of every running seed (NaN for stopped ones); keeps each seed's best state
        and updates early stopping."""
        B = self.cfg.seeds
        loss = torch.full((B,), float("nan"))
        for seeds in self._groups():
            n = len(seeds)
            clean = self._clean(self.render(seeds=seeds))
            t_feats = [f.expand(n, *f.shape[1:]) for f in self.target_feats]
            loss[seeds] = self._penalised(self.losses(clean, self.target_emb.expand(n, -1), t_feats, n)[0], seeds).cpu()
        for b in range(B):
            if self.frozen[b]:
                continue
            v = float(loss[b])
            self.evals[b].append(v)
            if v < self.best_loss[b] - self.cfg.early_stop_delta:
                self.best_loss[b] = v
                self.best_points[b] = self.strokes.points[b].detach()
            moved = abs(v - float(self.last_eval[b])) if torch.isfinite(self.last_eval[b]) else float("inf")
            self.calm[b] = self.calm[b] + 1 if moved <= self.cfg.early_stop_delta else 0
            self.frozen[b] = bool(self.calm[b] >= 2) or self._plateaued(b)
            self.last_eval[b] = v
        return loss

    def _plateaued(self, b: int) -> bool:
        """Seed ``b``'s best evaluation improved by less than the fraction r over its last k (``plateau``)."""
        if self.cfg.plateau is None:
            return False
        k, r = self.cfg.plateau
        evals = self.evals[b]
        if len(evals) <= k:
            return False
        before, now = min(evals[:-k]), min(evals)
        return before - now < r * abs(before)

    def penalty(self, seeds: list[int]) -> torch.Tensor | None:
        """An extra loss per seed [len(seeds)] on top of CLIPasso's, or None; a sequence's frames pay
        for moving their strokes here (synth_core.sequence)."""
        return None

    def _penalised(self, loss: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        extra = self.penalty(seeds)
        return loss if extra is None else loss + extra

    # -- the tidy pass (synth_core.tidy): abstraction by removal ---------------------------
    def tidy_strokes(self) -> StrokeTensors:
        """The winning seed's best evaluated strokes (what ``picture`` shows)."""
        b = self.best_seed
        pts = self.best_points if torch.isfinite(self.best_loss[b]) else self.strokes.points.detach()
        return StrokeTensors(pts[b : b + 1].detach(), self.strokes.half_widths[b : b + 1].detach(),
                             self.strokes.colors[b : b + 1].detach(), self.strokes.topology)

    @torch.no_grad()
    def objective(self, strokes: StrokeTensors) -> torch.Tensor:
        """CLIPasso's evaluation loss (clean pair, geometric + semantic) of B scenes."""
        b = strokes.batch
        layer = rasterize(strokes, self.cfg.canvas, self.cfg.canvas)
        clean = self._clean(over_background(layer, (1.0, 1.0, 1.0, 1.0))[:, :3])
        t_feats = [f.expand(b, *f.shape[1:]) for f in self.target_feats]
        return self.losses(clean, self.target_emb.expand(b, -1), t_feats, b)[0]

    def locked_strokes(self) -> torch.Tensor:
        """[N] bool: the strokes a continued drawing locked (never removed, never moved)."""
        n = self.strokes.topology.num_strokes
        return self.continues.locked_mask() if self.continues is not None else torch.zeros(n, dtype=torch.bool)

    def restart(self, kept: torch.Tensor, steps: int, plateau: tuple[int, float] | None = None) -> "Clipasso":
        """The best seed continuing from its strokes ``kept`` [N] (bool); it keeps its augmentation stream
        and stops early on ``plateau`` (``ClipassoConfig.plateau``) when given."""
        b = self.best_seed
        cfg = replace(self.cfg, strokes=int(kept.sum()), steps=steps, seeds=1, seed=self.seeds[b],
                      saliency_init=False, plateau=plateau)
        continues = self.continues.keep(kept) if self.continues is not None else None
        return Clipasso(cfg, self.encoder, self.target, self.mask, self.meta, init=self.tidy_strokes().keep(kept),
                        continues=continues)

    def finished(self) -> bool:
        return all(self.frozen)

    @property
    def best_seed(self) -> int:
        """Index of the seed with the lowest evaluation loss so far (the current one before any)."""
        if torch.isfinite(self.best_loss).any():
            return int(torch.argmin(self.best_loss))
        return 0

    def picture(self) -> Drawing:
        """The best seed's best evaluated state (its current state before the first evaluation)."""
        b = self.best_seed
        pts = self.best_points if torch.isfinite(self.best_loss[b]) else self.strokes.points.detach()
        s = StrokeTensors(pts, self.strokes.half_widths, self.strokes.colors, self.strokes.topology)
        meta = {**self.meta, "seed": self.seeds[b], "seeds": self.seeds,
                "eval_loss": [None if not torch.isfinite(x) else round(float(x), 6) for x in self.best_loss]}
        d = to_drawing(s, self.cfg.canvas, self.cfg.canvas, b=b, meta=meta)
        return self.continues.splice(d) if self.continues is not None else d
