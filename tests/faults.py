"""Fault injection shared by the engine tests: encoders that go wrong on purpose."""

from __future__ import annotations


class NanAt:
    """The wrapped encoder's image embedding is NaN on chosen calls (1-based)."""

    def __init__(self, inner, bad_calls):
        self.inner, self.bad, self.calls = inner, set(bad_calls), 0
        self.input_size, self.device = inner.input_size, inner.device

    def __getattr__(self, name):  # everything else is the wrapped encoder's (label, default_negatives, ...)
        return getattr(self.inner, name)

    def encode_text(self, texts):
        return self.inner.encode_text(texts)

    def encode_image(self, images):
        self.calls += 1
        out = self.inner.encode_image(images)
        return out * float("nan") if self.calls in self.bad else out
