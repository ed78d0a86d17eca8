"""A quick check of how strongly the built-in model's similarity rewards the *shape* (seconds, no optimiser).

Why: CLIPDraw maximises cos(image, prompt). If a wrong shape of the right colour, a broken shape
or a scribble scores close to the real shape, the optimiser stops there (the spike's drawings were
the right colour but no shape). So for each condition below this measures, over fresh drawings,
how often the right caption beats every same-colour wrong-shape caption, and by how much:

- ``clean`` / ``cluttered`` / ``faint`` (semi-transparent strokes) / ``augmented`` (the engine's
  perspective + resized crop, at a 224 px canvas resized to the model's input, as CLIPDraw does);
- ``completion``: how often a whole shape scores above the same shape with half its outline
  missing (the optimiser must be paid for finishing a shape), and ``completion 0.9`` / ``0.75``
  the same for a tenth and a quarter missing (a "C" for a circle: what is left to pay for last);
- ``scribble``: how often the shape's caption prefers the whole shape over a same-colour scribble.

``--optimum PATH`` also writes what the model likes most for one prompt per shape: the pixels
themselves optimised (no strokes) from a blank page to maximise cos(image, prompt). A model whose
gradient a person can follow shows the shapes there; a model that any pixel noise pleases shows
a white page with specks, and an optimiser that follows its gradient draws tangles.

    python -m synth_core.lab.robustness [--weights PATH] [--n 300] [--optimum sheet.png]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch

from ..augment import AugmentConfig, apply_warps, sample_warps
from ..encoders.base import Encoder
from . import shapes

CANVAS = 224  # the engine's default canvas


def _captions(encoder: Encoder) -> torch.Tensor:
    names = [shapes.caption(c, s) for c in shapes.COLOURS for s in shapes.SHAPES]
    return encoder.encode_text(names).reshape(len(shapes.COLOURS), len(shapes.SHAPES), -1)


def _render(n: int, seed: int, style: shapes.Style, completeness: float = 1.0, scribble: bool = False,
            closed_only: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` drawings; the same seed gives the same colours and shapes whatever the other arguments."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(len(shapes.COLOURS), size=n)
    pool = [shapes.SHAPES.index(s) for s in (shapes.CLOSED if closed_only else shapes.SHAPES)]
    shape = rng.choice(pool, size=n)
    imgs = []
    for c, s in zip(colour, shape):
        if scribble:
            img = shapes.render_scribble(shapes.COLOURS[c], rng=rng, style=style)
        else:
            img = shapes.render_shape(shapes.SHAPES[s], shapes.COLOURS[c], rng=rng, style=style,
                                      completeness=completeness)
        imgs.append(img.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(imgs)), torch.from_numpy(colour), torch.from_numpy(shape)


@torch.no_grad()
def _sims(encoder: Encoder, images: torch.Tensor, text: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """[n, 6] similarity of each image to its colour's six shape captions."""
    if images.shape[-1] != encoder.input_size:
        images = torch.nn.functional.interpolate(images, size=(encoder.input_size,) * 2, mode="bilinear",
                                                 antialias=True, align_corners=False)
    emb = encoder.encode_image(images.to(encoder.device)).cpu()
    return torch.einsum("nd,nsd->ns", emb, text[colour].cpu())


def _margin(sims: torch.Tensor, shape: torch.Tensor) -> dict:
    idx = torch.arange(len(shape))
    right = sims[idx, shape].clone()
    sims = sims.clone()
    sims[idx, shape] = -2.0
    m = right - sims.max(1).values
    return {"wins": round(float((m > 0).float().mean()), 3), "margin": round(float(m.mean()), 3)}


def _augmented(images: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Each drawing upscaled to the engine's canvas, then one engine-style augmented view."""
    big = torch.nn.functional.interpolate(images, size=(CANVAS, CANVAS), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    warps = sample_warps(len(images), CANVAS, CANVAS, size, AugmentConfig(), g)
    return torch.cat([apply_warps(big[i : i + 1], warps[i : i + 1], size) for i in range(len(images))])


def check(encoder: Encoder, n: int = 300, seed: int = 424_242) -> dict:
    """The numbers described in the module docstring (higher is better; wins are fractions)."""
    text = _captions(encoder)
    st = shapes.MODEL_STYLE
    out: dict = {}
    conditions = {
        "clean": replace(st, clutter_prob=0.0),
        "cluttered": replace(st, clutter_prob=1.0, clutter_strokes=(16, 32), clutter_alpha=(0.1, 0.5)),
        "faint": replace(st, alpha=(0.25, 0.45)),
        "judge_style": shapes.JUDGE_STYLE,
    }
    for k, (name, style) in enumerate(conditions.items()):
        x, c, s = _render(n, seed + k, style)
        out[name] = _margin(_sims(encoder, x, text, c), s)
    x, c, s = _render(n, seed + 10, st)
    out["augmented"] = _margin(_sims(encoder, _augmented(x, encoder.input_size, seed), text, c), s)
    idx = torch.arange(n)
    whole, c, s = _render(n, seed + 11, st, closed_only=True)
    others = {"completion": _render(n, seed + 11, st, completeness=0.5, closed_only=True)[0],  # same colours, shapes
              "completion 0.9": _render(n, seed + 11, st, completeness=0.9, closed_only=True)[0],
              "completion 0.75": _render(n, seed + 11, st, completeness=0.75, closed_only=True)[0],
              "scribble": _render(n, seed + 11, st, scribble=True, closed_only=True)[0]}
    sw = _sims(encoder, whole, text, c)[idx, s]
    for name, other in others.items():
        so = _sims(encoder, other, text, c)[idx, s]
        out[name] = {"wins": round(float((sw > so).float().mean()), 3), "gap": round(float((sw - so).mean()), 3)}
    return out


OPTIMUM_PROMPTS = ("a red circle", "a blue square", "a green triangle", "a yellow star", "a black cross",
                   "a red line")


def pixel_optimum(encoder: Encoder, prompt: str, steps: int = 300, lr: float = 0.05, seed: int = 0) -> np.ndarray:
    """The image (RGB float [S, S, 3], S the encoder's input size) that gradient ascent on the pixels
    finds for ``prompt``, from a white page with a little noise (logits of sigmoid pixels, Adam)."""
    size = encoder.input_size
    text = encoder.encode_text([prompt]).detach()
    g = torch.Generator().manual_seed(seed)
    z = (3.0 + 0.1 * torch.randn(1, 3, size, size, generator=g)).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = -(encoder.encode_image(torch.sigmoid(z)) * text).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return torch.sigmoid(z)[0].detach().permute(1, 2, 0).numpy()


def optimum_sheet(encoder: Encoder, prompts: tuple[str, ...] = OPTIMUM_PROMPTS, steps: int = 300,
                  scale: int = 2) -> np.ndarray:
    """One row of pixel optima (uint8 RGB), each enlarged ``scale`` times, a white gap between."""
    tiles = [np.repeat(np.repeat(pixel_optimum(encoder, p, steps), scale, 0), scale, 1) for p in prompts]
    gap = np.ones((tiles[0].shape[0], 4 * scale, 3))
    row = np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], 1)
    return (row * 255 + 0.5).astype(np.uint8)


def main(argv: list[str] | None = None) -> None:
    from ..builtin.model import BuiltinEncoder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", help="a builtin_clip.pt (default: the shipped one)")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--optimum", metavar="PNG", help="also write the pixel optima of " + ", ".join(OPTIMUM_PROMPTS))
    args = ap.parse_args(argv)
    encoder = BuiltinEncoder.load("cpu", args.weights) if args.weights else BuiltinEncoder.load("cpu")
    if args.optimum:
        from PIL import Image

        Image.fromarray(optimum_sheet(encoder)).save(args.optimum)
        print(f"wrote {args.optimum}: the pixels the model likes most for " + ", ".join(OPTIMUM_PROMPTS))
    for name, row in check(encoder, args.n).items():
        print(f"{name:>12}: " + ", ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
