"""TEST DOUBLE: a fake engine worker that speaks the worker protocol (docs/wire-format.md).

Used only for bridge plumbing tests (crash, hang, cancel, garbage on stdout) that the real
engine cannot be made to do on demand. It draws nothing real: its snapshots are synthetic
Drawings whose strokes move down one pixel per step. The mode comes from FAKE_WORKER_MODE:
  ok        run all steps, a snapshot every ``snapshot_every`` steps, then done
  crash     like ok, but die (exit code 3) right after the second snapshot
  slow      0.1 s per step, honour {"cancel": true} (final snapshot + done cancelled)
  hang      like slow, but ignore cancel (tests the kill escalation)
  garbage   print a non-JSON line first, then behave like ok
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

from drawings import lines_drawing


def emit(ev: dict) -> None:
    sys.stdout.write(json.dumps(ev) + "\n")
    sys.stdout.flush()


def main() -> int:
    mode = os.environ.get("FAKE_WORKER_MODE", "ok")
    req = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def watch() -> None:
        for line in sys.stdin:
            if json.loads(line).get("cancel") and mode != "hang":
                stop.set()

    threading.Thread(target=watch, daemon=True).start()
    if mode == "garbage":
        print("this is not JSON", flush=True)
    steps, every = int(req.get("steps", 10)), int(req.get("snapshot_every", 2))
    n = int(req.get("strokes", 3))
    emit({"event": "started", "steps": steps, "device": "cpu", "model": "fake", "method": "clipdraw"})
    emit({"event": "snapshot", "step": 0, "drawing": lines_drawing(n, shift=0).to_dict()})
    snaps = 0
    for step in range(1, steps + 1):
        if mode in ("slow", "hang"):
            time.sleep(0.1)
        emit({"event": "progress", "step": step, "steps": steps, "loss": -step / steps, "similarity": step / steps,
              "eta_s": 0.1 * (steps - step), "elapsed_s": 0.1 * step})
        if stop.is_set():
            d = lines_drawing(n, shift=step).to_dict()
            emit({"event": "snapshot", "step": step, "drawing": d})
            emit({"event": "done", "step": step, "cancelled": True, "drawing": d})
            return 0
        if every and step % every == 0:
            emit({"event": "snapshot", "step": step, "drawing": lines_drawing(n, shift=step).to_dict()})
            snaps += 1
            if mode == "crash" and snaps == 2:
                print("fake worker: simulated crash", file=sys.stderr, flush=True)
                os._exit(3)
    emit({"event": "done", "step": steps, "cancelled": False, "drawing": lines_drawing(n, shift=steps).to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
