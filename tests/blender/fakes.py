"""TEST DOUBLES for operator plumbing tests: the fake method in-process and in the fake worker process.

Both run the engine's real loop and wire code around synthetic Drawings (``fake_engine``), so the
add-on's event handling is tested against the real protocol; the real engine is tested separately.
"""

from __future__ import annotations

import os
import sys

from common import HERE, ROOT
from fake_engine import fake_run_job, fake_stages_run_job

from blender_addon import bridge


def fake_worker_job(mode: str, request: dict) -> bridge.SubprocessJob:
    """The fake worker process (tests/blender/fake_worker.py) in the given mode."""
    env = bridge.worker_environment(ROOT)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT)])
    env["FAKE_WORKER_MODE"] = mode
    return bridge.SubprocessJob(request, sys.executable, HERE, module="fake_worker", env=env)


__all__ = ["fake_run_job", "fake_stages_run_job", "fake_worker_job"]
