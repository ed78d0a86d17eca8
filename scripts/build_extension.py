"""Build the installable Blender extension zip: blender_addon + the engine it runs.

    python scripts/build_extension.py [--output-dir dist]

Stages ``blender_addon/`` with ``synth_core`` copied to ``engine/synth_core`` (Python sources and
the built-in model's weights in ``synth_core/weights``; open_clip weights are never bundled, they
are downloaded or found in the model cache), writes ``engine/requirements.txt`` from
``synth_core/requirements.py`` (what "Set Up the Engine" installs), then validates and builds
with Blender's own ``blender_ext.py`` (found inside the bpy wheel; no Blender binary needed).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.zip")
# the engine without its laboratory (training and judging the built-in model: never run in Blender)
ENGINE_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.zip", "lab")
ENGINE_INIT = '"""The drawing engine (synth_core) carried by the extension; see engine_path.py."""\n'


def find_blender_ext() -> Path:
    """``blender_ext.py`` inside the installed bpy wheel (without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build_extension.py: bpy is not installed: pass --blender-ext PATH/TO/blender_ext.py")
    base = Path(list(spec.submodule_search_locations)[0])
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"build_extension.py: no blender_ext.py under {base}")
    return found[-1]


def requirements() -> list[str]:
    """The engine's runtime dependencies: ``synth_core/requirements.py``, loaded on its own (it is
    standard library only, so building needs no numpy or torch)."""
    spec = importlib.util.spec_from_file_location("_engine_requirements", ROOT / "synth_core" / "requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.REQUIREMENTS)


def stage(dest: Path) -> Path:
    """Copy the add-on and the engine into ``dest``; returns the staged extension folder."""
    ext = dest / "clipdraw"
    shutil.copytree(ROOT / "blender_addon", ext, ignore=SKIP)
    engine = ext / "engine"
    engine.mkdir()
    (engine / "__init__.py").write_text(ENGINE_INIT, encoding="utf-8")
    shutil.copytree(ROOT / "synth_core", engine / "synth_core", ignore=ENGINE_SKIP)
    (engine / "requirements.txt").write_text("\n".join(requirements()) + "\n", encoding="utf-8")
    return ext


def run_tool(tool: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise SystemExit(f"build_extension.py: blender_ext.py {args[0]} failed:\n{out}")
    if out:
        print(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output-dir", type=Path, default=ROOT / "dist", help="where the zip goes (default dist/)")
    p.add_argument("--blender-ext", type=Path, default=None, help="path to Blender's blender_ext.py")
    args = p.parse_args(argv)
    tool = args.blender_ext or find_blender_ext()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="clipdraw-ext-") as tmp:
        ext = stage(Path(tmp))
        run_tool(tool, "validate", str(ext))
        run_tool(tool, "build", "--source-dir", str(ext), "--output-dir", str(args.output_dir.resolve()))
    zips = sorted(args.output_dir.glob("clipdraw-*.zip"), key=lambda z: z.stat().st_mtime)
    print(f"build_extension.py: wrote {zips[-1]} ({zips[-1].stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
