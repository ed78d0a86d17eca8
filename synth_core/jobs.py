"""Jobs: the one entry point shared by the CLI, the worker and Blender's in-process runner.

``parse_request`` turns a JSON-like dict into a validated ``JobRequest`` (unknown keys and
out-of-range numbers are refused with a message that names the key). ``run_events`` runs it and
yields typed events; ``run_job`` does the same with wire dicts and never raises: every failure
becomes an ``error`` event (docs/wire-format.md).
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterator

from .encoders import DEFAULT_MODEL, Encoder, load_encoder
from .errors import BadRequest, SynthError
from .events import Error, Event, Started, Warning

log = logging.getLogger(__name__)

METHODS = ("clipdraw", "styleclipdraw", "clipasso", "pixels")
# reference defaults per method: (strokes, steps, augmentations)
METHOD_DEFAULTS = {"clipdraw": (256, 1000, 4), "styleclipdraw": (256, 500, 10), "clipasso": (16, 2000, 4),
                   "pixels": (256, 1000, 16)}  # the pixel baseline has no strokes; its count is unused
MAX_STROKES = 10_000
MAX_STEPS = 100_000
MAX_CANVAS = 4096


@dataclass(frozen=True)
class JobRequest:
    prompt: str | None
    method: str = "clipdraw"
    negative: tuple[str, ...] = ()
    strokes: int = 256
    steps: int = 1000
    seed: int = 0
    seeds: int = 1  # best of N (CLIPasso runs them as one batch)
    image: str | None = None  # CLIPasso: the picture to sketch
    style_image: str | None = None  # StyleCLIPDraw
    style_strength: float = 50.0  # 0-100, StyleCLIPDraw's user parameter
    style_weights: str = "imagenet"  # VGG-16 for the style loss: imagenet, a .pth file, or untrained
    mask: bool = True  # CLIPasso: use the image's alpha channel as the object mask
    canvas: tuple[int, int] = (224, 224)
    model: str = DEFAULT_MODEL
    device: str = "auto"
    snapshot_every: int = 10
    augmentations: int | None = None  # None: the method's reference number (4 strokes, 16 pixels)
    cache_dir: str | None = None
    threads: int = 0  # CPU threads for torch; 0 keeps torch's default (all cores)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["negative"] = list(self.negative)
        d["canvas"] = list(self.canvas)
        return {k: v for k, v in d.items() if v is not None}

    def meta(self) -> dict[str, Any]:
        """Settings to store with every drawing so that it can be reproduced."""
        skip = {"device", "cache_dir", "snapshot_every", "threads"}
        if self.method != "styleclipdraw":
            skip |= {"style_image", "style_strength", "style_weights"}
        if self.method != "clipasso":
            skip |= {"image", "mask"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}


_KEYS = set(JobRequest.__dataclass_fields__)


def _int(d: dict, key: str, default: int, lo: int, hi: int, hint: str = "") -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise BadRequest(f"{key} must be an integer, got {v!r}")
    if not lo <= v <= hi:
        raise BadRequest(f"{key} must be between {lo} and {hi}, got {v}{hint}")
    return v


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadRequest(f"{what} is empty: say what to draw")
    return " ".join(value.split())


def _path(d: dict, key: str, what: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise BadRequest(f"{what} is missing: give the path of {key.replace('_', ' ')} file")
    return v


def parse_request(d: Any) -> JobRequest:
    """Validate a request dict; raises BadRequest with a one-line message naming the problem."""
    if not isinstance(d, dict):
        raise BadRequest(f"a request must be a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise BadRequest(f"unknown request key(s): {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    method = d.get("method", "clipdraw")
    if method not in METHODS:
        raise BadRequest(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    strokes_default, steps_default, _ = METHOD_DEFAULTS[method]
    if method == "clipasso":
        image = _path(d, "image", "the image to sketch")
        prompt = _text(d["prompt"], "prompt") if d.get("prompt") not in (None, "") else None
    else:
        image = None
        if "prompt" not in d:
            hint = " (StyleCLIPDraw draws a prompt in the style of the image)" if method == "styleclipdraw" else ""
            raise BadRequest(f"prompt is missing: say what to draw{hint}")
        prompt = _text(d["prompt"], "prompt")
    style_image = _path(d, "style_image", "the style image") if method == "styleclipdraw" else None
    neg = d.get("negative", [])
    if isinstance(neg, str):
        neg = [neg]
    if not isinstance(neg, list):
        raise BadRequest("negative must be a list of strings")
    canvas = d.get("canvas", 224)
    if isinstance(canvas, (int, float)) and not isinstance(canvas, bool):
        canvas = [canvas, canvas]
    if not (isinstance(canvas, (list, tuple)) and len(canvas) == 2):
        raise BadRequest(f"canvas must be a size in pixels or [width, height], got {canvas!r}")
    cw = _int({"canvas": canvas[0]}, "canvas", 224, 16, MAX_CANVAS)
    ch = _int({"canvas": canvas[1]}, "canvas", 224, 16, MAX_CANVAS)
    if method == "clipasso" and cw != ch:
        raise BadRequest("CLIPasso sketches on a square canvas: give one size")
    aug = d.get("augmentations")
    for key in ("model", "device", "cache_dir", "style_weights"):
        if d.get(key) is not None and not isinstance(d[key], str):
            raise BadRequest(f"{key} must be a string, got {d[key]!r}")
    strength = d.get("style_strength", 50.0)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 <= strength <= 100:
        raise BadRequest(f"style_strength must be a number from 0 to 100, got {strength!r}")
    if not isinstance(d.get("mask", True), bool):
        raise BadRequest("mask must be true or false")
    return JobRequest(
        prompt=prompt,
        method=method,
        negative=tuple(_text(n, f"negative prompt {i + 1}") for i, n in enumerate(neg)),
        strokes=_int(d, "strokes", strokes_default, 1, MAX_STROKES, f" (at most {MAX_STROKES} strokes)"),
        steps=_int(d, "steps", steps_default, 1, MAX_STEPS),
        seed=_int(d, "seed", 0, 0, 2**62),
        seeds=_int(d, "seeds", 3 if method == "clipasso" else 1, 1, 16),
        image=image,
        style_image=style_image,
        style_strength=float(strength),
        style_weights=d.get("style_weights") or "imagenet",
        mask=d.get("mask", True),
        canvas=(cw, ch),
        model=d.get("model") or DEFAULT_MODEL,
        device=d.get("device") or "auto",
        snapshot_every=_int(d, "snapshot_every", 10, 0, MAX_STEPS),
        augmentations=None if aug is None else _int(d, "augmentations", 4, 0, 64),
        cache_dir=d.get("cache_dir"),
        threads=_int(d, "threads", 0, 0, 1024),
    )


def load_inputs(req: JobRequest) -> dict[str, Any]:
    """Read the request's images before anything slow happens, so bad files fail at once."""
    from .images import load_image

    inputs: dict[str, Any] = {}
    if req.image:
        inputs["image"] = load_image(req.image, "image to sketch")
    if req.style_image:
        inputs["style_image"] = load_image(req.style_image, "style image")
    return inputs


def build_method(req: JobRequest, encoder: Encoder, inputs: dict[str, Any] | None = None):
    """The method object for a request (the engine loop drives it)."""
    inputs = inputs if inputs is not None else load_inputs(req)
    augs = req.augmentations if req.augmentations is not None else METHOD_DEFAULTS[req.method][2]
    if req.method == "pixels":
        from .pixels import PixelConfig, PixelOptimisation

        cfg = PixelConfig(steps=req.steps, width=req.canvas[0], height=req.canvas[1], seed=req.seed, augmentations=augs)
        return PixelOptimisation(cfg, encoder, req.prompt, req.negative)
    if req.method == "clipasso":
        return _clipasso(req, encoder, augs, inputs["image"])
    from .clipdraw import ClipDraw, ClipDrawConfig, style_weight

    cfg = ClipDrawConfig(strokes=req.strokes, steps=req.steps, width=req.canvas[0], height=req.canvas[1],
                         seed=req.seed, augmentations=augs)
    style = None
    if req.method == "styleclipdraw":
        import torch

        from .images import fit_long_edge
        from .style import StyleLoss, vgg16_extractor

        target = fit_long_edge(inputs["style_image"], 224).to(encoder.device)
        weights = None if req.style_weights == "untrained" else req.style_weights
        extractor = vgg16_extractor(weights, encoder.device, req.cache_dir, seed=req.seed)
        style = StyleLoss(extractor, target, generator=torch.Generator().manual_seed(req.seed + 17))
        cfg = replace(cfg, style_weight=style_weight(req.style_strength), clip_until=0.9)
    return ClipDraw(cfg, encoder, req.prompt, req.negative, meta=req.meta(), style=style)


def _clipasso(req: JobRequest, encoder: Encoder, augs: int, img):
    from .clipasso import Clipasso, ClipassoConfig
    from .images import fit_square

    target, mask = fit_square(img, req.canvas[0])
    cfg = ClipassoConfig(strokes=req.strokes, steps=req.steps, canvas=req.canvas[0], seeds=req.seeds,
                         seed=req.seed, augmentations=augs)
    return Clipasso(cfg, encoder, target, mask if req.mask else None, meta=req.meta())


def prompt_warnings(req: JobRequest, encoder: Encoder) -> Iterator[Warning]:
    texts = ([req.prompt] if req.prompt else []) + list(req.negative)
    if req.method == "clipasso" and (req.prompt or req.negative):
        yield Warning("CLIPasso sketches the image: the prompt and negative prompts are not used")
        return
    for i, text in enumerate(texts):
        what = "prompt" if i == 0 else f"negative prompt {i}"
        n = encoder.count_tokens(text)
        if n > encoder.context_length:
            yield Warning(f"{what} needs {n} tokens but {encoder.label} reads {encoder.context_length}: "
                          "the rest is ignored")
        if missing := encoder.unknown_words(text):
            yield Warning(f"{encoder.label} does not know the word(s) {', '.join(missing)} in the {what}: "
                          "they cannot steer the drawing")


def run_events(req: JobRequest, should_stop: Callable[[], bool] | None = None,
               encoder: Encoder | None = None) -> Iterator[Event]:
    """Load the model, build the method and run it; raises SynthError for expected failures."""
    from .engine import optimise

    inputs = load_inputs(req)
    if req.threads:
        import torch

        torch.set_num_threads(req.threads)
    enc = encoder or load_encoder(req.model, req.device, req.cache_dir)
    yield Started(req.steps, str(enc.device), enc.label, req.method)
    yield from prompt_warnings(req, enc)
    method = build_method(req, enc, inputs)
    yield from optimise(method, req.steps, req.snapshot_every, should_stop)


def run_job(request: dict[str, Any], should_stop: Callable[[], bool] | None = None) -> Iterator[dict[str, Any]]:
    """Wire events for a request dict; failures become one ``error`` event, never an exception."""
    try:
        req = parse_request(request)
        for ev in run_events(req, should_stop):
            yield ev.to_wire()
    except SynthError as e:
        yield Error(e.kind, str(e)).to_wire()
    except Exception as e:  # a bug or an environment failure: one line on the wire, details in the log
        log.error("job failed:\n%s", traceback.format_exc())
        first = (str(e).strip().splitlines() or [""])[0][:300]
        yield Error("internal", f"{type(e).__name__}: {first}").to_wire()
