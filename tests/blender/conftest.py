"""Blender tests: one process, bpy imported once, Blender reset before every test.

BLENDER_USER_RESOURCES points at a temporary folder (set before bpy is imported) so that nothing
touches ~/.config/blender. Everything here is marked ``blender``; modules that set
``NEEDS_BPY = False`` (pure helpers: placement maths, the bridge, engine set-up) also run without
bpy, the others are skipped.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
from common import ADDON, ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="clipdraw-blender-user-"))

try:
    import bpy  # noqa: F401  (imported once for the whole session)
except ImportError:  # pragma: no cover - depends on the machine
    bpy = None


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.blender)
            if bpy is None and getattr(item.module, "NEEDS_BPY", True):
                item.add_marker(pytest.mark.skip(reason="bpy (Blender as a Python module) is not installed"))


@pytest.fixture(autouse=True)
def factory_blender(request):
    """Every test starts from Blender's empty factory state (this also disables add-ons)."""
    if bpy is None or not getattr(request.module, "NEEDS_BPY", True):
        yield
        return
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


@pytest.fixture
def addon():
    """The add-on enabled the way Blender does it (preferences available); disabled afterwards."""
    import addon_utils

    mod = addon_utils.enable(ADDON, default_set=True, handle_error=_raise)
    assert mod is not None, "the add-on did not enable"
    yield mod
    addon_utils.disable(ADDON, default_set=True, handle_error=_raise)


def _raise(exc):
    raise exc


@pytest.fixture(scope="session")
def engine_python() -> str:
    """A Python that can run the engine's worker (has torch): this one, else the project's .venv."""
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.is_file():
        return str(venv)
    pytest.skip("no Python with torch to run the engine's worker")


@pytest.fixture(scope="session")
def builtin_model(engine_python) -> str:
    """The engine's worker can run the built-in model here (else skip, quoting the engine)."""
    from blender_addon import bridge

    request = {"prompt": "a red circle", "model": "builtin", "strokes": 1, "steps": 1, "canvas": 32,
               "snapshot_every": 0}
    job = bridge.SubprocessJob(request, engine_python, ROOT)
    events = list(bridge.iterate(job, timeout=300))
    job.close()
    if events[-1]["event"] == "error":
        pytest.skip(f"the built-in model does not run: {events[-1]['message']}")
    return engine_python


@pytest.fixture
def scene():
    return bpy.context.scene
