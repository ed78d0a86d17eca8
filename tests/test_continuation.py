"""Continuing a drawing: locked strokes stay bit for bit, the others move, new ones are added, for every method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synth_core import formats, tidy
from synth_core.builtin import load_builtin_encoder
from synth_core.continuation import Locks
from synth_core.drawing import Drawing
from synth_core.events import Done
from synth_core.jobs import parse_request, run_events, run_job
from synth_core.strokes import StrokeTensors, Topology, from_drawing

LOCK = [0, 2, 5]
BASE = {"model": "builtin", "offline": True, "steps": 12, "seed": 3, "threads": 1, "snapshot_every": 4, "tidy": False,
        "canvas": 96}


@pytest.fixture(scope="module")
def encoder():
    return load_builtin_encoder("cpu")


def a_drawing(n: int = 8, size: int = 96, seed: int = 0) -> Drawing:
    """Strokes with values no float32 holds exactly (as an artist's file may have)."""
    rng = np.random.default_rng(seed)
    segments = rng.integers(1, 3, n)
    points = rng.uniform(10, size - 10, (int((3 * segments + 1).sum()), 2)) + 1e-7
    rgba = np.column_stack([rng.uniform(0, 1, (n, 3)), np.full(n, 0.9)])
    return Drawing(size, size, points, segments, rng.uniform(2, 6, n) + 1e-9, rgba)


@pytest.fixture(scope="module")
def init_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("init") / "start.json"
    a_drawing().save(path)
    return str(path)


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    img = np.full((96, 96, 3), 255, np.uint8)
    img[30:66, 30:66] = 0
    path = tmp_path_factory.mktemp("photo") / "square.png"
    Image.fromarray(img).save(path)
    return str(path)


def stroke(d: Drawing, i: int) -> tuple[np.ndarray, float, np.ndarray]:
    o = d.offsets
    return d.points[o[i]:o[i + 1]], float(d.widths[i]), d.rgba[i]


def same(a: tuple, b: tuple) -> bool:
    return np.array_equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])


def request(method: str, init: str, photo: str, **extra) -> dict:
    req = {**BASE, "method": method, "init": init, "lock": LOCK, "add": 3, **extra}
    if method == "clipasso":
        req.update(image=photo, seeds=2)
    else:
        req["prompt"] = "a blue square"
    if method == "styleclipdraw":
        req.update(style_image=photo, style_weights="untrained")
    return req


@pytest.mark.parametrize("method", ["clipdraw", "styleclipdraw", "clipasso"])
def test_locked_strokes_stay_bit_for_bit_and_the_others_move(method, init_file, photo, encoder):
    start = formats.load(init_file)
    events = list(run_events(parse_request(request(method, init_file, photo)), encoder=encoder))
    done = events[-1]
    assert isinstance(done, Done) and not done.cancelled
    out = done.picture
    assert len(out) == len(start) + 3  # the drawing's strokes, then the added ones
    for i in LOCK:
        assert same(stroke(out, i), stroke(start, i)), f"locked stroke {i} changed"
    free = [i for i in range(len(start)) if i not in LOCK]
    moved = [np.abs(stroke(out, i)[0] - stroke(start, i)[0]).max() for i in free]
    assert max(moved) > 0.5  # the unlocked strokes were optimised
    for ev in events:  # every snapshot shows the locked strokes as they are, too
        if hasattr(ev, "picture") and len(ev.picture) == len(out):
            assert all(same(stroke(ev.picture, i), stroke(start, i)) for i in LOCK)


def test_continuing_without_locks_or_new_strokes_optimises_the_drawing(init_file, photo, encoder):
    req = {**BASE, "prompt": "a red circle", "init": init_file}
    out = list(run_events(parse_request(req), encoder=encoder))[-1].picture
    start = formats.load(init_file)
    assert len(out) == len(start) and out.segments.tolist() == start.segments.tolist()
    assert not same(stroke(out, 0), stroke(start, 0))


def test_the_tidy_pass_never_removes_a_locked_stroke(init_file, photo, encoder):
    req = {**BASE, "prompt": "a red circle", "init": init_file, "lock": LOCK, "add": 8, "tidy": True, "steps": 30}
    out = list(run_events(parse_request(req), encoder=encoder))[-1].picture
    start = formats.load(init_file)
    kept = [i for i in LOCK if any(same(stroke(out, j), stroke(start, i)) for j in range(len(out)))]
    assert kept == LOCK
    assert out.meta["tidied"]["strokes"] == len(out)


def test_weakest_skips_locked_strokes():
    c = torch.tensor([0.5, 0.01, -0.2, 0.3, 0.04])
    locked = torch.tensor([False, False, True, False, False])
    assert tidy.weakest(c, 2, 1, locked).tolist() == [False, True, False, False, True]
    assert tidy.removable(c, 0.1, 1, locked).tolist() == [False, True, False, False, True]
    assert tidy.weakest(c, 9, 1, torch.ones(5, dtype=torch.bool)).sum() == 0


def test_held_values_are_written_back_after_a_step():
    d = a_drawing(4)
    locks = Locks.start(d, [1, 3], added=2)
    s = from_drawing(d).then(from_drawing(a_drawing(2, seed=1)))
    held = locks.hold(s)
    before = s.points.clone(), s.half_widths.clone(), s.colors.clone()
    with torch.no_grad():
        s.points += 1.0
        s.half_widths += 1.0
        s.colors *= 0.5
    held.restore(s)
    rows = np.concatenate([np.arange(d.offsets[i], d.offsets[i + 1]) for i in (1, 3)])
    assert torch.equal(s.points[:, rows], before[0][:, rows])
    assert torch.equal(s.half_widths[:, [1, 3]], before[1][:, [1, 3]]) and torch.equal(s.colors[:, [1, 3]], before[2][:, [1, 3]])
    assert not torch.equal(s.points[:, d.offsets[0]], before[0][:, d.offsets[0]])


def test_then_appends_strokes_with_their_topology():
    a = StrokeTensors(torch.zeros(1, 4, 2), torch.ones(1, 1), torch.zeros(1, 1, 4), Topology.from_segments([1]))
    b = StrokeTensors(torch.ones(1, 7, 2), torch.full((1, 1), 2.0), torch.ones(1, 1, 4), Topology.from_segments([2]))
    ab = a.then(b)
    assert ab.topology.segments.tolist() == [1, 2] and ab.topology.num_points == 11
    assert ab.topology.seg_index.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [7, 8, 9, 10]]


@pytest.mark.parametrize("extra, match", [
    ({"lock": [8]}, "lock names stroke 8 but the drawing has 8 strokes"),
    ({"canvas": 128}, "is 96x96 px but the canvas is 128x128"),
    ({"init": "/nonexistent/start.json"}, "cannot continue from"),
    ({"strokes": 4}, "give add"),
    ({"method": "pixels"}, "no strokes to continue"),
])
def test_bad_continuations_are_one_line_errors(extra, match, init_file):
    req = {**BASE, "prompt": "a red circle", "init": init_file, **extra}
    events = list(run_job(req))
    assert len(events) == 1 and events[0]["event"] == "error" and events[0]["kind"] == "bad_request"
    assert match in events[0]["message"] and "\n" not in events[0]["message"]


@pytest.mark.parametrize("method", ["clipdraw", "clipasso"])
def test_locked_strokes_are_drawn_where_they_are_during_the_run(method, init_file, photo, encoder):
    """What the encoder sees: the optimiser's own tensors keep the locked strokes still, step after step."""
    from synth_core.engine import optimise
    from synth_core.jobs import build_method, load_inputs

    req = parse_request(request(method, init_file, photo))
    run = build_method(req, encoder, load_inputs(req))
    start = from_drawing(formats.load(init_file))
    o = formats.load(init_file).offsets
    rows = np.concatenate([np.arange(o[i], o[i + 1]) for i in LOCK])
    first = run.strokes.points.detach().clone()
    for ev in optimise(run, 6, snapshot_every=0):
        pass
    now = run.strokes.points.detach()
    assert torch.equal(now[:, rows], start.points.expand(now.shape[0], -1, -1)[:, rows])
    assert torch.equal(run.strokes.half_widths[:, LOCK].detach(), start.half_widths.expand(now.shape[0], -1)[:, LOCK])
    assert not torch.equal(now, first)
