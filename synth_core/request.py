"""The job request: its fields, limits, per-method defaults and the parser that enforces them.

Standard library only, so that the Blender add-on validates a request with the engine's own rules
before a job starts (and builds its sliders from the same limits) without importing torch.
``parse_request`` turns a JSON-like dict into a frozen ``JobRequest``; unknown keys and
out-of-range values are refused with one line that names the key (docs/wire-format.md).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import BadRequest
from .wire import check_request_protocol

DEFAULT_MODEL = "ViT-B-32:openai"  # what CLIPDraw used
BUILTIN_MODEL = "builtin"  # the project's offline stand-in for CLIP (not CLIP)
METHODS = ("clipdraw", "styleclipdraw", "clipasso", "pixels")
PRECISIONS = ("auto", "float32", "bfloat16")  # the encoder's: auto is bfloat16 autocast on CUDA, float32 elsewhere

MAX_STROKES = 10_000
MAX_STEPS = 100_000
MIN_CANVAS, MAX_CANVAS = 16, 4096
MAX_SEEDS = 16
MAX_AUGMENTATIONS = 64
MAX_THREADS = 1024
MAX_LEVELS = 16  # rungs of an abstraction ladder
MAX_KEYS = 256  # keyed prompts of one run
MAX_FRAME = 1_048_574  # Blender's last frame (and minus it the first)
MAX_FRAMES = 100_000  # images of one sketch sequence
MAX_BOIL = 64.0  # px of per-frame jitter: beyond it a sketch is noise, not a hand-drawn look
MAX_COHERENCE = 1e6
DEFAULT_COHERENCE = 100.0  # a sequence's penalty on strokes moving relative to each other (measured: docs/methods.md)
MAX_TEXT = 10_000  # characters of a prompt: far beyond any model's context, small enough to refuse floods
MIN_WIDTH = 2.0  # px: the thinnest stroke the rasterizer draws (diffvg half-width 1)
MAX_WIDTH = float(MAX_CANVAS)  # px: a stroke as wide as the largest canvas
REFERENCE_MAX_WIDTH = 100.0  # px: CLIPDraw's own cap (diffvg half-widths clamped to 50)


@dataclass(frozen=True)
class MethodDefaults:
    """The reference system's settings for one method."""

    strokes: int
    steps: int
    augmentations: int
    seeds: int = 1
    tidy: bool = False  # the tidy pass (synth_core.tidy) after the run: opt-in until measured (docs/methods.md)


METHOD_DEFAULTS = {
    "clipdraw": MethodDefaults(256, 1000, 4, tidy=True),  # measured: cleaner drawings (docs/methods.md)
    "styleclipdraw": MethodDefaults(256, 500, 10),
    "clipasso": MethodDefaults(16, 2000, 4, seeds=3),
    "pixels": MethodDefaults(256, 1000, 16),  # the pixel baseline has no strokes; its count is unused
}


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
    threads: int = 0  # CPU threads for torch during this run; 0 keeps the host's setting
    offline: bool = False  # never touch the network (Blender's "Allow Online Access" off)
    tidy: bool | None = None  # remove strokes that do not help, then fine-tune (keyed prompts: hide them);
    # None: the method's default
    init: str | None = None  # a drawing (.json / .svg) to continue: its strokes come first
    lock: tuple[int, ...] = ()  # strokes of ``init`` that never change
    add: int = 0  # new strokes drawn after ``init``'s (with ``init``, instead of ``strokes``)
    ladder: tuple[int, ...] = ()  # stroke counts of an abstraction ladder, e.g. (64, 32, 16, 8, 4)
    level_steps: int | None = None  # at most this many fine-tuning steps per later rung; None: ``rung_steps``
    keyed_prompts: tuple[tuple[int, str], ...] = ()  # (frame, prompt): each stretch morphs from the last
    frames: tuple[str, ...] = ()  # CLIPasso: a picture sequence, sketched frame by frame (instead of ``image``)
    frame_numbers: tuple[int, ...] = ()  # the scene frame of each picture (with ``frames``: 1 ... N when not given)
    coherence: float | None = None  # weight of the penalty on stroke motion from frame to frame; None: the default
    boil: float | None = None  # px of deterministic per-frame jitter of the drawings sent (hand-drawn look); None: 0
    warm: bool | None = None  # each frame starts from the last one's strokes; None: true
    precision: str = "auto"  # the encoder's arithmetic (PRECISIONS; synth_core.accelerate)
    compile: bool = False  # torch.compile the encoder: slower first step, faster long runs
    max_width: float | None = None  # px: the widest a stroke may grow; None: the model's card, else 100 px

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["negative"] = list(self.negative)
        d["canvas"] = list(self.canvas)
        d["lock"], d["ladder"] = list(self.lock), list(self.ladder)
        d["keyed_prompts"] = [list(k) for k in self.keyed_prompts]
        d["frames"], d["frame_numbers"] = list(self.frames), list(self.frame_numbers)
        if self.init is not None:
            del d["strokes"]  # the drawing's and ``add``
        if self.keyed_prompts:
            del d["prompt"]  # the first keyed prompt
        return {k: v for k, v in d.items() if v is not None and not (k in OPTIONAL_LISTS and not v)}

    def meta(self) -> dict[str, Any]:
        """Settings to store with every drawing so that it can be reproduced."""
        skip = set(NOT_RECORDED)
        if self.method != "styleclipdraw":
            skip |= {"style_image", "style_strength", "style_weights"}
        if self.method != "clipasso":
            skip |= {"image", "mask"}
        if self.init is not None:
            skip.add("strokes")  # the drawing's strokes plus ``add``
        else:
            skip |= {"lock", "add"}
        if not self.ladder:
            skip.add("level_steps")
        skip |= {"frames", "frame_numbers"}  # a sequence's drawings carry their own image and frame
        return {k: v for k, v in self.to_dict().items() if k not in skip}

    @property
    def augmentations_or_default(self) -> int:
        return self.augmentations if self.augmentations is not None else METHOD_DEFAULTS[self.method].augmentations

    @property
    def coherence_or_default(self) -> float:
        """The motion penalty's weight: the default for warm sequences, 0 for cold ones (no stroke identity)."""
        if self.coherence is not None:
            return self.coherence
        return DEFAULT_COHERENCE if self.warm_or_default else 0.0

    @property
    def boil_or_default(self) -> float:
        return self.boil if self.boil is not None else 0.0

    @property
    def warm_or_default(self) -> bool:
        return self.warm if self.warm is not None else True

    @property
    def tidy_or_default(self) -> bool:
        """Off for ladders and sequences: they fix their stroke counts themselves. Keyed prompts keep
        theirs too: there the pass hides strokes where they are instead (``series.keyed``)."""
        if self.ladder or self.frames:
            return False
        return self.tidy if self.tidy is not None else METHOD_DEFAULTS[self.method].tidy

    def rung_steps(self, i: int) -> int:
        """At most this many fine-tuning steps for rung ``i`` >= 1 of a ladder: ``level_steps``, else
        for CLIPasso (which stops a rung on a plateau of its evaluation loss) ``steps`` x the share of
        the first rung's strokes removed so far, since the fewer strokes are left the further each must
        move to cover what the removed ones drew (measured: docs/methods.md); else a quarter of ``steps``."""
        if self.level_steps is not None:
            return self.level_steps
        if self.method == "clipasso":
            return max(20, round(self.steps * (1 - self.ladder[i] / self.ladder[0])))
        return max(20, self.steps // 4)

    @property
    def total_steps(self) -> int:
        """Steps of the whole run: every rung of a ladder, every stretch of keyed prompts; for a sequence
        an upper bound (every frame may stop early)."""
        if self.frames:
            return self.steps * len(self.frames)
        if self.ladder:
            return self.steps + sum(self.rung_steps(i) for i in range(1, len(self.ladder)))
        return self.steps * max(1, len(self.keyed_prompts))


OPTIONAL_LISTS = ("lock", "ladder", "keyed_prompts", "frames", "frame_numbers")  # left out of the dict when empty

# How a run was made, not what it made: not stored with results.
NOT_RECORDED = ("device", "cache_dir", "snapshot_every", "threads", "offline", "compile")
KEYS = frozenset(f.name for f in fields(JobRequest)) | {"protocol"}


def parse_request(d: Any) -> JobRequest:
    """Validate a request dict; raises BadRequest with a one-line message naming the problem."""
    if not isinstance(d, dict):
        raise BadRequest(f"a request must be a JSON object, got {type(d).__name__}")
    unknown = sorted(str(k) for k in set(d) - KEYS)
    if unknown:
        raise BadRequest(f"unknown request key(s): {_short(', '.join(unknown))}; known: {', '.join(sorted(KEYS))}")
    check_request_protocol(d.get("protocol"))
    method = d.get("method", "clipdraw")
    if method not in METHODS:
        raise BadRequest(f"method must be one of {', '.join(METHODS)}, got {_short(repr(method))}")
    defaults = METHOD_DEFAULTS[method]
    cw, ch = _canvas(d.get("canvas", 224))
    if method == "clipasso" and cw != ch:
        raise BadRequest("CLIPasso sketches on a square canvas: give one size")
    aug = d.get("augmentations")
    keyed = _keyed_prompts(d, method)
    ladder = _ladder(d, method)
    init = _continuation(d, method)
    strokes = _int(d, "strokes", defaults.strokes, 1, MAX_STROKES, f" (at most {MAX_STROKES} strokes)")
    if ladder:
        if "strokes" in d and strokes != ladder[0]:
            raise BadRequest(f"the ladder starts at {ladder[0]} strokes but strokes is {strokes}: leave strokes out")
        strokes = ladder[0]
    if ladder and d.get("tidy"):
        raise BadRequest("a ladder fixes its stroke counts itself: leave tidy out")
    frames, numbers = _frames(d, method)
    return JobRequest(
        prompt=keyed[0][1] if keyed else _prompt(d, method),
        method=method,
        negative=_negatives(d.get("negative", [])),
        strokes=strokes,
        steps=_int(d, "steps", defaults.steps, 1, MAX_STEPS),
        seed=_int(d, "seed", 0, 0, 2**62),
        seeds=_int(d, "seeds", defaults.seeds, 1, MAX_SEEDS),
        image=_path(d, "image", "the image to sketch") if method == "clipasso" and not frames else None,
        style_image=_path(d, "style_image", "the style image") if method == "styleclipdraw" else None,
        style_strength=_number(d, "style_strength", 50.0, 0.0, 100.0),
        style_weights=_string(d, "style_weights", "imagenet"),
        mask=_bool(d, "mask", True),
        canvas=(cw, ch),
        model=_model(d),
        device=_device(d),
        snapshot_every=_int(d, "snapshot_every", 10, 0, MAX_STEPS),
        augmentations=None if aug is None else _int(d, "augmentations", 4, 0, MAX_AUGMENTATIONS),
        cache_dir=None if d.get("cache_dir") is None else _string(d, "cache_dir", ""),
        threads=_int(d, "threads", 0, 0, MAX_THREADS),
        offline=_bool(d, "offline", False),
        tidy=None if d.get("tidy") is None else _bool(d, "tidy", False),
        init=init,
        lock=_lock(d, init),
        add=_int(d, "add", 0, 0, MAX_STROKES),
        ladder=ladder,
        level_steps=None if d.get("level_steps") is None else _int(d, "level_steps", 20, 1, MAX_STEPS),
        keyed_prompts=keyed,
        frames=frames,
        frame_numbers=numbers,
        coherence=None if d.get("coherence") is None else _number(d, "coherence", 0.0, 0.0, MAX_COHERENCE),
        boil=None if d.get("boil") is None else _number(d, "boil", 0.0, 0.0, MAX_BOIL),
        warm=None if d.get("warm") is None else _bool(d, "warm", True),
        precision=_choice(d, "precision", "auto", PRECISIONS),
        compile=_bool(d, "compile", False),
        max_width=_max_width(d, method),
    )


def _max_width(d: dict, method: str) -> float | None:
    """The widest stroke (px) for the prompt-driven methods; CLIPasso's strokes keep one width."""
    if d.get("max_width") is None:
        return None
    if method not in ("clipdraw", "styleclipdraw"):
        raise BadRequest("max_width is for clipdraw and styleclipdraw: "
                         + ("CLIPasso's strokes keep one width (3 px)" if method == "clipasso"
                            else "the pixel baseline has no strokes"))
    return _number(d, "max_width", REFERENCE_MAX_WIDTH, MIN_WIDTH, MAX_WIDTH)


SEQUENCE_ONLY = ("frame_numbers", "coherence", "boil", "warm")  # keys that mean something only with frames
NOT_WITH_FRAMES = {"image": "give image (one picture) or frames (a sequence), not both",
                   "ladder": "a sequence keeps its strokes from frame to frame: leave ladder out",
                   "tidy": "a sequence keeps its strokes from frame to frame: leave tidy out",
                   "lock": "a sequence continues init's strokes whole: lock is for one picture",
                   "add": "a sequence continues init's strokes whole: add is for one picture"}


def _frames(d: dict, method: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """A sketch sequence: its image paths and their scene frames (1 ... N when not given)."""
    seq = d.get("frames")
    if seq is None:
        for key in SEQUENCE_ONLY:
            if d.get(key) is not None:
                raise BadRequest(f"{key} is for a picture sequence: it needs frames")
        return (), ()
    if method != "clipasso":
        raise BadRequest("frames are sketched by CLIPasso: give method clipasso")
    if not isinstance(seq, list) or len(seq) > MAX_FRAMES:
        raise BadRequest(f"frames must be a list of at most {MAX_FRAMES} image paths, in order, "
                         f"got {_short(repr(seq))}")
    if not seq:
        raise BadRequest("frames is empty: give the images of the sequence, in order")
    for key, why in NOT_WITH_FRAMES.items():
        if d.get(key) not in (None, [], 0, False):
            raise BadRequest(why)
    paths = tuple(_path({"frames": p}, "frames", f"frame {i + 1} of frames") for i, p in enumerate(seq))
    if d.get("warm") is False:
        if d.get("coherence"):
            raise BadRequest("coherence needs warm frames (each stroke followed from frame to frame): "
                             "leave coherence out or warm true")
        if d.get("init") is not None:
            raise BadRequest("init is where the first warm frame starts: with warm false leave it out")
    return paths, _frame_numbers(d, len(paths))


def _frame_numbers(d: dict, count: int) -> tuple[int, ...]:
    given = d.get("frame_numbers")
    if given is None:
        return tuple(range(1, count + 1))
    if not isinstance(given, list):
        raise BadRequest(f"frame_numbers must be a list of scene frames, got {_short(repr(given))}")
    if len(given) != count:
        raise BadRequest(f"frame_numbers has {len(given)} numbers for {count} frames: give one per frame "
                         f"(or leave it out for 1 to {count})")
    numbers = tuple(_int({"frame_numbers": n}, "frame_numbers", 1, -MAX_FRAME, MAX_FRAME) for n in given)
    bad = next((i for i in range(1, count) if numbers[i] <= numbers[i - 1]), None)
    if bad is not None:
        raise BadRequest(f"frame_numbers must increase, one per frame: {numbers[bad - 1]} is followed by "
                         f"{numbers[bad]} (frame {bad + 1})")
    return numbers


def _continuation(d: dict, method: str) -> str | None:
    """The drawing to continue (checked for existence and fit when the run loads it)."""
    if d.get("init") is None:
        for key in ("lock", "add"):
            if d.get(key) not in (None, [], 0):
                raise BadRequest(f"{key} needs init: the drawing whose strokes are {'kept' if key == 'lock' else 'added to'}")
        return None
    if method == "pixels":
        raise BadRequest("the pixel baseline has no strokes to continue: use clipdraw, styleclipdraw or clipasso")
    if "strokes" in d:
        raise BadRequest("when continuing a drawing give add (the number of new strokes), not strokes")
    return _path(d, "init", "the drawing to continue")


def _lock(d: dict, init: str | None) -> tuple[int, ...]:
    lock = d.get("lock", [])
    if not isinstance(lock, list) or len(lock) > MAX_STROKES:
        raise BadRequest(f"lock must be a list of stroke indices, got {_short(repr(lock))}")
    return tuple(sorted({_int({"lock": i}, "lock", 0, 0, MAX_STROKES - 1) for i in lock})) if init else ()


def _ladder(d: dict, method: str) -> tuple[int, ...]:
    rungs = d.get("ladder")
    if rungs in (None, []):
        return ()
    if method == "pixels":
        raise BadRequest("the pixel baseline has no strokes to remove: a ladder needs a stroke method")
    if not isinstance(rungs, list) or not 2 <= len(rungs) <= MAX_LEVELS:
        raise BadRequest(f"ladder must be a list of 2 to {MAX_LEVELS} stroke counts, got {_short(repr(rungs))}")
    counts = tuple(_int({"ladder": n}, "ladder", 1, 1, MAX_STROKES) for n in rungs)
    if any(a <= b for a, b in zip(counts, counts[1:])):
        raise BadRequest(f"ladder counts must go down, e.g. 64,32,16: got {','.join(map(str, counts))}")
    return counts


def _keyed_prompts(d: dict, method: str) -> tuple[tuple[int, str], ...]:
    """(frame, prompt) pairs, frames strictly increasing; given as [frame, text] or {frame, prompt}."""
    keys = d.get("keyed_prompts")
    if keys in (None, []):
        return ()
    if method not in ("clipdraw", "styleclipdraw"):
        raise BadRequest("keyed prompts need a prompt-driven method: clipdraw or styleclipdraw")
    if not isinstance(keys, list) or len(keys) > MAX_KEYS:
        raise BadRequest(f"keyed_prompts must be a list of at most {MAX_KEYS} [frame, prompt] pairs")
    if d.get("prompt") is not None or d.get("ladder"):
        raise BadRequest("keyed prompts replace prompt and cannot be combined with a ladder: give one of them")
    out = []
    for i, key in enumerate(keys):
        if isinstance(key, dict) and set(key) == {"frame", "prompt"}:
            key = [key["frame"], key["prompt"]]
        if not (isinstance(key, list) and len(key) == 2):
            raise BadRequest(f"keyed prompt {i + 1} must be [frame, prompt], got {_short(repr(key))}")
        what = f"the frame of keyed prompt {i + 1}"
        frame = _int({what: key[0]}, what, 1, -MAX_FRAME, MAX_FRAME)
        out.append((frame, _text(key[1], f"keyed prompt {i + 1}")))
    if any(a[0] >= b[0] for a, b in zip(out, out[1:])):
        raise BadRequest(f"keyed prompts must be in frame order, one per frame: got frames {[f for f, _ in out]}")
    return tuple(out)


# -- command-line spellings (the CLI and scripts/render.py) ---------------------------------------
def _tokens(text: str) -> list[str]:
    """Items separated by commas, semicolons or spaces (people type all three)."""
    return [t for t in re.split(r"[,;\s]+", text) if t]


def parse_indices(text: str) -> list[int]:
    """"0-5, 8" -> [0, 1, 2, 3, 4, 5, 8] (stroke indices to lock), sorted, each once; ValueError names the bad part."""
    out: set[int] = set()
    for part in _tokens(text):
        lo, dash, hi = part.partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())) or (dash and int(hi) < int(lo)):
            raise ValueError(f"stroke indices are numbers and ranges, e.g. 0-5,8: {_short(repr(part))} is not one")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last >= MAX_STROKES:
            raise ValueError(f"stroke {last} cannot be kept: a drawing has at most {MAX_STROKES} strokes")
        out.update(range(first, last + 1))
    return sorted(out)


def parse_counts(text: str) -> list[int]:
    """"64, 32 16" -> [64, 32, 16] (a ladder's stroke counts); that they go down is parse_request's rule."""
    parts = _tokens(text)
    for part in parts:
        if not part.isdigit():
            raise ValueError(f"stroke counts are whole numbers separated by commas, e.g. 64,32,16: "
                             f"{_short(repr(part))} is not one")
    return [int(p) for p in parts]


def parse_keyed_prompt(text: str) -> list[int | str]:
    """"48:a blue square" -> [48, "a blue square"] (a prompt keyed at a frame)."""
    frame, colon, prompt = text.partition(":")
    try:
        number = int(frame.strip())
    except ValueError:
        number = None
    if not colon or number is None:
        raise ValueError(f"a keyed prompt is FRAME:PROMPT, e.g. 48:\"a blue square\", got {_short(repr(text))}")
    if not prompt.strip():
        raise ValueError(f"the prompt keyed on frame {number} is empty: say what to draw there")
    return [number, prompt.strip()]


def _short(text: str, limit: int = 80) -> str:
    """Keep error lines readable when the offending value is huge."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _int(d: dict, key: str, default: int, lo: int, hi: int, hint: str = "") -> int:
    v = d.get(key, default)
    if isinstance(v, float) and math.isfinite(v) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadRequest(f"{key} must be an integer, got {_short(repr(v))}")
    if not lo <= v <= hi:
        raise BadRequest(f"{key} must be between {lo} and {hi}, got {_short(str(v)) if abs(v) < 10**80 else 'a huge number'}"
                         f"{hint}")
    return v


def _number(d: dict, key: str, default: float, lo: float, hi: float) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:  # NaN fails the range
        raise BadRequest(f"{key} must be a number from {lo:g} to {hi:g}, got {_short(repr(v))}")
    return float(v)


def _bool(d: dict, key: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise BadRequest(f"{key} must be true or false, got {_short(repr(v))}")
    return v


def _string(d: dict, key: str, default: str) -> str:
    """A non-empty string setting; a key given as "" is refused (it must not silently mean the default)."""
    v = d.get(key, default)
    if not isinstance(v, str):
        raise BadRequest(f"{key} must be a string, got {_short(repr(v))}")
    if not v.strip():
        raise BadRequest(f"{key} is empty: leave it out for the default ({default})" if default
                         else f"{key} is empty")
    if "\x00" in v or len(v) > MAX_TEXT:
        raise BadRequest(f"{key} is not a usable value: {_short(repr(v))}")
    return v.strip()


CHECKPOINT_SUFFIXES = (".pt", ".bin", ".safetensors", ".pth")
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def model_problem(spec: str) -> str | None:
    """What is wrong with a model spec, seen without loading anything: NAME:TAG, a file, or builtin.

    Whether the architecture and tag exist is open_clip's to say (when the model loads)."""
    if spec.lower() == BUILTIN_MODEL or os.path.isfile(spec):
        return None
    if os.path.exists(spec):
        return f"model {spec[:80]!r} is not a file"
    if ":" not in spec:
        return (f"model {spec[:80]!r} is not a file, not {BUILTIN_MODEL} and has no pretrained tag: use NAME:TAG "
                f"such as {DEFAULT_MODEL}, NAME:path/to/checkpoint, or {BUILTIN_MODEL}")
    name, tag = (part.strip() for part in spec.split(":", 1))
    if not name or not tag:
        return f"model {spec[:80]!r} needs both parts of NAME:TAG, e.g. {DEFAULT_MODEL}"
    if (os.sep in tag or tag.lower().endswith(CHECKPOINT_SUFFIXES)) and not os.path.isfile(tag):
        return f"model {spec[:80]!r}: the checkpoint {tag[:80]!r} is not a file"
    return None


def _model(d: dict) -> str:
    spec = _string(d, "model", DEFAULT_MODEL)
    problem = model_problem(spec)
    if problem:
        raise BadRequest(problem)
    return spec


def _choice(d: dict, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = d.get(key, default)
    if value not in choices:
        raise BadRequest(f"{key} must be one of {', '.join(choices)}, got {_short(repr(value))}")
    return value


def _device(d: dict) -> str:
    device = _string(d, "device", "auto").lower()
    if not DEVICE.fullmatch(device):
        raise BadRequest(f"unknown device {_short(repr(device))}: use auto, cpu, cuda (or cuda:N) or mps")
    return device


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadRequest(f"{what} is empty: say what to draw")
    if len(value) > MAX_TEXT:
        raise BadRequest(f"{what} is {len(value)} characters long: at most {MAX_TEXT}")
    if "\x00" in value or not _unicode(value):
        raise BadRequest(f"{what} is not valid text: it holds a NUL or undecodable bytes (not UTF-8?)")
    return " ".join(value.split())


def _unicode(value: str) -> bool:
    """No lone surrogates (undecodable bytes smuggled in by a surrogateescape decoder or a JSON escape):
    they would end up in drawing files that strict JSON readers refuse."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _prompt(d: dict, method: str) -> str | None:
    if method == "clipasso":  # optional (and unused: the run warns)
        return _text(d["prompt"], "prompt") if d.get("prompt") not in (None, "") else None
    if "prompt" not in d:
        hint = " (StyleCLIPDraw draws a prompt in the style of the image)" if method == "styleclipdraw" else ""
        raise BadRequest(f"prompt is missing: say what to draw{hint}")
    return _text(d["prompt"], "prompt")


def _negatives(neg: Any) -> tuple[str, ...]:
    if isinstance(neg, str):
        neg = [neg]
    if not isinstance(neg, list):
        raise BadRequest("negative must be a list of strings")
    return tuple(_text(n, f"negative prompt {i + 1}") for i, n in enumerate(neg))


def _path(d: dict, key: str, what: str) -> str:
    v = d.get(key)
    if not isinstance(v, str) or not v.strip():
        raise BadRequest(f"{what} is missing: give the path of {key.replace('_', ' ')} file")
    if "\x00" in v:
        raise BadRequest(f"{what} is not a usable path: {_short(repr(v))}")
    return v


def _canvas(canvas: Any) -> tuple[int, int]:
    if isinstance(canvas, (int, float)) and not isinstance(canvas, bool):
        canvas = [canvas, canvas]
    if not (isinstance(canvas, (list, tuple)) and len(canvas) == 2):
        raise BadRequest(f"canvas must be a size in pixels or [width, height], got {_short(repr(canvas))}")
    return tuple(_int({"canvas": c}, "canvas", 224, MIN_CANVAS, MAX_CANVAS) for c in canvas)  # type: ignore[return-value]
