"""What the engine needs installed besides itself. Standard library only.

One list for everyone who installs the engine: the Blender add-on's "Set Up the Engine" (which
cannot read pyproject.toml: the extension carries only the engine's sources) and
``scripts/build_extension.py`` (which writes it to ``engine/requirements.txt``). A test keeps it
equal to pyproject.toml's ``[project].dependencies``.
"""

from __future__ import annotations

REQUIREMENTS: tuple[str, ...] = (
    "torch==2.14.1",
    "torchvision==0.29.1",
    "open_clip_torch>=3.3,<4",
    "numpy>=1.26,<2",
    "pillow>=10",
    "tqdm>=4.66",
)
