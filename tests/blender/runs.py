"""Driving a run to its end in the Blender tests (pumped here, as the modal operator's timer would)."""

from __future__ import annotations

import time


def finish(run, timeout: float = 30.0):
    """Pump ``run`` until it is over (AssertionError after ``timeout`` s), release it, return it."""
    from blender_addon import session

    deadline = time.monotonic() + timeout
    while run.running:
        run.pump(budget_s=None)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
    session.release(run)
    return run
