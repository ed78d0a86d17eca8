"""Sketch what the camera sees (issue 12's "Done when"): a Blender scene rendered by the add-on's
Camera source, then sketched three ways with the built-in model.

The scene is built with bpy: a flat-shaded, extruded star (lab.motion's outline) that moves
across the view and turns (in the picture plane and a little out of it) in front of a
perspective camera over 24 frames; a square 224 render, Workbench, black star on white.
``blender_addon.camera_shot`` renders each frame and its object mask into RGBA PNGs, exactly as
the panel's Camera source does; those frames are sketched warm, warm + coherence and as
independent cold runs, with scripts/bench_sketch_frames.py's machinery (the same table, summary
and strip). The object's own edge motion is the mean displacement of the star's projected
outline corners between frames, in canvas px. Every number is a claim about this CPU only.

    .venv/bin/python scripts/bench_camera_sketch.py --strip out/camera_sketch_strip.png
    .venv/bin/python scripts/bench_camera_sketch.py --frames 3 --steps 10 --seeds 1   # a quick check
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

import torch
import torch._dynamo  # triton (imported by dynamo) must load before Blender's software OpenGL: see
                      # blender_addon.engine_path.keep_triton_out

# isort: split
import bpy  # Blender as a Python module, in the project's .venv (imported after torch, see above)
from bench_sketch_frames import make_ways, report, sketch_ways
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Matrix, Vector

from blender_addon import camera_shot, image_inputs, rendering
from synth_core.builtin import load_builtin_encoder
from synth_core.images import fit_square, load_image
from synth_core.lab import motion
from synth_core.lab.machine import cpu_description, load_average
from synth_core.letterbox import fit_square_rect

RADIUS, DEPTH = 1.1, 0.3  # the star's outer radius and thickness, scene units (the view is 7.2 wide)


def star_mesh(name: str = "Star") -> bpy.types.Object:
    """An extruded star (front and back faces fanned from the centre, flat sides), dark grey."""
    (ring,) = motion.outline("star")
    ring = np.asarray(ring, dtype=np.float64)[:, :2] * RADIUS
    n = len(ring)
    verts = [(x, -DEPTH / 2, -y) for x, y in ring] + [(x, DEPTH / 2, -y) for x, y in ring]
    verts += [(0.0, -DEPTH / 2, 0.0), (0.0, DEPTH / 2, 0.0)]
    front, back = 2 * n, 2 * n + 1
    faces = [(front, i, (i + 1) % n) for i in range(n)] + [(back, n + (i + 1) % n, n + i) for i in range(n)]
    faces += [(i, n + i, n + (i + 1) % n, (i + 1) % n) for i in range(n)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(verts, [], faces)
    mat = bpy.data.materials.new(name)
    mat.diffuse_color = (0.02, 0.02, 0.02, 1.0)
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    obj.rotation_mode = 'XYZ'
    return obj


def build_scene(frames: int, size: int) -> tuple[bpy.types.Scene, bpy.types.Object]:
    """The test scene in a fresh file: the star keyed from left-down to right-up, turning 60 degrees
    in the picture and 25 out of it, linearly over ``frames`` frames."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.matrix_world = Matrix.Translation((0.0, -10.0, 0.0)) @ Matrix.Rotation(math.pi / 2, 4, 'X')
    scene.collection.objects.link(cam)
    scene.camera = cam
    subject = bpy.data.collections.new("Subject")
    scene.collection.children.link(subject)
    star = star_mesh()
    subject.objects.link(star)
    scene.frame_start, scene.frame_end = 1, frames
    for frame, x, z, turn, tilt in ((1, -1.0, -0.6, 0.0, 0.0), (frames, 1.0, 0.6, 60.0, 25.0)):
        star.location = (x, 0.0, z)
        star.rotation_euler = (0.0, math.radians(turn), math.radians(tilt))
        star.keyframe_insert("location", frame=frame)
        star.keyframe_insert("rotation_euler", frame=frame)
    for fc in _fcurves(star):
        for key in fc.keyframe_points:
            key.interpolation = 'LINEAR'
    rendering.configure(scene, "WORKBENCH", (1.0, 1.0, 1.0, 1.0))  # flat colours on white
    scene.render.resolution_x = scene.render.resolution_y = size
    return scene, star


def _fcurves(obj: bpy.types.Object):
    """The object's F-curves on Blender 4.2 to 5.x (layered actions keep them in a channelbag)."""
    from blender_addon import animation

    anim = obj.animation_data
    return animation.channelbag_fcurves(anim.action, anim)


def outline_px(scene: bpy.types.Scene, star: bpy.types.Object, frame: int, size: int, canvas: int) -> np.ndarray:
    """The star's front outline corners at ``frame``, projected by the camera, in canvas pixels."""
    scene.frame_set(frame)
    w, h = camera_shot.picture_size(scene, size)
    x0, y0, nw, nh = fit_square_rect(w, h, canvas)
    m = star.matrix_world
    n = (len(star.data.vertices) - 2) // 2
    pts = []
    for v in list(star.data.vertices)[:n]:
        p = world_to_camera_view(scene, scene.camera, m @ Vector(v.co))
        pts.append((x0 + p.x * nw, y0 + (1.0 - p.y) * nh))
    return np.array(pts)


def similarity(a: np.ndarray, b: np.ndarray) -> tuple[complex, np.ndarray, np.ndarray]:
    """The least-squares rotation + uniform scale (as one complex factor) and translation taking points
    ``a`` [N, 2] to ``b``: b ~ cb + k (a - ca); returns (k, ca, cb)."""
    ca, cb = a.mean(0), b.mean(0)
    za, zb = (a - ca) @ np.array([1, 1j]), (b - cb) @ np.array([1, 1j])
    return complex(np.vdot(za, zb) / np.vdot(za, za)), ca, cb


def carry_by_outlines(outlines: list[np.ndarray]):
    """The object's own motion from frame i to i + 1 as the best similarity between its projected
    outlines (exact for motion in the picture plane; the residual says how far the out-of-plane turn
    and perspective are from it), and that residual in px."""
    fits = [similarity(a, b) for a, b in itertools.pairwise(outlines)]

    def apply(points: np.ndarray, i: int) -> np.ndarray:
        k, ca, cb = fits[i]
        z = (points - ca) @ np.array([1, 1j]) * k
        return np.stack([z.real, z.imag], 1) + cb

    residual = float(np.mean([np.linalg.norm(apply(a, i) - b, axis=1).mean()
                              for i, (a, b) in enumerate(itertools.pairwise(outlines))]))
    return apply, residual


def render_shot(scene: bpy.types.Scene, frames: int, canvas: int) -> camera_shot.CameraShot:
    """The Camera source's frames, rendered as the panel renders them (one call per frame)."""
    spec = camera_shot.ShotSpec(frames=camera_shot.frame_range(1, frames), canvas=canvas, collection="Subject")
    camera_shot.check(scene, bpy.context.view_layer, spec)
    shot = camera_shot.CameraShot(scene, bpy.context.view_layer, spec, image_inputs.JobFolder())
    shot.render_all(lambda line: print(line, flush=True))
    return shot


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--canvas", type=int, default=224)
    ap.add_argument("--strokes", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000, help="cap per frame (frames stop on a plateau)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--coherence", default="100", help="weights for the coherent way, comma-separated")
    ap.add_argument("--ways", default="warm,coherent,cold", help="of warm, coherent, plain, cold")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: two threads on two shared cores stall)")
    ap.add_argument("--strip", type=Path, default=None, help="write a PNG strip of every 4th frame")
    ap.add_argument("--save", type=Path, default=None, help="keep every way's frames as JSON drawings here")
    ap.add_argument("--reuse", action="store_true", help="load the ways already saved in --save instead of running them")
    args = ap.parse_args()
    if args.frames < 2:
        ap.error("--frames must be at least 2: a sequence is compared frame to frame")

    torch.set_num_threads(args.threads)
    print(f"CPU: {cpu_description()}; torch threads {args.threads}; load average {load_average():.1f}")
    scene, star = build_scene(args.frames, args.canvas)
    shot = render_shot(scene, args.frames, args.canvas)
    frames = shot.paths
    targets = [fit_square(load_image(p), args.canvas)[0] for p in frames]
    outlines = [outline_px(scene, star, f, args.canvas, args.canvas) for f in shot.spec.frames]
    edge = float(np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in itertools.pairwise(outlines)]))
    carry, residual = carry_by_outlines(outlines)
    encoder = load_builtin_encoder("cpu")
    base = {"method": "clipasso", "model": "builtin", "offline": True, "canvas": args.canvas, "strokes": args.strokes,
            "steps": args.steps, "seeds": args.seeds, "snapshot_every": 0, "threads": args.threads}
    ways = make_ways(base, args.ways.split(","), args.coherence)
    reuse = args.save if args.reuse and args.save else None
    sketch_ways(ways, frames, targets, encoder, Path(tempfile.mkdtemp(prefix="bench_camera_sketch-")), args.save,
                reuse)
    print(f"\nCPU: {cpu_description()}; load average now {load_average():.1f}; Blender {bpy.app.version_string} "
          f"camera render (Workbench) of a moving, turning star, {args.frames} frames, canvas {args.canvas}, "
          f"{args.strokes} strokes, seeds {args.seeds}, steps cap {args.steps}\n")
    print(f"the object's motion is carried frame to frame by the best 2D similarity of its projected outline "
          f"(residual {residual:.2f} px per corner)")
    report(ways, edge, targets, carry, args.strip)
    shot.discard()


if __name__ == "__main__":
    main()
