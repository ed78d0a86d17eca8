"""Worker process: ``python -m synth_core.worker`` runs one job for another program (Blender).

Protocol (docs/wire-format.md): one JSON request line on stdin; JSON event lines on stdout,
nothing else (logs go to stderr); while it runs, a ``{"cancel": true}`` line on stdin, SIGTERM or
SIGINT stops it after the current step with a final snapshot and ``done``. Exit codes: 0 done
(also after a cancel), 2 bad request, 1 any other error. If stdout breaks (the parent died), the
run is cancelled, so an orphaned worker stops at its next event instead of computing on.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_BAD_REQUEST = 0, 1, 2


def _emit(out: TextIO, event: dict[str, Any]) -> None:
    out.write(json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n")
    out.flush()


def _watch_stdin(stream: TextIO, stop: threading.Event) -> None:
    """Cancel on a ``{"cancel": true}`` line (end of stdin alone does not cancel)."""
    for line in stream:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            print(f"worker: ignoring unreadable control line {line.strip()[:80]!r}", file=sys.stderr)
            continue
        if isinstance(msg, dict) and msg.get("cancel"):
            stop.set()
            return


def main(stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="worker: %(message)s")
    line = stdin.readline()
    try:
        request = json.loads(line)
    except json.JSONDecodeError as e:
        _emit(stdout, {"event": "error", "kind": "bad_request",
                       "message": f"the first line must be a JSON request: {e.msg} at column {e.colno}"})
        return EXIT_BAD_REQUEST
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    threading.Thread(target=_watch_stdin, args=(stdin, stop), daemon=True, name="stdin-watch").start()

    from .jobs import run_job

    code = EXIT_FAILED
    broken = False
    for event in run_job(request, stop.is_set):
        if not broken:
            try:
                _emit(stdout, event)
            except (BrokenPipeError, ValueError):  # reader gone: stop soon, exit quietly
                broken = True
                stop.set()
        if event["event"] == "done":
            code = EXIT_OK
        elif event["event"] == "error":
            code = EXIT_BAD_REQUEST if event["kind"] == "bad_request" else EXIT_FAILED
    return EXIT_FAILED if broken else code


if __name__ == "__main__":
    sys.exit(main())
