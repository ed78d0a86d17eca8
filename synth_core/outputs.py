"""Files a run leaves behind: final SVG / PNG / JSON, the snapshots as JSON lines, a GIF of the process.

Every file is written atomically (temporary name, then rename), so an interrupted run never
leaves half a file; the snapshot log is collected in memory-light form and written at the end.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .drawing import Drawing, atomic_write_bytes, atomic_write_text
from .events import Picture, picture_to_wire


def check_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` and prove it takes files, before hours of work go into it."""
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        from .errors import BadRequest

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

    def snapshot(self, step: int, picture: Picture) -> None:
        self.lines.append(json.dumps({"step": step, **picture_to_wire(picture)}, separators=(",", ":")))
        if self.video:
            self.frames.append(picture_rgb(picture, self.gif_size))

    def finish(self, picture: Picture, scale: float = 1.0) -> dict[str, str]:
        """Write everything; returns {kind: path}."""
        out: dict[str, Path] = {}
        if isinstance(picture, Drawing):
            from .rasterize import render_drawing
            from .svg import to_svg

            out["json"] = picture.save(self.out_dir / f"{self.name}.json")
            out["svg"] = atomic_write_text(self.out_dir / f"{self.name}.svg", to_svg(picture))
            out["png"] = atomic_write_bytes(self.out_dir / f"{self.name}.png", png_bytes(render_drawing(picture, scale)))
        else:
            out["png"] = atomic_write_bytes(self.out_dir / f"{self.name}.png", png_bytes(picture))
        out["snapshots"] = atomic_write_text(self.out_dir / "snapshots.jsonl", "\n".join(self.lines) + "\n")
        if self.video and self.frames:
            out["gif"] = atomic_write_bytes(self.out_dir / "process.gif", gif_bytes(self.frames))
        return {k: str(v) for k, v in out.items()}
