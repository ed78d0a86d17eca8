"""Files a run leaves behind: final SVG / PNG / JSON, the snapshots as JSON lines, a GIF of the process.

Every file is written atomically (temporary name, then rename), so an interrupted run never
leaves half a file; the snapshot log is collected in memory-light form and written at the end.
The output directory and the names the run will write are checked before the run starts, and
at the end one file that cannot be written does not stop the others (the drawing comes first).
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .drawing import Drawing, atomic_write_bytes
from .events import Picture, picture_to_wire
from .files import UnwritableTarget, check_target, same_file

RUN_FILES = ("drawing.json", "drawing.svg", "drawing.png", "snapshots.jsonl", "process.gif")
MAX_PNG_SIDE = 16384  # the largest PNG a drawing is rendered to (--scale is refused beyond it)
TILE = 1024  # bigger renders go tile by tile: the rasterizer's memory grows with the inked area


def scale_problem(side: int, scale: float) -> str | None:
    """Why a drawing ``side`` px on its long side cannot be rendered at ``scale``, or None."""
    if not (math.isfinite(scale) and scale > 0):
        return f"--scale must be a finite number above 0, got {scale}"
    px = side * scale
    if px > MAX_PNG_SIDE:
        return f"--scale {scale:g} makes a {px:.0f} px image: over {MAX_PNG_SIDE} px, lower --scale"
    if round(px) < 1:
        return f"--scale {scale:g} makes the image smaller than 1 px, raise --scale"
    return None


def render_rgba(drawing: Drawing, scale: float = 1.0) -> np.ndarray:
    """RGBA uint8 (H, W, 4) of ``drawing`` at ``scale``; large images are rendered in tiles.

    Pixels are independent in the rasterizer, so a tile is the drawing shifted onto a small
    canvas; this bounds memory for big PNGs (at most a 1/255 rounding difference at a few pixels).
    """
    from .rasterize import render_drawing

    d = drawing.scaled(scale) if scale != 1.0 else drawing
    if max(d.width, d.height) <= TILE:
        return render_drawing(d)
    out = np.empty((d.height, d.width, 4), np.uint8)
    for y0 in range(0, d.height, TILE):
        for x0 in range(0, d.width, TILE):
            w, h = min(TILE, d.width - x0), min(TILE, d.height - y0)
            tile = Drawing(w, h, d.points - np.array([x0, y0]), d.segments, d.widths, d.rgba, d.background)
            out[y0 : y0 + h, x0 : x0 + w] = render_drawing(tile)
    return out


def check_writable(directory: str | os.PathLike, names: tuple[str, ...] = RUN_FILES,
                   inputs: tuple[str | os.PathLike | None, ...] = ()) -> Path:
    """Create ``directory`` and prove it takes files, before hours of work go into it.

    Also refuses a run whose outputs would have to replace a directory, a pipe or a device
    (``names`` in ``directory``), or one of the run's own ``inputs`` (a photo named
    drawing.png in the output directory): better now than after the run, with nothing written.
    """
    from .errors import BadRequest

    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=path)  # a fresh name: never a user's file
        os.close(fd)
        os.unlink(probe)
        for name in names:
            check_target(path / name)
            for source in filter(None, inputs):
                if same_file(path / name, source):
                    raise BadRequest(f"the run would overwrite its own input {str(source)!r} with {name}: "
                                     "choose another output directory")
    except UnwritableTarget as e:
        raise BadRequest(f"cannot write {e.filename}: {e.strerror}") from None
    except OSError as e:
        raise BadRequest(f"cannot write to output directory {str(path)!r}: {e.strerror or e}") from None
    return path


def picture_rgb(picture: Picture, size: int | None = None) -> np.ndarray:
    """An RGB uint8 frame of a drawing (rendered) or a pixel image, ``size`` px on its long side."""
    from PIL import Image

    if isinstance(picture, Drawing):
        from .rasterize import render_drawing

        scale = 1.0 if size is None else size / max(picture.width, picture.height)
        rgba = render_drawing(picture, scale=scale).astype(np.float32) / 255
        bg = np.asarray(picture.background[:3], dtype=np.float32)
        rgb = rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:])
        return (rgb * 255 + 0.5).astype(np.uint8)
    if size is not None and max(picture.shape[:2]) != size:
        im = Image.fromarray(picture)
        s = size / max(im.size)
        return np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS))
    return picture


def png_bytes(rgb_or_rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb_or_rgba).save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: list[np.ndarray], frame_ms: int = 80, hold_last_ms: int = 1500) -> bytes:
    from PIL import Image

    images = [Image.fromarray(f).convert("P", palette=Image.ADAPTIVE, colors=255) for f in frames]
    durations = [frame_ms] * (len(images) - 1) + [hold_last_ms]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return buf.getvalue()


@dataclass
class RunRecorder:
    """Collects snapshots during a run and writes the run's files at the end (also after cancel)."""

    out_dir: Path
    name: str = "drawing"
    gif_size: int = 256
    video: bool = True
    lines: list[str] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)
    stages: list[tuple[str, Drawing]] = field(default_factory=list)

    def stage(self, name: str, picture: Picture) -> None:
        """A finished stage (ladder level, keyed prompt): written as NAME.svg and NAME.png at the end."""
        if isinstance(picture, Drawing):
            self.stages.append((name, picture))

    def snapshot(self, step: int, picture: Picture) -> None:
        self.lines.append(json.dumps({"step": step, **picture_to_wire(picture)}, separators=(",", ":")))
        if self.video:
            self.frames.append(picture_rgb(picture, self.gif_size))

    def finish(self, picture: Picture, scale: float = 1.0) -> dict[str, str]:
        """Write everything; returns {kind: path}.

        Each file is attempted even when an earlier one failed, the drawing itself first, so a
        full disk or a bad name costs the files it touches, not the run; then one SynthError
        lists what could not be written and what was.
        """
        from .errors import SynthError

        jobs = self._jobs(picture, scale)
        out: dict[str, str] = {}
        failed: list[str] = []
        for kind, path, make in jobs:
            try:
                out[kind] = str(atomic_write_bytes(path, make()))
            except (OSError, RuntimeError, ValueError, MemoryError) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)[:120]
                failed.append(f"{path.name} ({reason or type(e).__name__})")
        if failed:
            wrote = f"; wrote {', '.join(sorted(out.values()))}" if out else ""
            raise SynthError(f"could not write {', '.join(failed)}{wrote}")
        return out

    def _jobs(self, picture: Picture, scale: float) -> list[tuple[str, Path, Callable[[], bytes]]]:
        """(kind, path, bytes maker) for every file of the run, most precious first."""
        from .svg import to_svg

        d = self.out_dir
        jobs: list[tuple[str, Path, Callable[[], bytes]]] = []
        if isinstance(picture, Drawing):
            jobs += [("json", d / f"{self.name}.json", lambda: picture.to_json().encode("utf-8")),
                     ("svg", d / f"{self.name}.svg", lambda: to_svg(picture).encode("utf-8")),
                     ("png", d / f"{self.name}.png", lambda: png_bytes(render_rgba(picture, scale)))]
        else:
            jobs.append(("png", d / f"{self.name}.png", lambda: png_bytes(picture)))
        for name, stage in self.stages:
            jobs += [(f"{name}.svg", d / f"{name}.svg", lambda s=stage: to_svg(s).encode("utf-8")),
                     (f"{name}.png", d / f"{name}.png", lambda s=stage: png_bytes(render_rgba(s, scale)))]
        jobs.append(("snapshots", d / "snapshots.jsonl",
                     lambda: ("\n".join(self.lines) + "\n").encode("utf-8")))
        if self.video and self.frames:
            jobs.append(("gif", d / "process.gif", lambda: gif_bytes(self.frames)))
        return jobs
