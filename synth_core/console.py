"""How the command-line entry points talk to people: one line per failure, a note when a signal stops a run,
and the options every command spells the same way.

Shared by ``cli`` (draw / style / sketch / render) and ``frames_cli`` (sketch-frames), so that every
command fails the same way: one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from .interrupts import signal_name
from .request import PRECISIONS

EXIT_FAILED = 1


def fail(message: str, code: int) -> int:
    print(f"synth_core: error: {' '.join(message.split())}", file=sys.stderr)  # always one line
    return code


def internal(e: Exception) -> int:
    """A bug or the environment: one line (the traceback with SYNTH_CORE_DEBUG=1)."""
    if os.environ.get("SYNTH_CORE_DEBUG"):
        traceback.print_exc()
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return fail(f"internal error: {type(e).__name__}: {first} (SYNTH_CORE_DEBUG=1 shows the traceback)", EXIT_FAILED)


def say_stopping(signum: int) -> None:
    print(f"\n{signal_name(signum)}: stopping after this step (Ctrl-C again to abort)...", file=sys.stderr,
          flush=True)


def speed_options(p: argparse.ArgumentParser) -> None:
    """How the encoder runs (synth_core.accelerate); shared with sketch-frames."""
    p.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="the encoder's arithmetic: auto (bfloat16 on CUDA, float32 elsewhere; the default), "
                        "float32 (opt out), bfloat16")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the encoder: the first step takes tens of seconds more, later ones are faster")
