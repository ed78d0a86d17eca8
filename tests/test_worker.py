"""The worker process, driven like Blender drives it: JSON request on stdin, JSON lines on stdout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from synth_core.drawing import Drawing
from synth_core.wire import PROTOCOL_VERSION

ROOT = Path(__file__).resolve().parents[1]
REQUEST = {"prompt": "a red circle", "model": "builtin", "strokes": 8, "steps": 6, "snapshot_every": 2,
           "canvas": 64, "device": "cpu", "seed": 1, "tidy": False}


def start(env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "synth_core.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def events_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def test_a_run_streams_started_progress_snapshots_done():
    p = start()
    out, err = p.communicate(json.dumps(REQUEST) + "\n", timeout=120)
    assert p.returncode == 0, err
    evs = events_of(out)
    kinds = [e["event"] for e in evs]
    assert kinds[0] == "started" and kinds[-1] == "done"
    assert [e["step"] for e in evs if e["event"] == "progress"] == [1, 2, 3, 4, 5, 6]
    assert [e["step"] for e in evs if e["event"] == "snapshot"] == [0, 2, 4]  # step 6 comes with done
    assert evs[0]["protocol"] == PROTOCOL_VERSION
    done = evs[-1]
    assert done["cancelled"] is False and done["step"] == 6
    d = Drawing.from_dict(done["drawing"])
    assert len(d) == 8 and d.meta["prompt"] == "a red circle" and d.meta["seed"] == 1
    assert "not CLIP" in evs[0]["model"]


def test_cancel_line_stops_after_the_current_step_with_the_final_drawing():
    p = start()
    p.stdin.write(json.dumps({**REQUEST, "steps": 5000, "snapshot_every": 0}) + "\n")
    p.stdin.flush()
    seen = []
    for line in p.stdout:
        ev = json.loads(line)
        seen.append(ev)
        if ev["event"] == "progress" and ev["step"] == 3:
            p.stdin.write('{"cancel": true}\n')
            p.stdin.flush()
        if ev["event"] in ("done", "error"):
            break
    p.wait(timeout=30)
    assert p.returncode == 0
    assert seen[-1]["event"] == "done" and seen[-1]["cancelled"] is True
    # Counted in steps, not seconds: it stopped at a step boundary a few steps after the cancel
    # line (200 only bounds the pipe and scheduling delay on a loaded machine), not at 5000.
    assert seen[-2]["event"] == "progress" and 3 <= seen[-2]["step"] == seen[-1]["step"] <= 3 + 200
    assert len(Drawing.from_dict(seen[-1]["drawing"])) == 8


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_cancel_gracefully(sig):
    p = start()
    p.stdin.write(json.dumps({**REQUEST, "steps": 5000, "snapshot_every": 0}) + "\n")
    p.stdin.flush()
    for line in p.stdout:
        if json.loads(line)["event"] == "progress":
            p.send_signal(sig)
            break
    rest = events_of(p.stdout.read())
    p.wait(timeout=30)
    assert p.returncode == 128 + sig  # stopped by a signal, everything sent (docs/wire-format.md)
    assert rest[-1]["event"] == "done" and rest[-1]["cancelled"] is True


@pytest.mark.parametrize("line,kind,code", [
    ("this is not json", "bad_request", 2),
    (json.dumps({"prompt": "", "model": "builtin"}), "bad_request", 2),
    (json.dumps({"prompt": "x", "strokes": 20000}), "bad_request", 2),
    (json.dumps({"prompt": "x", "model": "ViT-B-32:openai", "cache_dir": "/nonexistent"}), "missing_weights", 1),
])
def test_malformed_requests_and_missing_weights(line, kind, code):
    p = start({"HF_HUB_OFFLINE": "1"})
    out, err = p.communicate(line + "\n", timeout=120)
    evs = events_of(out)
    assert p.returncode == code
    assert len(evs) == 1 and evs[0]["event"] == "error" and evs[0]["kind"] == kind
    assert evs[0]["message"] and "\n" not in evs[0]["message"]


def test_a_signal_swallowed_before_the_run_started_is_honoured_when_it_starts():
    """A library's bare ``except`` around an import can swallow the Interrupted that a signal raised
    before the run started; the run must not then go on as if nothing came (it did, under load)."""
    import os

    from synth_core.interrupts import Interrupted, StopOnSignals

    with StopOnSignals() as signals:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
        except BaseException:  # what the library did
            pass
        assert signals.signum == signal.SIGTERM
        with pytest.raises(Interrupted):
            signals.keeping = True
