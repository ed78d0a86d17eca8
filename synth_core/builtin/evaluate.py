"""Judge drawings made against the built-in model: the honest end-to-end check without CLIP.

Shared by the tests and scripts/bench_ablation.py: draw a prompt like "a red circle" with
CLIPDraw against the built-in model, then ask the independent judge what the drawing shows,
and measure how the model's own similarity to the prompt moved over the run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..clipdraw import ClipDraw, ClipDrawConfig
from ..encoders import Encoder
from ..engine import optimise
from ..events import Done
from ..rasterize import over_background, rasterize
from ..strokes import from_drawing
from .judge import Judge
from .shapes import caption

# What the benchmarks call the default offline settings (the built-in model, 2 CPU cores).
OFFLINE = ClipDrawConfig(strokes=16, steps=200, width=224, height=224)


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
    t0 = time.perf_counter()
    run = ClipDraw(replace(cfg, seed=seed), encoder, caption(colour, shape))
    start = clean_similarity(encoder, run.render().detach(), run.text)
    final = None
    for ev in optimise(run, cfg.steps, snapshot_every=0):
        if isinstance(ev, Done):
            final = ev.picture
    st = from_drawing(final, device=encoder.device)
    image = over_background(rasterize(st, final.height, final.width), final.background)[:, :3].clamp(0, 1)
    end = clean_similarity(encoder, image, run.text)
    (jc, js), = judge.predict(image)
    rgb = (image[0].permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    return Verdict(colour, shape, jc, js, start, end, time.perf_counter() - t0, rgb)


def contact_sheet(verdicts: list[Verdict], columns: int = 6, tile: int = 112) -> np.ndarray:
    """The final drawings in a grid, each with a bar: green = judged right, red = wrong (colour|shape)."""
    from PIL import Image

    rows = (len(verdicts) + columns - 1) // columns
    sheet = np.full((rows * (tile + 6), columns * tile, 3), 255, np.uint8)
    for i, v in enumerate(verdicts):
        r, c = divmod(i, columns)
        im = np.asarray(Image.fromarray(v.image).resize((tile, tile), Image.LANCZOS))
        y, x = r * (tile + 6), c * tile
        sheet[y : y + tile, x : x + tile] = im
        half = tile // 2
        sheet[y + tile : y + tile + 5, x : x + half] = (40, 170, 60) if v.colour_ok else (210, 40, 40)
        sheet[y + tile : y + tile + 5, x + half : x + tile] = (40, 170, 60) if v.shape_ok else (210, 40, 40)
    return sheet
