"""The event protocol between the engine and its users, pinned in one place both ends import.

Standard library only (the Blender add-on imports it without torch). Events are JSON objects,
one per line on a worker's stdout; their kinds form a closed, versioned set: the ``started``
event carries ``PROTOCOL_VERSION``, a request may name the version it speaks, and each end checks
the other's. A kind this version does not know is reported as a warning, never silently dropped.
The only control line a running worker reads is ``CANCEL_LINE``.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import BadRequest

# 2: ``started`` carries the version; the final drawing comes only with ``done``
# 3: ``stage`` (a rung of a ladder, a keyed prompt's drawing); snapshots may carry a timeline ``frame``
PROTOCOL_VERSION = 3

STARTED, WARNING, PROGRESS, SNAPSHOT, STAGE, DONE, ERROR = (
    "started", "warning", "progress", "snapshot", "stage", "done", "error")
EVENT_KINDS = frozenset({STARTED, WARNING, PROGRESS, SNAPSHOT, STAGE, DONE, ERROR})
TERMINAL = frozenset({DONE, ERROR})  # every job ends with exactly one of these; nothing follows it
ERROR_KINDS = ("bad_request", "missing_weights", "internal")

CANCEL = {"cancel": True}
CANCEL_LINE = json.dumps(CANCEL) + "\n"

MAX_REQUEST_BYTES = 1 << 20  # a request is settings and paths: a megabyte is far more than enough


def error_event(kind: str, message: str) -> dict[str, Any]:
    return {"event": ERROR, "kind": kind, "message": message}


def encode(event: dict[str, Any]) -> str:
    """One wire line (strict JSON: no NaN or Infinity, which other readers refuse)."""
    return json.dumps(event, separators=(",", ":"), allow_nan=False) + "\n"


def decode(line: str | bytes) -> Any:
    """Parse one JSON line; BadRequest (one line) for anything that is not readable JSON."""
    if len(line) > MAX_REQUEST_BYTES:
        raise BadRequest(f"the line is {len(line)} bytes long: at most {MAX_REQUEST_BYTES}")
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise BadRequest(f"not a JSON line: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise BadRequest("not a usable JSON line: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as e:  # bad bytes, or an integer with too many digits
        raise BadRequest(f"not a usable JSON line: {str(e).splitlines()[0][:120]}") from None


def is_cancel(message: Any) -> bool:
    return isinstance(message, dict) and message.get("cancel") is True


def check_request_protocol(version: Any) -> None:
    """A request may name the protocol it speaks; another version than ours is refused."""
    if version is None or version == PROTOCOL_VERSION:
        return
    raise BadRequest(f"the request speaks protocol {version!r} but this engine speaks {PROTOCOL_VERSION}: "
                     "update the add-on and the engine together")


def started_problem(event: dict[str, Any]) -> str | None:
    """Why a ``started`` event comes from an engine this end cannot follow, or None."""
    version = event.get("protocol")
    if version == PROTOCOL_VERSION:
        return None
    return (f"the engine speaks protocol {version if version is not None else 1} but the add-on speaks "
            f"{PROTOCOL_VERSION}: reinstall the extension (or point the worker at the engine it ships with)")


def unknown_kind(event: Any) -> str | None:
    """A warning text for an event this protocol version does not define, or None."""
    kind = event.get("event") if isinstance(event, dict) else None
    if kind in EVENT_KINDS:
        return None
    return f"ignored an engine event of unknown kind {str(kind)[:40]!r} (protocol {PROTOCOL_VERSION})"
