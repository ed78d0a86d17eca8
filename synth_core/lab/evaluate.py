"""Judge drawings made against the built-in model: the honest end-to-end check without CLIP.

Shared by the tests and scripts/bench_ablation.py: draw a prompt like "a red circle" with
CLIPDraw against the built-in model, then ask the independent judge what the drawing shows,
and measure how the model's own similarity to the prompt moved over the run. The person-like
eye (eye.py: rules and geometry, no learned weights) judges every drawing beside the learned
judge, because a network can be pleased by a multicoloured tangle and a person is not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..builtin.judge import Judge
from ..clipdraw import ClipDraw, ClipDrawConfig
from ..drawing import Drawing
from ..encoders.base import Encoder
from ..engine import optimise
from ..events import Done
from ..rasterize import over_background, rasterize
from ..strokes import from_drawing
from ..tidy import TidyConfig, quietly
from .eye import PURITY_PASS, EyeVerdict, look
from .shapes import caption

if TYPE_CHECKING:
    from PIL import ImageDraw

# What the benchmarks call the default offline settings (the built-in model, 2 CPU cores): 12 strokes,
# not 16, since 2026-12-01 (eye pass 0.73 against 0.66 over 180 drawings: docs/builtin-model.md).
OFFLINE = ClipDrawConfig(strokes=12, steps=200, width=224, height=224)


@dataclass(frozen=True)
class Verdict:
    colour: str
    shape: str
    judged_colour: str
    judged_shape: str
    similarity_start: float
    similarity_end: float
    seconds: float
    image: np.ndarray  # RGB uint8 of the final drawing at the canvas size
    eye: EyeVerdict  # the person-like judge's verdict on the same image
    strokes: int  # strokes in the drawing (fewer after the tidy pass)

    @property
    def colour_ok(self) -> bool:
        return self.judged_colour == self.colour

    @property
    def shape_ok(self) -> bool:
        return self.judged_shape == self.shape


@torch.no_grad()
def clean_similarity(encoder: Encoder, image: torch.Tensor, text: torch.Tensor) -> float:
    """The model's cosine to the prompt for the whole canvas, resized without augmentation."""
    x = torch.nn.functional.interpolate(image, size=(encoder.input_size,) * 2, mode="bilinear", antialias=True,
                                        align_corners=False)
    return float(encoder.encode_image(x) @ text.T)


def draw_and_judge(colour: str, shape: str, encoder: Encoder, judge: Judge, cfg: ClipDrawConfig = OFFLINE,
                   seed: int = 0) -> Verdict:
    """Draw "a {colour} {shape}" and ask both judges what the drawing shows."""
    return draw_judge_tidy(colour, shape, encoder, judge, cfg, seed)[0]


def draw_judge_tidy(colour: str, shape: str, encoder: Encoder, judge: Judge, cfg: ClipDrawConfig = OFFLINE,
                    seed: int = 0, tidy_cfg: TidyConfig | None = None,
                    negatives: Sequence[str] = ()) -> tuple[Verdict, Verdict | None]:
    """The drawing's verdict, and with ``tidy_cfg`` also the verdict after the tidy pass on the same run.
    ``negatives`` are negative prompts (CLIPDraw's, weighted by ``cfg.negative_weight``)."""
    t0 = time.perf_counter()
    run = ClipDraw(replace(cfg, seed=seed), encoder, caption(colour, shape), negatives)
    start = clean_similarity(encoder, run.render().detach(), run.text)
    done = [ev for ev in optimise(run, cfg.steps, snapshot_every=0) if isinstance(ev, Done)][-1]
    before = _verdict(done.picture, colour, shape, encoder, judge, run.text, start, time.perf_counter() - t0)
    if tidy_cfg is None:
        return before, None
    t1 = time.perf_counter()
    result = quietly(run, tidy_cfg, done.step)
    after = _verdict(result.method.picture(), colour, shape, encoder, judge, run.text, start,
                     before.seconds + time.perf_counter() - t1)
    return before, after


def edge_chamfer(sketch_rgb: torch.Tensor, target: torch.Tensor) -> float:
    """Symmetric mean nearest distance (px) between a sketch's ink (RGB [1, 3, S, S], dark pixels) and the
    target's XDoG edges: how closely a sketch follows the picture, in pixels."""
    from ..saliency import xdog_edges

    ink = torch.nonzero(sketch_rgb[0].mean(0) < 0.5).float()
    edges = torch.nonzero(xdog_edges(target)[0, 0] > 0).float()
    if len(ink) == 0 or len(edges) == 0:
        return float("inf")
    d = torch.cdist(ink, edges)
    return float(d.min(1).values.mean() + d.min(0).values.mean()) / 2


def drawing_rgb(drawing: Drawing, device: torch.device | str = "cpu") -> torch.Tensor:
    """A drawing rendered over its background at its canvas size: RGB [1, 3, H, W] in [0, 1]."""
    st = from_drawing(drawing, device=device)
    return over_background(rasterize(st, drawing.height, drawing.width), drawing.background)[:, :3].clamp(0, 1)


def judge_drawing(drawing: Drawing, colour: str, shape: str, encoder: Encoder, judge: Judge) -> Verdict:
    """Both judges' verdict on any drawing of "a {colour} {shape}" (no start similarity: NaN)."""
    text = encoder.encode_text([caption(colour, shape)]).detach()
    return _verdict(drawing, colour, shape, encoder, judge, text, float("nan"), 0.0)


def _verdict(drawing: Drawing, colour: str, shape: str, encoder: Encoder, judge: Judge, text: torch.Tensor,
             start: float, seconds: float) -> Verdict:
    image = drawing_rgb(drawing, encoder.device)
    end = clean_similarity(encoder, image, text)
    (jc, js), = judge.predict(image)
    rgb = (image[0].permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    eye = look(rgb, colour, shape, drawing.background[:3])
    return Verdict(colour, shape, jc, js, start, end, seconds, rgb, eye, len(drawing))


GREEN, RED, GREY = (40, 170, 60), (210, 40, 40), (225, 225, 225)
BAR, LABEL = 5, 12  # bar and label heights under each tile


def contact_sheet(verdicts: list[Verdict], columns: int = 6, tile: int = 112) -> np.ndarray:
    """The final drawings in a grid. Under each: the learned judge's bar (left half colour, right
    half shape; green = right, red = wrong), the eye's bar (left half a gauge of the colour
    purity, green from PURITY_PASS; right half the eye's shape), and the eye's words: the shape it
    sees and the purity, green when it passes the drawing."""
    from PIL import Image, ImageDraw

    cell = tile + 2 * BAR + 1 + LABEL + 3
    rows = (len(verdicts) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * cell), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, v in enumerate(verdicts):
        r, c = divmod(i, columns)
        x, y = c * tile, r * cell
        sheet.paste(Image.fromarray(v.image).resize((tile, tile), Image.LANCZOS), (x, y))
        _bars(draw, x, y + tile, tile, v)
        draw.text((x + 3, y + tile + 2 * BAR + 2), f"eye: {v.eye.seen_shape} {v.eye.purity:.2f}",
                  fill=GREEN if v.eye.passed else RED)
    return np.asarray(sheet)


def _bars(draw: ImageDraw.ImageDraw, x: int, y: int, tile: int, v: Verdict) -> None:
    half = tile // 2
    draw.rectangle([x, y, x + half - 1, y + BAR - 1], fill=GREEN if v.colour_ok else RED)
    draw.rectangle([x + half, y, x + tile - 1, y + BAR - 1], fill=GREEN if v.shape_ok else RED)
    y += BAR + 1
    draw.rectangle([x, y, x + half - 1, y + BAR - 1], fill=GREY)
    gauge = round((half - 1) * min(max(v.eye.purity, 0.0), 1.0))
    if gauge > 0:
        draw.rectangle([x, y, x + gauge - 1, y + BAR - 1], fill=GREEN if v.eye.purity >= PURITY_PASS else RED)
    eye_shape_ok = v.eye.seen_shape == v.shape
    draw.rectangle([x + half, y, x + tile - 1, y + BAR - 1], fill=GREEN if eye_shape_ok else RED)
