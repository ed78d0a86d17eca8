"""The whole suite: one torch CPU thread per test process.

The suite runs in parallel processes (pytest-xdist, ``-n auto`` in pyproject.toml), one per core.
Torch's default of one thread per core in each of them would put several spinning threads on every
core, and on a shared 2-core machine that stalled optimisation runs 17x (docs/engine.md). A run
that asks for threads (the request's ``threads``) still gets them, and the host's count comes back
after it (``jobs.torch_threads``).
"""

from __future__ import annotations

try:
    import torch
except ImportError:  # pragma: no cover - the Blender-only tests run without torch too
    torch = None

if torch is not None:
    torch.set_num_threads(1)
