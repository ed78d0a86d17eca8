"""SVG interchange for Drawings: one ``<path>`` per stroke, round caps, colour and opacity.

The reader accepts what the writer writes and what other tools commonly write for stroked
paths: M/L/H/V/C/Z commands (absolute and relative), colours as #rgb, #rrggbb, rgb(...) or
basic names, ``stroke-*`` as attributes or in ``style``. Lines become straight cubics so
everything stays one representation.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .drawing import Drawing, DrawingFormatError, Stroke, atomic_write_text

SVG_NS = "http://www.w3.org/2000/svg"
_NAMED = {
    "black": (0, 0, 0), "white": (255, 255, 255), "red": (255, 0, 0), "green": (0, 128, 0),
    "lime": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "orange": (255, 165, 0), "purple": (128, 0, 128),
}


def _fmt(x: float) -> str:
    s = f"{x:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _hex(rgb: np.ndarray) -> str:
    r, g, b = (int(round(float(np.clip(c, 0, 1)) * 255)) for c in rgb[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def to_svg(drawing: Drawing) -> str:
    """Valid standalone SVG (browsers, Inkscape, Illustrator) of the drawing."""
    w, h = drawing.width, drawing.height
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="{SVG_NS}" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
    ]
    bg = np.asarray(drawing.background)
    if bg[3] > 0:
        out.append(f'<rect x="0" y="0" width="{w}" height="{h}" fill="{_hex(bg)}" fill-opacity="{_fmt(bg[3])}"/>')
    out.append('<g fill="none" stroke-linecap="round" stroke-linejoin="round">')
    for s in drawing.strokes():
        p = s.points
        d = [f"M {_fmt(p[0, 0])} {_fmt(p[0, 1])}"]
        for k in range(s.num_segments):
            c = p[3 * k + 1 : 3 * k + 4]
            d.append("C " + " ".join(f"{_fmt(x)} {_fmt(y)}" for x, y in c))
        rgba = np.asarray(s.rgba)
        out.append(
            f'<path d="{" ".join(d)}" stroke="{_hex(rgba)}" stroke-opacity="{_fmt(rgba[3])}" '
            f'stroke-width="{_fmt(s.width)}"/>'
        )
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(drawing: Drawing, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, to_svg(drawing))


# ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[A-DF-Za-df-z]|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _parse_color(value: str | None) -> tuple[float, float, float] | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("none", "transparent"):
        return None
    if v.startswith("#"):
        hx = v[1:]
        if len(hx) == 3:
            hx = "".join(c * 2 for c in hx)
        if len(hx) != 6:
            raise DrawingFormatError(f"unreadable colour {value!r}")
        return tuple(int(hx[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    m = re.fullmatch(r"rgb\(\s*([^,]+),\s*([^,]+),\s*([^)]+)\)", v)
    if m:
        comps = []
        for c in m.groups():
            c = c.strip()
            comps.append(float(c[:-1]) / 100 if c.endswith("%") else float(c) / 255)
        return tuple(comps)  # type: ignore[return-value]
    if v in _NAMED:
        return tuple(c / 255 for c in _NAMED[v])  # type: ignore[return-value]
    raise DrawingFormatError(f"unreadable colour {value!r}")


def _style(el: ET.Element, inherited: dict[str, str]) -> dict[str, str]:
    st = dict(inherited)
    for key in ("stroke", "stroke-width", "stroke-opacity", "opacity", "fill"):
        if key in el.attrib:
            st[key] = el.attrib[key]
    for item in el.attrib.get("style", "").split(";"):
        if ":" in item:
            k, v = item.split(":", 1)
            st[k.strip()] = v.strip()
    if "transform" in el.attrib:
        raise DrawingFormatError("SVG transforms are not supported: flatten them in your editor first")
    return st


def _length(value: str) -> float:
    m = re.match(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", value)
    if not m:
        raise DrawingFormatError(f"unreadable length {value!r}")
    return float(m.group(1))


def parse_path_data(d: str) -> list[np.ndarray]:
    """Subpaths of an SVG path's ``d`` as cubic control points (3*S+1, 2) each."""
    toks = _TOKEN.findall(d)
    subpaths: list[list[tuple[float, float]]] = []
    cur: list[tuple[float, float]] = []
    pos = np.zeros(2)
    start = np.zeros(2)
    i, cmd = 0, None

    def nums(k: int) -> list[float]:
        nonlocal i
        vals = toks[i : i + k]
        if len(vals) < k or any(re.fullmatch(r"[A-Za-z]", t) for t in vals):
            raise DrawingFormatError(f"path data ends early near {' '.join(toks[i:i + k])!r}")
        i += k
        return [float(t) for t in vals]

    def line_to(p: np.ndarray) -> None:
        a = pos
        cur.extend([tuple(a + (p - a) / 3), tuple(a + 2 * (p - a) / 3), tuple(p)])

    while i < len(toks):
        if re.fullmatch(r"[A-Za-z]", toks[i]):
            cmd = toks[i]
            i += 1
        elif cmd is None:
            raise DrawingFormatError("path data must start with a command")
        rel = cmd.islower()
        c = cmd.upper()
        if c == "M":
            if len(cur) > 1:
                subpaths.append(cur)
            x, y = nums(2)
            pos = (pos if rel else 0) + np.array([x, y])
            start = pos.copy()
            cur = [tuple(pos)]
            cmd = "l" if rel else "L"  # implicit lineto after moveto
        elif c in ("L", "H", "V"):
            if c == "L":
                x, y = nums(2)
                p = (pos if rel else 0) + np.array([x, y])
            elif c == "H":
                (x,) = nums(1)
                p = np.array([pos[0] + x if rel else x, pos[1]])
            else:
                (y,) = nums(1)
                p = np.array([pos[0], pos[1] + y if rel else y])
            line_to(p)
            pos = p
        elif c == "C":
            v = np.array(nums(6)).reshape(3, 2) + (pos if rel else 0)
            cur.extend(tuple(q) for q in v)
            pos = v[2]
        elif c == "Z":
            if np.any(pos != start):
                line_to(start)
            pos = start.copy()
            if len(cur) > 1:
                subpaths.append(cur)
            cur = [tuple(pos)]
            cmd = None
        else:
            raise DrawingFormatError(f"path command {cmd!r} is not supported (use M, L, H, V, C, Z)")
        if not cur:
            raise DrawingFormatError("path data must start with M")
    if len(cur) > 1:
        subpaths.append(cur)
    return [np.array(sp, dtype=np.float64) for sp in subpaths]


def read_svg(path: str | os.PathLike) -> Drawing:
    """Read stroked paths of an SVG into a Drawing (fills are ignored: strokes only)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise DrawingFormatError(f"cannot read SVG {path}: {e}") from None
    vb = root.attrib.get("viewBox")
    if vb:
        x0, y0, w, h = (float(v) for v in re.split(r"[\s,]+", vb.strip()))
    else:
        x0 = y0 = 0.0
        w, h = _length(root.attrib.get("width", "224")), _length(root.attrib.get("height", "224"))
    origin = np.array([x0, y0])
    strokes: list[Stroke] = []
    background = (1.0, 1.0, 1.0, 1.0)

    def walk(el: ET.Element, inherited: dict[str, str]) -> None:
        nonlocal background
        st = _style(el, inherited)
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "rect" and not strokes and _length(el.attrib.get("width", "0")) >= w:
            fill = _parse_color(st.get("fill"))
            if fill is not None:
                background = (*fill, float(el.attrib.get("fill-opacity", 1)))
        if tag == "path":
            rgb = _parse_color(st.get("stroke"))
            if rgb is not None:
                alpha = float(st.get("stroke-opacity", 1)) * float(st.get("opacity", 1))
                width = _length(st.get("stroke-width", "1"))
                for pts in parse_path_data(el.attrib.get("d", "")):
                    strokes.append(Stroke(pts - origin, width, (*rgb, alpha)))
        for child in el:
            walk(child, st)

    walk(root, {})
    return Drawing.from_strokes(int(round(w)), int(round(h)), strokes, background=background)
