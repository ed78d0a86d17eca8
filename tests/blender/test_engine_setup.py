"""'Set Up the Engine' and 'Check Setup' without the network: the step runner and the report."""

from __future__ import annotations

import importlib.util
import sys
import tomllib

from common import ROOT

from blender_addon import bridge, engine_path, engine_setup
from synth_core import requirements

NEEDS_BPY = False


def test_setup_builds_a_venv_with_blenders_python_then_pip_installs_the_engine(tmp_path):
    steps = engine_setup.setup_steps("/blender/python/bin/python3.11", tmp_path / "venv")
    assert [argv[:3] for _, argv in steps] == [
        ["/blender/python/bin/python3.11", "-m", "venv"],
        [str(engine_path.venv_python(tmp_path / "venv")), "-m", "pip"],
        [str(engine_path.venv_python(tmp_path / "venv")), "-m", "pip"],
    ]
    assert "torch==2.14.1" in steps[2][1] and any(a.startswith("open_clip_torch") for a in steps[2][1])


def test_the_engines_requirements_are_pyprojects_dependencies():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert list(requirements.REQUIREMENTS) == deps


def test_setup_and_the_extension_build_install_the_engines_own_list():
    assert engine_setup.requirements_for(None) == list(requirements.REQUIREMENTS)
    assert engine_setup.setup_steps("python", "venv")[2][1][-len(requirements.REQUIREMENTS):] == list(
        requirements.REQUIREMENTS)
    spec = importlib.util.spec_from_file_location("build_extension", ROOT / "scripts" / "build_extension.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.requirements() == list(requirements.REQUIREMENTS)


def test_steps_job_streams_progress_and_stops_at_the_first_failure():
    ok = [("first", [sys.executable, "-c", "print('hello from step 1')"]),
          ("second", [sys.executable, "-c", "print('step 2')"])]
    events = list(bridge.iterate(engine_setup.StepsJob(ok), timeout=30))
    messages = [e["message"] for e in events if e["event"] == "progress"]
    assert messages == ["first", "hello from step 1", "second", "step 2"]
    assert events[-1] == {"event": "done", "cancelled": False, "step": 2}
    bad = [("install", [sys.executable, "-c", "import sys; print('no matching distribution'); sys.exit(1)"]),
           ("never", [sys.executable, "-c", "print('not reached')"])]
    events = list(bridge.iterate(engine_setup.StepsJob(bad), timeout=30))
    assert events[-1] == {"event": "error", "kind": "setup_failed",
                          "message": "install failed (exit code 1): no matching distribution"}
    assert not any(e.get("message") == "never" for e in events)


def test_steps_job_cancel_terminates_the_running_command():
    sleeper = [sys.executable, "-c", "import time; print('go', flush=True); time.sleep(60)"]
    job = engine_setup.StepsJob([("sleep", sleeper)])
    while not any(e.get("message") == "go" for e in job.poll()):
        pass
    job.cancel()
    events = list(bridge.iterate(job, timeout=10))
    job.close()
    assert events[-1]["event"] == "error" and "cancelled" in events[-1]["message"]


def test_check_setup_names_each_missing_piece(tmp_path):
    checks = engine_setup.check_setup("", engine_path.engine_root())
    assert not checks[-1].ok and "worker Python not found" in checks[-1].message
    assert engine_setup.check_setup(sys.executable, None)[0].message.startswith("engine (synth_core) not found")
    without = tmp_path / "python"
    without.write_text("#!/bin/sh\necho 'broken interpreter' >&2\nexit 1\n")
    without.chmod(0o755)
    checks = engine_setup.check_setup(str(without), engine_path.engine_root(), str(tmp_path / "cache"))
    assert not checks[-1].ok and "does not run" in checks[-1].message and "broken interpreter" in checks[-1].message


def test_bundled_requirements_file_wins(tmp_path):
    (tmp_path / "requirements.txt").write_text("# pinned\ntorch==9.9\n\nnumpy\n")
    assert engine_setup.requirements_for(tmp_path) == ["torch==9.9", "numpy"]
    assert engine_setup.requirements_for(None) == list(requirements.REQUIREMENTS)
