"""TEST DOUBLES for operator plumbing tests: a fake in-process engine and the fake worker process.

Both produce synthetic Drawings (strokes that move down one pixel per step), so the add-on's
event handling can be tested deterministically; the real engine is tested separately.
"""

from __future__ import annotations

import os
import sys
import time

from common import HERE, ROOT
from drawings import lines_drawing

from blender_addon import bridge


def fake_run_job(delay: float = 0.0, crash_at: int | None = None):
    """A ``run_job`` stand-in: snapshots every ``snapshot_every`` steps, honours ``should_stop``."""

    def run_job(request, should_stop):
        steps, every, n = request["steps"], request["snapshot_every"], request["strokes"]
        canvas = request["canvas"]
        yield {"event": "started", "steps": steps, "device": "cpu", "model": "fake", "method": "clipdraw"}
        yield {"event": "warning", "message": "fake engine: synthetic drawings"}

        def drawing(step):
            return lines_drawing(n, width=canvas[0], height=canvas[1], shift=step).to_dict()

        if every:
            yield {"event": "snapshot", "step": 0, "drawing": drawing(0)}
        for step in range(1, steps + 1):
            time.sleep(delay)
            if crash_at is not None and step == crash_at:
                yield {"event": "error", "kind": "internal", "message": "RuntimeError: fake engine failure"}
                return
            yield {"event": "progress", "step": step, "steps": steps, "loss": -step / steps, "similarity": 0.0,
                   "eta_s": delay * (steps - step), "elapsed_s": delay * step}
            if should_stop():
                yield {"event": "done", "step": step, "cancelled": True, "drawing": drawing(step)}
                return
            if every and step % every == 0:
                yield {"event": "snapshot", "step": step, "drawing": drawing(step)}
        yield {"event": "done", "step": steps, "cancelled": False, "drawing": drawing(steps)}

    return run_job


def fake_worker_job(mode: str, request: dict) -> bridge.SubprocessJob:
    """The fake worker process (tests/blender/fake_worker.py) in the given mode."""
    env = bridge.worker_environment(ROOT)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)])
    env["FAKE_WORKER_MODE"] = mode
    return bridge.SubprocessJob(request, sys.executable, HERE, module="fake_worker", env=env)
