"""Checking and installing the engine's Python environment. No bpy here.

``check_setup`` answers "can a drawing run, and if not, what exactly is missing" with one line
per item. ``setup_steps`` lists the commands that build a virtual environment with Blender's own
Python and pip-install the engine's dependencies there; ``StepsJob`` runs them in the
background with the same event interface as an engine job (``progress`` lines, then ``done`` or
``error``), so the preferences show progress without blocking Blender.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .bridge import Job, error_event, worker_environment
from .engine_path import import_engine, venv_python

_PROBE = r"""
import json, sys
out = {"python": sys.version.split()[0]}
for name in ("numpy", "torch", "torchvision", "open_clip", "PIL"):
    try:
        mod = __import__(name)
        out[name] = getattr(mod, "__version__", "ok")
    except Exception as e:
        out[name] = None
        out[name + "_error"] = f"{type(e).__name__}: {e}"[:200]
try:
    import torch
    out["cuda"] = bool(torch.cuda.is_available())
except Exception:
    pass
try:
    from synth_core.builtin.checkpoint import MODEL_FILE
    out["builtin_weights"] = MODEL_FILE.is_file()
    import synth_core.jobs
    out["synth_core"] = "ok"
except Exception as e:
    out["synth_core"] = None
    out["synth_core_error"] = f"{type(e).__name__}: {e}"[:200]
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Check:
    """One line of the setup report: what was checked, whether it is fine, and how to fix it."""

    ok: bool
    message: str


def probe_python(python: str, engine_root: str | os.PathLike, timeout: float = 120.0) -> dict:
    """Run ``python`` once to see which of the engine's packages it can import."""
    proc = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                          env=worker_environment(engine_root), cwd=str(engine_root))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit code {proc.returncode}: {tail}")
    return json.loads(lines[-1])


def check_setup(python: str, engine_root: str | os.PathLike | None, cache_dir: str = "",
                in_process_problem: str | None = None) -> list[Check]:
    """Everything a run needs, one ``Check`` per item, each failing one naming the fix."""
    checks: list[Check] = []
    if engine_root is None:
        return [Check(False, "engine (synth_core) not found next to the add-on: reinstall the extension "
                             "built with scripts/build_extension.py")]
    checks.append(Check(True, f"engine found in {engine_root}"))
    if in_process_problem is None:
        checks.append(Check(True, "in-process runner available (torch imports in Blender's Python)"))
    else:
        checks.append(Check(True, f"in-process runner not available ({in_process_problem}); the worker is used"))
    if not python or not Path(python).is_file():
        checks.append(Check(False, f"worker Python not found: {python or '(empty)'}: set it in the preferences "
                                   "or use 'Set up the engine'"))
        return checks
    try:
        info = probe_python(python, engine_root)
    except (OSError, RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
        checks.append(Check(False, f"worker Python {python} does not run: {e}"))
        return checks
    version = info.get("python", "?")
    checks.append(Check(version.startswith("3.11"), f"worker Python {python} is Python {version}"
                        + ("" if version.startswith("3.11") else " (the engine is built for 3.11)")))
    for name, why in (("torch", "the engine"), ("torchvision", "open_clip"), ("open_clip", "CLIP models"),
                      ("numpy", "the engine"), ("PIL", "images")):
        if info.get(name):
            checks.append(Check(True, f"{name} {info[name]}"))
        else:
            err = info.get(name + "_error", "")
            checks.append(Check(False, f"{name} missing in the worker Python (needed for {why}): {err}; "
                                       "use 'Set up the engine' or pip-install the engine's requirements"))
    if info.get("synth_core"):
        checks.append(Check(True, f"synth_core imports in the worker ({'CUDA' if info.get('cuda') else 'CPU only'})"))
        checks.append(Check(bool(info.get("builtin_weights")), "built-in model weights "
                            + ("present" if info.get("builtin_weights") else "missing from the engine folder")))
    else:
        checks.append(Check(False, f"synth_core does not import in the worker: {info.get('synth_core_error', '')}"))
    if cache_dir:
        p = Path(cache_dir).expanduser()
        ok = p.is_dir() and os.access(p, os.W_OK)
        checks.append(Check(ok, f"model cache folder {p} " + ("is writable" if ok else "is missing or read-only")))
    return checks


def requirements_for(engine_root: str | os.PathLike | None) -> list[str]:
    """What "Set Up the Engine" installs: the bundled engine's requirements.txt (written by
    build_extension.py), else the engine's own list (``synth_core.requirements``)."""
    path = Path(engine_root) / "requirements.txt" if engine_root else None
    if path is not None and path.is_file():
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        found = [ln for ln in lines if ln and not ln.startswith("#")]
        if found:
            return found
    return list(import_engine("requirements").REQUIREMENTS)


def setup_steps(base_python: str, venv_dir: str | os.PathLike,
                requirements: Sequence[str] | None = None) -> list[tuple[str, list[str]]]:
    """(label, argv) of each command that builds the engine's virtual environment.

    ``requirements`` defaults to the engine's own list.
    """
    needs = list(requirements) if requirements is not None else requirements_for(None)
    py = str(venv_python(venv_dir))
    return [
        ("Creating the virtual environment", [base_python, "-m", "venv", str(venv_dir)]),
        ("Updating pip", [py, "-m", "pip", "install", "--upgrade", "--disable-pip-version-check", "pip"]),
        ("Installing torch, open_clip and the engine's other packages (several GB, takes minutes)",
         [py, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *needs]),
    ]


class StepsJob(Job):
    """Run commands one after another in a thread; each output line becomes a ``progress`` event."""

    runner = "setup"

    def __init__(self, steps: Sequence[tuple[str, list[str]]], env: dict[str, str] | None = None) -> None:
        super().__init__()
        self._proc: subprocess.Popen | None = None
        self._thread = threading.Thread(target=self._run, args=(list(steps), env), daemon=True,
                                        name="clipdraw-setup")
        self._thread.start()

    def _run(self, steps: list[tuple[str, list[str]]], env: dict[str, str] | None) -> None:
        total = len(steps)
        for i, (label, argv) in enumerate(steps):
            if self._cancel.is_set():
                self._put({"event": "done", "cancelled": True, "step": i})
                return
            self._put({"event": "progress", "step": i, "steps": total, "message": label})
            code, last = self._run_one(argv, env, i, total)
            if code != 0:
                what = "cancelled" if self._cancel.is_set() else f"failed (exit code {code})"
                self._put(error_event("setup_failed", f"{label} {what}: {last}"))
                return
        self._put({"event": "done", "cancelled": False, "step": total})

    def _run_one(self, argv: list[str], env: dict[str, str] | None, i: int, total: int) -> tuple[int, str]:
        kwargs = {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)} if sys.platform == "win32" else {}
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                          errors="replace", env=env, **kwargs)
        except OSError as e:
            return 127, f"cannot run {argv[0]}: {e.strerror or e}"
        last = ""
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip():
                last = line.strip()[:300]
                self._put({"event": "progress", "step": i, "steps": total, "message": last})
        return self._proc.wait(), last or "no output"

    def cancel(self) -> None:
        super().cancel()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    def close(self, timeout: float = 5.0) -> None:
        super().close(timeout)
        self._thread.join(timeout)
