"""Learning BPE merges by hand: how CLIP's merge list was made, on a few captions.

The captions are cleaned and cut into pieces exactly as :mod:`miniclip.model.bpe` does
(:func:`~miniclip.model.bpe.pre_tokenize`), and the pieces are counted. Each distinct piece is a
tuple of symbols — its UTF-8 bytes as visible characters, the last carrying ``</w>``::

    "the cat sat on the mat"   →   (t, h, e</w>) ×2   (c, a, t</w>)   (s, a, t</w>)   (o, n</w>)   (m, a, t</w>)

Then, over and over:

1. count every adjacent pair of symbols, each occurrence weighted by how often its piece occurs
   (``(a, t</w>)`` occurs 3 times above, ``(t, h)`` and ``(h, e</w>)`` twice);
2. the most frequent pair is the next merge; a tie goes to the smallest pair in Python's order
   of string tuples (by code point), so the same captions always give the same merges;
3. join that pair everywhere into one symbol (``a t</w>`` → ``at</w>``) and go back to 1.

It stops after ``num_merges`` merges, or earlier when no pair occurs twice (a merge seen once
teaches nothing about other text). The first merges join the most common letter pairs; later
ones join those into whole frequent words, which is why a frequent word ends as one token and
a rare one as several. ``BPETokenizer.from_merges(learn_merges(...))`` is then a working
tokenizer with a vocabulary of its own. This is the plain version, recounting all pairs
after every merge; CLIP learned 48,894 merges this way from far more text.

Lesson 15 learns merges with it on CIFAR-10's captions, counting the first pair by hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import pairwise

from miniclip.model.bpe import END, END_OF_WORD, START, byte_chars, pre_tokenize


def piece_symbols(piece: str) -> tuple[str, ...]:
    """The starting symbols of one piece: its bytes as characters, ``</w>`` on the last."""
    chars = byte_chars(piece)
    return (*chars[:-1], chars[-1] + END_OF_WORD)


def count_pairs(words: dict[tuple[str, ...], int]) -> Counter[tuple[str, str]]:
    """How often each adjacent pair of symbols occurs, each word counted as often as it occurs."""
    pairs: Counter[tuple[str, str]] = Counter()
    for symbols, count in words.items():
        for pair in pairwise(symbols):
            pairs[pair] += count
    return pairs


def merge_pair(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    """``symbols`` with every occurrence of ``pair`` joined into one symbol, left to right."""
    merged: list[str] = []
    i = 0
    while i < len(symbols):
        if symbols[i : i + 2] == pair:
            merged.append(pair[0] + pair[1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return tuple(merged)


def learn_merges(captions: Sequence[str], num_merges: int) -> list[tuple[str, str]]:
    """Up to ``num_merges`` merges, most frequent pair first (ties: smallest pair), from ``captions``."""
    if isinstance(captions, str):
        raise ValueError("learn_merges takes a list of captions, not one string")
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0, got {num_merges}")
    pieces = Counter(piece for caption in captions for piece in pre_tokenize(caption) if piece not in (START, END))
    words = {piece_symbols(piece): count for piece, count in pieces.items()}
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        pairs = count_pairs(words)
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))  # most frequent, then smallest
        if pairs[best] < 2:
            break  # no pair occurs twice
        merges.append(best)
        words = {merge_pair(symbols, best): count for symbols, count in words.items()}
    return merges
