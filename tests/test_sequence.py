"""Sketch animation: a picture sequence sketched frame by frame, coherent over time (synth_core.sequence)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synth_core import sequence
from synth_core.builtin import load_builtin_encoder
from synth_core.cli import main
from synth_core.drawing import Drawing
from synth_core.errors import BadRequest
from synth_core.events import Done, Progress, Stage, Started, WarningEvent
from synth_core.jobs import parse_request, run_events, run_job
from synth_core.lab import motion

BASE = {"method": "clipasso", "model": "builtin", "offline": True, "threads": 1, "canvas": 64, "snapshot_every": 0,
        "seeds": 1, "steps": 20}
CLI = ["--model", "builtin", "--canvas", "64", "--steps", "12", "--seeds", "1", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def encoder():
    return load_builtin_encoder("cpu")


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> list[str]:
    """Four frames of a star moving and turning, 64 px, alpha = the star's silhouette."""
    return motion.write_frames(tmp_path_factory.mktemp("shot"), "star", motion.Motion(frames=4), 64)


@pytest.fixture(scope="module")
def empty(tmp_path_factory) -> str:
    """A frame without the object: fully transparent."""
    path = tmp_path_factory.mktemp("empty") / "empty.png"
    Image.fromarray(np.zeros((64, 64, 4), np.uint8), "RGBA").save(path)
    return str(path)


def run(req: dict, encoder, stop=None) -> list:
    return list(run_events(parse_request({**BASE, **req}), stop, encoder=encoder))


def stages(events: list) -> list[Stage]:
    return [e for e in events if isinstance(e, Stage)]


def spy_warm_starts(monkeypatch) -> list[torch.Tensor]:
    """The control points every warm frame starts from, as the optimiser holds them."""
    starts: list[torch.Tensor] = []
    init = sequence.WarmFrame.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        starts.append(self.strokes.points.detach().clone())

    monkeypatch.setattr(sequence.WarmFrame, "__init__", record)
    return starts


# -- the engine ------------------------------------------------------------------------------------
def test_each_frame_starts_exactly_at_the_last_frames_strokes(shot, encoder, monkeypatch):
    starts = spy_warm_starts(monkeypatch)
    events = run({"frames": shot[:3], "frame_numbers": [10, 11, 12]}, encoder)
    got = stages(events)
    assert [s.frame for s in got] == [10, 11, 12] and [s.index for s in got] == [0, 1, 2]
    assert [s.label for s in got] == ["frame 10 (1/3)", "frame 11 (2/3)", "frame 12 (3/3)"]
    assert [s.picture.meta["start"] for s in got] == ["cold", "warm", "warm"]
    assert len(starts) == 2
    for before, start in zip(got, starts):  # same strokes, same order, bit for bit
        assert torch.equal(start[0], torch.as_tensor(before.picture.points, dtype=torch.float32))
        assert len(before.picture) == 16
    assert all(np.array_equal(s.picture.segments, got[0].picture.segments) for s in got)
    assert not np.allclose(got[1].picture.points, got[0].picture.points)  # and then they moved


def test_events_count_steps_over_the_whole_run_and_done_is_the_last_frame(shot, encoder):
    events = run({"frames": shot[:3], "steps": 15}, encoder)
    assert isinstance(events[0], Started) and events[0].steps == 3 * 15  # an upper bound
    got = stages(events)
    frame_steps = [s.picture.meta["frame_steps"] for s in got]
    assert [s.step for s in got] == list(np.cumsum(frame_steps))
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == list(range(1, sum(frame_steps) + 1))
    assert all(p.steps == 45 for p in progress)
    done = events[-1]
    assert isinstance(done, Done) and not done.cancelled and done.picture is got[-1].picture
    assert done.step == got[-1].step
    meta = got[1].picture.meta
    assert meta["image"] == shot[1] and meta["frame"] == 2 and meta["image_loss"] > 0 and meta["motion_px"] > 0
    assert "frames" not in meta and "frame_numbers" not in meta


def test_coherence_reduces_strokes_moving_relative_to_each_other(shot, encoder):
    free = stages(run({"frames": shot[:3], "coherence": 0}, encoder))
    held = stages(run({"frames": shot[:3], "coherence": 100}, encoder))  # measured: shape 0.9 px against 6 px free
    assert np.array_equal(free[0].picture.points, held[0].picture.points)  # the same cold first frame
    changed_free = np.mean([s.picture.meta["shape_px"] for s in free[1:]])
    changed_held = np.mean([s.picture.meta["shape_px"] for s in held[1:]])
    assert changed_held < 0.5 * changed_free
    for s in held[1:]:  # the evaluation that keeps the best state counts the penalty
        assert s.picture.meta["eval_loss"][0] > s.picture.meta["image_loss"]
        assert s.picture.meta["motion_px"] > 2 * s.picture.meta["shape_px"]  # it still moves with the star
    for s in free[1:]:
        assert s.picture.meta["eval_loss"][0] == pytest.approx(s.picture.meta["image_loss"], rel=1e-4)


def test_shape_change_leaves_out_the_drawings_own_motion():
    rng = np.random.default_rng(1)
    a = torch.as_tensor(rng.uniform(0, 1, (1, 12, 2)))
    turn, scale = 0.4, 1.3
    rot = torch.tensor([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]], dtype=a.dtype)
    moved = a @ rot.T * scale + torch.tensor([0.2, -0.1], dtype=a.dtype)
    assert sequence.shape_change(moved, a).abs().max() < 1e-12
    bent = moved.clone()
    bent[0, 3] += torch.tensor([0.05, 0.0], dtype=a.dtype)
    assert sequence.shape_change(bent, a).abs().max() > 0.02


def test_a_warm_frame_on_a_plateau_stops_early(shot, encoder, tmp_path):
    first = stages(run({"frames": shot[:1], "steps": 30}, encoder))[0].picture
    first.save(tmp_path / "first.json")
    again = stages(run({"frames": shot[:1], "steps": 300, "init": str(tmp_path / "first.json")}, encoder))[0]
    assert again.picture.meta["start"] == "warm"
    k, _ = sequence.PLATEAU_WARM
    assert (k + 1) * 10 <= again.picture.meta["frame_steps"] < 120  # of 300 allowed


def test_an_empty_frame_keeps_the_previous_drawing_and_says_so(shot, empty, encoder, monkeypatch):
    starts = spy_warm_starts(monkeypatch)
    events = run({"frames": [shot[0], empty, shot[1]]}, encoder)
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and "frame 2/3" in warnings[0] and "nothing of the object in view" in warnings[0]
    assert "kept the previous drawing" in warnings[0]
    one, two, three = stages(events)
    assert np.array_equal(two.picture.points, one.picture.points) and two.picture.meta["start"] == "kept"
    assert two.picture.meta["frame_steps"] == 0 and two.picture.meta["image"] == empty
    assert three.picture.meta["start"] == "warm"
    assert torch.equal(starts[0][0], torch.as_tensor(one.picture.points, dtype=torch.float32))


def test_a_sequence_that_starts_empty_has_no_strokes_until_the_object_comes(shot, empty, encoder):
    events = run({"frames": [empty, shot[0]]}, encoder)
    warnings = [e.message for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and "no strokes yet" in warnings[0]
    one, two = stages(events)
    assert len(one.picture) == 0 and len(two.picture) == 16 and two.picture.meta["start"] == "cold"


def test_cancelling_keeps_every_finished_frame(shot, encoder):
    calls = []
    stop = lambda: len(calls.append(1) or calls) > 25  # noqa: E731  (during the second frame)
    events = run({"frames": shot[:3], "steps": 20}, encoder, stop)
    got = stages(events)
    done = events[-1]
    assert len(got) == 1 and isinstance(done, Done) and done.cancelled
    assert got[0].picture.meta["frame_steps"] <= 20 and done.step > got[0].step


def test_independent_cold_frames_start_from_saliency_every_time(shot, encoder, monkeypatch):
    starts = spy_warm_starts(monkeypatch)
    got = stages(run({"frames": shot[:2], "warm": False}, encoder))
    assert starts == [] and [s.picture.meta["start"] for s in got] == ["cold", "cold"]
    assert got[1].picture.meta["coherence"] == 0 and got[1].picture.meta["motion_px"] is None


def test_boil_is_deterministic_per_frame_and_comes_off_again():
    rng = np.random.default_rng(0)
    d = Drawing(64, 64, rng.uniform(5, 60, (8, 2)), [1, 1], [3.0, 3.0], [[0, 0, 0, 1]] * 2, meta={"frame": 7})
    a, b, c = sequence.boil(d, 0.8, 7), sequence.boil(d, 0.8, 7), sequence.boil(d, 0.8, 8)
    assert np.array_equal(a.points, b.points) and not np.array_equal(a.points, c.points)
    shift = np.abs(a.points - d.points)
    assert 0 < shift.max() <= 0.8 and a.meta["boil"] == 0.8
    assert np.allclose(sequence.unboil(a).points, d.points, atol=1e-12) and "boil" not in sequence.unboil(a).meta
    assert sequence.boil(d, 0, 7) is d and sequence.unboil(d) is d


def test_a_boiled_sequence_still_starts_each_frame_from_the_clean_strokes(shot, encoder, monkeypatch):
    starts = spy_warm_starts(monkeypatch)
    one, two = stages(run({"frames": shot[:2], "boil": 0.6}, encoder))
    assert one.picture.meta["boil"] == 0.6
    clean = sequence.unboil(one.picture).points
    assert not np.allclose(one.picture.points, clean)
    assert np.allclose(starts[0][0].numpy(), clean, atol=1e-5)


@pytest.mark.parametrize("req, match", [
    ({"frames": []}, "frames is empty"),
    ({"frames": "a.png"}, "must be a list"),
    ({"frames": [""]}, "frame 1 of frames is missing"),
    ({"method": "clipdraw", "prompt": "x", "frames": ["a.png"]}, "give method clipasso"),
    ({"frames": ["a.png"], "image": "b.png"}, "not both"),
    ({"frames": ["a.png", "b.png"], "frame_numbers": [3, 2]}, "must increase"),
    ({"frames": ["a.png", "b.png"], "frame_numbers": [4, 4]}, "must increase"),
    ({"frames": ["a.png", "b.png", "c.png"], "frame_numbers": [1, 2]}, "2 numbers for 3 frames"),
    ({"frames": ["a.png"], "canvas": [64, 96]}, "square canvas"),
    ({"frames": ["a.png"], "coherence": -1}, "coherence must be a number"),
    ({"frames": ["a.png"], "coherence": float("nan")}, "coherence must be a number"),
    ({"image": "a.png", "coherence": 1}, "coherence is for a picture sequence"),
    ({"image": "a.png", "frame_numbers": [1]}, "frame_numbers is for a picture sequence"),
    ({"frames": ["a.png"], "boil": "x"}, "boil must be a number"),
    ({"frames": ["a.png"], "warm": "yes"}, "warm must be true or false"),
    ({"frames": ["a.png"], "warm": False, "coherence": 2}, "coherence needs warm frames"),
    ({"frames": ["a.png"], "warm": False, "init": "d.json"}, "with warm false leave it out"),
    ({"frames": ["a.png"], "ladder": [16, 8]}, "leave ladder out"),
    ({"frames": ["a.png"], "tidy": True}, "leave tidy out"),
])
def test_bad_sequence_requests_are_refused_in_one_line(req, match):
    with pytest.raises(BadRequest, match=match) as e:
        parse_request({**BASE, **req})
    assert "\n" not in str(e.value)


def test_a_missing_frame_is_refused_before_any_work(shot, tmp_path):
    events = list(run_job({**BASE, "frames": [shot[0], str(tmp_path / "gone.png")]}))
    assert [e["event"] for e in events] == ["error"] and events[0]["kind"] == "bad_request"
    assert "frame 2" in events[0]["message"]


def test_the_wire_carries_one_stage_per_frame_with_its_scene_frame(shot):
    events = list(run_job({**BASE, "frames": shot[:2], "frame_numbers": [48, 49], "steps": 10, "snapshot_every": 5}))
    previews = [e for e in events if e["event"] == "snapshot"]  # a live preview of the frame being sketched
    assert previews and {e["frame"] for e in previews} == {48, 49}
    assert [e["frame"] for e in previews] == sorted(e["frame"] for e in previews)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "started" and kinds[-1] == "done" and kinds.count("stage") == 2 and "error" not in kinds
    got = [e for e in events if e["event"] == "stage"]
    assert [(e["index"], e["stages"], e["frame"], e["label"]) for e in got] == [
        (0, 2, 48, "frame 48 (1/2)"), (1, 2, 49, "frame 49 (2/2)")]
    assert all(len(e["drawing"]["strokes"]) == 16 and e["drawing"]["meta"]["frame"] == e["frame"] for e in got)
    assert events[-1]["drawing"] == got[-1]["drawing"]


def test_a_request_round_trips_and_keeps_its_sequence(shot):
    req = parse_request({**BASE, "frames": shot[:2], "boil": 0.5})
    assert parse_request(req.to_dict()) == req
    assert req.frame_numbers == (1, 2) and req.total_steps == 40 and req.coherence_or_default > 0
    assert not req.tidy_or_default and req.image is None


# -- the command line --------------------------------------------------------------------------------
def record_events(monkeypatch) -> list:
    """Every run the CLI makes: (request, events)."""
    from synth_core import jobs

    runs: list = []
    real = jobs.run_events

    def spy(req, stop=None, encoder=None):
        runs.append((req, []))
        for ev in real(req, stop, encoder=encoder):
            runs[-1][1].append(ev)
            yield ev

    monkeypatch.setattr(jobs, "run_events", spy)
    return runs


def named_shot(folder, shot: list[str], names: list[str]) -> None:
    folder.mkdir()
    for src, name in zip(shot, names):
        (folder / name).write_bytes(Path(src).read_bytes())


def test_cli_writes_every_frame_and_a_resumed_run_does_no_work_for_finished_ones(tmp_path, shot, monkeypatch, capsys):
    named_shot(tmp_path / "in", shot[:3], ["s1.png", "s2.png", "s10.png"])  # natural order: 1, 2, 10
    out = tmp_path / "out"
    argv = ["sketch-frames", str(tmp_path / "in" / "*.png"), "--out", str(out), "--frames-from", "101", *CLI]
    assert main(argv) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["animation.gif"] + [f"frame-{n:04d}.{x}" for n in (101, 102, 103) for x in ("json", "png", "svg")]
    assert [Drawing.load(out / f"frame-{n:04d}.json").meta["image"].rsplit("/", 1)[1] for n in (101, 102, 103)] == [
        "s1.png", "s2.png", "s10.png"]
    assert Image.open(out / "animation.gif").n_frames == 3
    kept = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("frame-010[12].*")}
    (out / "frame-0103.json").unlink()  # as if the run had stopped during the last frame
    runs = record_events(monkeypatch)
    assert main(argv) == 0
    (req, events), = runs
    assert req.frames == (str(tmp_path / "in" / "s10.png"),) and req.init == str(out / "frame-0102.json")
    assert [s.frame for s in stages(events)] == [103]
    assert Drawing.load(out / "frame-0103.json").meta["start"] == "warm"
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("frame-010[12].*")} == kept
    runs.clear()
    assert main(argv) == 0 and runs == []  # all done: no model, no steps
    assert "nothing to do" in capsys.readouterr().err


def test_cli_chunks_start_warm_from_the_previous_chunk_when_it_is_done(tmp_path, shot, monkeypatch):
    out = tmp_path / "out"
    argv = ["sketch-frames", *shot, "--out", str(out), *CLI]
    runs = record_events(monkeypatch)
    assert main([*argv, "--chunk", "2/2"]) == 0  # the first part is not done: cold
    assert runs[0][0].frames == tuple(shot[2:]) and runs[0][0].init is None
    assert not (out / "frame-0001.json").exists()
    assert Drawing.load(out / "frame-0003.json").meta["start"] == "cold"
    assert main([*argv, "--chunk", "1/2"]) == 0
    assert runs[1][0].frames == tuple(shot[:2])
    for n in (3, 4):
        (out / f"frame-{n:04d}.json").unlink()
    assert main([*argv, "--chunk", "2/2"]) == 0  # now the first part is there: warm from its last frame
    assert runs[2][0].init == str(out / "frame-0002.json")
    assert Drawing.load(out / "frame-0003.json").meta["start"] == "warm"
    assert Image.open(out / "animation.gif").n_frames == 4


def test_cli_ctrl_c_keeps_the_finished_frames_and_the_gif(tmp_path, shot, monkeypatch):
    from synth_core import jobs

    real = jobs.run_events

    def interrupt_after_first_frame(req, stop=None, encoder=None):
        for ev in real(req, stop, encoder=encoder):
            yield ev
            if isinstance(ev, Stage):
                os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(jobs, "run_events", interrupt_after_first_frame)
    out = tmp_path / "out"
    assert main(["sketch-frames", *shot[:3], "--out", str(out), *CLI]) == 130
    assert (out / "frame-0001.json").exists() and not (out / "frame-0002.json").exists()
    assert Image.open(out / "animation.gif").n_frames == 1


@pytest.mark.parametrize("args, words", [
    (["{tmp}/nothing-*.png"], "no file matches"),
    (["{shot0}", "--chunk", "3/2"], "I/N"),
    (["{shot0}", "--chunk", "x"], "I/N"),
    (["{shot0}", "--cold", "--coherence", "2"], "leave out --cold"),
    (["{shot0}", "--canvas", "10"], "canvas must be between"),
    (["{shot0}", "--coherence", "-1"], "coherence must be"),
    (["{shot0}", "--boil", "inf"], "boil must be"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, words, tmp_path, shot, capsys):
    argv = [a.format(tmp=tmp_path, shot0=shot[0]) for a in args]
    try:
        code = main(["sketch-frames", "--out", str(tmp_path / "out"), *CLI, *argv])  # argv's options win
    except SystemExit as e:  # argparse's own refusals
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err


def test_cli_refuses_to_overwrite_its_input_or_change_the_stroke_count(tmp_path, shot, capsys):
    named_shot(tmp_path / "in", shot[:1], ["frame-0001.png"])
    assert main(["sketch-frames", str(tmp_path / "in" / "frame-0001.png"), "--out", str(tmp_path / "in"), *CLI]) == 2
    assert "own input" in capsys.readouterr().err
    out = tmp_path / "out"
    out.mkdir()
    Drawing(64, 64, np.zeros((8, 2)), [1, 1], [3.0, 3.0], [[0, 0, 0, 1]] * 2).save(out / "frame-0001.json")
    assert main(["sketch-frames", *shot[:2], "--out", str(out), *CLI, "--strokes", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2 strokes but --strokes is 8" in err
