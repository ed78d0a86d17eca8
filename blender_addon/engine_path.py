"""Where the engine (``synth_core``) lives and which Python runs it. No bpy at import time.

Two layouts are supported:
- the installed extension: ``scripts/build_extension.py`` copies ``synth_core`` (with the
  built-in model's weights) to ``<extension>/engine/synth_core``; in-process it is imported as
  a sub-package of the extension, the worker gets ``<extension>/engine`` as its PYTHONPATH;
- the repository checkout (development, ``scripts/render.py``, tests): ``synth_core`` is a
  sibling of ``blender_addon`` and is imported by its own name.
The add-on never changes ``sys.path``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

ADDON_DIR = Path(__file__).resolve().parent
BUNDLED_ROOT = ADDON_DIR / "engine"
VENV_DIR_NAME = "engine-venv"


class EngineMissing(RuntimeError):
    """synth_core cannot be found or imported; the message says what to do."""


def is_bundled() -> bool:
    return (BUNDLED_ROOT / "synth_core" / "__init__.py").is_file()


def engine_root() -> Path | None:
    """The folder that contains ``synth_core`` (the worker's PYTHONPATH), or None."""
    if is_bundled():
        return BUNDLED_ROOT
    if (ADDON_DIR.parent / "synth_core" / "__init__.py").is_file():
        return ADDON_DIR.parent
    return None


def _package_name() -> str:
    return f"{__package__}.engine.synth_core" if is_bundled() else "synth_core"


def import_engine(module: str) -> ModuleType:
    """``synth_core.<module>`` from whichever layout is present (``drawing`` needs only numpy)."""
    name = f"{_package_name()}.{module}"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (e.name == "synth_core" or e.name.endswith(".synth_core")):
            raise EngineMissing("the engine (synth_core) is not installed with this add-on: build the "
                                "extension with scripts/build_extension.py, or run from the repository") from None
        raise


def drawing_from_dict(d: dict):
    """A ``synth_core.drawing.Drawing`` from its wire dict (numpy only, no torch)."""
    return import_engine("drawing").Drawing.from_dict(d)


def torch_importable_here() -> bool:
    """Whether Blender's own Python could run the engine in-process (checked without importing torch)."""
    return importlib.util.find_spec("torch") is not None


def in_process_problem() -> str | None:
    """Why the in-process runner cannot be used here, or None if it can."""
    if not torch_importable_here():
        return "torch is not installed in Blender's Python"
    try:
        import_engine("drawing")
    except EngineMissing as e:
        return str(e)
    if _package_name() == "synth_core" and importlib.util.find_spec("synth_core") is None:
        return "synth_core is not importable from Blender's Python"
    return None


def load_run_job():
    """``synth_core.jobs.run_job``, imported lazily (this is where torch gets imported)."""
    keep_triton_out()
    return import_engine("jobs").run_job


def keep_triton_out() -> None:
    """In Blender's process, torch must not import triton: the engine never compiles kernels.

    Blender rendering with software OpenGL (Mesa's llvmpipe: headless machines, VMs) holds Mesa's
    LLVM, and triton's native library brings another: importing it there segfaults (measured with
    bpy 4.5 and torch 2.14: any first render, then the built-in model's meta-device build, which
    imports torch._dynamo and so triton). With ``None`` in ``sys.modules`` torch finds triton absent.
    Nothing changes when triton is already imported (then the two already live together).
    """
    sys.modules.setdefault("triton", None)


def venv_python(venv_dir: str | os.PathLike) -> Path:
    """The interpreter of a virtual environment on this platform."""
    venv_dir = Path(venv_dir)
    if sys.platform == "win32":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def worker_python(preferred: str, managed_venv: str | os.PathLike | None) -> str:
    """The worker's interpreter: the preference, else the engine venv if set up, else this Python.

    Blender's own Python (``sys.executable``) works only if torch was installed into it; the
    setup check says so when it is not.
    """
    if preferred.strip():
        return os.path.abspath(os.path.expanduser(preferred.strip()))
    if managed_venv:
        candidate = venv_python(managed_venv)
        if candidate.is_file():
            return str(candidate)
    return sys.executable
