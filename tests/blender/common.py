"""Paths and names shared by the Blender tests (kept out of conftest.py so tests can import them)."""

from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ADDON = "blender_addon"  # the add-on's module name when enabled from the checkout
