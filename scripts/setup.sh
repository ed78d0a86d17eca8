#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian/Ubuntu machine with Python 3.11:
# the system libraries Blender's bpy module loads, and a virtual environment .venv with the engine
# (torch, torchvision, open_clip), Blender as a Python module (bpy 4.5) and the test tools.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1 libx11-6 libxi6 libxfixes3 libxrender1
              libxkbcommon0 libxext6 libxcb1 libsm6 libxxf86vm1)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system libraries for bpy: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed (bpy wheels exist only for it)"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
if ! .venv/bin/python -c 'import importlib.metadata as m; m.version("clipdraw-blender"); import torch, torchvision, open_clip, bpy, pytest, xdist' >/dev/null 2>&1; then
  echo "setup: installing Python packages into .venv (torch is large: this takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[blender,dev]"
fi
echo "setup: ready ($(.venv/bin/python -c 'import torch, bpy; print("torch", torch.__version__, "| bpy", bpy.app.version_string)'))"
