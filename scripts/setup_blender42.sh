#!/usr/bin/env bash
# A second environment for the add-on's Blender tests on Blender 4.2 LTS (Grease Pencil v2, legacy
# actions), the oldest Blender the extension's manifest accepts. Run after scripts/setup.sh: the
# engine's packages (torch, open_clip) are not installed twice but taken from .venv through a .pth
# file, behind this environment's own bpy 4.2 and numpy. Used by .ci/run; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "setup_blender42: run scripts/setup.sh first" >&2; exit 2; }
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv-blender42/bin/python ] || "$PYTHON" -m venv .venv-blender42
if ! .venv-blender42/bin/python -c 'import bpy, pytest, xdist; assert bpy.app.version[:2] == (4, 2)' >/dev/null 2>&1; then
  echo "setup_blender42: installing bpy 4.2 into .venv-blender42"
  .venv-blender42/bin/python -m pip install -q "bpy==4.2.*" "numpy==1.26.*" "pillow>=10" pytest pytest-xdist
fi
main_site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
own_site="$(.venv-blender42/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$main_site" > "$own_site/zz_engine_from_main_venv.pth"  # after bpy 4.2's own packages on sys.path
echo "setup_blender42: ready ($(.venv-blender42/bin/python -c 'import bpy, torch; print("bpy", bpy.app.version_string, "| torch", torch.__version__)'))"
