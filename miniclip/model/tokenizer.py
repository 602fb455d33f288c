"""The tokenizer: captions to token ids and back, one id per lower-cased word.

A caption is lower-cased and cut into words with the regular expression ``[^\\W_]+``: a run
of letters or digits (of any script). Everything else — spaces, punctuation, apostrophes,
underscores — separates words and is dropped, so ``"A dog's ball!"`` gives
``["a", "dog", "s", "ball"]``. The text of a caption can therefore never spell a special token.

The vocabulary is built from a caption corpus: four special tokens first, then the words by
falling frequency, ties broken alphabetically (so the same corpus always gives the same ids)::

    0 <pad>    fills a row up to the context length; the mask is 0 there
    1 <unk>    any word not in the vocabulary
    2 <start>  opens every caption
    3 <end>    closes every caption (the text transformer may pool its output here)
    4 ...      the most frequent word, and so on

A batch is an (N, L) array of ids and an (N, L) mask, 1 on real tokens (start and end
included) and 0 on padding::

    "a dog runs", L = 6   →   ids  [2, 5, 9, 7, 3, 0]      mask [1, 1, 1, 1, 1, 0]

A caption longer than L keeps its start token and its first L − 2 words, and ends with
``<end>`` as the last token. The vocabulary is saved as JSON (never pickle).

Lesson 05 builds a vocabulary and a batch with it.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from miniclip.atomic import json_text, write_text

WORD = re.compile(r"[^\W_]+")  # a run of letters or digits; everything else separates words
PAD, UNK, START, END = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<start>", "<end>")
FORMAT, VERSION = "miniclip-tokenizer", 1


def words(caption: str) -> list[str]:
    """Lower-case ``caption`` and split it into words, dropping punctuation."""
    if not isinstance(caption, str):
        raise ValueError(f"a caption must be a str, got {type(caption).__name__}: {caption!r}")
    return WORD.findall(caption.lower())


def indistinct(
    names: Sequence[str], encode: Callable[[str], Sequence[Any]] = words
) -> tuple[str | None, tuple[str, str] | None]:
    """Names a tokenizer cannot tell apart: the first it encodes to nothing, and the first pair it encodes alike.

    ``encode`` is what the tokenizer makes of a name: :func:`words` for this word tokenizer (the
    default; its ids follow from the words), a byte-pair tokenizer's ``encode`` for CLIP's.
    Returns ``(wordless, same)``: ``wordless`` is the first of ``names`` that ``encode`` turns
    into nothing (here ``"!!!"`` or an emoji; with byte pairs only blank text), ``same`` the first
    pair ``(earlier, later)``, in the order of ``names``, that it turns into the same sequence
    (here ``"Cat"`` and ``"cat"``, ``"c++"`` and ``"c#"``; with byte pairs ``"Cat"`` and ``" cat "``,
    as it lower-cases and drops spaces); either is ``None`` when there is none. Wordless names are
    not paired with each other: having no tokens is what is wrong with them. Captions or prompts
    made from such names would be identical (or say nothing), so a model could never tell their
    classes apart.
    """
    if isinstance(names, str):
        raise ValueError("indistinct takes a list of names, not one string")
    wordless: str | None = None
    same: tuple[str, str] | None = None
    seen: dict[tuple[Any, ...], str] = {}
    for name in names:
        key = tuple(encode(name))
        if not key:
            wordless = name if wordless is None else wordless
        elif key in seen:
            same = (seen[key], name) if same is None else same
        else:
            seen[key] = name
    return wordless, same


def check_saved_form(data: Any, form: str, version: int, what: str, source: str) -> None:
    """Raise ``ValueError`` unless ``data`` is a dict saved as ``form``, ``version`` (a tokenizer's JSON form).

    ``what`` names the kind in the message (``"miniclip tokenizer file"``), ``source`` where it came from.
    """
    if not isinstance(data, dict) or data.get("format") != form:
        raise ValueError(f'{source} is not a {what} (expected "format": "{form}")')
    if data.get("version") != version:
        raise ValueError(f"{source}: {what} version {data.get('version')!r} is not supported (want {version})")


class Tokenizer:
    """A word-level vocabulary: ``tokens[i]`` is the word (or special token) with id ``i``."""

    def __init__(self, tokens: Sequence[str]) -> None:
        tokens = list(tokens)
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the special tokens {SPECIALS}, got {tokens[:4]}")
        if not all(isinstance(t, str) and t for t in tokens):
            raise ValueError("every token must be a non-empty str")
        if len(set(tokens)) != len(tokens):
            duplicates = sorted(t for t, c in Counter(tokens).items() if c > 1)
            raise ValueError(f"the vocabulary repeats tokens: {duplicates[:10]}")
        self.tokens = tokens
        self.ids = {t: i for i, t in enumerate(tokens)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1, max_size: int | None = None) -> Tokenizer:
        """Count the words of ``captions``; keep those seen ``min_count`` times or more.

        ``max_size`` caps ``vocab_size`` (special tokens included) by dropping the rarest words.
        """
        if isinstance(captions, str):
            raise ValueError("captions must be a list of strings, not one string")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(f"max_size must be at least {len(SPECIALS)} (the special tokens), got {max_size}")
        counts = Counter(w for caption in captions for w in words(caption))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls([*SPECIALS, *kept])

    @property
    def vocab_size(self) -> int:
        """Rows the embedding table needs: special tokens plus words."""
        return len(self.tokens)

    def encode(self, caption: str) -> list[int]:
        """``<start>``, one id per word (``<unk>`` for unknown words), ``<end>``."""
        return [START, *(self.ids.get(w, UNK) for w in words(caption)), END]

    def encode_batch(self, captions: Sequence[str], context_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Encode, truncate and pad: ids (N, L) int64 and mask (N, L) float32, 1 on real tokens."""
        if isinstance(captions, str):
            raise ValueError("encode_batch takes a list of captions, not one string")
        if context_length < 2:
            raise ValueError(f"context_length must be >= 2 (room for <start> and <end>), got {context_length}")
        ids = np.full((len(captions), context_length), PAD, dtype=np.int64)  # (N, L)
        mask = np.zeros((len(captions), context_length), dtype=np.float32)  # (N, L)
        for n, caption in enumerate(captions):
            row = self.encode(caption)
            if len(row) > context_length:
                row = row[: context_length - 1] + [END]  # keep <start>, cut words, end with <end>
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1.0
        return ids, mask

    def decode(self, ids: Iterable[int]) -> str:
        """The words of ``ids`` joined by spaces; padding, start and end are skipped, unknowns shown as <unk>."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size - 1}]")
            if i not in (PAD, START, END):
                out.append(self.tokens[i])
        return " ".join(out)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically (:func:`~miniclip.atomic.write_atomically`)."""
        write_text(path, json_text(self.to_dict(), ensure_ascii=False, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Read a vocabulary written by :meth:`save`; a file of any other kind raises ``ValueError``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a miniclip tokenizer file (not valid JSON: {exc})") from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as :meth:`save` writes it and a checkpoint embeds it."""
        return {"format": FORMAT, "version": VERSION, "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "tokenizer") -> Tokenizer:
        """Rebuild from :meth:`to_dict`'s form; ``source`` names where it came from in error messages."""
        check_saved_form(data, FORMAT, VERSION, "miniclip tokenizer file", source)
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            raise ValueError(f'{source}: "tokens" must be a list of strings')
        try:
            return cls(tokens)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
