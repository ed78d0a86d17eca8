"""scripts/render.py: usage errors (exit 2) and the end-to-end job with the small model."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from common import ROOT

from synth_core import letterbox

SCRIPT = ROOT / "scripts" / "render.py"


def render_py(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--", *args], capture_output=True, text=True, timeout=timeout)


IMAGE = str(ROOT / "tests" / "blender" / "common.py")  # any existing file: usage checks never read it


@pytest.mark.parametrize("args, message", [
    (["--out", "x.blend"], "--method clipdraw needs --prompt TEXT"),
    (["--prompt", "  ", "--out", "x.blend"], "--prompt is empty"),
    (["--method", "clipasso", "--out", "x.blend"], "--method clipasso needs --image IMAGE"),
    (["--method", "styleclipdraw", "--prompt", "a", "--out", "x.blend"], "--method styleclipdraw needs --style"),
    (["--method", "styleclipdraw", "--style", IMAGE, "--out", "x.blend"], "--method styleclipdraw needs --prompt"),
    (["--method", "clipasso", "--image", IMAGE, "--prompt", "a", "--out", "x.blend"], "it takes no --prompt"),
    (["--prompt", "a", "--image", IMAGE, "--out", "x.blend"], "--image is for --method clipasso, not clipdraw"),
    (["--prompt", "a", "--seeds", "2", "--out", "x.blend"], "--seeds is for --method clipasso"),
    (["--method", "clipasso", "--image", IMAGE, "--strength", "3", "--out", "x.blend"],
     "--strength is for --method styleclipdraw, not clipasso"),
    (["--method", "clipasso", "--image", "nowhere.png", "--out", "x.blend"], "--image 'nowhere.png' does not exist"),
    (["--method", "styleclipdraw", "--prompt", "a", "--style", "no.png", "--out", "x.blend"],
     "--style 'no.png' does not exist"),
    (["--method", "clipasso", "--image", IMAGE, "--strokes", "0", "--out", "x.blend"],
     "--strokes must be between 1 and 10000, got 0"),
    (["--method", "clipasso", "--image", IMAGE, "--seeds", "17", "--out", "x.blend"], "--seeds must be between 1 and 16"),
    (["--method", "clipasso", "--image", IMAGE, "--canvas", "64", "32", "--out", "x.blend"], "on a square canvas"),
    (["--method", "styleclipdraw", "--prompt", "a", "--style", IMAGE, "--strength", "101", "--out", "x.blend"],
     "--strength must be between 0 and 100, got 101"),
    (["--prompt", "a", "--threads", "-1", "--out", "x.blend"], "--threads must be between 0 and 1024"),
    (["--method", "sketch", "--out", "x.blend"], "invalid choice: 'sketch'"),
    (["--prompt", "a", "--out", "x.blend", "--steps", "0"], "--steps must be between 1 and 100000, got 0"),
    (["--prompt", "a", "--out", "x.blend", "--strokes", "20000"], "--strokes must be between 1 and 10000"),
    (["--prompt", "a", "--out", "x.png"], "--out must name a .blend file"),
    (["--prompt", "a", "--out", "x.blend", "--engine", "povray"], "invalid choice: 'povray'"),
    (["--prompt", "a", "--out", "x.blend", "--lock", "0-3"], "--lock needs --init"),
    (["--prompt", "a", "--out", "x.blend", "--init", "nowhere.json"], "--init 'nowhere.json' does not exist"),
    (["--prompt", "a", "--out", "x.blend", "--ladder", "16,32"], "ladder counts must go down"),
    (["--out", "x.blend", "--prompt-at", "one:a cat"], "--prompt-at: a keyed prompt is FRAME:PROMPT"),
    (["--method", "clipasso", "--from-camera", "--frames", "9-3", "--out", "x.blend"],
     "--frames: the frame range 9-3 is reversed"),
    (["--method", "clipasso", "--from-camera", "--frames", " ", "--out", "x.blend"], "the frame range is empty"),
    (["--method", "clipasso", "--from-camera", "--out", "x.blend"], "--from-camera needs --open FILE.blend"),
    (["--method", "clipasso", "--from-camera", "--image", IMAGE, "--out", "x.blend"], "--image and --from-camera"),
    (["--prompt", "a", "--coherence", "3", "--out", "x.blend"], "--coherence needs --from-camera"),
    (["--method", "clipasso", "--from-camera", "--open", "x.blend", "--canvas", "64", "32", "--out", "y.blend"],
     "on a square canvas"),
    (["--method", "clipasso", "--from-camera", "--open", "x.blend", "--tidy", "--out", "y.blend"], "leave tidy out"),
    (["--prompt", "a", "--max-width", "1", "--out", "x.blend"], "max_width must be a number from 2 to 4096"),
    (["--method", "clipasso", "--image", IMAGE, "--max-width", "8", "--out", "x.blend"],
     "CLIPasso's strokes keep one width"),
])
def test_bad_arguments_exit_2_with_one_line(args, message):
    proc = render_py(*args, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def read_png(path) -> np.ndarray:
    """(H, W, 3) uint8, top row first, read with Blender itself (no PIL needed)."""
    import bpy

    img = bpy.data.images.load(str(path))
    w, h = img.size
    px = np.empty(w * h * 4, np.float32)
    img.pixels.foreach_get(px)
    bpy.data.images.remove(img)
    return np.rint(px.reshape(h, w, 4)[::-1, :, :3] * 255).astype(np.uint8)


def inked(rgb: np.ndarray, background=(255, 255, 255), threshold: int = 20) -> np.ndarray:
    return np.abs(rgb[..., :3].astype(int) - np.array(background)).max(axis=-1) > threshold


@pytest.mark.parametrize("output", ["grease-pencil", "curves"])
def test_end_to_end_blend_render_and_animation_match_the_engine(tmp_path, builtin_model, output):
    import bpy

    from blender_addon import animation, grease_pencil

    out = tmp_path / "out"
    extra = ["--animation", str(out / "frames")] if output == "grease-pencil" else []
    proc = render_py("--prompt", "a red circle", "--model", "builtin", "--strokes", "16", "--steps", "40", "--no-tidy",
                     "--canvas", "128", "--threads", "1", "--precision", "float32", "--max-width", "5",
                     "--snapshot-every", "10", "--output", output, "--out", str(out / "drawing.blend"),
                     "--render", str(out / "final.png"), "--drawing", str(out / "drawing.json"),
                     "--runner", "subprocess", "--python", builtin_model, *extra)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "step 40/40" in proc.stdout and "wrote" in proc.stdout
    assert "EGL Error" not in proc.stderr  # Mesa's answers to Blender's OpenGL probe are not shown
    if extra:
        assert sorted(p.name for p in (out / "frames").iterdir()) == [f"frame_{i:04d}.png" for i in range(1, 6)]
    # the .blend holds the animated object: snapshots at steps 0, 10, 20, 30, 40 on frames 1-5
    bpy.ops.wm.open_mainfile(filepath=str(out / "drawing.blend"))
    objs = [o for o in bpy.data.objects if "clipdraw_prompt" in o]
    assert len(objs) == 1 and objs[0]["clipdraw_prompt"] == "a red circle" and objs[0]["clipdraw_model"] == "builtin"
    if output == "grease-pencil":
        assert grease_pencil.frame_numbers(objs[0].data) == [1, 2, 3, 4, 5]
    else:
        fc = animation.find_fcurve(objs[0].data, "splines[0].bezier_points[0].co", 0)
        assert [k.co[0] for k in fc.keyframe_points] == [1, 2, 3, 4, 5]
    drawing = json.loads((out / "drawing.json").read_text())  # --max-width went through the panel's request
    assert drawing["meta"]["max_width"] == 5.0 and max(s["width"] for s in drawing["strokes"]) <= 5.0 + 1e-3
    # Workbench's last frame vs the engine's own rendering of the final drawing
    subprocess.run([builtin_model, "-m", "synth_core", "render", str(out / "drawing.json"), "--out",
                    str(out / "engine.png")], check=True, capture_output=True, cwd=ROOT)
    engine, blender = read_png(out / "engine.png"), read_png(out / "final.png")
    assert blender.shape == engine.shape
    a, b = inked(blender), inked(engine)
    iou = (a & b).sum() / max(1, (a | b).sum())
    assert b.sum() > 50 and iou >= 0.85, f"IoU {iou:.3f}"


def test_sketch_end_to_end_lines_up_with_its_source_image(tmp_path, builtin_model):
    """render.py --method clipasso with the real engine: the .blend holds the sketch, its record and
    the overlay, and both the strokes (through the overlay) and the render sit on the disc."""
    import bpy

    from blender_addon import grease_pencil, placement
    from pictures import disc_rgba, empty_image_point, write_rgba

    centre, radius = (68, 22), 12  # off-centre both ways: a missed letterbox, shift or flip would show
    source = write_rgba(tmp_path / "disc.png", disc_rgba(96, 64, centre=centre, radius=radius))
    out = tmp_path / "out"
    proc = render_py("--method", "clipasso", "--image", str(source), "--model", "builtin", "--strokes", "8",
                     "--seeds", "2", "--steps", "20", "--canvas", "64", "--out", str(out / "sketch.blend"),
                     "--render", str(out / "final.png"), "--runner", "subprocess", "--python", builtin_model,
                     "--threads", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "sketching" in proc.stdout and "step 20/20" in proc.stdout
    bpy.ops.wm.open_mainfile(filepath=str(out / "sketch.blend"))
    (sketch,) = [o for o in bpy.data.objects if "clipdraw_method" in o]
    assert (sketch["clipdraw_method"], sketch["clipdraw_image"], sketch["clipdraw_image_source"]) == \
        ("clipasso", str(source), "FILE")
    assert sketch["clipdraw_seeds"] == 2 and sketch["clipdraw_winning_seed"] in (0, 1000)
    assert list(sketch["clipdraw_seed_list"]) == [0, 1000] and len(sketch["clipdraw_eval_loss"]) == 2
    empty = bpy.data.objects[sketch["clipdraw_overlay"]]
    assert os.path.normpath(bpy.path.abspath(empty.data.filepath)) == str(source)  # saved relative
    assert empty.users_collection[0] == sketch.users_collection[0]
    # every knot of the final sketch, seen through the overlay, lies on the disc of the source image
    layer = grease_pencil.layer_of(sketch.data)
    frame = max(layer.frames, key=lambda f: f.frame_number)
    m = np.array(sketch.matrix_world)
    if grease_pencil.is_v3():
        local = [p.position for s in frame.drawing.strokes for p in s.points]
    else:
        local = [p.co for s in frame.strokes for p in s.points]
    world = np.array([(m @ np.array([*p, 1.0]))[:3] for p in local])
    origin = empty_image_point(empty, 0, 0)
    axes = np.stack([empty_image_point(empty, 1, 0) - origin, empty_image_point(empty, 0, 1) - origin], 1)
    uv = np.linalg.lstsq(axes, (world - origin).T, rcond=None)[0].T  # image pixels
    gaps = np.linalg.norm(uv - (np.array(centre) + 0.5), axis=1)
    assert len(uv) >= 16 and gaps.max() < radius + 3, np.round(uv, 1)
    # the camera render is pixel-aligned with the canvas: its ink sits where the engine put the disc
    rgb = read_png(out / "final.png")
    ys, xs = np.nonzero(inked(rgb))
    x0, y0, nw, nh = letterbox.fit_square_rect(96, 64, 64)
    disc = np.array([x0 + (centre[0] + 0.5) * nw / 96, y0 + (centre[1] + 0.5) * nh / 64])
    assert len(xs) > 20 and np.linalg.norm([xs.mean() + 0.5, ys.mean() + 0.5] - disc) < 4


def _wait_for_a_step(proc: subprocess.Popen, seen: list[str]) -> None:
    """Read render.py's stdout until the run has made at least one optimisation step."""
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"step [1-9]\d*/100000", line):
            return
    raise AssertionError("render.py ended before its first step:\n" + "".join(seen[-20:]))


@pytest.mark.parametrize("runner", ["in-process", "subprocess"])
def test_sigterm_stops_after_the_step_and_saves_the_drawing_so_far(tmp_path, builtin_model, runner):
    """What ``timeout``, ``kill`` and render farms send: the .blend and --drawing keep the drawing so far,
    renders are skipped, exit code 143, one line per problem and no traceback."""
    import bpy

    if runner == "in-process" and importlib.util.find_spec("torch") is None:
        pytest.skip("no torch in this Python: the in-process runner cannot run here")
    out = tmp_path / "stopped.blend"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--", "--prompt", "a red circle", "--model", "builtin", "--strokes", "4",
         "--steps", "100000", "--canvas", "32", "--snapshot-every", "1", "--out", str(out), "--drawing",
         str(tmp_path / "stopped.json"), "--render", str(tmp_path / "never.png"), "--runner", runner,
         "--python", builtin_model, "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        _wait_for_a_step(proc, seen)
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 143, "".join(seen) + rest + err
    assert "Traceback" not in err and "skipped --render" in err
    assert not (tmp_path / "never.png").exists()
    bpy.ops.wm.open_mainfile(filepath=str(out))
    (obj,) = [o for o in bpy.data.objects if "clipdraw_prompt" in o]
    assert obj["clipdraw_cancelled"] and 1 <= obj["clipdraw_step"] < 100000
    assert len(json.loads((tmp_path / "stopped.json").read_text())["strokes"]) == 4


def test_an_out_folder_that_breaks_during_the_run_does_not_lose_the_drawing(tmp_path, builtin_model):
    """Checked at the start, gone by the end (here: a file where the folder was): the .blend is saved in
    a temporary folder instead, the other outputs are still written, one line says where, exit 1."""
    import bpy

    folder = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--", "--prompt", "a red circle", "--model", "builtin", "--strokes", "4",
         "--steps", "100000", "--canvas", "32", "--out", str(folder / "lost.blend"), "--drawing",
         str(tmp_path / "kept.json"), "--runner", "subprocess", "--python", builtin_model, "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_a_step(proc, [])
        folder.write_text("a file where the output folder was\n")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1 and "Traceback" not in err, err
    (line,) = [ln for ln in err.splitlines() if "--out" in ln]
    rescued = line.rsplit("the drawing is saved in ", 1)[1].strip()
    try:
        bpy.ops.wm.open_mainfile(filepath=rescued)
        assert [o for o in bpy.data.objects if "clipdraw_prompt" in o]
    finally:
        shutil.rmtree(os.path.dirname(rescued), ignore_errors=True)
    assert json.loads((tmp_path / "kept.json").read_text())["format"] == "drawing"


def _wait_for_handlers(pid: int, timeout: float = 60) -> None:
    """Until the script catches SIGTERM (Linux: SigCgt in /proc/PID/status; elsewhere a pause)."""
    status = f"/proc/{pid}/status"
    deadline = time.monotonic() + timeout
    while os.path.exists(status) and time.monotonic() < deadline:
        with open(status) as f:
            caught = [ln.split()[1] for ln in f if ln.startswith("SigCgt:")]
        if caught and int(caught[0], 16) >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.01)
    time.sleep(0.5)


def test_ctrl_c_before_the_run_writes_nothing_and_exits_130(tmp_path):
    out = tmp_path / "never.blend"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--", "--prompt", "a red circle", "--model", "builtin",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_handlers(proc.pid)
    proc.send_signal(signal.SIGINT)  # Blender is still loading
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip() and "Freeing memory" not in ln]
    assert len(lines) == 1 and "stopped by SIGINT before the drawing started" in lines[0], err
    assert not out.exists()


def test_continue_a_file_with_a_ladder_as_curves(tmp_path, builtin_model):
    """--init with --lock and --add, and a --ladder, with the real engine: the kept strokes are the
    file's in the final drawing, and the .blend holds one curve object per level."""
    import bpy
    from drawings import random_drawing

    start = random_drawing(4, seed=1, width=64, height=64, segments=2)
    start.save(tmp_path / "start.json")
    start = type(start).load(tmp_path / "start.json")  # the values as the file holds them
    out = tmp_path / "out"
    proc = render_py("--prompt", "a red circle", "--model", "builtin", "--init", str(tmp_path / "start.json"),
                     "--lock", "0-1", "--add", "4", "--ladder", "8,4,2", "--steps", "10", "--output", "curves",
                     "--out", str(out / "ladder.blend"), "--drawing", str(out / "ladder.json"), "--runner",
                     "subprocess", "--python", builtin_model, "--threads", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "continuing" in proc.stdout and "2 strokes (3 of 3)" in proc.stdout
    final = type(start).load(out / "ladder.json")
    assert len(final) == 2  # the ladder's last level keeps the two locked strokes
    np.testing.assert_array_equal(final.points, start.points[: start.offsets[2]])
    bpy.ops.wm.open_mainfile(filepath=str(out / "ladder.blend"))
    (obj,) = [o for o in bpy.data.objects if o.get("clipdraw_level") == "2 strokes" and not o.hide_render]
    assert len(obj.data.splines) == 2 and list(obj["clipdraw_canvas_size"]) == [64, 64]
    levels = sorted(len(o.data.splines) for o in bpy.data.objects if o.hide_render)
    assert levels == [4, 8]


def test_keyed_prompts_render_the_morph_frame_by_frame(tmp_path, builtin_model):
    import bpy

    from blender_addon import grease_pencil

    out = tmp_path / "out"
    proc = render_py("--prompt-at", "1:a red circle", "--prompt-at", "6:a blue square", "--model", "builtin",
                     "--strokes", "6", "--canvas", "64", "--steps", "10", "--snapshot-every", "5", "--out",
                     str(out / "keyed.blend"), "--animation", str(out / "frames"), "--runner", "subprocess",
                     "--python", builtin_model, "--threads", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "'a red circle' at frame 1 then 'a blue square' at frame 6" in proc.stdout
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"frame_{i:04d}.png" for i in range(1, 7)]
    bpy.ops.wm.open_mainfile(filepath=str(out / "keyed.blend"))
    (obj,) = [o for o in bpy.data.objects if "clipdraw_keyed_prompts" in o]
    # the first prompt's drawing on frame 1, the morph's snapshot (step 5 of 10) on frame 3, the second on 6
    assert grease_pencil.frame_numbers(obj.data) == [1, 3, 6]
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (1, 6)


def test_init_active_that_cannot_be_read_is_bad_input(tmp_path):
    """Only Blender sees the active object: a mesh is refused there, as one line and exit 2."""
    import bpy

    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    bpy.context.scene.collection.objects.link(cube)
    bpy.context.view_layer.objects.active = cube
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "cube.blend"))
    proc = render_py("--prompt", "a red circle", "--model", "builtin", "--open", str(tmp_path / "cube.blend"),
                     "--init-active", "--keep", "selected", "--add", "2", "--out", str(tmp_path / "never.blend"),
                     timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "the active object 'Cube' is a MESH" in lines[0], proc.stderr
    assert not (tmp_path / "never.blend").exists()


def test_bad_input_only_the_engine_sees_exits_2_like_the_cli(tmp_path, builtin_model):
    """A file that exists but is no image passes render.py's own checks; the engine refuses it as a
    bad request, and render.py then says so in one line with exit 2, as the CLI does."""
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"not a picture at all")
    proc = render_py("--method", "clipasso", "--image", str(bad), "--model", "builtin", "--steps", "2",
                     "--out", str(tmp_path / "x.blend"), "--runner", "subprocess", "--python", builtin_model)
    assert proc.returncode == 2, proc.stdout[-1500:] + proc.stderr[-1500:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("render.py: error")]
    assert len(errors) == 1 and "not a readable image" in errors[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.blend").exists()


def test_from_camera_end_to_end_one_drawing_per_frame_and_renders_of_the_sketch(tmp_path, builtin_model):
    """render.py --from-camera with the real engine on a tiny run: the .blend's sketch has drawings on
    frames 1-3 with each frame's loss, and the rendered frames show the sketch, not the object."""
    import bpy
    from test_camera_shot import make_scene

    from blender_addon import grease_pencil

    make_scene()
    scene_file = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(scene_file))
    out = tmp_path / "out"
    proc = render_py("--method", "clipasso", "--from-camera", "--frames", "1-3", "--mask-collection", "Subject",
                     "--open", str(scene_file), "--model", "builtin", "--strokes", "4", "--seeds", "1", "--steps",
                     "10", "--canvas", "64", "--coherence", "50", "--boil", "0.5", "--out", str(out / "shot.blend"),
                     "--animation", str(out / "frames"), "--runner", "subprocess", "--python", builtin_model,
                     "--threads", "1")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Rendering camera frame 3/3" in proc.stdout and "frame 3/3" in proc.stdout
    assert "(3 of 3)" not in proc.stdout  # a frame is not counted twice
    assert proc.stdout.count("Saved:") == 3  # the animation's frames; the camera renders print nothing
    assert sorted(p.name for p in (out / "frames").iterdir()) == [f"frame_{i:04d}.png" for i in (1, 2, 3)]
    for i in (1, 2, 3):  # the red cube is hidden from these renders: only the sketch (and the blue cube) shows
        rgb = read_png(out / "frames" / f"frame_{i:04d}.png")
        assert not np.any((rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80))
    bpy.ops.wm.open_mainfile(filepath=str(out / "shot.blend"))
    (sketch,) = [o for o in bpy.data.objects if "clipdraw_method" in o]
    assert grease_pencil.frame_numbers(sketch.data) == [1, 2, 3] and sketch.parent.name == "Cam"
    assert list(sketch["clipdraw_frame_numbers"]) == [1, 2, 3]
    assert len(sketch["clipdraw_frame_loss"]) == 3 and all(np.isfinite(list(sketch["clipdraw_frame_loss"])))
    request = json.loads(sketch["clipdraw_request"])
    assert request["coherence"] == 50 and request["boil"] == 0.5 and "tidy" not in request
    assert not bpy.data.objects["Red"].hide_render  # restored before the .blend was saved
