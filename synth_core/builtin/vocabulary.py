"""The built-in model's world in words: six shapes, five colours, and how a caption is written.

Its own small module so that the tokenizer, the judge and the package import the vocabulary
without the procedural generator (``shapes``) that draws the training images.
"""

from __future__ import annotations

SHAPES = ("circle", "square", "triangle", "star", "cross", "line")
COLOURS = ("red", "green", "blue", "yellow", "black")
SCRIBBLE = "scribble"  # the shape word of a drawing that shows none of the shapes
NONE = len(SHAPES)  # shape index of a scribble
NO_COLOUR = -1  # colour index of a mess of random colours (no colour to learn)


def caption(colour: str, shape: str) -> str:
    """The canonical prompt of a class, e.g. ``caption("red", "circle") == "a red circle"``."""
    return f"a {colour} {shape}"
