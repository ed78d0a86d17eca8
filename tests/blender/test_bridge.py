"""The bridge's two runners and their one event interface, without Blender.

The subprocess runner is exercised with tests/blender/fake_worker.py (a test double that can
crash, hang and print garbage on demand) and with the real worker for the error paths that need
no model (missing interpreter, interpreter without the engine's packages, bad request).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from blender_addon import bridge
from synth_core.drawing import Drawing

NEEDS_BPY = False
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def fake_job(mode: str, request: dict | None = None, **kw) -> bridge.SubprocessJob:
    env = bridge.worker_environment(ROOT)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)])
    env["FAKE_WORKER_MODE"] = mode
    req = {"prompt": "lines", "steps": 10, "snapshot_every": 2, "strokes": 3, **(request or {})}
    return bridge.SubprocessJob(req, sys.executable, HERE, module="fake_worker", env=env, **kw)


def kinds(events):
    return [e["event"] for e in events]


def test_fake_worker_run_delivers_every_event_then_one_done():
    job = fake_job("ok")
    events = list(bridge.iterate(job, timeout=30))
    job.close()
    assert kinds(events)[0] == "started" and kinds(events)[-1] == "done"
    assert [e["step"] for e in events if e["event"] == "snapshot"] == [0, 2, 4, 6, 8]  # 10 comes with done
    assert events[-1]["cancelled"] is False and events[-1]["step"] == 10 and job.finished
    assert job.poll() == []  # nothing after the terminal event
    assert job.process.returncode == 0


def test_crashed_worker_becomes_one_clear_error():
    job = fake_job("crash")
    events = list(bridge.iterate(job, timeout=30))
    job.close()
    assert kinds(events).count("snapshot") == 3  # step 0, 2, 4: then it died
    err = events[-1]
    assert err["event"] == "error" and err["kind"] == "worker_died"
    assert "exited with code 3" in err["message"] and "simulated crash" in err["message"]


def wait_for_progress(job, timeout: float = 60.0) -> list[dict]:
    """The events up to the first progress event (the worker is stepping)."""
    deadline = time.monotonic() + timeout
    seen = []
    while not any(e["event"] == "progress" for e in seen):
        assert not job.finished and time.monotonic() < deadline, seen  # a hang or an early end
        seen += job.poll()
        time.sleep(0.01)
    return seen


def test_cancel_stops_after_a_few_steps_and_keeps_the_last_snapshot():
    job = fake_job("slow", {"steps": 200})  # 0.1 s a step: 20 s if the cancel were ignored
    first = wait_for_progress(job)
    job.cancel()
    job.cancel()  # pressed twice: still one orderly stop
    rest = list(bridge.iterate(job, timeout=15))  # the hang bound
    job.close()
    done = rest[-1]
    assert done["event"] == "done" and done["cancelled"] is True and done["drawing"]["strokes"]
    assert kinds(rest).count("done") == 1 and job.process.returncode == 0
    progress = [e["step"] for e in first + rest if e["event"] == "progress"]
    # Counted in steps, not seconds: the worker stops at the first step boundary after the cancel
    # line arrives; 40 steps (4 s of the fake's sleeping) only bound the pipe and scheduling delay.
    assert progress[-1] == done["step"] <= progress[0] + 40, progress
    # The final drawing is the state at the step it stopped (the fake moves its strokes 1 px a step).
    assert Drawing.from_dict(done["drawing"]).points[0, 1] == pytest.approx(10 + done["step"])


def test_worker_that_ignores_cancel_is_killed():
    job = fake_job("hang", {"steps": 1000}, kill_after=0.5)
    first = wait_for_progress(job)
    job.cancel()
    rest = list(bridge.iterate(job, timeout=10))
    job.close()
    events = first + rest
    last_step = [e["step"] for e in events[:-1] if isinstance(e.get("step"), int)][-1]
    assert last_step >= 1  # it had started stepping before the cancel
    # No done from the worker (it ignored the cancel); the bridge ends the run itself, at the last
    # step it saw, without a drawing (the caller keeps its last snapshot).
    assert events[-1] == {"event": "done", "step": last_step, "cancelled": True, "drawing": None}
    assert kinds(events).count("done") == 1
    assert job.process.returncode == (-signal.SIGKILL if sys.platform != "win32" else 1)


def test_garbage_on_stdout_is_skipped_not_fatal():
    job = fake_job("garbage")
    events = list(bridge.iterate(job, timeout=30))
    job.close()
    assert events[-1]["event"] == "done"
    assert any("this is not JSON" in line for line in job.stderr_tail)


def test_missing_interpreter_is_an_error_event_not_an_exception(tmp_path):
    job = bridge.SubprocessJob({"prompt": "x"}, str(tmp_path / "no-python"), ROOT)
    events = list(bridge.iterate(job, timeout=5))
    assert events == [{"event": "error", "kind": "worker_missing", "message": events[0]["message"]}]
    assert "no-python" in events[0]["message"] and "preferences" in events[0]["message"]


def python_without_torch() -> str | None:
    for candidate in (Path(sys.base_prefix) / "bin" / "python3", Path("/usr/bin/python3")):
        if candidate.is_file():
            import subprocess

            if subprocess.run([str(candidate), "-c", "import torch"], capture_output=True, check=False).returncode != 0:
                return str(candidate)
    return None


def test_interpreter_without_the_engines_packages_names_what_is_missing():
    python = python_without_torch()
    if python is None:
        pytest.skip("no Python without torch on this machine")
    job = bridge.SubprocessJob({"prompt": "x", "model": "builtin"}, python, ROOT)
    events = list(bridge.iterate(job, timeout=60))
    job.close()
    err = events[-1]
    assert err["event"] == "error" and err["kind"] == "worker_missing"
    assert "cannot import" in err["message"] and "Set Up the Engine" in err["message"]


def test_real_worker_refuses_a_bad_request_with_its_own_message(engine_python):
    job = bridge.SubprocessJob({"prompt": "   ", "model": "builtin"}, engine_python, ROOT)
    events = list(bridge.iterate(job, timeout=60))
    job.close()
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "bad_request"
    assert "prompt" in events[-1]["message"] and job.process.returncode == 2


def test_in_process_runner_has_the_same_interface():
    seen_stop = []

    def run_job(request, should_stop):
        yield {"event": "started", "steps": 3}
        for step in range(1, 4):
            seen_stop.append(should_stop())
            yield {"event": "progress", "step": step, "steps": 3}
        yield {"event": "done", "step": 3, "cancelled": False, "drawing": None}
        yield {"event": "progress", "step": 99}  # nothing may follow the terminal event

    job = bridge.InProcessJob({"prompt": "x"}, run_job)
    events = list(bridge.iterate(job, timeout=5))
    job.close()
    assert kinds(events) == ["started", "progress", "progress", "progress", "done"]
    assert seen_stop == [False, False, False]


def test_in_process_cancel_reaches_should_stop_and_a_crash_becomes_an_error():
    def run_job(request, should_stop):
        step = 0
        while not should_stop():
            step += 1
            time.sleep(0.01)
            yield {"event": "progress", "step": step}
        yield {"event": "done", "step": step, "cancelled": True, "drawing": None}

    job = bridge.InProcessJob({}, run_job)
    time.sleep(0.05)
    job.cancel()
    assert list(bridge.iterate(job, timeout=5))[-1]["cancelled"] is True

    def broken(request, should_stop):
        yield {"event": "started"}
        raise KeyError("boom")

    job = bridge.InProcessJob({}, broken)
    events = list(bridge.iterate(job, timeout=5))
    assert events[-1] == {"event": "error", "kind": "internal", "message": "KeyError: 'boom'"}
