"""Worker process: ``python -m synth_core.worker`` runs one job for another program (Blender).

Protocol (``synth_core.wire``, docs/wire-format.md): one JSON request line on stdin; JSON event
lines on stdout, nothing else (logs go to stderr); while it runs, ``wire.CANCEL_LINE`` on stdin,
SIGTERM or SIGINT stops it after the current step with the final drawing in ``done``. Exit
codes: 0 done (also after a cancel line), 2 bad request, 1 any other error, 128 + the signal
(130 SIGINT, 143 SIGTERM) when a signal stopped it (``synth_core.interrupts``). If stdout breaks
(the parent died), the run is cancelled, so an orphaned worker stops at its next event instead of
computing on.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Callable, Iterable, TextIO

from . import wire
from .errors import BadRequest
from .interrupts import Interrupted, StopOnSignals, exit_now

EXIT_OK, EXIT_FAILED, EXIT_BAD_REQUEST = 0, 1, 2
RunJob = Callable[[dict[str, Any], Callable[[], bool]], Iterable[dict[str, Any]]]


def _emit(out: TextIO, event: dict[str, Any]) -> None:
    out.write(wire.encode(event))
    out.flush()


def _say(text: str) -> None:
    print(f"worker: {text}", file=sys.stderr, flush=True)


def _readline(stdin: TextIO, limit: int = wire.MAX_REQUEST_BYTES + 1) -> str:
    """One line of stdin as text; BadRequest for bytes that are not UTF-8.

    The real stdin is read as bytes and each line decoded on its own: a text stream decodes whole
    chunks, so one bad byte in a later line would spoil the line before it.
    """
    raw = getattr(stdin, "buffer", None)
    try:
        line = raw.readline(limit) if raw is not None else stdin.readline(limit)
        if isinstance(line, bytes):
            return line.decode("utf-8")
        line.encode("utf-8")  # text decoded with surrogateescape carries the bad bytes as surrogates
        return line
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise BadRequest("the line is not UTF-8 text") from None
    except OSError as e:
        raise BadRequest(f"cannot read stdin: {e.strerror or e}") from None


def _watch_stdin(stream: TextIO, stop: threading.Event) -> None:
    """Cancel on ``wire.CANCEL_LINE``; anything else is named on stderr (end of stdin alone does not cancel)."""
    while True:
        try:
            line = _readline(stream)
            if not line:
                return
            if not line.strip():
                continue
            msg = wire.decode(line)
        except BadRequest as e:
            _say(f"ignoring an unreadable control line ({e})")
            continue
        except ValueError:  # stdin was closed under us
            return
        if wire.is_cancel(msg):
            stop.set()
            return
        what = "a second request" if isinstance(msg, dict) and "cancel" not in msg else "an unknown control line"
        _say(f"ignoring {what}: a worker runs one job; only {wire.CANCEL_LINE.strip()} is read while it runs")


def _read_request(stdin: TextIO) -> dict[str, Any]:
    """The first line as a request dict; BadRequest (one line) for anything else."""
    line = _readline(stdin)
    if not line.strip():
        raise BadRequest("no request: the first line on stdin must be a JSON request")
    request = wire.decode(line)
    if wire.is_cancel(request):
        raise BadRequest("a cancel line came before any request: there is nothing to cancel")
    if not isinstance(request, dict):
        raise BadRequest(f"the first line must be a JSON object (a request), got {type(request).__name__}")
    return request


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, run_job: RunJob | None = None) -> int:
    """Run one job; ``run_job`` is the engine's by default (tests pass a fake method's, same protocol)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="worker: %(message)s")
    stop = threading.Event()
    with StopOnSignals(on_stop=lambda _: stop.set()) as signals:
        try:
            return _serve(stdin, stdout, run_job, stop, signals)
        except Interrupted as e:  # before the run started, or a second signal: nothing to keep
            what = "aborted" if signals.keeping else "stopped before the run started"
            _emit_quietly(stdout, wire.error_event("internal", f"{what} by {e.name}: no drawing to keep"))
            return e.code


def _serve(stdin: TextIO, stdout: TextIO, run_job: RunJob | None, stop: threading.Event,
           signals: StopOnSignals) -> int:
    try:
        request = _read_request(stdin)
    except BadRequest as e:
        _emit_quietly(stdout, wire.error_event("bad_request", str(e)))
        return EXIT_BAD_REQUEST
    threading.Thread(target=_watch_stdin, args=(stdin, stop), daemon=True, name="stdin-watch").start()
    if run_job is None:
        missing = _missing_dependency()
        if missing:  # the caller (Blender's bridge) reads this line and says how to set the engine up
            _say(f"cannot run the engine: No module named '{missing}'")
            return EXIT_FAILED
        from .jobs import run_job
    return _stream(run_job(request, stop.is_set), stdout, stop, signals)


def _emit_quietly(stdout: TextIO, event: dict[str, Any]) -> None:
    """The last event of a failed job: if nobody reads it any more, there is no one to tell."""
    try:
        _emit(stdout, event)
    except (OSError, ValueError):
        pass


def _missing_dependency() -> str | None:
    """The first engine dependency this Python cannot import, checked before any work starts."""
    for name in ("numpy", "torch", "PIL"):
        try:
            __import__(name)
        except ModuleNotFoundError:
            return name
    return None


def _stream(events: Iterable[dict[str, Any]], stdout: TextIO, stop: threading.Event,
            signals: StopOnSignals) -> int:
    """Write the events; the exit code follows the terminal one (and a signal that stopped the run)."""
    code = EXIT_FAILED
    broken = False
    for event in events:
        kind = event["event"]
        if kind == wire.STARTED:
            signals.keeping = True  # from now on a signal stops after the current step
        try:
            line = wire.encode(event)
        except ValueError as e:  # a non-finite number: a bug, reported instead of a line nobody can read
            line = wire.encode(wire.error_event("internal", f"the engine made an unwritable {kind} event ({e})"))
            kind = wire.ERROR
            event = {"kind": "internal"}
        if not broken:
            try:
                stdout.write(line)
                stdout.flush()
            except (OSError, ValueError):  # reader gone (broken pipe, closed stream): stop soon, exit quietly
                broken = True
                stop.set()
        if kind == wire.DONE:
            code = signals.code if event.get("cancelled") and signals.code else EXIT_OK
        elif kind == wire.ERROR:
            code = EXIT_BAD_REQUEST if event["kind"] == "bad_request" else EXIT_FAILED
        if kind in wire.TERMINAL:
            break
    return EXIT_FAILED if broken else code


if __name__ == "__main__":
    exit_now(main())
