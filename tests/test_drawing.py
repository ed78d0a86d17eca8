"""Drawing data: validation, JSON round trip, SVG writer/reader, atomic files."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from synth_core.drawing import Drawing, DrawingFormatError, Stroke
from synth_core.svg import parse_path_data, read_svg, to_svg, write_svg


def sample_drawing() -> Drawing:
    rng = np.random.default_rng(0)
    strokes = [Stroke(rng.uniform(0, 100, (3 * s + 1, 2)), float(rng.uniform(1, 9)), tuple(rng.uniform(0, 1, 4)))
               for s in (1, 2, 3)]
    return Drawing.from_strokes(120, 100, strokes, background=(1, 1, 1, 1), meta={"prompt": "a red circle", "seed": 3})


def test_json_round_trip_keeps_everything(tmp_path):
    d = sample_drawing()
    d.save(tmp_path / "d.json")
    e = Drawing.load(tmp_path / "d.json")
    assert (e.width, e.height, e.background, e.meta) == (120, 100, (1, 1, 1, 1), d.meta)
    assert np.allclose(e.points, d.points, atol=1e-3) and np.array_equal(e.segments, [1, 2, 3])
    assert np.allclose(e.widths, d.widths, atol=1e-3) and np.allclose(e.rgba, d.rgba, atol=1e-3)
    assert [len(s.points) for s in e.strokes()] == [4, 7, 10]
    assert json.loads(d.to_json())["version"] == 1


@pytest.mark.parametrize("bad,match", [
    ({"format": "drawing", "version": 2, "canvas": {}, "strokes": []}, "version"),
    ({"format": "image"}, "not a drawing"),
    ({"format": "drawing", "version": 1, "canvas": {"width": 10, "height": 10},
      "strokes": [{"points": [[0, 0], [1, 1]], "width": 1, "rgba": [0, 0, 0, 1]}]}, "3\\*S\\+1"),
    ({"format": "drawing", "version": 1, "canvas": {"width": 10, "height": 10},
      "strokes": [{"points": [[0, 0]] * 4, "width": float("nan"), "rgba": [0, 0, 0, 1]}]}, "NaN"),
    ({"format": "drawing", "version": 1, "canvas": {"width": 0, "height": 10}, "strokes": []}, "at least 1x1"),
    ({"format": "drawing", "version": 1, "strokes": []}, "malformed"),
])
def test_bad_drawings_are_refused_with_a_reason(bad, match):
    with pytest.raises(DrawingFormatError, match=match):
        Drawing.from_dict(bad)


def test_unreadable_files_give_one_clear_error(tmp_path):
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(DrawingFormatError, match="not valid JSON"):
        Drawing.load(tmp_path / "x.json")
    with pytest.raises(DrawingFormatError, match="cannot read"):
        Drawing.load(tmp_path / "missing.json")


def test_svg_is_valid_and_reads_back(tmp_path):
    d = sample_drawing()
    path = write_svg(d, tmp_path / "d.svg")
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    paths = root.findall(".//{http://www.w3.org/2000/svg}path")
    assert len(paths) == 3
    assert paths[0].attrib["stroke-width"] == f"{d.widths[0]:.3f}".rstrip("0").rstrip(".")
    assert root.find(".//{http://www.w3.org/2000/svg}g").attrib["stroke-linecap"] == "round"
    e = read_svg(path)
    assert (e.width, e.height) == (120, 100)
    assert np.allclose(e.points, d.points, atol=1e-3)
    assert np.allclose(e.widths, d.widths, atol=1e-3)
    assert np.allclose(e.rgba, d.rgba, atol=1 / 255)


def test_svg_reader_converts_lines_and_relative_commands():
    subpaths = parse_path_data("M10 10 L 40 10 h 10 v 20 c 0 5 5 5 5 0 Z m 1 1 l 3 0")
    assert len(subpaths) == 2
    first = subpaths[0]
    assert len(first) == 3 * 5 + 1  # L, h, v, c, Z-line
    assert np.allclose(first[3], [40, 10]) and np.allclose(first[6], [50, 10]) and np.allclose(first[9], [50, 30])
    assert np.allclose(first[1], [20, 10])  # a line's handles sit on the line
    assert np.allclose(first[-1], [10, 10])
    assert np.allclose(subpaths[1][0], [11, 11]) and np.allclose(subpaths[1][-1], [14, 11])


def test_svg_reader_styles_and_errors(tmp_path):
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 50 40">'
           '<path d="M0 0 L10 10" style="stroke:#f00;stroke-width:4;stroke-opacity:0.5"/>'
           '<path d="M0 0 L10 10" fill="blue"/></svg>')
    (tmp_path / "a.svg").write_text(svg)
    d = read_svg(tmp_path / "a.svg")
    assert len(d) == 1 and d.widths[0] == 4 and np.allclose(d.rgba[0], [1, 0, 0, 0.5])
    (tmp_path / "b.svg").write_text(svg.replace("M0 0 L10 10", "M0 0 Q 1 2 3 4", 1))
    with pytest.raises(DrawingFormatError, match="not supported"):
        read_svg(tmp_path / "b.svg")
    (tmp_path / "c.svg").write_text("<svg")
    with pytest.raises(DrawingFormatError, match="cannot read SVG"):
        read_svg(tmp_path / "c.svg")


def test_saving_is_atomic(tmp_path, monkeypatch):
    d = sample_drawing()
    target = tmp_path / "d.json"
    d.save(target)
    before = target.read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        d.with_meta(prompt="changed").save(target)
    assert target.read_text() == before  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["d.json"]  # no temporary left behind
