"""The scene's drawing settings: one ``Scene.clipdraw`` PointerProperty, deleted on unregister.

Settings live on the scene so that they are saved with the .blend and presets can set them.
``JOB_SETTINGS`` names the ones presets may store and "Restore Defaults" resets (not what to
draw: the method, the prompts, the keyed prompts and the images); ``request_from`` is the single
boundary where Blender state becomes the engine's plain request. Image inputs are resolved to files before it
(``image_inputs``), so the request only ever holds paths.
"""

import os
from collections.abc import Mapping, Sequence

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    IntVectorProperty,
    PointerProperty,
    StringProperty,
)
from bpy.types import PropertyGroup

from . import engine_path

rules = engine_path.import_engine("request")  # the engine's limits and defaults, torch-free
MAX_STROKES, MAX_STEPS, MAX_SEEDS = rules.MAX_STROKES, rules.MAX_STEPS, rules.MAX_SEEDS
PREVIEW_SNAPSHOTS = 20  # "final result only" still previews about this many states while it runs

METHODS = [
    ("CLIPDRAW", "Text to Drawing", "CLIPDraw: optimise coloured strokes until the model sees the prompt"),
    ("STYLE", "Text + Style Image", "StyleCLIPDraw: draw the prompt in the colours and texture of a style image"),
    ("SKETCH", "Image to Sketch", "CLIPasso: a few black strokes that capture an image; fewer is more abstract"),
]
WIRE_METHOD = {"CLIPDRAW": "clipdraw", "STYLE": "styleclipdraw", "SKETCH": "clipasso"}
STYLE_WEIGHT_KEYWORDS = ("imagenet", "untrained")
KEEP_CHOICES = [
    ("NONE", "Nothing", "Every stroke of the active drawing may change"),
    ("SELECTED", "Selected Strokes", "Strokes selected in Edit Mode never change (a Grease Pencil drawing with "
                                     "no selection keeps every stroke)"),
    ("LOCKED", "Locked Layers", "Strokes on locked Grease Pencil layers never change"),
]
IMAGE_SOURCES = [
    ("IMAGE", "Blender Image", "An image datablock (loaded, packed, generated or painted): its current pixels "
                               "are written to a temporary PNG for the engine"),
    ("FILE", "File", "An image file on disk, read by the engine as it is"),
]
SOURCE_IMAGE_SOURCES = IMAGE_SOURCES + [
    ("CAMERA", "Camera", ("What the scene camera sees, frame by frame: a sketch animation (one drawing per frame, "
                          "each starting from the last one's strokes), the mask rendered from the chosen objects")),
]
CAMERA_ENGINES = [
    ("WORKBENCH", "Workbench", "Fast flat render of the camera's view (the scene's Workbench shading)"),
    ("SCENE", "Scene", "The scene's own render engine and settings (slower with EEVEE or Cycles)"),
]


class CLIPDRAW_PG_image_input(PropertyGroup):
    """An image the engine reads: a Blender image datablock or a file path."""

    source: EnumProperty(name="Source", items=IMAGE_SOURCES, default="IMAGE")
    image: PointerProperty(name="Image", type=bpy.types.Image, description="The Blender image to use")
    filepath: StringProperty(name="File", description="Image file (PNG, JPEG, WebP, ...)", subtype='FILE_PATH',
                             default="")

    def is_set(self) -> bool:
        """Something is chosen (whether it can be read is checked when the run starts)."""
        return self.image is not None if self.source == "IMAGE" else bool(self.filepath.strip())


class CLIPDRAW_PG_source_input(CLIPDRAW_PG_image_input):
    """The picture to sketch: an image, a file, or the scene camera's view over a frame range."""

    source: EnumProperty(name="Source", items=SOURCE_IMAGE_SOURCES, default="IMAGE")
    use_scene_range: BoolProperty(name="Scene Range", description="Sketch the scene's frame range (its start, end "
                                  "and step); off: the frames below", default=True)
    frame_start: IntProperty(name="Start", description="First frame to sketch", default=1,
                             min=-rules.MAX_FRAME, max=rules.MAX_FRAME)
    frame_end: IntProperty(name="End", description="Last frame to sketch", default=24,
                           min=-rules.MAX_FRAME, max=rules.MAX_FRAME)
    mask_collection: PointerProperty(name="Objects", type=bpy.types.Collection,
                                     description="The objects to sketch: their render is the mask where strokes "
                                     "start. Empty: every object that renders")
    render_engine: EnumProperty(name="Render", items=CAMERA_ENGINES, default="WORKBENCH",
                                description="How the camera's view is rendered for the engine (the mask is always "
                                "a Workbench render)")

    def is_set(self) -> bool:
        return True if self.source == "CAMERA" else super().is_set()


class CLIPDRAW_PG_keyed_prompt(PropertyGroup):
    """A prompt keyed on a frame: the drawing morphs into it by that frame."""

    frame: IntProperty(name="Frame", description="The frame where the drawing shows this prompt", default=1,
                       min=0, max=rules.MAX_FRAME)
    prompt: StringProperty(name="Prompt", description="What the drawing shows at this frame", default="")


class CLIPDRAW_PG_settings(PropertyGroup):
    """What to draw, with which model, and where the result goes."""

    method: EnumProperty(name="Method", items=METHODS, default="CLIPDRAW")
    prompt: StringProperty(name="Prompt", description="What to draw", default="")
    style_image: PointerProperty(name="Style Image", type=CLIPDRAW_PG_image_input,
                                 description="Text + Style Image: the image whose style the drawing takes")
    source_image: PointerProperty(name="Source Image", type=CLIPDRAW_PG_source_input,
                                  description="Image to Sketch: the picture to sketch, or the camera's view")
    negative: StringProperty(
        name="Negative",
        description="What the drawing should not look like; separate several with ';'",
        default="",
    )
    strokes: IntProperty(name="Strokes", description="Number of strokes: fewer is more abstract",
                         default=128, min=1, max=MAX_STROKES, soft_max=1024)
    steps: IntProperty(name="Steps", description="Optimisation steps (Image to Sketch stops earlier once the "
                       "sketch stops improving)", default=300, min=1, max=MAX_STEPS, soft_max=5000)
    seed: IntProperty(name="Seed", description="Same seed, same settings and device: same drawing",
                      default=0, min=0)
    style_strength: FloatProperty(name="Style Strength", description="How strongly the style image's colours and "
                                  "texture count against the prompt (0-100; style weight = 4 x strength / 100)",
                                  default=50.0, min=0.0, max=100.0, precision=0)
    style_weights: StringProperty(
        name="Style Weights",
        description="VGG-16 weights of the style loss: 'imagenet' (torchvision's file from the torch hub cache or "
                    "a download), a .pth file path, or 'untrained' (fixed random weights, works offline)",
        default="imagenet",
    )
    sketch_strokes: IntProperty(name="Strokes", description="Number of black strokes in the sketch: fewer is "
                                "more abstract", default=16, min=1, max=MAX_STROKES, soft_max=256)
    tidy: BoolProperty(name="Tidy", description="After the run, remove the strokes that do not help the drawing "
                       "and fine-tune the rest (the result has fewer strokes; with keyed prompts they are "
                       "hidden at each key instead, so that every key keeps the same strokes)",
                       default=rules.METHOD_DEFAULTS["clipdraw"].tidy)
    sketch_tidy: BoolProperty(name="Tidy", description="After the run, remove the strokes that do not help the "
                              "sketch (abstraction by removal: fewer strokes than asked for)",
                              default=rules.METHOD_DEFAULTS["clipasso"].tidy)
    max_width: FloatProperty(name="Max Width", description="The widest a stroke may grow, in canvas pixels "
                             "(0: the model's own limit; the built-in model keeps strokes thin, CLIP allows "
                             f"{rules.REFERENCE_MAX_WIDTH:g} px)", default=0.0, min=0.0, max=rules.MAX_WIDTH,
                             soft_max=100.0, subtype='PIXEL')
    seeds: IntProperty(name="Seeds", description="Sketch with this many seeds at once (one batch) and keep the "
                       "best", default=3, min=1, max=MAX_SEEDS)
    coherence: FloatProperty(name="Coherence", description="Camera source: how much strokes pay for moving "
                             "relative to each other from frame to frame (less flicker; 0: off). The drawing's own "
                             "motion, turn and zoom are free", default=rules.DEFAULT_COHERENCE, min=0.0,
                             max=rules.MAX_COHERENCE, soft_max=1000.0)
    boil: FloatProperty(name="Boil", description="Camera source: every control point moves by up to this many "
                        "pixels, differently on each frame, for a hand-drawn line boil (0: off)", default=0.0,
                        min=0.0, max=rules.MAX_BOIL, soft_max=4.0, subtype='PIXEL')
    use_mask: BoolProperty(name="Alpha as Mask", description="Use the source image's transparency as the object "
                           "mask: strokes start on the object only", default=True)
    show_overlay: BoolProperty(name="Overlay Source Image", description="Show the source image under the sketch "
                               "(an image empty in the CLIPDraw collection, shared by runs on the same image and "
                               "place), exactly where the engine saw it", default=True)
    canvas: IntVectorProperty(name="Canvas", description="Canvas size in pixels (width, height)", size=2,
                              default=(224, 224), min=rules.MIN_CANVAS, max=rules.MAX_CANVAS)
    augmentations: IntProperty(name="Augmentations", description="Augmented copies of the drawing per step "
                               "(0: the method's own default)", default=0, min=0, max=rules.MAX_AUGMENTATIONS)
    model: StringProperty(
        name="Model",
        description="open_clip 'NAME:TAG' (e.g. ViT-B-32:openai), a checkpoint path, or 'builtin' "
                    "(the offline stand-in that ships with the engine; it is not CLIP)",
        default=rules.DEFAULT_MODEL,
    )
    output: EnumProperty(
        name="Output",
        items=[("GREASE_PENCIL", "Grease Pencil", "Grease Pencil strokes, one frame per snapshot"),
               ("CURVES", "Curves", "A curve object with one Bezier spline per stroke, keyframed points")],
        default="GREASE_PENCIL",
    )
    target: EnumProperty(
        name="Target",
        items=[("NEW", "New Object", "Put the drawing into a new object in the CLIPDraw collection"),
               ("REPLACE", "Replace Active", "Replace the drawing of the active object (same output type)")],
        default="NEW",
    )
    placement: EnumProperty(
        name="Placement",
        items=[("CURSOR", "Front Plane at Cursor", "Upright (Front view) plane centred on the 3D cursor"),
               ("CAMERA", "Fit Camera View", "Plane in front of the active camera, filling its view")],
        default="CURSOR",
    )
    plane_width: FloatProperty(name="Width", description="Width of the canvas in the scene", default=2.0,
                               min=1e-4, soft_max=100.0, subtype='DISTANCE', unit='LENGTH')
    camera_distance: FloatProperty(name="Distance", description="How far in front of the camera the canvas is",
                                   default=5.0, min=1e-3, soft_max=1000.0, subtype='DISTANCE', unit='LENGTH')
    animation: EnumProperty(
        name="Animation",
        items=[("KEYFRAMES", "Keyframe Snapshots", "Keyframe the drawing every K steps: the timeline replays it"),
               ("FINAL", "Final Result Only", "Keep only the final drawing (still shown live while it runs)")],
        default="KEYFRAMES",
    )
    snapshot_every: IntProperty(name="Every K Steps", description="Steps between keyframed snapshots",
                                default=10, min=1, max=MAX_STEPS, soft_max=500)
    start_frame: IntProperty(name="Start Frame", description="Frame of the first snapshot", default=1)
    frames_per_snapshot: IntProperty(name="Frames per Snapshot", description="Frames between snapshots",
                                     default=1, min=1, soft_max=100)
    continue_active: BoolProperty(name="Continue from Active", description="Start from the strokes of the active "
                                  "Grease Pencil or curve object (at the current frame) instead of a blank canvas; "
                                  "the canvas is the drawing's", default=False)
    keep: EnumProperty(name="Keep", items=KEEP_CHOICES, default="NONE",
                       description="Strokes of the active drawing that the run must not change")
    add_strokes: IntProperty(name="Add Strokes", description="New strokes drawn after the active drawing's (Strokes "
                             "is not used when continuing)", default=16, min=0, max=MAX_STROKES, soft_max=256)
    ladder: StringProperty(name="Ladder", description="Abstraction ladder: stroke counts going down, e.g. "
                           "64,32,16,8,4 (one level each; the first replaces Strokes). Empty: off", default="")
    keyed_prompts: CollectionProperty(type=CLIPDRAW_PG_keyed_prompt, name="Keyed Prompts",
                                      description="Prompts keyed on frames: with any, they replace the prompt")
    keyed_index: IntProperty(name="Active Keyed Prompt", default=0, min=0)


KEPT_ON_RESET = ("method", "prompt", "negative", "style_image", "source_image", "keyed_prompts",
                 "keyed_index")  # what to draw, not how
JOB_SETTINGS = tuple(k for k in CLIPDRAW_PG_settings.__annotations__ if k not in KEPT_ON_RESET)


def negatives(text: str) -> list[str]:
    """';'-separated negative prompts, blanks dropped."""
    return [n.strip() for n in text.split(";") if n.strip()]


def ladder_counts(text: str) -> list[int]:
    """The Ladder setting's stroke counts ("64, 32 16" -> [64, 32, 16]); empty: no ladder.

    Only the syntax is checked here; that they go down and fit the run is the engine's rule.
    """
    try:
        return rules.parse_counts(text)
    except ValueError as e:
        raise ValueError(f"the Ladder: {e}") from None


stroke_indices = rules.parse_indices  # "0-5, 8" -> [0, 1, 2, 3, 4, 5, 8]


def keyed_list(settings: CLIPDRAW_PG_settings) -> list[list]:
    """The keyed prompts as [frame, prompt] pairs in frame order (the list may be in any order)."""
    return sorted(([int(k.frame), k.prompt] for k in settings.keyed_prompts), key=lambda k: k[0])


def uses_keyed_prompts(settings: CLIPDRAW_PG_settings) -> bool:
    """Whether the keyed prompts replace the prompt (only the text methods have prompts)."""
    return settings.method != "SKETCH" and len(settings.keyed_prompts) > 0


def uses_camera(settings: CLIPDRAW_PG_settings) -> bool:
    """Whether the run sketches the scene camera's view frame by frame (a picture sequence)."""
    return settings.method == "SKETCH" and settings.source_image.source == "CAMERA"


def style_weights_value(text: str) -> str:
    """The wire value of the Style Weights setting: a keyword as is, else an absolute file path."""
    value = text.strip()
    if not value or value.lower() in STYLE_WEIGHT_KEYWORDS:
        return value.lower() or "imagenet"
    return os.path.abspath(bpy.path.abspath(value))  # '//' of an unsaved file: the working folder


def request_from(settings: CLIPDRAW_PG_settings, device: str = "auto", cache_dir: str = "",
                 live_preview: bool = True, images: Mapping[str, str] | None = None, threads: int = 0,
                 offline: bool = False, init: Mapping | None = None,
                 frames: Sequence[tuple[int, str]] = (), precision: str = "auto") -> dict:
    """The engine request (docs/wire-format.md) for these settings: plain values only.

    ``images`` maps the request's image keys (``style_image``, ``image``) to files the engine can
    read; turning datablocks into files is ``image_inputs``' job, done before this. Only the keys
    of the chosen method are sent: the engine refuses none of the others, but a sketch request
    with a prompt would draw a warning, and the request is stored on the result as a record.
    ``init`` continues a drawing: ``{"init": file, "lock": [...], "canvas": [w, h]}`` (the file
    was written before this, like images); the request then has ``add`` instead of ``strokes``.
    ``frames`` are the (scene frame, PNG) pairs of the Camera source (``camera_shot``, rendered
    before this): the request is then a picture sequence (``frames``, ``frame_numbers``,
    ``coherence``, ``boil`` when set) without ``image`` and ``tidy``, which the engine refuses there.
    A Ladder that is not whole numbers raises ValueError.
    """
    images = images or {}
    method = settings.method
    snapshot_every = settings.snapshot_every
    if settings.animation == "FINAL":
        snapshot_every = max(1, settings.steps // PREVIEW_SNAPSHOTS) if live_preview else 0
    req = {"method": WIRE_METHOD[method]}
    if method != "SKETCH":
        req.update(prompt=settings.prompt, negative=negatives(settings.negative))
    req.update({
        "strokes": settings.sketch_strokes if method == "SKETCH" else settings.strokes,
        "steps": settings.steps,
        "seed": settings.seed,
        "canvas": [settings.canvas[0], settings.canvas[1]],
        "model": settings.model.strip() or rules.DEFAULT_MODEL,  # a cleared field means the default
        "device": device.lower(),
        "snapshot_every": snapshot_every,
    })
    if method == "STYLE":
        if "style_image" in images:
            req["style_image"] = images["style_image"]
        req.update(style_strength=float(settings.style_strength),
                   style_weights=style_weights_value(settings.style_weights))
    elif method == "SKETCH":
        if "image" in images and not uses_camera(settings):
            req["image"] = images["image"]
        req.update(seeds=settings.seeds, mask=bool(settings.use_mask))
        if uses_camera(settings):
            req.update(frames=[path for _, path in frames], frame_numbers=[int(f) for f, _ in frames],
                       coherence=float(settings.coherence))
            if settings.boil > 0:
                req["boil"] = float(settings.boil)
    ladder = ladder_counts(settings.ladder)
    if uses_keyed_prompts(settings):
        del req["prompt"]
        req["keyed_prompts"] = keyed_list(settings)
    if ladder:
        req.update(ladder=ladder, strokes=ladder[0])
    if init is not None:
        del req["strokes"]  # the drawing's strokes, then ``add`` new ones
        req.update(init=init["init"], lock=list(init["lock"]), add=settings.add_strokes,
                   canvas=list(init["canvas"]))
    if not (ladder or "frames" in req):  # those keep their strokes themselves (keyed prompts hide them)
        req["tidy"] = bool(settings.sketch_tidy if method == "SKETCH" else settings.tidy)
    if settings.augmentations > 0:
        req["augmentations"] = settings.augmentations
    if method != "SKETCH" and settings.max_width > 0:
        req["max_width"] = float(settings.max_width)
    if cache_dir.strip():
        req["cache_dir"] = bpy.path.abspath(cache_dir.strip())
    if threads > 0:
        req["threads"] = int(threads)
    if offline:
        req["offline"] = True
    if precision != "auto":
        req["precision"] = precision
    return req


def reset(settings: CLIPDRAW_PG_settings) -> None:
    """Every job setting back to its default (what to draw is kept)."""
    for name in JOB_SETTINGS:
        settings.property_unset(name)


classes = (CLIPDRAW_PG_image_input, CLIPDRAW_PG_source_input, CLIPDRAW_PG_keyed_prompt, CLIPDRAW_PG_settings)


_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register_classes()
    bpy.types.Scene.clipdraw = bpy.props.PointerProperty(type=CLIPDRAW_PG_settings)


def unregister() -> None:
    del bpy.types.Scene.clipdraw
    _unregister_classes()
