"""A word-level tokenizer for the built-in model (an offline stand-in for CLIP, not CLIP).

The model knows a closed world of five colours and six shapes, so a fixed vocabulary of those
words plus a few fillers ("a drawing of a ...") is enough; any other word becomes <unk>.
Lower-cased, punctuation dropped, simple plurals ("circles") folded to the known singular.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch

from .vocabulary import COLOURS, SCRIBBLE, SHAPES

PAD, SOT, EOT, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<sot>", "<eot>", "<unk>")
FILLERS = ("a", "an", "the", "of", "drawing", "sketch", "picture", "painting", "simple", "and", "with", "shape",
           "on", "white", "background", "in", "one", "small", "big")
VOCAB: tuple[str, ...] = (*SPECIALS, *FILLERS, *COLOURS, *SHAPES, SCRIBBLE)
INDEX = {w: i for i, w in enumerate(VOCAB)}
CONTEXT_LENGTH = 16  # start and end tokens included


def words(text: str) -> list[str]:
    """Lower-case words, punctuation and digits dropped; known plurals folded to the singular."""
    out = []
    for w in re.findall(r"[a-z]+", text.lower()):
        if w not in INDEX and w.endswith("s") and w[:-1] in INDEX:
            w = w[:-1]
        elif w not in INDEX and w.endswith("es") and w[:-2] in INDEX:
            w = w[:-2]
        out.append(w)
    return out


def count_tokens(text: str) -> int:
    """Tokens ``text`` needs, start/end included (the engine warns above ``CONTEXT_LENGTH``)."""
    return len(words(text)) + 2


def unknown_words(text: str) -> list[str]:
    """Words of ``text`` outside the vocabulary, in order, each once (they all read as <unk>)."""
    return list(dict.fromkeys(w for w in words(text) if w not in INDEX))


def tokenize(texts: Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """[T, context_length] ids: <sot> words <eot> <pad>...; over-long texts keep their first words."""
    out = torch.full((len(texts), context_length), PAD, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [INDEX.get(w, UNK) for w in words(text)][: context_length - 2]
        row = [SOT, *ids, EOT]
        out[i, : len(row)] = torch.tensor(row)
    return out
