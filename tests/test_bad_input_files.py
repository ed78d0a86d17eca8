"""Bad input files never give a traceback, never destroy what the user has, never hang.

Generated cases over every file the command line reads or writes: Drawing JSON and SVG for
``render``, images for ``sketch`` / ``style``, the built-in model's checkpoints, and the
``--scale`` / ``--out`` options. For each: exit code 2 with one line on stderr (or a clean
success where the input is actually valid), no "Traceback", a sentinel file left untouched, no
temporary file left behind, and a generous time bound (an alarm in-process, a timeout for the
few subprocesses that check the real exit path).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import resource
import signal
import stat
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synth_core import files
from synth_core.builtin import checkpoint
from synth_core.builtin.judge import Judge
from synth_core.builtin.model import BuiltinEncoder, ModelConfig, ToyClip
from synth_core.cli import main
from synth_core.drawing import MAX_FILE_BYTES, Drawing, DrawingFormatError
from synth_core.errors import BadRequest, MissingWeights
from synth_core.images import MAX_SIDE, load_image

REPO = Path(__file__).resolve().parents[1]
SENTINEL = b"the user's own file: must survive\n"
HANG_S = 60
NAN, INF = float("nan"), float("inf")


# -- harness ----------------------------------------------------------------------------------
@contextlib.contextmanager
def bounded(seconds: int = HANG_S):
    """Fail instead of hanging: SIGALRM interrupts even a blocking open() or read()."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def python_warnings(lines: list[str]):
    """Warnings as a real process would print them to stderr (Python's default filters)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.filterwarnings("ignore", category=category)
        yield
    lines.extend(f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}\n" for w in caught)


def cli(argv: list) -> tuple[int, str]:
    """main() in-process: (exit code, stderr). Any exception escaping main fails the test."""
    err = io.StringIO()
    shown: list[str] = []
    with bounded(), contextlib.redirect_stderr(err), python_warnings(shown):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse
            code = e.code
    return code, err.getvalue() + "".join(shown)


def assert_one_line_error(code: int, err: str, expected: int = 2, started: bool = False) -> None:
    """Exit ``expected`` with one error line; ``started``: a run's own progress lines may come before it."""
    assert code == expected, f"exit {code}, stderr: {err!r}"
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if started:
        assert [i for i, line in enumerate(lines) if "error" in line] == [len(lines) - 1], err
    else:
        assert len(lines) == 1 and "error" in lines[0], err


def assert_no_leftovers(directory: Path) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".part")]


def render_case(tmp_path: Path, name: str, data: bytes, ok: bool, size: tuple[int, int] | None = None,
                ) -> None:
    """Write ``data`` as ``name``, render it over a sentinel PNG path, check the outcome."""
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    code, err = cli(["render", src, "--out", out])
    assert "Traceback" not in err
    if ok:
        assert code == 0, err
        with Image.open(out) as im:
            assert size is None or im.size == size
    else:
        assert_one_line_error(code, err)
        assert out.read_bytes() == SENTINEL
    assert src.read_bytes() == data  # the input is never touched
    assert_no_leftovers(tmp_path)


# -- Drawing JSON -----------------------------------------------------------------------------
BASE = {"format": "drawing", "version": 1,
        "canvas": {"width": 64, "height": 48, "background": [1, 1, 1, 1]},
        "strokes": [{"points": [[2, 3], [20, 40], [40, 2], [60, 44]], "width": 3.0, "rgba": [1, 0, 0, 1]},
                    {"points": [[5, 5], [6, 6], [7, 7], [8, 8]], "width": 1.5, "rgba": [0, 0, 1, 0.5]}],
        "meta": {"prompt": "a red line"}}
DELETE = object()
BIG_INT = "9" * 5000  # over Python's 4300-digit int conversion limit

# (path into BASE, replacement values that must be refused, replacement values that are fine)
FIELDS: list[tuple[tuple, list, list]] = [
    ((), [[], "drawing", 1, None, {}, {"format": "drawing"}], []),
    (("format",), ["image", None, 1, DELETE], []),
    (("version",), [True, "1", 2, 0, None, 1.5, [1], DELETE], [1.0]),
    (("canvas",), [None, [], "64x48", 64, DELETE], []),
    (("canvas", "width"), ["64", 64.7, INF, -INF, NAN, 0, -5, True, None, BIG_INT, 1e308, 10**12, [64], 65537,
                           DELETE], [64.0]),
    (("canvas", "height"), ["48", 0, NAN, False], []),
    (("canvas", "background"), [[NAN, 1, 1, 1], [INF, 1, 1, 1], [1, 1, 1], [1, 1, 1, 1, 1], ["1", 1, 1, 1],
                                [-0.1, 1, 1, 1], [1.5, 1, 1, 1], "white", None, [True, 1, 1, 1]],
     [[0, 0, 0, 0], DELETE]),
    (("strokes",), [None, {}, "x", 5, DELETE], [[]]),
    (("strokes", 0), [None, [], "stroke", 5, {}], []),
    (("strokes", 0, "points"), [[], [[0, 0]], [[0, 0]] * 2, [[0, 0]] * 5, [[0, 0, 0]] * 4, [[0]] * 4,
                                [["a", "b"]] * 4, [[NAN, 0]] * 4, [[INF, 0]] * 4, [[1e7, 0]] * 4,
                                [[True, 0]] * 4, [[None, 0]] * 4, "0 0 1 1", [[[0, 0]]] * 4, None, DELETE,
                                [[BIG_INT, 0]] * 4],
     [[[0, 0]] * 7, [[-100.5, 1e5]] * 4]),
    (("strokes", 0, "width"), [0, -1, NAN, INF, "3", None, True, [3], 1e7, DELETE], [0.001, 100]),
    (("strokes", 0, "rgba"), [[1, 0, 0], [1, 0, 0, 1, 1], [2, 0, 0, 1], [-0.5, 0, 0, 1], [NAN, 0, 0, 1],
                              ["red", 0, 0, 1], "red", None, [1, 0, 0, True], [255, 0, 0, 255], DELETE],
     [[0.5, 0.5, 0.5, 0.5]]),
    (("meta",), [[], "x", 5], [None, {"loss": NAN}, {}, DELETE]),
]


def _mutated(path: tuple, value) -> dict:
    if not path:
        return value
    d = copy.deepcopy(BASE)
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


def _json_bytes(doc) -> bytes:
    text = json.dumps(doc)  # NaN / Infinity literals, as a careless writer leaves them
    return text.replace(f'"{BIG_INT}"', BIG_INT).encode()


def _field_cases():
    for path, bad, good in FIELDS:
        where = ".".join(map(str, path)) or "document"
        for ok, values in ((False, bad), (True, good)):
            for i, v in enumerate(values):
                label = "delete" if v is DELETE else (repr(v)[:24] if v is not BIG_INT else "bigint")
                yield pytest.param(path, v, ok, id=f"{where}={label}#{i}")


@pytest.mark.parametrize("path,value,ok", list(_field_cases()))
def test_render_json_fields(tmp_path, path, value, ok):
    render_case(tmp_path, "d.json", _json_bytes(_mutated(path, value)), ok, (64, 48))


GOOD = json.dumps(BASE)
DEEP = "[" * 5000 + "]" * 5000
RAW: list[tuple[str, bytes, bool]] = [
    ("empty", b"", False),
    ("spaces", b"   \n\t", False),
    ("open-brace", b"{", False),
    ("null", b"null", False),
    ("nul-bytes", b"\x00" * 64, False),
    *((f"random-{i}", np.random.default_rng(i).bytes(256), False) for i in range(3)),
    ("png-bytes", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, False),
    ("nested-arrays-5000", b"[" * 5000 + b"]" * 5000, False),
    ("nested-objects-5000", b'{"a":' * 5000 + b"1" + b"}" * 5000, False),
    ("nested-arrays-100000", b"[" * 100_000 + b"]" * 100_000, False),
    ("nested-in-meta-5000", GOOD.replace('"meta": {', f'"meta": {{"x": {DEEP}, ').encode(), False),
    ("bigint-in-meta", GOOD.replace('"meta": {', f'"meta": {{"x": {BIG_INT}, ').encode(), False),
    ("width-1e999", GOOD.replace('"width": 64', '"width": 1e999').encode(), False),
    ("latin1-bytes", GOOD.replace("a red line", "caf\u00e9").encode("latin-1"), False),
    ("invalid-utf8", GOOD.encode()[:-2] + b"\xff\xfe}", False),
    ("trailing-garbage", GOOD.encode() + b" xyz", False),
    ("two-documents", (GOOD + GOOD).encode(), False),
    ("svg-in-json", b'<svg xmlns="http://www.w3.org/2000/svg"/>', False),
    ("comments", b"// a drawing\n" + GOOD.encode(), False),
    ("utf8", GOOD.encode(), True),
    ("utf8-bom", b"\xef\xbb\xbf" + GOOD.encode(), True),
    ("utf16-le-bom", GOOD.encode("utf-16"), True),
    ("utf16-be", GOOD.encode("utf-16-be"), True),
    ("utf32", GOOD.encode("utf-32"), True),
    ("meta-unicode", GOOD.replace("a red line", "caf\u00e9 \u2603").encode(), True),
]


@pytest.mark.parametrize("name,data,ok", RAW, ids=[r[0] for r in RAW])
def test_render_raw_json_files(tmp_path, name, data, ok):
    render_case(tmp_path, "d.json", data, ok, (64, 48) if ok else None)


def test_render_error_stays_one_line_for_a_file_name_with_a_newline(tmp_path):
    render_case(tmp_path, "bad\nname.json", b"{", False)


# -- input paths that are not drawings ------------------------------------------------------------
def _input_path(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"in-{kind}.json"
    if kind == "directory":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "dangling-symlink":
        p.symlink_to(tmp_path / "nowhere.json")
    elif kind == "symlink-to-fifo":
        os.mkfifo(tmp_path / "fifo")
        p.symlink_to(tmp_path / "fifo")
    elif kind in ("sparse-over-limit", "sparse-svg-over-limit"):
        if kind.startswith("sparse-svg"):
            p = p.with_suffix(".svg")
        with open(p, "wb") as f:
            f.truncate(MAX_FILE_BYTES + 1)  # no disk used; the size is refused before reading
    elif kind == "symlink-to-good":
        (tmp_path / "good.json").write_text(GOOD)
        p.symlink_to(tmp_path / "good.json")
    elif kind == "symlink-loop":
        p.symlink_to(p)
    return p


PATH_KINDS = ["missing", "directory", "fifo", "dangling-symlink", "symlink-to-fifo", "sparse-over-limit",
              "sparse-svg-over-limit", "symlink-loop", "symlink-to-good"]


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_render_input_paths(tmp_path, kind):
    src = _input_path(tmp_path, kind)
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    code, err = cli(["render", src, "--out", out])
    if kind == "symlink-to-good":
        assert code == 0, err
    else:
        assert_one_line_error(code, err)
        assert out.read_bytes() == SENTINEL
    assert_no_leftovers(tmp_path)


# -- SVG --------------------------------------------------------------------------------------
SVG_NS = "http://www.w3.org/2000/svg"


def svg(body: str = '<path d="M2 3 L40 30" stroke="#f00" stroke-width="3"/>',
        root: str = 'viewBox="0 0 50 40"', head: str = "") -> str:
    return f'{head}<svg xmlns="{SVG_NS}" {root}>{body}</svg>'


def path_el(**attrs: str) -> str:
    attrs = {"d": "M2 3 L40 30", "stroke": "#f00", "stroke_width": "3", **attrs}
    return "<path " + " ".join(f'{k.replace("_", "-")}="{v}"' for k, v in attrs.items()) + "/>"


def each(label: str, values: list, make, ok: bool) -> list[tuple[str, bytes, bool]]:
    """One case per value: (id, SVG bytes, whether it is valid)."""
    return [(f"{label}={v}", make(v).encode(), ok) for v in values]


def sized(wh: tuple[str, str]) -> str:
    return svg(root=f'width="{wh[0]}" height="{wh[1]}"')


def view(box: str) -> str:
    return svg(root=f'viewBox="{box}"')


def attr(name: str):
    """A maker of SVGs whose path has attribute ``name`` set to the value."""
    return lambda v: svg(path_el(**{name: v}))


RECT = '<rect width="50" height="40" fill="{}" fill-opacity="{}"/>'
LOL = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
SVG_CASES: list[tuple[str, bytes, bool]] = [
    *each("viewBox", ["0 0 100", "a b c d", "0 0 nan nan", "0 0 inf 10", "0 0 0 0", "0 0 -10 10",
                      "0 0 1e9 1e9", "0 0 1e999 10", "0 0 50 40 9", "0 0 50px 40"], view, False),
    *each("viewBox-ok", ["0,0,50,40", "0 0 50.5 40", " 0 0 50 40 "], view, True),
    *each("size", [("abc", "40"), ("nan", "40"), ("-5", "40"), ("0", "40"), ("1e999", "40"), ("100000", "40"),
                   ("50", "")], sized, False),
    *each("size-ok", [("50px", "40px"), ("50.4", "40")], sized, True),
    *each("stroke", ["#ggg", "#12", "#1234567", "rgb(a,b,c)", "rgb(1,2)", "hsl(0,0%,0%)", "url(#g)",
                     "chartreuse", "#", "rgb()", "rgb(1,2,3", "rgb(nan,0,0)"], attr("stroke"), False),
    *each("stroke-ok", ["rgb(300,0,0)", "rgba(0,0,0,0.5)", "#f00", "#ff000080", "RED", "rgb(10%, 20%, 30%)",
                        "none", "rgb(1 2 3)"], attr("stroke"), True),
    *each("stroke-opacity", ["half", "nan", "inf", "", "0.5.5"], attr("stroke_opacity"), False),
    *each("stroke-opacity-ok", ["-1", "2", "50%", "1e999"], attr("stroke_opacity"), True),
    *each("opacity", ["x"], attr("opacity"), False),
    *each("stroke-width", ["abc", "-3", "nan", "1e999", "", "1e7"], attr("stroke_width"), False),
    *each("stroke-width-ok", ["0", "2px", "0.01"], attr("stroke_width"), True),
    *each("rect-fill-opacity", ["x", "nan"], lambda v: svg(RECT.format("#fff", v) + path_el()), False),
    *each("rect-fill", ["#ggg", "rgb(x,0,0)"], lambda v: svg(RECT.format(v, 1) + path_el()), False),
    *each("rect-width", ["abc"], lambda v: svg(f'<rect width="{v}" height="40"/>' + path_el()), False),
    *each("d", ["L 1 1", "M 0 0 C 1 1 2", "5 5", "M 0 0 Q 1 1 2 2", "M 0 0 A 1 1 0 0 0 2 2",
                "M 1e999 0 L 1 1", "M 0 0 L 1e7 0", "M 0 0 L", "M nan 0 L 1 1"], attr("d"), False),
    *each("d-ok", ["", "M0,0L10,10Z", "M 0 0", "M0 0 10 10 20 5", "m1 1 l5 5 z"], attr("d"), True),
    *each("transform", ["scale(2)"], lambda v: svg(f'<g transform="{v}">' + path_el() + "</g>"), False),
    *each("style", ["stroke:#ggg", "stroke-width:", "stroke-opacity:half"], attr("style"), False),
    *each("style-ok", [";;;stroke", "stroke: blue ; stroke-width: 2"], attr("style"), True),
    *each("nested-groups", [5000, 50000], lambda n: svg("<g>" * n + path_el() + "</g>" * n), True),
    *each("xml-encoding", ["klingon", "utf-16"], lambda e: svg(head=f'<?xml version="1.0" encoding="{e}"?>'),
          False),
    ("undeclared-latin1", svg("<title>caf\u00e9</title>" + path_el()).encode("latin-1"), False),
    ("declared-latin1", svg("<title>caf\u00e9</title>" + path_el(),
                            head='<?xml version="1.0" encoding="ISO-8859-1"?>').encode("latin-1"), True),
    ("utf16-bom", svg().encode("utf-16"), True),
    ("empty", b"", False),
    ("truncated", svg().encode()[:30], False),
    ("html-root", b"<html><body/></html>", False),
    ("binary", np.random.default_rng(7).bytes(300), False),
    ("billion-laughs", (f'<!DOCTYPE s [<!ENTITY l0 "lol">{LOL}]>' + svg("<title>&l9;</title>")).encode(),
     False),
    ("external-entity", ('<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                         + svg("<title>&x;</title>")).encode(), False),
    ("internal-entity-ok", ('<!DOCTYPE s [<!ENTITY c "#f00">]>' + svg(path_el(stroke="&c;"))).encode(), True),
    ("comments-and-pi", svg("<!-- c --><?pi x?>" + path_el()).encode(), True),
]


@pytest.mark.parametrize("name,data,ok", SVG_CASES, ids=[c[0] for c in SVG_CASES])
def test_render_svg(tmp_path, name, data, ok):
    render_case(tmp_path, "d.svg", data, ok)


# -- --scale and --out ------------------------------------------------------------------------
@pytest.fixture
def good_json(tmp_path) -> Path:
    p = tmp_path / "good.json"
    p.write_text(GOOD)
    return p


BAD_SCALES = ["nan", "inf", "-inf", "-1", "0", "abc", "", "1e6", "300", "1e-300", "0.0001", "0x10", "NaN",
              "1e400"]


@pytest.mark.parametrize("scale", BAD_SCALES)
def test_render_bad_scale(tmp_path, good_json, scale):
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    assert_one_line_error(*cli(["render", good_json, "--out", out, "--scale", scale]))
    assert out.read_bytes() == SENTINEL


@pytest.mark.parametrize("scale,size", [("0.5", (32, 24)), ("2", (128, 96)), ("1e0", (64, 48))])
def test_render_good_scale(tmp_path, good_json, scale, size):
    out = tmp_path / "out.png"
    assert cli(["render", good_json, "--out", out, "--scale", scale])[0] == 0
    assert Image.open(out).size == size


@pytest.mark.parametrize("command", ["draw", "style", "sketch"])
@pytest.mark.parametrize("scale", ["nan", "inf", "0", "-1", "300", "1e6", "abc"])
def test_run_bad_scale_is_refused_before_the_run(tmp_path, command, scale):
    out = tmp_path / "run"
    argv = {"draw": ["draw", "a red circle"],
            "style": ["style", "a red circle", "--style", tmp_path / "s.png"],
            "sketch": ["sketch", tmp_path / "s.png"]}[command]
    start = time.perf_counter()
    assert_one_line_error(*cli([*argv, "--model", "builtin", "--steps", "1", "--scale", scale, "--out", out]))
    assert not out.exists()  # refused before anything was created
    assert time.perf_counter() - start < HANG_S


def _out_target(tmp_path: Path, kind: str, good: Path) -> Path:
    p = tmp_path / f"target-{kind}.png"
    if kind == "directory":
        p.mkdir()
        (p / "inside.txt").write_bytes(SENTINEL)
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "symlink-to-directory":
        (tmp_path / "d").mkdir()
        p.symlink_to(tmp_path / "d")
    elif kind == "symlink-to-fifo":
        os.mkfifo(tmp_path / "f")
        p.symlink_to(tmp_path / "f")
    elif kind == "parent-is-a-file":
        (tmp_path / "afile").write_bytes(SENTINEL)
        p = tmp_path / "afile" / "x.png"
    elif kind == "symlink-loop":
        p.symlink_to(p)
    elif kind == "the-input":
        p = good
    elif kind == "symlink-to-the-input":
        p.symlink_to(good)
    return p


BAD_OUTS = ["directory", "fifo", "symlink-to-directory", "symlink-to-fifo", "parent-is-a-file", "the-input",
            "symlink-to-the-input", "symlink-loop"]


@pytest.mark.parametrize("kind", BAD_OUTS)
def test_render_refuses_outputs_it_must_not_replace(tmp_path, good_json, kind):
    target = _out_target(tmp_path, kind, good_json)
    before = {p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
              for p in tmp_path.rglob("*")}
    assert_one_line_error(*cli(["render", good_json, "--out", target]))
    after = {p.name: (p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
             for p in tmp_path.rglob("*")}
    assert after == before  # nothing replaced, nothing left behind
    assert good_json.read_text() == GOOD


def test_render_through_a_symlink_keeps_the_link(tmp_path, good_json):
    real = tmp_path / "real.png"
    real.write_bytes(SENTINEL)
    os.chmod(real, 0o640)
    link = tmp_path / "link.png"
    link.symlink_to(real)
    assert cli(["render", good_json, "--out", link])[0] == 0
    assert link.is_symlink() and Image.open(real).size == (64, 48)
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file's permissions are kept
    assert_no_leftovers(tmp_path)


def test_render_into_new_directories(tmp_path, good_json):
    assert cli(["render", good_json, "--out", tmp_path / "a" / "b" / "x.png"])[0] == 0
    assert (tmp_path / "a" / "b" / "x.png").is_file()


def test_render_to_a_null_device_discards_and_keeps_the_device(tmp_path, good_json):
    """A private node of the null device (never the real /dev/null): output discarded, the node kept."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError):
        pytest.skip("cannot create a device node here")
    if os.stat(node).st_rdev != os.stat(os.devnull).st_rdev:
        pytest.skip("the null device has other numbers here")
    assert cli(["render", good_json, "--out", node])[0] == 0
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    assert_no_leftovers(tmp_path)


def test_atomic_write_refuses_non_regular_targets_and_leaves_nothing(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    for name in ("fifo", "dir"):
        with pytest.raises(files.UnwritableTarget):
            files.atomic_write_bytes(tmp_path / name, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "fifo"]
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


RUN = ["draw", "a red circle", "--model", "builtin", "--device", "cpu", "--steps", "1", "--strokes", "2",
       "--canvas", "32", "--quiet", "--no-video"]


@pytest.mark.parametrize("name,kind", [("drawing.png", "directory"), ("snapshots.jsonl", "fifo"),
                                       ("drawing.json", "symlink-to-directory"), ("drawing.svg", "fifo")])
def test_run_refuses_an_output_it_must_not_replace_before_running(tmp_path, name, kind):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_bytes(SENTINEL)
    target = out / name
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / "elsewhere")
    code, err = cli([*RUN, "--out", out])
    assert_one_line_error(code, err)
    assert name in err
    assert (out / "keep.txt").read_bytes() == SENTINEL
    assert sorted(p.name for p in out.iterdir()) == sorted(["keep.txt", name])


def test_a_run_never_overwrites_its_own_input(tmp_path):
    from synth_core.outputs import check_writable

    (tmp_path / "drawing.png").write_bytes(GOOD_PNG)
    with pytest.raises(BadRequest, match="its own input"):
        check_writable(tmp_path, inputs=(None, tmp_path / "drawing.png"))
    assert (tmp_path / "drawing.png").read_bytes() == GOOD_PNG
    assert check_writable(tmp_path, inputs=(tmp_path / "elsewhere.png",)) == tmp_path


def test_run_out_dir_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "run"
    out.write_bytes(SENTINEL)
    assert_one_line_error(*cli([*RUN, "--out", out]))
    assert out.read_bytes() == SENTINEL


def test_run_keeps_the_users_files_in_the_out_dir(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in (".write-test", "keep.txt"):
        (out / name).write_bytes(SENTINEL)
    code, err = cli([*RUN, "--out", out])
    assert code == 0, err
    assert (out / ".write-test").read_bytes() == SENTINEL and (out / "keep.txt").read_bytes() == SENTINEL
    assert_no_leftovers(out)


def test_a_file_that_cannot_be_written_does_not_lose_the_others(tmp_path, monkeypatch):
    """The PNG render fails at the end of a run: the drawing itself is still written, one error line."""
    import synth_core.outputs as outputs

    def broken(*a, **k):
        raise RuntimeError("out of memory\nsecond line")

    monkeypatch.setattr(outputs, "render_rgba", broken)
    out = tmp_path / "run"
    code, err = cli([*RUN, "--out", out])
    assert_one_line_error(code, err, expected=1, started=True)
    assert "drawing.png" in err
    assert Drawing.load(out / "drawing.json") and (out / "drawing.svg").is_file()


# -- images for sketch / style ------------------------------------------------------------------
def _png(a: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


def _encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


RGB = (np.random.default_rng(0).uniform(0, 255, (40, 60, 3))).astype(np.uint8)
GOOD_PNG = _png(RGB)
GOOD_JPEG = _encoded(Image.fromarray(RGB), "JPEG")


def _gif() -> bytes:
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def _bad_crc() -> bytes:
    b = bytearray(GOOD_PNG)
    b[29] ^= 0xFF  # inside IHDR's CRC
    return bytes(b)


def _float_tiff_with_nan() -> bytes:
    a = np.linspace(-1, 2, 32 * 32, dtype=np.float32).reshape(32, 32)
    a[3, 3] = np.nan
    return _encoded(Image.fromarray(a, "F"), "TIFF")


IMAGE_BYTES: list[tuple[str, bytes | None, bool]] = [
    ("empty", b"", False),
    ("one-byte", b"\x89", False),
    ("text", b"this is not an image\n" * 10, False),
    *((f"random-{i}", np.random.default_rng(10 + i).bytes(2048), False) for i in range(2)),
    *((f"png-cut-{n}", GOOD_PNG[:n], False) for n in (8, 33, 50, len(GOOD_PNG) // 2, len(GOOD_PNG) - 100)),
    ("png-bad-crc", _bad_crc(), False),
    ("jpeg-cut-half", GOOD_JPEG[: len(GOOD_JPEG) // 2], False),
    ("jpeg-header-only", GOOD_JPEG[:20], False),
    ("gif-cut", _gif()[:40], False),
    ("webp-cut", _encoded(Image.fromarray(RGB), "WEBP")[:60], False),
    ("bmp-bad-header", b"BM" + b"\xff" * 60, False),
    ("tiff-bad", b"II*\x00" + b"\xff" * 60, False),
    ("svg-as-image", svg().encode(), False),
    ("one-pixel", _png(np.zeros((1, 1, 3), np.uint8)), False),
    ("7x100", _png(np.zeros((7, 100, 3), np.uint8)), False),
    ("100000x1", _encoded(Image.new("1", (100_000, 1)), "PNG"), False),
    ("bomb-108mp", _encoded(Image.new("1", (12000, 9000)), "PNG"), False),
    ("bomb-250mp", _encoded(Image.new("1", (20000, 12500)), "PNG"), False),
    ("ok-png", GOOD_PNG, True),
    ("ok-png-without-iend", GOOD_PNG[:-12], True),  # every pixel is there: Pillow reads it
    ("ok-jpeg", GOOD_JPEG, True),
    ("ok-gif-animated", _gif(), True),
    ("ok-transparent", _png(np.zeros((20, 20, 4), np.uint8), "RGBA"), True),
    ("ok-cmyk-jpeg", _encoded(Image.fromarray(RGB).convert("CMYK"), "JPEG"), True),
    ("ok-la", _encoded(Image.fromarray(RGB).convert("LA"), "PNG"), True),
    ("ok-palette-transparency", _encoded(Image.fromarray(RGB).convert("P"), "PNG", transparency=0), True),
    ("ok-16bit", _encoded(Image.fromarray(np.arange(0, 61440, 60, dtype=np.uint16).reshape(32, 32)), "PNG"),
     True),
    ("ok-float-tiff-nan", _float_tiff_with_nan(), True),
    ("ok-webp", _encoded(Image.fromarray(RGB), "WEBP"), True),
]


def _image_path(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"img-{kind}.png"
    if kind == "directory":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "dangling-symlink":
        p.symlink_to(tmp_path / "nowhere.png")
    elif kind == "sparse-over-limit":
        with open(p, "wb") as f:
            f.truncate(1024 * 1024 * 1024 + 1)
    elif kind == "dev-zero":
        p = Path("/dev/zero")
    elif kind == "symlink-loop":
        p.symlink_to(p)
    return p


@pytest.mark.parametrize("name,data,ok", IMAGE_BYTES, ids=[c[0] for c in IMAGE_BYTES])
def test_image_files(tmp_path, name, data, ok):
    p = tmp_path / f"{name}.img"
    p.write_bytes(data)
    shown: list[str] = []
    with bounded(), python_warnings(shown):
        if not ok:
            with pytest.raises(BadRequest) as e:
                load_image(p, "image to sketch")
        else:
            img = load_image(p)
    assert not shown  # a warning would be one more line on stderr
    if not ok:
        assert "\n" not in str(e.value) and "image to sketch" in str(e.value)
        return
    assert np.isfinite(img.rgb).all() and img.rgb.min() >= 0 and img.rgb.max() <= 1
    a = img.alpha
    assert a is None or (np.isfinite(a).all() and 0 <= a.min() and a.max() <= 1)
    assert p.read_bytes() == data


@pytest.mark.parametrize("kind", ["missing", "directory", "fifo", "dangling-symlink", "sparse-over-limit",
                                  "dev-zero", "symlink-loop"])
def test_image_paths(tmp_path, kind):
    p = _image_path(tmp_path, kind)
    with bounded(), pytest.raises(BadRequest) as e:
        load_image(p, "style image")
    assert "\n" not in str(e.value) and "style image" in str(e.value)


def test_a_huge_image_is_reduced_as_it_is_read(tmp_path):
    """81 megapixels (under the 100 MP limit) load in seconds, at most MAX_SIDE px a side."""
    p = tmp_path / "big.png"
    Image.new("L", (9000, 9000), 90).save(p)
    start = time.perf_counter()
    with bounded():
        img = load_image(p)
    assert max(img.size) == MAX_SIDE and img.size == (MAX_SIDE, MAX_SIDE)
    assert np.allclose(img.rgb, 90 / 255, atol=1 / 255)
    assert time.perf_counter() - start < HANG_S


def test_normal_images_are_not_resampled(tmp_path):
    a = np.random.default_rng(3).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    assert np.array_equal(load_image(tmp_path / "a.png").rgb, a.astype(np.float32) / 255)


SKETCH = ["--model", "builtin", "--device", "cpu", "--steps", "1", "--strokes", "2", "--canvas", "32",
          "--quiet", "--no-video"]


@pytest.mark.parametrize("command,data", [
    ("sketch", GOOD_PNG[:50]), ("sketch", b""), ("sketch", "fifo"), ("style", "directory"),
    ("style", _encoded(Image.new("1", (12000, 9000)), "PNG")), ("sketch", "dev-zero"),
], ids=["sketch-truncated", "sketch-empty", "sketch-fifo", "style-directory", "style-bomb",
        "sketch-dev-zero"])
def test_sketch_and_style_refuse_bad_images(tmp_path, command, data):
    out = tmp_path / "run"
    out.mkdir()
    (out / "drawing.json").write_bytes(SENTINEL)  # a previous run's result
    if isinstance(data, bytes):
        img = tmp_path / "x.png"
        img.write_bytes(data)
    else:
        img = _image_path(tmp_path, data)
    argv = ["sketch", img, "--seeds", "1"] if command == "sketch" else \
        ["style", "a red circle", "--style", img, "--style-weights", "untrained"]
    assert_one_line_error(*cli([*argv, *SKETCH, "--out", out]))
    assert (out / "drawing.json").read_bytes() == SENTINEL


def test_sketch_of_a_fully_transparent_image_does_not_crash(tmp_path):
    img = tmp_path / "clear.png"
    img.write_bytes(_png(np.zeros((20, 20, 4), np.uint8), "RGBA"))
    code, err = cli(["sketch", img, "--seeds", "1", *SKETCH, "--out", tmp_path / "run"])
    assert "Traceback" not in err
    assert code == 0 or (code == 2 and len(err.strip().splitlines()) == 1), err


# -- checkpoints of the built-in model and its judge ---------------------------------------------
_SHIPPED: dict[str, dict] = {}


def shipped(which: str) -> dict:
    if which not in _SHIPPED:
        path = checkpoint.MODEL_FILE if which == "model" else checkpoint.JUDGE_FILE
        _SHIPPED[which] = torch.load(path, map_location="cpu", weights_only=True)
    return copy.copy(_SHIPPED[which])


def _save(obj, path: Path) -> None:
    torch.save(obj, path)


def _with_state(which: str, change) -> dict:
    ck = shipped(which)
    state = dict(ck["state_dict"])
    change(state)
    return {**ck, "state_dict": state}


def _drop_first(n: int):
    def change(state: dict) -> None:
        for k in list(state)[:n]:
            del state[k]
    return change


def _ckpt_file(tmp_path: Path, kind: str, which: str) -> Path:
    p = tmp_path / f"{kind}.pt"
    real = checkpoint.MODEL_FILE if which == "model" else checkpoint.JUDGE_FILE
    data = real.read_bytes()
    other = checkpoint.JUDGE_FILE if which == "model" else checkpoint.MODEL_FILE
    simple = {
        "empty": b"", "cut-10": data[:10], "cut-100": data[:100], "cut-1000": data[:1000],
        "cut-half": data[: len(data) // 2], "cut-last-byte": data[:-1], "text": b"weights\n" * 100,
        "random": np.random.default_rng(5).bytes(4096), "zip-magic-only": b"PK\x03\x04" + b"\x00" * 100,
        "other-checkpoint": other.read_bytes(),
    }
    if kind in simple:
        p.write_bytes(simple[kind])
    elif kind == "zip-of-text":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("data.pkl", b"not a pickle")
    elif kind.startswith("legacy-pickle"):
        torch.save(shipped(which), p, _use_new_zipfile_serialization=False)
        if kind.endswith("-cut"):
            p.write_bytes(p.read_bytes()[:5000])
    elif kind == "missing":
        pass
    elif kind == "directory":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "sparse-over-limit":
        with open(p, "wb") as f:
            f.truncate(checkpoint.MAX_BYTES + 1)
    elif kind == "list":
        _save([1, 2, 3], p)
    elif kind == "no-config":
        _save({"state_dict": shipped(which)["state_dict"]}, p)
    elif kind == "state-not-dict":
        _save({**shipped(which), "state_dict": [1, 2]}, p)
    elif kind == "state-not-tensors":
        _save({**shipped(which), "state_dict": {"a": 1}}, p)
    elif kind == "meta-not-dict":
        _save({**shipped(which), "meta": [1]}, p)
    elif kind == "missing-keys":
        _save(_with_state(which, _drop_first(5)), p)
    elif kind == "unexpected-key":
        _save(_with_state(which, lambda s: s.__setitem__("extra.weight", torch.zeros(3))), p)
    elif kind == "shape-mismatch":
        _save(_with_state(which, lambda s: s.__setitem__(list(s)[3], torch.zeros(7, 7))), p)
    elif kind == "nan-weights":
        _save(_with_state(which, lambda s: s.__setitem__(list(s)[3], s[list(s)[3]] * NAN)), p)
    elif kind.startswith("config-"):
        key, value = {"config-string": ("input_size", "abc"), "config-negative": ("input_size", -1),
                      "config-bool": ("input_size", True), "config-list-of-str": (
                          "channels" if which == "model" else "stem_channels", ["a", "b"]),
                      "config-unknown-key": ("surprise", 1), "config-huge": ("input_size", 10**9)}[kind]
        ck = shipped(which)
        _save({**ck, "config": {**ck["config"], key: value}}, p)
    else:
        raise AssertionError(kind)
    return p


CKPT_KINDS = [
    "missing", "empty", "cut-10", "cut-100", "cut-1000", "cut-half", "cut-last-byte", "text", "random",
    "zip-magic-only", "zip-of-text", "legacy-pickle-cut", "other-checkpoint", "directory", "fifo",
    "sparse-over-limit", "list", "no-config", "state-not-dict", "state-not-tensors", "meta-not-dict",
    "missing-keys", "unexpected-key", "shape-mismatch", "nan-weights", "config-string", "config-negative",
    "config-bool", "config-list-of-str", "config-unknown-key", "config-huge",
]


@pytest.mark.parametrize("which", ["model", "judge"])
@pytest.mark.parametrize("kind", CKPT_KINDS)
def test_broken_checkpoints_fail_fast_in_one_line(tmp_path, kind, which):
    p = _ckpt_file(tmp_path, kind, which)
    loader = BuiltinEncoder.load if which == "model" else Judge.load
    start = time.perf_counter()
    with bounded(), pytest.raises(MissingWeights) as e:
        loader("cpu", p)
    message = str(e.value)
    assert "\n" not in message and str(p) in message
    assert time.perf_counter() - start < 10  # milliseconds in practice; minutes before
    if kind == "missing-keys":
        assert "missing keys" in message and "and 2 more" in message
    if kind == "unexpected-key":
        assert "unexpected keys extra.weight" in message
    if kind == "shape-mismatch":
        assert "(7, 7) vs" in message


@pytest.mark.parametrize("which", ["model", "judge"])
def test_a_checkpoint_in_the_legacy_format_loads(tmp_path, which):
    p = _ckpt_file(tmp_path, "legacy-pickle", which)
    loaded = (BuiltinEncoder.load if which == "model" else Judge.load)("cpu", p)
    assert loaded.meta == shipped(which)["meta"]


def test_a_giant_config_is_refused_before_anything_is_allocated(tmp_path):
    ck = shipped("model")
    cfg = ModelConfig(**{**ck["config"], "channels": (4096,) * 64})
    with bounded(), pytest.raises(MissingWeights, match="does not fit"):
        checkpoint.build(ToyClip, cfg, ck, tmp_path / "x.pt", "built-in model")


def test_a_config_the_model_rejects_is_a_clear_error(tmp_path):
    ck = shipped("model")
    cfg = ModelConfig(**{**ck["config"], "groups": 3})  # GroupNorm: 3 does not divide 32 channels
    with pytest.raises(MissingWeights, match="config does not build"):
        checkpoint.build(ToyClip, cfg, ck, tmp_path / "x.pt", "built-in model")


def test_the_shipped_checkpoint_loads_through_build():
    ck = shipped("model")
    cfg = checkpoint.config_from(ck, ModelConfig, checkpoint.MODEL_FILE, "built-in model")
    model = checkpoint.build(ToyClip, cfg, ck, checkpoint.MODEL_FILE, "built-in model")
    assert torch.equal(model.state_dict()["logit_scale"], ck["state_dict"]["logit_scale"])


def test_a_broken_builtin_checkpoint_fails_the_cli_in_one_line(tmp_path, monkeypatch):
    import synth_core.builtin as builtin

    bad = _ckpt_file(tmp_path, "cut-half", "model")
    def broken(device="cpu"):
        return BuiltinEncoder.load(device, bad)

    monkeypatch.setattr(builtin, "load_builtin_encoder", broken)
    out = tmp_path / "run"
    assert_one_line_error(*cli([*RUN, "--out", out]), expected=1)
    assert not (out / "drawing.json").exists()


# -- the real exit path, in subprocesses ----------------------------------------------------------
def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a runaway read fails, it cannot eat the box


def _subprocess(tmp_path: Path, *argv) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "synth_core", *map(str, argv)], capture_output=True, text=True,
                       timeout=HANG_S, cwd=tmp_path, env=env, preexec_fn=_limit_memory)
    return r.returncode, r.stderr


SUB_CASES = ["dev-zero", "fifo-input", "infinity-canvas", "nested-5000", "scale-nan", "out-fifo",
             "draw-scale-inf"]


@pytest.mark.parametrize("case", SUB_CASES)
def test_exit_code_2_in_a_real_process(tmp_path, case):
    good = tmp_path / "good.json"
    good.write_text(GOOD)
    out = tmp_path / "out.png"
    out.write_bytes(SENTINEL)
    if case == "dev-zero":
        argv = ["render", "/dev/zero", "--out", out]
    elif case == "fifo-input":
        os.mkfifo(tmp_path / "in.json")
        argv = ["render", tmp_path / "in.json", "--out", out]
    elif case == "infinity-canvas":
        (tmp_path / "inf.json").write_text(GOOD.replace('"width": 64', '"width": Infinity'))
        argv = ["render", tmp_path / "inf.json", "--out", out]
    elif case == "nested-5000":
        (tmp_path / "n.json").write_text("[" * 5000 + "]" * 5000)
        argv = ["render", tmp_path / "n.json", "--out", out]
    elif case == "scale-nan":
        argv = ["render", good, "--out", out, "--scale", "nan"]
    elif case == "out-fifo":
        os.mkfifo(tmp_path / "o.fifo")
        argv = ["render", good, "--out", tmp_path / "o.fifo"]
    else:
        argv = ["draw", "x", "--model", "builtin", "--scale", "inf", "--out", tmp_path / "run"]
    assert_one_line_error(*_subprocess(tmp_path, *argv))
    assert out.read_bytes() == SENTINEL
    if case == "out-fifo":
        assert stat.S_ISFIFO(os.lstat(tmp_path / "o.fifo").st_mode)


def test_drawing_from_dict_is_strict_for_the_addon():
    """The add-on reads Drawings through from_dict: the listed cases are refused there too."""
    for path, value in [(("strokes", 0, "rgba"), [1.5, 0, 0, 1]), (("strokes", 0, "width"), 0),
                        (("strokes", 0, "width"), -2), (("canvas", "background"), [NAN, 1, 1, 1]),
                        (("version",), True), (("canvas", "width"), "64"), (("canvas", "width"), 64.7)]:
        with pytest.raises(DrawingFormatError):
            Drawing.from_dict(_mutated(path, value))
    assert len(Drawing.from_dict(copy.deepcopy(BASE))) == 2
    assert math.isnan(Drawing.from_dict(_mutated(("meta",), {"loss": NAN})).meta["loss"])
