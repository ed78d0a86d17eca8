"""How an entry point stops: SIGINT and SIGTERM mean the same in the CLI, the worker and render.py.

The first signal asks the run to stop after its current step; the caller then writes everything
it has, as after a normal end. Before the run has started there is nothing to keep, and a second
Ctrl-C means "now": both raise ``Interrupted`` at once. A repeated SIGTERM is the same request
(``timeout`` and process-group kills deliver it twice): SIGKILL is the way to insist. A run stopped by a signal exits with
128 + the signal's number, as shells report it (130 for Ctrl-C, 143 for SIGTERM), so that
scripts and render farms can tell a stopped run from a finished one.

Standard library only: scripts/render.py uses it before Blender or torch are imported.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(signum: int) -> int:
    """The shell's code for a process ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Interrupted(BaseException):
    """A signal that keeps nothing. A BaseException, so that the engine's ``except Exception`` lets it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum

    @property
    def code(self) -> int:
        return exit_code(self.signum)

    @property
    def name(self) -> str:
        return signal_name(self.signum)


class StopOnSignals:
    """SIGINT/SIGTERM handlers for one run (main thread only; the old handlers come back on exit).

    ``keeping`` is set by the caller once the run has something to keep (it has started):
    from then on the first signal sets ``flag`` and calls ``on_stop``, and only a second SIGINT
    raises. ``holding`` is set while results are being written: signals are noted and the
    writing goes on.
    """

    def __init__(self, on_stop: Callable[[int], None] | None = None) -> None:
        self.flag = threading.Event()
        self.signum: int | None = None  # the first signal received
        self._keeping = False
        self.holding = False
        self._raised = False
        self._on_stop = on_stop
        self._old: dict[int, object] = {}

    def __enter__(self) -> StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)  # type: ignore[arg-type]
        self._old = {}

    @property
    def keeping(self) -> bool:
        return self._keeping

    @keeping.setter
    def keeping(self, value: bool) -> None:
        """From now on the run has something to keep. A signal that came before and raised
        ``Interrupted`` inside library code that swallowed it (a bare ``except`` around an import)
        is honoured here, instead of being lost and leaving the run to go on."""
        if value and self._raised and self.signum is not None:
            raise Interrupted(self.signum)
        self._keeping = value

    @property
    def code(self) -> int | None:
        """128 + the first signal's number, or None when no signal came."""
        return None if self.signum is None else exit_code(self.signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.holding or self._raised:  # writing results, or already on the way out
            return
        if not self.keeping or (not first and signum == signal.SIGINT):
            self._raised = True
            raise Interrupted(signum)
        if first:
            self.flag.set()
            if self._on_stop is not None:
                self._on_stop(signum)


def exit_now(code: int) -> NoReturn:
    """End the process now that every result is written: flush, then skip the interpreter's teardown.

    With torch (and open_clip, sympy, triton...) loaded, Python's finalisation runs several full
    garbage collections over some 300,000 objects and unloads every module: seconds (10-17 s on a
    busy machine) of a process that has said all it had to say. Files are written and closed by
    then (atomic writes); logging and the standard streams, Python's and C's, are flushed here.
    """
    try:
        logging.shutdown()
    except Exception:  # a handler on a closed stream: nothing more can be said anyway
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # the reader is gone
            pass
    _flush_c_streams()
    os._exit(code)


def _flush_c_streams() -> None:
    """C's stdio buffers too: Blender and torch print from C and C++ (os._exit would drop them)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except Exception:  # no C library to flush (Windows): nothing was buffered there
        pass
