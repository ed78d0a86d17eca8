"""Engine jobs behind one event interface, with no bpy here (so it can be tested anywhere).

Two runners produce the same stream of wire events (docs/wire-format.md):
- ``InProcessJob``: a worker thread inside Blender calling ``synth_core.jobs.run_job``, for when
  torch imports in Blender's own Python;
- ``SubprocessJob``: ``python -m synth_core.worker`` in another interpreter (a venv with torch),
  speaking JSON lines.

Each job is a handle that owns its thread or process and its cancel state (no global flags).
Blender's main thread calls ``poll()`` from a timer or a blocking loop and applies the events;
nothing here ever touches Blender data. Every job ends with exactly one terminal event
(``done`` or ``error``): when a worker dies without one, the handle makes it up, so the caller
always learns how a job ended.
"""

from __future__ import annotations

import collections
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .engine_path import import_engine

Event = dict[str, Any]
RunJob = Callable[[dict[str, Any], Callable[[], bool]], Iterable[Event]]

wire = import_engine("wire")  # the protocol both ends import (torch-free)
TERMINAL = wire.TERMINAL
error_event = wire.error_event
KILL_AFTER_S = 10.0  # a cancelled worker that has not stopped by then is killed


class Job:
    """Common handle: a queue of events, a cancel flag, and the terminal-event bookkeeping."""

    runner = "?"

    def __init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self._cancel = threading.Event()
        self._terminal_queued = threading.Event()
        self._terminal_seen = False
        self._lock = threading.Lock()
        self._owned: list[Path] = []  # input files made for this job, removed when it is closed

    # -- consumer side (Blender's main thread) --------------------------------------------
    def poll(self, limit: int | None = None) -> list[Event]:
        """Events that arrived since the last call, oldest first; never blocks."""
        out: list[Event] = []
        while limit is None or len(out) < limit:
            try:
                ev = self._events.get_nowait()
            except queue.Empty:
                break
            out.append(ev)
            if ev.get("event") in TERMINAL:
                self._terminal_seen = True
                break
        return out

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the terminal event has been queued (not necessarily polled)."""
        return self._terminal_queued.wait(timeout)

    @property
    def finished(self) -> bool:
        """The terminal event has been handed out by ``poll``."""
        return self._terminal_seen

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Ask the job to stop after its current step; calling it again changes nothing."""
        self._cancel.set()

    def own(self, path: str | os.PathLike) -> None:
        """Remove this file or folder (the job's input images) once the job is closed.

        The engine reads its inputs when it starts, but only the job knows when it has really
        stopped: closing it is the one moment when nothing can still be reading them.
        """
        self._owned.append(Path(path))

    def close(self, timeout: float = 5.0) -> None:
        """Stop the job if it still runs and release its resources and owned files (idempotent)."""
        self._stop(timeout)
        owned, self._owned = self._owned, []
        for path in owned:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def _stop(self, timeout: float) -> None:
        self.cancel()
        self.wait(timeout)

    # -- producer side (runner threads) -----------------------------------------------------
    def _put(self, ev: Event) -> bool:
        """Queue an event; refuses anything after the terminal event. True if queued."""
        with self._lock:
            if self._terminal_queued.is_set():
                return False
            self._events.put(ev)
            if ev.get("event") in TERMINAL:
                self._terminal_queued.set()
            return True


class InProcessJob(Job):
    """``run_job`` on a daemon thread of this process; cancel is the engine's ``should_stop``."""

    runner = "in-process"

    def __init__(self, request: dict[str, Any], run_job: RunJob) -> None:
        super().__init__()
        self._thread = threading.Thread(target=self._run, args=(request, run_job), name="clipdraw-job",
                                        daemon=True)
        self._thread.start()

    def _run(self, request: dict[str, Any], run_job: RunJob) -> None:
        try:
            for ev in run_job(request, self._cancel.is_set):
                if not self._put(ev):
                    break
        except BaseException as e:  # run_job promises not to raise; a bug still must end the job
            self._put(error_event("internal", f"{type(e).__name__}: {str(e).strip()[:300]}"))
        finally:
            self._put(error_event("internal", "the engine stopped without a final event"))

    def _stop(self, timeout: float) -> None:
        super()._stop(timeout)
        self._thread.join(timeout)


def worker_environment(engine_root: str | os.PathLike, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for the worker: ``engine_root`` importable, nothing of Blender's Python leaking in."""
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(engine_root)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class SubprocessJob(Job):
    """``python -m synth_core.worker`` in another interpreter, JSON lines both ways.

    Cancel writes ``wire.CANCEL_LINE`` to the worker's stdin (the worker stops after the current
    step and sends its final snapshot and ``done``); a worker that has not stopped ``kill_after``
    seconds later is killed. A worker that exits without a final event becomes an ``error``
    event whose message carries the exit code and the last line of its stderr.
    """

    runner = "subprocess"

    def __init__(self, request: dict[str, Any], python: str, engine_root: str | os.PathLike,
                 kill_after: float = KILL_AFTER_S, module: str = "synth_core.worker",
                 env: dict[str, str] | None = None) -> None:
        super().__init__()
        self.python = str(python)
        self._kill_after = kill_after
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._last_step = 0
        self._stdin_lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        try:
            self.process = self._spawn(module, engine_root, env)
        except OSError as e:
            self._put(error_event("worker_missing", f"cannot start the worker Python {self.python!r}: "
                                  f"{e.strerror or e} (set the interpreter in the add-on's preferences)"))
            return
        self._send(wire.encode(request))
        threading.Thread(target=self._read_stderr, name="clipdraw-stderr", daemon=True).start()
        threading.Thread(target=self._read_stdout, name="clipdraw-stdout", daemon=True).start()

    def _spawn(self, module: str, engine_root: str | os.PathLike, env: dict[str, str] | None) -> subprocess.Popen:
        if not self.python or not Path(self.python).is_file():
            raise FileNotFoundError(2, "no such file")
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        else:
            kwargs["start_new_session"] = True  # a Ctrl-C in Blender's terminal is Blender's to handle
        return subprocess.Popen(
            [self.python, "-u", "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=str(engine_root), env=env or worker_environment(engine_root),
            text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs,
        )

    def _send(self, line: str) -> bool:
        """Write one wire line (it ends with a newline) to the worker's stdin."""
        proc = self.process
        if proc is None or proc.stdin is None:
            return False
        with self._stdin_lock:
            try:
                proc.stdin.write(line)
                proc.stdin.flush()
                return True
            except (OSError, ValueError):  # the worker is gone; the stdout reader reports it
                return False

    def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            if line.strip():
                self._stderr_tail.append(line.rstrip())

    def _read_stdout(self) -> None:
        proc = self.process
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            if not line.strip():
                continue
            try:
                ev = wire.decode(line)
            except wire.BadRequest:  # not a wire line: keep it as a clue to what went wrong
                self._stderr_tail.append(f"(stdout) {line.strip()[:200]}")
                continue
            if isinstance(ev, dict) and "event" in ev:
                if isinstance(ev.get("step"), int):
                    self._last_step = ev["step"]
                self._put(ev)
        code = proc.wait()
        time.sleep(0.05)  # let the stderr reader catch the last lines
        self._put(self._ending_without_event(code))

    def _ending_without_event(self, code: int) -> Event:
        if self._cancel.is_set():  # killed after a cancel: the caller keeps the last snapshot
            return {"event": "done", "step": self._last_step, "cancelled": True, "drawing": None}
        tail = [ln for ln in self._stderr_tail if ln.strip()]
        last = tail[-1].strip() if tail else "no message"
        text = "\n".join(tail)
        missing = re.findall(r"No module named '([^'.]+)", text)
        if missing:
            return error_event("worker_missing", f"the worker Python {self.python} cannot import {missing[-1]}: in "
                               "Blender use 'Set Up the Engine' in the add-on's preferences; headless, give "
                               "scripts/render.py --python PATH of a Python with the engine's requirements")
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return error_event("worker_died", f"the worker {how} before finishing: {last[:300]}")

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr_tail)

    def cancel(self) -> None:
        first = not self._cancel.is_set()
        super().cancel()
        if not first or self.process is None:
            return
        self._send(wire.CANCEL_LINE)
        timer = threading.Timer(self._kill_after, self._kill)
        timer.daemon = True
        timer.start()

    def _kill(self) -> None:
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()

    def _stop(self, timeout: float) -> None:
        super()._stop(timeout)
        proc = self.process
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def iterate(job: Job, interval: float = 0.05, timeout: float | None = None) -> Iterator[Event]:
    """All events of ``job`` until its terminal one, blocking (scripts and tests)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not job.finished:
        events = job.poll()
        if events:
            yield from events
            continue
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError("the job did not finish in time")
        time.sleep(interval)
