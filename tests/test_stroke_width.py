"""The widest stroke: a request key (``max_width``, px), the CLI's and render.py's ``--max-width``, and
a default from the model's card (the built-in model keeps strokes thin; CLIP keeps CLIPDraw's 100 px)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from synth_core.builtin.model import BuiltinEncoder
from synth_core.clipdraw import ClipDraw, ClipDrawConfig, half_width_range, initial_half_width
from synth_core.encoders.base import Encoder
from synth_core.engine import optimise
from synth_core.errors import BadRequest
from synth_core.request import MAX_WIDTH, MIN_WIDTH, parse_request


@pytest.fixture(scope="module")
def encoder() -> BuiltinEncoder:
    return BuiltinEncoder.load("cpu")


@pytest.mark.parametrize("method,extra", [("clipdraw", {}), ("styleclipdraw", {"style_image": "s.png"})])
def test_max_width_is_a_request_key_of_the_prompt_methods(method, extra):
    req = parse_request({"prompt": "a red circle", "method": method, "max_width": 6, **extra})
    assert req.max_width == 6.0 and req.meta()["max_width"] == 6.0  # stored with the drawing
    assert parse_request({"prompt": "x", "method": method, **extra}).max_width is None  # the model's card decides
    assert "max_width" not in parse_request({"prompt": "x", "method": method, **extra}).to_dict()


@pytest.mark.parametrize("req,match", [
    ({"prompt": "x", "max_width": 1.5}, f"max_width must be a number from {MIN_WIDTH:g} to {MAX_WIDTH:g}, got 1.5"),
    ({"prompt": "x", "max_width": 0}, "max_width must be a number from 2"),
    ({"prompt": "x", "max_width": math.nan}, "max_width must be a number"),
    ({"prompt": "x", "max_width": math.inf}, "max_width must be a number"),
    ({"prompt": "x", "max_width": "8px"}, "max_width must be a number"),
    ({"prompt": "x", "max_width": True}, "max_width must be a number"),
    ({"method": "clipasso", "image": "a.png", "max_width": 8}, "CLIPasso's strokes keep one width"),
    ({"prompt": "x", "method": "pixels", "max_width": 8}, "the pixel baseline has no strokes"),
])
def test_a_bad_max_width_is_one_line_naming_the_key(req, match):
    with pytest.raises(BadRequest, match=match):
        parse_request(req)


class _Clip(Encoder):
    """An encoder with no card of its own (as CLIP): only the interface's defaults matter here."""

    input_size = 224

    def encode_text(self, texts):
        raise NotImplementedError

    def encode_image(self, images):
        raise NotImplementedError

    def count_tokens(self, text):
        return 0


def test_the_width_range_comes_from_the_user_else_the_models_card(encoder):
    """The card's share scales with the canvas (what the model sees of a stroke is its share of the
    canvas); the user's px replace the top, up or down; CLIP keeps the reference [1, 50] half-widths."""
    share = encoder.max_width_share
    assert share is not None and 0 < share < 0.1
    cfg = ClipDrawConfig(width=224, height=224)
    assert half_width_range(cfg, encoder) == pytest.approx((1.0, share * 224 / 2))
    assert half_width_range(ClipDrawConfig(width=448, height=224), encoder) == pytest.approx((1.0, share * 448 / 2))
    assert half_width_range(ClipDrawConfig(width=32, height=32), encoder) == (1.0, 1.0)  # never under 2 px
    assert half_width_range(ClipDrawConfig(max_width=40.0), encoder) == (1.0, 20.0)
    assert half_width_range(ClipDrawConfig(max_width=300.0), encoder) == (1.0, 150.0)
    assert half_width_range(cfg, _Clip()) == (1.0, 50.0)
    assert half_width_range(ClipDrawConfig(max_width=6.0), _Clip()) == (1.0, 3.0)
    bare = BuiltinEncoder(encoder.model, "cpu", {"max_width_share": "wide"})  # a card without a usable value
    assert bare.max_width_share is None and half_width_range(cfg, bare) == (1.0, 50.0)


@pytest.mark.parametrize("max_width", [None, 5.0])
def test_strokes_never_grow_past_the_widest(encoder, max_width):
    """Widths pushed hard (a large learning rate) stop at the cap, in the drawing the run returns."""
    cfg = ClipDrawConfig(strokes=6, steps=12, width=96, height=96, lr_widths=5.0, max_width=max_width)
    run = ClipDraw(cfg, encoder, "a black square")
    list(optimise(run, cfg.steps, snapshot_every=0))
    widest = max_width if max_width is not None else encoder.default_max_width(96, 96)
    widths = run.picture().widths
    assert widths.max() <= widest + 1e-5 and widths.min() >= 2.0 - 1e-6
    assert widths.max() >= widest - 0.5  # pushed to it: the cap, not the step count, stopped them


def test_the_cli_passes_max_width_to_the_request_and_sketch_has_none(tmp_path, capsys):
    from synth_core.cli import _request, build_parser, main

    args = build_parser().parse_args(["draw", "a red circle", "--max-width", "6", "--out", str(tmp_path)])
    assert _request(args)["max_width"] == 6.0
    args = build_parser().parse_args(["style", "x", "--style", "s.png", "--out", str(tmp_path)])
    assert "max_width" not in _request(args)
    with pytest.raises(SystemExit) as e:
        main(["sketch", "photo.png", "--max-width", "6", "--out", str(tmp_path)])
    assert e.value.code == 2 and "unrecognized arguments: --max-width" in capsys.readouterr().err
    assert main(["draw", "a red circle", "--model", "builtin", "--max-width", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "max_width must be a number from 2" in err[0]


def test_new_strokes_start_as_wide_as_the_encoder_saw_the_references(encoder):
    """The reference's 2 px were drawn for a model that sees the canvas at its own size: CLIP at 224
    keeps them; a larger canvas scales them; the built-in model (64 px) starts at its widest (4 px on
    224), where 2 px would be 0.6 px to it; never wider than allowed, never under the reference."""
    clip = _Clip()
    assert initial_half_width(ClipDrawConfig(), clip, 50.0) == 1.0
    assert initial_half_width(ClipDrawConfig(width=448, height=336), clip, 50.0) == 2.0
    assert initial_half_width(ClipDrawConfig(width=112, height=112), clip, 50.0) == 1.0
    assert initial_half_width(ClipDrawConfig(width=448, height=448), clip, 1.5) == 1.5
    top = half_width_range(ClipDrawConfig(), encoder)[1]
    assert initial_half_width(ClipDrawConfig(), encoder, top) == top == pytest.approx(2.0)
    cfg = ClipDrawConfig(strokes=5, steps=1, width=224, height=224)
    assert ClipDraw(cfg, encoder, "a red line").strokes.half_widths.detach().eq(top).all()
    assert ClipDraw(replace(cfg, width=64, height=64), encoder, "a red line").strokes.half_widths.eq(1.0).all()
