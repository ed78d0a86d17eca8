"""Errors the engine raises on purpose; each message is one line that says what to do."""

from __future__ import annotations


class SynthError(Exception):
    """Base class; ``kind`` is the event ``error.kind`` on the wire."""

    kind = "internal"


class BadRequest(SynthError, ValueError):
    """The job request is invalid (empty prompt, out-of-range numbers, unknown keys...)."""

    kind = "bad_request"


class MissingWeights(SynthError):
    """Model weights are not on this machine and cannot be downloaded."""

    kind = "missing_weights"
