"""Bad input at every entry point: one clear line, exit code 2, no traceback, nothing lost, no hang.

Generated cases for the CLI (draw / style / sketch), the worker's stdin and scripts/render.py's
arguments. The CLI and the worker run in-process (their ``main`` with captured streams); render.py's
argument checks (``parse``) too, as they run before Blender starts. A handful of subprocesses check
what only a real process shows: exit codes through ``__main__``, signals, bytes on stdin, the exit
delay after the last event.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from synth_core import cli, worker
from synth_core.errors import BadRequest
from synth_core.request import KEYS, parse_request

ROOT = Path(__file__).resolve().parents[1]
HANG_S = 120  # generous: a case that takes longer is a hang, not a slow machine
SENTINEL = "the user's own file: must survive\n"


# -- helpers ----------------------------------------------------------------------------------
def sentinel_dir(path: Path) -> dict[Path, str]:
    """A folder holding files a run would write (and one it would not), to prove nothing is destroyed."""
    path.mkdir(parents=True, exist_ok=True)
    files = {path / name: SENTINEL + name for name in ("drawing.json", "drawing.png", "notes.txt")}
    for f, text in files.items():
        f.write_text(text)
    return files


def assert_kept(files: dict[Path, str]) -> None:
    for f, text in files.items():
        assert f.read_text() == text, f"{f} was changed"


def assert_one_clear_line(err: str) -> None:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "error" in lines[0].lower(), err


def call_cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:  # argparse's own usage errors
            code = e.code
    assert time.monotonic() - t0 < HANG_S
    return code, err.getvalue()


def call_worker(data: str | bytes) -> tuple[int, list[dict], str]:
    """The worker's main on ``data`` as stdin (bytes go through a binary buffer, as a real pipe)."""
    stdin = io.TextIOWrapper(io.BytesIO(data)) if isinstance(data, bytes) else io.StringIO(data)
    out, err = io.StringIO(), io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stderr(err):
        code = worker.main(stdin=stdin, stdout=out)
        for thread in threading.enumerate():  # what it says about the lines after the request
            if thread.name == "stdin-watch":
                thread.join(timeout=10)
    assert time.monotonic() - t0 < HANG_S
    events = [json.loads(line) for line in out.getvalue().splitlines()]  # every stdout line is JSON
    return code, events, err.getvalue()


def assert_bad_request(code: int, events: list[dict], err: str) -> None:
    assert code == 2, (code, events, err)
    assert len(events) == 1 and events[0]["event"] == "error" and events[0]["kind"] == "bad_request", events
    message = events[0]["message"]
    assert message and "\n" not in message and len(message) < 600, message
    assert "Traceback" not in err, err


# -- the CLI ----------------------------------------------------------------------------------
TEXT_FILE = "not-an-image.png"  # made by the fixture: a file that is not an image


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / TEXT_FILE).write_text("hello\n")
    (tmp_path / "a-folder").mkdir()
    return tmp_path


BAD_NUMBERS = ["0", "-1", "abc", "1e3", "1.5", "", "99999999999999999999999999", "nan"]
RUN_OPTIONS = {  # option: values that must be refused (each one a case, for each sub-command below)
    "--strokes": BAD_NUMBERS + ["10001"],
    "--steps": BAD_NUMBERS + ["100001"],
    "--seed": ["-1", "abc", "4611686018427387905"],
    "--canvas": ["0", "15", "4097", "abc", "-224"],
    "--augmentations": ["-1", "65", "x"],
    "--snapshot-every": ["-1", "x", "100001"],
    "--model": ["", "   ", "nonexistent", ":", "ViT-B-32:", ":openai", "builtin\x01"],
    "--device": ["quantum", "cuda:banana", ""],
    "--scale": ["0", "-1", "nan", "inf", "x"],
}
COMMANDS = {
    "draw": ["draw", "a red circle"],
    "style": ["style", "a red circle", "--style", TEXT_FILE],  # the style image is never reached
    "sketch": ["sketch", TEXT_FILE],
}
CLI_CASES = [(cmd, opt, value) for cmd in COMMANDS for opt, values in RUN_OPTIONS.items() for value in values
             if not (cmd != "draw" and opt == "--model" and value in ("", "nonexistent"))]  # fewer repeats


@pytest.mark.parametrize("command, option, value", CLI_CASES)
def test_cli_refuses_a_bad_option_value_in_one_line(workdir, command, option, value):
    out = workdir / "out"
    kept = sentinel_dir(out)
    code, err = call_cli([*COMMANDS[command], option, value, "--quiet", "--out", str(out)])
    assert code == 2, err
    assert_one_clear_line(err)
    assert_kept(kept)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in kept)


CLI_SPECIAL = [
    (["draw"], "the following arguments are required"),
    (["draw", "x"], "--out"),
    (["draw", "   ", "--out", "o"], "prompt is empty"),
    (["draw", "x" * 10_001, "--out", "o"], "at most 10000"),
    (["draw", "a \udcff circle", "--out", "o"], "not valid text"),  # undecodable bytes in argv
    (["draw", "x", "--negative", "", "--out", "o"], "negative prompt 1 is empty"),
    (["draw", "x", "--negative", "a", "--negative", " ", "--out", "o"], "negative prompt 2 is empty"),
    (["draw", "x", "--method", "bogus", "--out", "o"], "invalid choice"),
    (["draw", "x", "--bogus", "--out", "o"], "unrecognized arguments"),
    (["draw", "x", "--out", "/proc/forbidden/dir"], "cannot write"),
    (["draw", "x", "--out", TEXT_FILE], "cannot write"),
    (["style", "x", "--out", "o"], "--style"),
    (["style", "x", "--style", "missing.png", "--model", "builtin", "--out", "o"], "does not exist"),
    (["style", "x", "--style", "a-folder", "--model", "builtin", "--out", "o"], "directory"),
    (["style", "x", "--style", "/dev/zero", "--model", "builtin", "--out", "o"], "device"),
    (["style", "x", "--style", TEXT_FILE, "--model", "builtin", "--out", "o"], "not a readable image"),
    (["style", "x", "--style", TEXT_FILE, "--strength", "-1", "--out", "o"], "style_strength"),
    (["style", "x", "--style", TEXT_FILE, "--strength", "101", "--out", "o"], "style_strength"),
    (["style", "x", "--style", TEXT_FILE, "--strength", "nan", "--out", "o"], "style_strength"),
    (["style", "x", "--style", TEXT_FILE, "--style-weights", "", "--out", "o"], "style_weights is empty"),
    (["style", "", "--style", TEXT_FILE, "--out", "o"], "prompt is empty"),
    (["sketch", "--out", "o"], "the following arguments are required"),
    (["sketch", "missing.png", "--model", "builtin", "--out", "o"], "does not exist"),
    (["sketch", "a-folder", "--model", "builtin", "--out", "o"], "directory"),
    (["sketch", TEXT_FILE, "--model", "builtin", "--out", "o"], "not a readable image"),
    (["sketch", TEXT_FILE, "--seeds", "0", "--out", "o"], "seeds"),
    (["sketch", TEXT_FILE, "--seeds", "17", "--out", "o"], "seeds"),
    (["render"], "the following arguments are required"),
    (["bogus-command"], "invalid choice"),
    ([], "the following arguments are required"),
]


@pytest.mark.parametrize("argv, words", CLI_SPECIAL, ids=[" ".join(a)[:60] for a, _ in CLI_SPECIAL])
def test_cli_refuses_bad_arguments_and_files_in_one_line(workdir, argv, words):
    code, err = call_cli(argv)
    assert code == 2, err
    assert_one_clear_line(err)
    if words:
        assert words in err, err
    assert not (workdir / "o" / "drawing.json").exists()


def test_cli_valid_run_still_works_and_replaces_only_its_own_files(workdir):
    out = workdir / "out"
    kept = sentinel_dir(out)
    code, err = call_cli(["draw", "a red circle", "--model", "builtin", "--strokes", "2", "--steps", "1",
                          "--canvas", "16", "--device", "cpu", "--quiet", "--no-video", "--out", str(out)])
    assert code == 0, err
    assert "Traceback" not in err
    assert json.loads((out / "drawing.json").read_text())["format"] == "drawing"
    assert (out / "notes.txt").read_text() == kept[out / "notes.txt"]  # not one of the run's files


def test_cli_rescues_the_results_when_the_output_folder_fails_at_the_end(workdir, monkeypatch):
    """Checked writable at the start, full or gone after an hour of work: the results go elsewhere."""
    from synth_core import outputs

    finish = outputs.RunRecorder.finish
    out = workdir / "out"

    def failing_finish(self, picture, scale=1.0):
        if self.out_dir == out:
            raise OSError(28, "No space left on device")
        return finish(self, picture, scale)

    monkeypatch.setattr(outputs.RunRecorder, "finish", failing_finish)
    code, err = call_cli(["draw", "a red circle", "--model", "builtin", "--strokes", "2", "--steps", "1",
                          "--canvas", "16", "--device", "cpu", "--quiet", "--no-video", "--out", str(out)])
    assert code == 1
    line = [ln for ln in err.splitlines() if "error" in ln]
    assert len(line) == 1 and "No space left on device" in line[0] and "Traceback" not in err
    rescued = Path(line[0].rsplit("they are in ", 1)[1].strip())
    try:
        assert json.loads((rescued / "drawing.json").read_text())["format"] == "drawing"
    finally:
        shutil.rmtree(rescued, ignore_errors=True)


# -- the worker -------------------------------------------------------------------------------
GOOD = {"prompt": "a red circle", "model": "builtin", "strokes": 2, "steps": 1, "canvas": 16, "device": "cpu",
        "snapshot_every": 0}
WRONG_VALUES = [None, True, False, "", "x", 1.5, -1, 0, 10**30, -(10**30), [], [1, 2, 3], {}, {"a": 1}, "\x00"]


def _refused(request: dict) -> bool:
    try:
        parse_request(request)
    except BadRequest:
        return True
    return False


METHOD_OF = {"image": "clipasso", "style_image": "styleclipdraw"}  # keys read only by one method


def _bad_request(key: str, value) -> dict:
    return {**GOOD, "method": METHOD_OF.get(key, "clipdraw"), key: value}


TYPE_CASES = [(key, value) for key in sorted(KEYS) for value in WRONG_VALUES if _refused(_bad_request(key, value))]


@pytest.mark.parametrize("key, value", TYPE_CASES, ids=[f"{k}={v!r}"[:40] for k, v in TYPE_CASES])
def test_worker_refuses_a_wrong_value_for_each_request_key(key, value):
    assert_bad_request(*call_worker(json.dumps(_bad_request(key, value)) + "\n"))


def test_the_type_cases_cover_every_key():
    assert {k for k, _ in TYPE_CASES} == set(KEYS)


NESTED = "[" * 100_000
LINES = [
    "", "\n", "   \n", "not json\n", "{\n", "}\n", '{"prompt": "x",}\n', "'single'\n", "[1, 2\n", "42\n", "null\n",
    "true\n", '"a string"\n', "[]\n", '[{"prompt": "x"}]\n', NESTED + "\n", "{" * 50_000 + "\n",
    '{"prompt": ' * 5_000 + "\n", "NaN\n", "Infinity\n", '{"prompt": "x", "steps": NaN}\n',
    '{"prompt": "x", "steps": Infinity}\n', '{"prompt": "x", "steps": -Infinity}\n',
    '{"prompt": "x", "style_strength": NaN, "method": "styleclipdraw", "style_image": "s.png"}\n',
    '{"prompt": "x", "steps": 1' + "0" * 5_000 + "}\n", '{"prompt": "x", "seed": 1e999}\n',
    '{"prompt": "x", "canvas": [1e308, 1e308]}\n', '{"prompt": "\\udcff"}\n', '{"prompt": "\\u0000"}\n',
    "\ufeff" + json.dumps(GOOD) + "\n", '{"prompt": "' + "x" * (1 << 20) + '"}\n', '{"cancel": true}\n',
    '{"cancel": false}\n', '{"prompt": "x", "strokes_count": 3}\n', '{"prompt": "x", "protocol": 1}\n',
    '{"prompt": "x", "protocol": "2"}\n', '{"prompt": "x", "method": "CLIPDraw"}\n', '{"prompt": null}\n',
    '{"method": "clipasso"}\n', '{"method": "styleclipdraw", "prompt": "x"}\n', '{"prompt": "x", "canvas": [16]}\n',
    '{"prompt": "x", "canvas": [64, 32], "method": "clipasso", "image": "a.png"}\n',
    '{"prompt": "x", "negative": [""]}\n', '{"prompt": "x", "negative": [1]}\n', '{"prompt": "x", "negative": {}}\n',
    '{"prompt": "x", "model": "nonexistent"}\n', '{"prompt": "x", "model": "builtin", "device": "quantum"}\n',
    '{"prompt": "x", "model": "builtin", "method": "clipasso", "image": "/no/such.png"}\n',
    '{"prompt": "x", "model": "builtin", "method": "styleclipdraw", "style_image": "/dev/zero"}\n',
]
BYTES = [
    b"\xff\xfe\n", b'{"prompt": "a \xff circle"}\n', b'{"prompt": "caf\xe9"}\n', b"\x00\x00\x00\n",
    b'{"prompt": "x"}' + b"\xc3", b"\xef\xbb\xbf\xff\n", b"\x80" * 1000 + b"\n",
]


@pytest.mark.parametrize("line", LINES, ids=[repr(x[:30]) for x in LINES])
def test_worker_refuses_a_malformed_first_line_with_one_error_event(line):
    assert_bad_request(*call_worker(line))


@pytest.mark.parametrize("data", BYTES, ids=[repr(x[:20]) for x in BYTES])
def test_worker_refuses_bytes_that_are_not_utf8(data):
    assert_bad_request(*call_worker(data))


def test_worker_runs_the_first_request_and_names_the_second_on_stderr():
    lines = json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "prompt": "another"}) + "\n" + "\xff garbage\n"
    code, events, err = call_worker(lines)
    assert code == 0 and events[-1]["event"] == "done", events
    assert "a second request" in err and "Traceback" not in err


def test_worker_ignores_unreadable_control_lines_and_still_finishes():
    code, events, err = call_worker(json.dumps(GOOD).encode() + b"\n\xff\xfe\n[[[[\n")
    assert code == 0 and events[-1]["event"] == "done", events
    assert err.count("ignoring an unreadable control line") == 2 and "Traceback" not in err


# -- scripts/render.py ------------------------------------------------------------------------
def _render_script():
    spec = importlib.util.spec_from_file_location("render_script", ROOT / "scripts" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_script = _render_script()


@pytest.fixture
def blend_dir(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pic.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # parse() only checks that inputs exist
    (tmp_path / "corrupt.blend").write_text("not a blend file\n")
    (tmp_path / "real.blend").write_bytes(b"BLENDER-v405" + bytes(100))
    (tmp_path / "folder.blend").mkdir()
    (tmp_path / "frames").write_text("a file where a folder should be\n")
    (tmp_path / "out.blend").write_text(SENTINEL)
    lines = [{"points": [[10, 10 + 20 * i], [20, 10], [30, 10], [40, 10 + 5 * i]], "width": 2, "rgba": [0, 0, 0, 1]}
             for i in range(3)]
    (tmp_path / "start.json").write_text(json.dumps({"format": "drawing", "version": 1, "strokes": lines,
                                                     "canvas": {"width": 96, "height": 96}}))
    return tmp_path


BASE = ["--prompt", "a red circle", "--model", "builtin", "--out", "out.blend"]
RENDER_CASES = [
    (["--open", "corrupt.blend"], "not a .blend file"),
    (["--open", "missing.blend"], "does not exist"),
    (["--open", "folder.blend"], "directory"),
    (["--open", "/dev/zero"], "device"),
    (["--out", "/proc/x.blend"], "--out"),
    (["--out", "folder.blend"], "a folder"),
    (["--out", "pic.png/x.blend"], "--out"),
    (["--out", "x.png"], "must name a .blend"),
    (["--drawing", "/proc/d.json"], "--drawing"),
    (["--drawing", "folder.blend"], "a folder"),
    (["--render", "/proc/r.png"], "--render"),
    (["--render", "r.jpg"], "must name a .png"),
    (["--method", "styleclipdraw", "--style", "pic.png", "--render", "pic.png"], "would overwrite"),
    (["--drawing", "pic.png", "--method", "styleclipdraw", "--style", "pic.png"], "would overwrite"),
    (["--animation", "/proc/frames"], "--animation"),
    (["--animation", "frames"], "not a folder"),
    (["--drawing", "out.blend"], "same file"),
    (["--render", "same.png", "--drawing", "same.png"], "same file"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "inf"], "--scale"),
    (["--scale", "0"], "--scale"),
    (["--scale", "-2"], "--scale"),
    (["--scale", "0.01"], "--scale"),
    (["--scale", "1000"], "--scale"),
    (["--model", "nonexistent"], "no pretrained tag"),
    (["--model", ""], "--model is empty"),
    (["--model", ":"], "NAME:TAG"),
    (["--model", "ViT-B-32:"], "NAME:TAG"),
    (["--model", "ViT-B-32:/no/such.pt"], "not a file"),
    (["--model", "."], "not a file"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "9999999999"], "--seed"),
    (["--seed", "x"], "invalid int"),
    (["--strokes", "0"], "--strokes"),
    (["--steps", "100001"], "--steps"),
    (["--canvas", "15"], "--canvas"),
    (["--canvas", "16", "16", "16"], "--canvas"),
    (["--samples", "0"], "--samples"),
    (["--start-frame", "-1"], "--start-frame"),
    (["--start-frame", "1048574", "--steps", "20"], "--start-frame"),
    (["--frames-per-snapshot", "100000", "--steps", "1000"], "--start-frame"),
    (["--threads", "-1"], "--threads"),
    (["--python", "pic.png"], "--python"),
    (["--python", "/no/such/python"], "--python"),
    (["--negative", ""], "negative prompt 1 is empty"),
    (["--prompt", "x" * 10_001], "at most 10000"),
    (["--prompt", "a \udcff circle"], "not valid text"),
    (["--cache-dir", "pic.png"], "--cache-dir"),
    (["--device", "quantum"], "invalid choice"),
    (["--engine", "povray"], "invalid choice"),
    (["--method", "styleclipdraw", "--style", "pic.png", "--style-weights", "missing.pth"], "--style-weights"),
    (["--method", "styleclipdraw", "--style", "pic.png", "--style-weights", ""], "style_weights"),
    # drawing with the artist: continuing a drawing, ladders, keyed prompts
    (["--lock", "0"], "--lock needs --init"),
    (["--add", "2"], "--add needs --init or --init-active"),
    (["--keep", "locked"], "--keep needs --init-active"),
    (["--init-active"], "--init-active needs --open"),
    (["--init", "start.json", "--init-active"], "give one"),
    (["--init", "missing.json"], "does not exist"),
    (["--init", "pic.png"], "cannot read --init"),
    (["--init", "start.json", "--strokes", "4"], "--strokes is for a new drawing"),
    (["--init", "start.json", "--add", "-1"], "--add must be between 0"),
    (["--init", "start.json", "--lock", "0-9"], "--lock names stroke 9 but the --init drawing has 3 strokes"),
    (["--init", "start.json", "--lock", "a-b"], "--lock: stroke indices are numbers and ranges"),
    (["--init", "start.json", "--lock", "0-2"], "nothing to draw"),
    (["--init", "start.json", "--canvas", "64"], "not the --init drawing's 96x96"),
    (["--init", "start.json", "--drawing", "start.json"], "would overwrite the --init file"),
    (["--ladder", "8,x"], "--ladder: stroke counts are whole numbers"),
    (["--ladder", "8,16"], "must go down"),
    (["--ladder", "8"], "2 to 16 stroke counts"),
    (["--ladder", "8,4", "--strokes", "16"], "leave --strokes out"),
    (["--init", "start.json", "--add", "1", "--ladder", "8,4"], "start the ladder at 4"),
    (["--prompt-at", "1:a cat"], "--prompt-at replaces --prompt"),
]


@pytest.mark.parametrize("extra, words", RENDER_CASES, ids=[" ".join(e)[:50] for e, _ in RENDER_CASES])
def test_render_script_refuses_bad_arguments_before_blender_starts(blend_dir, capsys, extra, words):
    before = sorted(p.name for p in blend_dir.iterdir())
    with pytest.raises(SystemExit) as exc:
        render_script.parse([*BASE, *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert_one_clear_line(err)
    assert words in err, err
    assert (blend_dir / "out.blend").read_text() == SENTINEL
    assert sorted(p.name for p in blend_dir.iterdir()) == before  # no probe file left behind


KEYED_CASES = [
    (["--prompt-at", "x:a cat"], "--prompt-at: a keyed prompt is FRAME:PROMPT"),
    (["--prompt-at", "a cat"], "--prompt-at: a keyed prompt is FRAME:PROMPT"),
    (["--prompt-at", "-1:a cat"], "frames must be between 0"),
    (["--prompt-at", "3: "], "the prompt keyed on frame 3 is empty"),
    (["--prompt-at", "3:a", "--prompt-at", "3:b"], "two prompts on frame 3"),
    (["--prompt-at", "3:a", "--ladder", "8,4"], "cannot be combined"),
    (["--method", "clipasso", "--image", "pic.png", "--prompt-at", "3:a"], "it takes no --prompt, --prompt-at"),
]


@pytest.mark.parametrize("extra, words", KEYED_CASES, ids=[" ".join(e)[:50] for e, _ in KEYED_CASES])
def test_render_script_refuses_bad_keyed_prompts(blend_dir, capsys, extra, words):
    with pytest.raises(SystemExit) as exc:
        render_script.parse(["--model", "builtin", "--out", "out.blend", *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert_one_clear_line(err)
    assert words in err, err


def test_render_script_reads_the_stage_options(blend_dir):
    args = render_script.parse(["--model", "builtin", "--out", "o.blend", "--prompt-at", "9:b", "--prompt-at", "2:a"])
    assert args.keys == [(2, "a"), (9, "b")]
    assert render_script.engine_request(args)["keyed_prompts"] == [[2, "a"], [9, "b"]]
    args = render_script.parse([*BASE, "--init", "start.json", "--lock", "0-1", "--add", "2", "--ladder", "5,3"])
    assert (args.canvas, args.lock_list, args.ladder_list) == ([96, 96], [0, 1], [5, 3])
    req = render_script.engine_request(args)
    assert (req["init"], req["lock"], req["add"], req["ladder"]) == ("start.json", [0, 1], 2, [5, 3])
    assert "strokes" not in req
    assert render_script.parse([*BASE, "--ladder", "8,4"]).strokes == 8


@pytest.mark.parametrize("extra", [[], ["--open", "real.blend"], ["--out", "new/deeper/x.blend"],
                                   ["--drawing", "d.json", "--render", "r.png", "--animation", "new-frames"],
                                   ["--model", "ViT-B-32:openai"], ["--scale", "2.5"], ["--out", "real.blend",
                                                                                         "--open", "real.blend"]])
def test_render_script_accepts_good_arguments(blend_dir, extra):
    args = render_script.parse([*BASE, *extra])
    assert args.out.endswith(".blend") and math.isfinite(args.scale)
    assert not (blend_dir / "new").exists()  # checking a place does not create it


# -- real processes: exit codes through __main__, signals, bytes, the exit delay ---------------
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PYTHONIOENCODING": "utf-8"}


def wait_until_catching_sigterm(pid: int) -> None:
    """Until the process has installed its own signal handlers (Linux: SigCgt in /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        time.sleep(2.0)
        return
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        caught = [ln.split()[1] for ln in status.read_text().splitlines() if ln.startswith("SigCgt:")]
        if caught and int(caught[0], 16) >> (signal.SIGTERM - 1) & 1:
            return
        time.sleep(0.02)
    raise AssertionError("the process never installed its signal handlers")


def _worker_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synth_core.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=_env())


@pytest.mark.parametrize("data", [b"[" * 100_000 + b"\n", b'{"prompt": "a \xff"}\n', b"", b'{"cancel": true}\n'])
def test_worker_process_exits_2_with_one_error_event(data):
    p = _worker_process()
    out, err = p.communicate(data, timeout=HANG_S)
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert p.returncode == 2 and [e["event"] for e in events] == ["error"], (out, err)
    assert b"Traceback" not in err


def test_worker_process_sigterm_before_a_request_exits_143_with_one_event():
    p = _worker_process()
    wait_until_catching_sigterm(p.pid)  # then it waits for its request line
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=HANG_S)
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert p.returncode == 143 and len(events) == 1 and events[0]["event"] == "error", (out, err)
    assert "SIGTERM" in events[0]["message"] and b"Traceback" not in err


def test_worker_process_exits_promptly_after_done():
    p = _worker_process()
    p.stdin.write((json.dumps(GOOD) + "\n").encode())
    p.stdin.flush()  # stdin stays open, as Blender keeps it
    for line in p.stdout:
        if json.loads(line)["event"] in ("done", "error"):
            break
    t0 = time.monotonic()
    p.wait(timeout=HANG_S)
    assert time.monotonic() - t0 < 8, "the worker lingered after its last event"  # was 2-17 s
    assert p.returncode == 0


def _cli_process(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "synth_core", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env())


def test_cli_process_usage_error_is_one_line_exit_2(tmp_path):
    p = _cli_process("draw", "x", "--model", "", "--out", str(tmp_path / "o"))
    _, err = p.communicate(timeout=HANG_S)
    assert p.returncode == 2
    assert_one_clear_line(err)
    assert "model is empty" in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_process_signal_before_the_run_writes_nothing(tmp_path, sig):
    out = tmp_path / "out"
    kept = sentinel_dir(out)
    p = _cli_process("draw", "x", "--model", "builtin", "--steps", "100000", "--out", str(out))
    wait_until_catching_sigterm(p.pid)  # then it loads torch and the model: long before any step
    p.send_signal(sig)
    _, err = p.communicate(timeout=HANG_S)
    assert p.returncode == 128 + sig
    assert_one_clear_line(err)
    assert_kept(kept)


def test_cli_process_sigterm_during_the_run_writes_everything_and_exits_143(tmp_path):
    out = tmp_path / "out"
    p = _cli_process("draw", "a red circle", "--model", "builtin", "--strokes", "2", "--steps", "100000",
                     "--canvas", "16", "--device", "cpu", "--no-video", "--out", str(out))
    seen = ""
    while "steps" not in seen:  # the "started" line
        line = p.stderr.readline()
        assert line, "the CLI ended before its run started"
        seen += line
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=HANG_S)
    assert p.returncode == 143, err
    assert "stopped early at step" in err and "Traceback" not in err
    assert json.loads((out / "drawing.json").read_text())["format"] == "drawing"
