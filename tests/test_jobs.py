"""Job requests: validation with clear messages, and failures that become error events."""

from __future__ import annotations

import pytest

from synth_core.errors import BadRequest
from synth_core.jobs import parse_request, run_job
from synth_core.request import MAX_STROKES


def test_defaults_are_the_reference_clipdraw_settings():
    r = parse_request({"prompt": "  a   red circle "})
    assert r.prompt == "a red circle"
    assert (r.method, r.strokes, r.steps, r.canvas, r.model) == ("clipdraw", 256, 1000, (224, 224), "ViT-B-32:openai")
    assert r.meta()["prompt"] == "a red circle" and "device" not in r.meta()


@pytest.mark.parametrize("req,match", [
    ({"prompt": ""}, "prompt is empty"),
    ({"prompt": "   \n"}, "prompt is empty"),
    ({}, "prompt is missing"),
    ({"prompt": 3}, "prompt must be a string"),
    ({"prompt": "x", "strokes": 0}, "strokes must be between 1"),
    ({"prompt": "x", "strokes": MAX_STROKES + 1}, f"at most {MAX_STROKES}"),
    ({"prompt": "x", "steps": 0}, "steps must be between 1"),
    ({"prompt": "x", "steps": -5}, "steps must be between 1"),
    ({"prompt": "x", "strokes": "many"}, "strokes must be an integer"),
    ({"prompt": "x", "strokes": True}, "strokes must be an integer"),
    ({"prompt": "x", "canvas": [10, 224]}, "canvas must be between 16"),
    ({"prompt": "x", "canvas": "big"}, "canvas must be a size"),
    ({"prompt": "x", "method": "dream"}, "method must be one of"),
    ({"prompt": "x", "negative": ["ok", " "]}, "negative prompt 2 is empty"),
    ({"prompt": "x", "stroks": 10}, "unknown request key\\(s\\): stroks"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_requests_name_the_problem(req, match):
    with pytest.raises(BadRequest, match=match):
        parse_request(req)


def test_bad_requests_become_error_events_not_exceptions():
    events = list(run_job({"prompt": "x", "steps": 0}))
    assert events == [{"event": "error", "kind": "bad_request", "message": "steps must be between 1 and 100000, got 0"}]


def test_missing_weights_fail_fast_with_what_to_do(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    events = list(run_job({"prompt": "a cat", "model": "ViT-B-32:openai", "cache_dir": str(tmp_path), "device": "cpu"}))
    assert time.perf_counter() - t0 < 60  # a hang bound only (no network retries), not a speed claim
    assert len(events) == 1 and events[0]["kind"] == "missing_weights"
    msg = events[0]["message"]
    assert "ViT-B-32:openai" in msg and str(tmp_path) in msg and "--model" in msg and "\n" not in msg


def test_a_request_of_another_protocol_version_is_refused():
    from synth_core.wire import PROTOCOL_VERSION

    assert parse_request({"prompt": "x", "protocol": PROTOCOL_VERSION}).prompt == "x"
    with pytest.raises(BadRequest, match=f"speaks protocol 1 but this engine speaks {PROTOCOL_VERSION}"):
        parse_request({"prompt": "x", "protocol": 1})
    ev = list(run_job({"prompt": "x", "protocol": 99}))
    assert ev == [{"event": "error", "kind": "bad_request", "message": ev[0]["message"]}] and "99" in ev[0]["message"]
