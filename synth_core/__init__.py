"""synth_core: draw with CLIP. A differentiable Bezier-stroke engine (CLIPDraw and friends).

Importing the package is cheap and torch-free (the Blender add-on reads Drawings with it);
the engine's torch modules load on first use:

    from synth_core import Drawing                 # numpy only
    from synth_core.jobs import run_job             # torch: run a request, get wire events
    python -m synth_core draw "a red circle" --model builtin --out out/
"""

from __future__ import annotations

from .drawing import Drawing, DrawingFormatError, Stroke

__version__ = "0.1.0"
__all__ = ["Drawing", "DrawingFormatError", "Stroke", "__version__"]
