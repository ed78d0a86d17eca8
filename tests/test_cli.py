"""The command line: outputs on disk, render, usage errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from synth_core import formats
from synth_core.cli import main
from synth_core.drawing import Drawing


def test_draw_writes_all_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["draw", "a blue star", "--model", "builtin", "--strokes", "6", "--steps", "4", "--canvas", "64", "--no-tidy",
                 "--snapshot-every", "2", "--seed", "3", "--device", "cpu", "--quiet", "--negative", "a red circle",
                 "--out", str(out)])
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["drawing.json", "drawing.png", "drawing.svg", "process.gif", "snapshots.jsonl"]
    d = Drawing.load(out / "drawing.json")
    assert len(d) == 6 and d.meta["negative"] == ["a red circle"] and d.meta["seed"] == 3
    assert np.allclose(formats.load(out / "drawing.svg").points, d.points, atol=2e-3)
    snaps = [json.loads(line) for line in (out / "snapshots.jsonl").read_text().splitlines()]
    assert [s["step"] for s in snaps] == [0, 2, 4]
    gif = Image.open(out / "process.gif")
    assert gif.n_frames == 3
    png = np.asarray(Image.open(out / "drawing.png"))
    assert png.shape == (64, 64, 4)


def test_same_seed_same_drawing(tmp_path):
    args = ["draw", "a green line", "--model", "builtin", "--strokes", "5", "--steps", "5", "--canvas", "64",
            "--device", "cpu", "--quiet", "--no-video"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--seed", "9", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (Drawing.load(tmp_path / x / "drawing.json") for x in "abc")
    assert np.array_equal(a.points, b.points) and np.array_equal(a.rgba, b.rgba)
    assert not np.array_equal(a.points, c.points)


def test_render_json_and_svg_at_scale(tmp_path):
    assert main(["draw", "a black cross", "--model", "builtin", "--strokes", "4", "--steps", "2", "--canvas", "64",
                 "--device", "cpu", "--quiet", "--no-video", "--out", str(tmp_path)]) == 0
    for src in ("drawing.json", "drawing.svg"):
        target = tmp_path / f"{src}.png"
        assert main(["render", str(tmp_path / src), "--out", str(target), "--scale", "2"]) == 0
        assert Image.open(target).size == (128, 128)


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    for argv in (["draw", "   ", "--out", str(tmp_path)],
                 ["draw", "x", "--strokes", "0", "--out", str(tmp_path)],
                 ["draw", "x", "--steps", "-1", "--out", str(tmp_path)],
                 ["draw", "x", "--out", "/proc/forbidden/dir"],
                 ["render", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.png")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "error" in err
    with pytest.raises(SystemExit) as exit_:  # argparse itself: a required argument is missing
        main(["draw"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "error" in err and "--out" in err


def test_missing_weights_is_a_clear_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["draw", "x", "--model", "ViT-B-32:openai", "--cache-dir", str(tmp_path / "c"), "--out",
                 str(tmp_path / "o"), "--quiet", "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "ViT-B-32:openai" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "drawing.json").exists()


def test_a_ladder_and_keyed_prompts_write_one_svg_and_png_per_stage(tmp_path):
    common = ["--model", "builtin", "--steps", "6", "--canvas", "64", "--device", "cpu", "--quiet", "--no-video"]
    assert main(["draw", "a red circle", *common, "--strokes", "8", "--ladder", "8,4,2", "--level-steps", "3",
                 "--out", str(tmp_path / "ladder")]) == 0
    names = {p.name for p in (tmp_path / "ladder").iterdir()}
    assert {f"level-{i}-{n}-strokes.{ext}" for i, n in ((1, 8), (2, 4), (3, 2)) for ext in ("svg", "png")} <= names
    assert len(formats.load(tmp_path / "ladder" / "level-2-4-strokes.svg")) == 4
    assert len(Drawing.load(tmp_path / "ladder" / "drawing.json")) == 2
    assert main(["draw", *common, "--strokes", "5", "--prompt-at", "1:a red circle", "--prompt-at", "24:a blue square",
                 "--out", str(tmp_path / "keys")]) == 0
    names = {p.name for p in (tmp_path / "keys").iterdir()}
    assert {"key-1-frame-1.svg", "key-2-frame-24.svg", "key-2-frame-24.png"} <= names


def test_continuing_a_drawing_takes_its_canvas_and_keeps_locked_strokes(tmp_path):
    first = tmp_path / "first"
    assert main(["draw", "a red circle", "--model", "builtin", "--strokes", "5", "--steps", "4", "--canvas", "80",
                 "--no-tidy", "--quiet", "--no-video", "--out", str(first)]) == 0
    start = Drawing.load(first / "drawing.json")
    assert main(["draw", "a blue square", "--model", "builtin", "--steps", "4", "--init", str(first / "drawing.json"),
                 "--lock", "0-1,4", "--add", "2", "--no-tidy", "--quiet", "--no-video", "--out", str(tmp_path / "more")]) == 0
    more = Drawing.load(tmp_path / "more" / "drawing.json")
    assert (more.width, more.height) == (80, 80) and len(more) == 7
    for i in (0, 1, 4):
        assert more.stroke(i).points.tolist() == start.stroke(i).points.tolist()


@pytest.mark.parametrize("args, words", [
    (["a cat", "--prompt-at", "1:a dog"], "keyed prompts replace prompt"),
    (["a cat", "--lock", "0-2"], "lock needs init"),
    (["a cat", "--ladder", "4,x"], "stroke counts are whole numbers"),
    (["--prompt-at", "one:a dog"], "a keyed prompt is FRAME:PROMPT"),
])
def test_stage_options_that_cannot_work_exit_2_with_one_line(args, words, tmp_path, capsys):
    try:
        code = main(["draw", *args, "--model", "builtin", "--out", str(tmp_path / "x")])
    except SystemExit as e:  # refused while parsing the command line
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1
