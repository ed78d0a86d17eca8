"""SVG interchange for Drawings: one ``<path>`` per stroke, round caps, colour and opacity.

The reader accepts what the writer writes and what other tools commonly write for stroked
paths: M/L/H/V/C/Z commands (absolute and relative), colours as #rgb(a), #rrggbb(aa),
rgb(...), rgba(...) or basic names, ``stroke-*`` as attributes or in ``style``. Lines become
straight cubics so everything stays one representation. Everything else it cannot read is
refused with a DrawingFormatError naming it (never a half-read drawing, never a crash).
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .drawing import MAX_FILE_BYTES, MAX_SIDE, Drawing, DrawingFormatError, Stroke, atomic_write_text
from .files import FileRefused, read_regular

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


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_HEX = re.compile(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_RGB = re.compile(rf"rgba?\(\s*({_NUMBER}%?)\s*[,\s]\s*({_NUMBER}%?)\s*[,\s]\s*({_NUMBER}%?)"
                  rf"(?:\s*[,/]\s*({_NUMBER}%?))?\s*\)")


def _parse_color(value: str | None) -> tuple[float, float, float, float] | None:
    """(r, g, b, alpha) in [0, 1], or None for no paint; CSS clamps out-of-range components."""
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("none", "transparent"):
        return None
    m = _HEX.fullmatch(v)
    if m:
        hx = m.group(1)
        if len(hx) <= 4:
            hx = "".join(c * 2 for c in hx)
        comps = [int(hx[i : i + 2], 16) / 255 for i in range(0, len(hx), 2)]
        return (comps[0], comps[1], comps[2], comps[3] if len(comps) == 4 else 1.0)
    m = _RGB.fullmatch(v)
    if m:
        r, g, b = (_fraction(c, 255) for c in m.groups()[:3])
        a = 1.0 if m.group(4) is None else _fraction(m.group(4), 1)
        return (r, g, b, a)
    if v in _NAMED:
        r, g, b = (c / 255 for c in _NAMED[v])
        return (r, g, b, 1.0)
    raise DrawingFormatError(f"unreadable colour {_short(value)} (use #rrggbb, rgb(r, g, b) or a basic name)")


def _fraction(text: str, full: float) -> float:
    """A colour component or opacity in [0, 1]: ``50%`` or a number out of ``full``, clamped as CSS does."""
    x = float(text[:-1]) / 100 if text.endswith("%") else float(text) / full
    return min(1.0, max(0.0, x)) if math.isfinite(x) else 1.0 if x > 0 else 0.0


def _short(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _opacity(value: str | None, what: str) -> float:
    """An opacity attribute: a number or a percentage, clamped to [0, 1]; anything else is refused."""
    if value is None:
        return 1.0
    v = value.strip()
    if not re.fullmatch(_NUMBER + "%?", v):
        raise DrawingFormatError(f"unreadable {what} {_short(value)} (use a number from 0 to 1)")
    return _fraction(v, 1)


def _style(el: ET.Element, inherited: dict[str, str]) -> dict[str, str]:
    st = dict(inherited)
    for key in ("stroke", "stroke-width", "stroke-opacity", "opacity", "fill", "fill-opacity"):
        if key in el.attrib:
            st[key] = el.attrib[key]
    for item in el.attrib.get("style", "").split(";"):
        if ":" in item:
            k, v = item.split(":", 1)
            st[k.strip()] = v.strip()
    if "transform" in el.attrib:
        raise DrawingFormatError("SVG transforms are not supported: flatten them in your editor first")
    return st


def _length(value: str, what: str = "length") -> float:
    """A finite SVG length (``12``, ``12px``, ``12.5e1``); units other than px are read as px."""
    m = re.match(r"\s*(" + _NUMBER + ")", value)
    x = float(m.group(1)) if m else math.nan
    if not math.isfinite(x):
        raise DrawingFormatError(f"unreadable {what} {_short(value)}")
    return x


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
        out = [float(t) for t in vals]
        if not all(math.isfinite(x) for x in out):
            raise DrawingFormatError(f"path data has a number out of range near {' '.join(vals)[:40]!r}")
        return out

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
        if c != "M" and not cur:
            raise DrawingFormatError("path data must start with M (moveto)")
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
    if len(cur) > 1:
        subpaths.append(cur)
    return [np.array(sp, dtype=np.float64) for sp in subpaths]


def read_svg(path: str | os.PathLike) -> Drawing:
    """Read stroked paths of an SVG into a Drawing (fills are ignored: strokes only)."""
    path = Path(path)
    try:
        root = ET.fromstring(read_regular(path, MAX_FILE_BYTES, "SVG"))
    except FileRefused as e:
        raise DrawingFormatError(str(e)) from None
    except (ET.ParseError, LookupError, ValueError) as e:  # LookupError: an unknown encoding declared
        raise DrawingFormatError(f"cannot read SVG {path}: {str(e).splitlines()[0][:160]}") from None
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise DrawingFormatError(f"{path} is not an SVG: its root element is <{_short(root.tag)[1:-1]}>")
    try:
        return _drawing(root)
    except DrawingFormatError as e:
        raise DrawingFormatError(f"{path}: {e}") from None


def _viewport(root: ET.Element) -> tuple[float, float, float, float]:
    """(x0, y0, width, height) of the drawing area: the viewBox, else width and height (default 224)."""
    vb = root.attrib.get("viewBox", "").strip()
    if vb:
        parts = re.split(r"[\s,]+", vb)
        if len(parts) != 4 or not all(re.fullmatch(_NUMBER, p) for p in parts):
            raise DrawingFormatError(f"viewBox must be four numbers 'x y width height', got {_short(vb)}")
        x0, y0, w, h = (float(p) for p in parts)
    else:
        x0 = y0 = 0.0
        w = _length(root.attrib.get("width", "224"), "width")
        h = _length(root.attrib.get("height", "224"), "height")
    if not all(math.isfinite(v) for v in (x0, y0, w, h)):
        raise DrawingFormatError(f"viewBox numbers are out of range: {_short(vb)}")
    if not (0.5 <= w <= MAX_SIDE and 0.5 <= h <= MAX_SIDE):
        raise DrawingFormatError(f"the SVG is {w:g}x{h:g}: its size must be from 1 to {MAX_SIDE} px a side")
    return x0, y0, w, h


def _drawing(root: ET.Element) -> Drawing:
    """Walk the tree in document order without recursion (5000 nested groups are fine)."""
    x0, y0, w, h = _viewport(root)
    origin = np.array([x0, y0])
    strokes: list[Stroke] = []
    background = (1.0, 1.0, 1.0, 1.0)
    stack: list[tuple[ET.Element, dict[str, str]]] = [(root, {})]
    while stack:
        el, inherited = stack.pop()
        st = _style(el, inherited)
        tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
        if tag == "rect" and not strokes and _length(el.attrib.get("width", "0"), "rect width") >= w:
            fill = _parse_color(st.get("fill"))
            if fill is not None:
                background = (*fill[:3], fill[3] * _opacity(st.get("fill-opacity"), "fill-opacity"))
        if tag == "path":
            rgba = _parse_color(st.get("stroke"))
            width = _length(st.get("stroke-width", "1"), "stroke-width")
            if width < 0:
                raise DrawingFormatError(f"stroke-width must not be negative, "
                                         f"got {_short(st['stroke-width'])}")
            if rgba is not None and width > 0:  # a zero-width stroke paints nothing (SVG)
                alpha = rgba[3] * _opacity(st.get("stroke-opacity"), "stroke-opacity") \
                    * _opacity(st.get("opacity"), "opacity")
                for pts in parse_path_data(el.attrib.get("d", "")):
                    strokes.append(Stroke(pts - origin, width, (*rgba[:3], alpha)))
        stack.extend((child, st) for child in reversed(el))
    return Drawing.from_strokes(max(1, int(round(w))), max(1, int(round(h))), strokes,
                                background=background).check_extent()
