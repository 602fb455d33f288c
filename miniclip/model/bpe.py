"""The real tokenizer: OpenAI CLIP's byte-pair encoding (BPE), written out.

The word tokenizer (:mod:`miniclip.model.tokenizer`) gives every word its own id and every
other word ``<unk>``. CLIP instead cuts text into *sub-word* pieces from a fixed list of
49,408 tokens, so that any text at all — a typo, a name, Greek, an emoji — has an encoding,
while the words it read most often are a single token each.

**Bytes as visible characters.** Text is first turned into its UTF-8 bytes, so 256 symbols
are enough to spell anything. The merges (below) are stored as text, one pair per line
separated by a space, so every byte needs a character that can be read and written back
unharmed — not a space, not a control character, not an invisible one. :func:`bytes_to_unicode`
keeps the 188 printable bytes as themselves (``a`` is ``a``) and moves the other 68 to
``chr(256)``, ``chr(257)``, … in byte order: the space (byte 32) becomes ``Ġ``, the newline ``Ċ``.

**Cleaning** (:func:`clean`), as OpenAI does it: ``ftfy.fix_text`` repairs broken text
(mojibake such as ``"cafÃ©"``, curly quotes) where the ``ftfy`` package is installed
(:data:`FTFY`); HTML entities are unescaped twice (``"&amp;amp;"`` → ``"&"``); runs of
whitespace become one space; the ends are stripped; everything is lower-cased.

**Pre-tokenising** (:data:`PATTERN`) cuts the clean text into pieces that BPE never merges
across; whitespace separates pieces and is dropped::

    <|startoftext|> <|endoftext|>   the special tokens, should the text spell them
    's 't 're 've 'm 'll 'd         English contractions: "it's" → "it", "'s" (any case: IGNORECASE)
    [\\p{L}]+                        a run of letters of any script: "café", "кошка", "猫"
    [\\p{N}]                         a single digit: "2024" → "2", "0", "2", "4"
    [^\\s\\p{L}\\p{N}]+                a run of anything else: "...", "!?", "🐱", "&"

Combining marks (``\\p{M}``) are not letters, so a Devanagari word breaks at its signs:
``"नमस्ते"`` → ``"नमस"``, ``"्"``, ``"त"``, ``"े"``; ftfy first composes ``"e"`` + ``"\\u0301"`` into ``"é"``.

**Byte-pair encoding** of one piece (:func:`bpe`): its bytes, as characters, are the starting
symbols, and the last one carries the end-of-word mark ``</w>`` (so ``"cat"`` at the end of a
word differs from ``"cat"`` inside ``"catalog"``). The merge list is ranked: merge 0 was the
most frequent adjacent pair in the text the vocabulary was learned from, and so on. Repeatedly the adjacent pair
with the lowest rank is joined into one symbol, everywhere it occurs, until no adjacent pair
is in the list::

    c a t</w>   →   c at</w>   →   cat</w>                      merges 24 and 1,856: one token, id 2368
    a x o l o t l</w>  →  a x o lo t l</w>  →  ax o lo t l</w>  →  ax o lot l</w>     four tokens

**Why "cat" is one token and a rare word several.** The merges were learned by counting pairs
in a large body of English text (OpenAI does not say which; :mod:`miniclip.model.bpe_training`
does the same on a small scale, on miniclip's captions): a frequent word is joined step by
step until it is a single symbol, so ``"cat"``, ``"dog"`` and ``"photo"`` each end as one
token. A rare word such as ``"axolotl"`` was never counted often enough to be merged whole, so
it stays in the frequent pieces it is made of.

**The vocabulary** (:meth:`BPETokenizer.from_merges`) lists the 256 byte characters, then the
same 256 with ``</w>``, then the result of each merge in rank order, then ``<|startoftext|>``
and ``<|endoftext|>``: 256 + 256 + 48,894 + 2 = 49,408 tokens for CLIP. A batch row is
``<|startoftext|>``, the tokens, ``<|endoftext|>`` and zero padding, as OpenAI and open_clip pad
(id 0 is also the token ``"!"``: the mask, not the id, tells padding apart).

A word cache keeps each distinct piece's tokens, so a word is merged once however many
captions hold it. Lesson 15 (``lessons/15_the_real_tokenizer.py``) takes the tokenizer apart.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import regex

from miniclip.atomic import json_text, strict_json, write_text
from miniclip.model.tokenizer import check_saved_form

try:
    import ftfy
except ImportError:  # optional: `pip install ftfy` (the `pretrained` and `reference` extras)
    ftfy = None

FTFY = ftfy is not None  # whether clean() repairs broken text with ftfy.fix_text, as OpenAI's tokenizer does
WITHOUT_FTFY = "ftfy is not installed, so broken text (mojibake, curly quotes) is not repaired before tokenising"

START, END = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
NUM_MERGES = 49152 - 256 - 2  # the merges CLIP uses: the first 48,894 of the 262,144 OpenAI's file holds
FORMAT, VERSION = "miniclip-bpe-tokenizer", 1

PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


def openai_vocab_file() -> Path | None:
    """OpenAI's ``bpe_simple_vocab_16e6.txt.gz`` where ``open_clip_torch`` ships a copy, or None; nothing is imported.

    miniclip downloads no vocabulary: a released model's folder brings its own (``vocab.json`` and
    ``merges.txt``), and where open_clip is installed its copy of OpenAI's file is read from disk
    (``import open_clip`` itself is not needed, and can fail against some PyTorch builds).
    """
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "bpe_simple_vocab_16e6.txt.gz"
    return path if path.is_file() else None


def bytes_to_unicode() -> dict[int, str]:
    """The visible character standing for each byte: printable bytes first (as themselves), then the rest.

    Bytes ``!``..``~``, ``¡``..``¬`` and ``®``..``ÿ`` are their own characters; the 68 others
    (space, control characters, the soft hyphen) get ``chr(256 + n)`` in byte order. The
    dictionary's order is the vocabulary's: ``"!"`` has id 0, ``"a"`` id 64.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + n) for n, b in enumerate(others)})
    return table


BYTE_CHAR = bytes_to_unicode()  # byte → character
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}  # character → byte


def clean(text: str) -> str:
    """CLIP's cleaning: ftfy (if installed), HTML unescaped twice, whitespace collapsed, stripped, lower case."""
    if not isinstance(text, str):
        raise ValueError(f"a caption must be a str, got {type(text).__name__}: {text!r}")
    if ftfy is not None:
        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    return " ".join(text.split()).lower()


def pre_tokenize(text: str) -> list[str]:
    """The pieces of the cleaned ``text`` that BPE encodes one by one (see :data:`PATTERN`)."""
    return PATTERN.findall(clean(text))


def byte_chars(piece: str) -> str:
    """``piece``'s UTF-8 bytes, each written as its visible character: ``"é"`` → ``"Ã©"``."""
    return "".join(BYTE_CHAR[b] for b in piece.encode("utf-8"))


def bpe(chars: str, ranks: Mapping[tuple[str, str], int]) -> list[str]:
    """Merge the characters of one piece (from :func:`byte_chars`) into symbols, lowest-ranked pair first."""
    symbols = [*chars[:-1], chars[-1] + END_OF_WORD]
    while len(symbols) > 1:
        best = min(pairwise(symbols), key=lambda pair: ranks.get(pair, math.inf))  # one dict lookup per pair
        if best not in ranks:
            break  # no adjacent pair is a merge: done
        merged: list[str] = []
        i = 0
        while i < len(symbols):  # join every occurrence of `best`, left to right
            if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                merged.append(symbols[i] + symbols[i + 1])
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


class BPETokenizer:
    """CLIP's byte-pair tokenizer: ``tokens[i]`` is the symbol with id ``i``, ``merges`` the ranked pairs."""

    def __init__(self, tokens: Sequence[str], merges: Sequence[tuple[str, str]]) -> None:
        tokens = list(tokens)
        if not all(isinstance(t, str) and t for t in tokens):
            raise ValueError("every token must be a non-empty str")
        ids = {t: i for i, t in enumerate(tokens)}
        if len(ids) != len(tokens):
            repeated = sorted(t for t, count in Counter(tokens).items() if count > 1)
            raise ValueError(f"the vocabulary repeats tokens: {repeated[:5]}")
        for special in (START, END):
            if special not in ids:
                raise ValueError(f"the vocabulary has no {special} token")
        missing = [c + end for end in ("", END_OF_WORD) for c in BYTE_CHAR.values() if c + end not in ids]
        if missing:
            raise ValueError(f"the vocabulary lacks byte symbols, e.g. {missing[:3]} ({len(missing)} missing)")
        for text in tokens:
            if text not in (START, END) and any(c not in CHAR_BYTE for c in text.removesuffix(END_OF_WORD)):
                raise ValueError(f"token {text!r} is not made of byte characters (bytes_to_unicode)")
        for rank, m in enumerate(_check_pairs(merges)):
            if m[0] not in ids or m[1] not in ids or m[0] + m[1] not in ids:
                raise ValueError(f"merge {rank} ({m[0]} {m[1]}) uses or makes a symbol that is not in the vocabulary")
        self.tokens = tokens
        self.ids = ids
        self.merges = [(a, b) for a, b in merges]
        self.ranks = {m: rank for rank, m in enumerate(merges)}
        self.start_id, self.end_id = ids[START], ids[END]
        self.cache: dict[str, list[int]] = {START: [self.start_id], END: [self.end_id]}  # piece → its ids

    @classmethod
    def from_merges(cls, merges: Iterable[tuple[str, str]], vocab: Mapping[str, int] | None = None) -> BPETokenizer:
        """A tokenizer from ranked merges; the vocabulary built the OpenAI way unless ``vocab`` (token → id) is given.

        OpenAI's way: the 256 byte characters, the same with ``</w>``, each merge's result in
        rank order (one already listed is not listed again), then the start and end tokens.
        """
        merges = _check_pairs(list(merges))
        if vocab is None:
            tokens = list(BYTE_CHAR.values())
            tokens += [c + END_OF_WORD for c in tokens]
            seen = set(tokens)
            for m in merges:
                joined = "".join(m)
                if joined not in seen:
                    tokens.append(joined)
                    seen.add(joined)
            return cls([*tokens, START, END], merges)
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError(f"the vocabulary's ids must be 0..{len(vocab) - 1}, each once")
        return cls(sorted(vocab, key=vocab.__getitem__), merges)

    @classmethod
    def from_openai_vocab(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read OpenAI's ``bpe_simple_vocab_16e6.txt.gz``: a header line, then merges ``a b``, one a line."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: no such file (OpenAI's bpe_simple_vocab_16e6.txt.gz)")
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                lines = f.read().split("\n")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a gzip-compressed UTF-8 merges file ({exc})") from None
        if len(lines) < NUM_MERGES + 1:
            raise ValueError(f"{path} holds {max(len(lines) - 1, 0)} merge lines, expected at least {NUM_MERGES}")
        merges = [_parse_merge(line, f"{path}, line {n}") for n, line in enumerate(lines[1 : NUM_MERGES + 1], 2)]
        try:
            return cls.from_merges(merges)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def from_hf_folder(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a Hugging Face CLIP folder: ``vocab.json`` (token → id) and ``merges.txt`` (``#version`` header)."""
        folder = Path(path)
        vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
        for file in (vocab_file, merges_file):
            if not file.is_file():
                raise ValueError(f"{file}: no such file (a Hugging Face CLIP folder has vocab.json and merges.txt)")
        try:
            vocab = strict_json(vocab_file.read_text(encoding="utf-8"))
        except ValueError as exc:  # not UTF-8, not JSON, NaN, a token given twice
            raise ValueError(f"{vocab_file} is not valid JSON ({exc})") from None
        if not isinstance(vocab, dict) or not all(isinstance(i, int) for i in vocab.values()):
            raise ValueError(f"{vocab_file} must map each token to an integer id")
        for special in (START, END):
            if special not in vocab:
                raise ValueError(f"{vocab_file} has no {special} token")
        try:
            lines = merges_file.read_text(encoding="utf-8").split("\n")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{merges_file} is not UTF-8 text ({exc})") from None
        numbered = [(n, line) for n, line in enumerate(lines, 1) if line and not line.startswith("#version")]
        merges = [_parse_merge(line, f"{merges_file}, line {n}") for n, line in numbered]
        try:
            return cls.from_merges(merges, vocab)
        except ValueError as exc:
            raise ValueError(f"{folder}: {exc}") from None

    @property
    def vocab_size(self) -> int:
        """Rows the embedding table needs: 49,408 for CLIP."""
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """The token ids of ``text``, without start and end tokens."""
        ids: list[int] = []
        for piece in pre_tokenize(text):
            if piece not in self.cache:
                self.cache[piece] = [self.ids[s] for s in bpe(byte_chars(piece), self.ranks)]
            ids.extend(self.cache[piece])
        return ids

    def encode_batch(self, captions: Sequence[str], context_length: int = 77) -> tuple[np.ndarray, np.ndarray]:
        """Encode, truncate and pad: ids (N, L) int64 and mask (N, L) float32, 1 from start to end token.

        A caption too long for L keeps its first L − 1 tokens (start included) and ends with the end token.
        """
        if isinstance(captions, str):
            raise ValueError("encode_batch takes a list of captions, not one string")
        if context_length < 2:
            raise ValueError(f"context_length must be >= 2 (room for start and end tokens), got {context_length}")
        ids = np.zeros((len(captions), context_length), dtype=np.int64)  # (N, L), padding 0 as OpenAI's
        mask = np.zeros((len(captions), context_length), dtype=np.float32)  # (N, L)
        for n, caption in enumerate(captions):
            row = [self.start_id, *self.encode(caption), self.end_id]
            if len(row) > context_length:
                row = row[: context_length - 1] + [self.end_id]
            ids[n, : len(row)] = row
            mask[n, : len(row)] = 1.0
        return ids, mask

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``: stops at the first end token (padding follows it), drops start tokens.

        Each ``</w>`` becomes a space; bytes that are not whole UTF-8 characters become ``�``.
        The text is the *cleaned* one: lower case, single spaces, and a space wherever a piece ended.
        """
        out = bytearray()
        for i in np.asarray(ids).reshape(-1).tolist():
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {self.vocab_size - 1}]")
            if i == self.end_id:
                break
            if i != self.start_id:
                symbol = self.tokens[i]
                out += bytes(CHAR_BYTE[c] for c in symbol.removesuffix(END_OF_WORD))
                out += b" " if symbol.endswith(END_OF_WORD) else b""
        return out.decode("utf-8", errors="replace").strip()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON, atomically (:func:`~miniclip.atomic.write_atomically`)."""
        write_text(path, json_text(self.to_dict(), ensure_ascii=False, indent=0) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """Read a file written by :meth:`save`; a file of any other kind raises ``ValueError``."""
        try:
            data = strict_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path} is not a miniclip BPE tokenizer file ({exc})") from None
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a checkpoint embeds: format, version, the tokens by id, the merges ``"a b"`` by rank."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "tokens": list(self.tokens),
            "merges": [f"{a} {b}" for a, b in self.merges],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "tokenizer") -> BPETokenizer:
        """Rebuild from :meth:`to_dict`'s form; ``source`` names where it came from in error messages."""
        check_saved_form(data, FORMAT, VERSION, "miniclip BPE tokenizer", source)
        tokens, merges = data.get("tokens"), data.get("merges")
        if not isinstance(tokens, list) or not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
            raise ValueError(f'{source}: "tokens" and "merges" must be lists of strings')
        try:
            return cls(tokens, [_parse_merge(m, f"merge {n}") for n, m in enumerate(merges)])
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None


def _parse_merge(line: str, where: str) -> tuple[str, str]:
    """One merge line ``"a b"`` as the pair ``("a", "b")``; anything else is a ``ValueError`` saying where."""
    parts = line.split()
    if len(parts) != 2:
        raise ValueError(f"{where}: a merge must be two symbols separated by a space, got {line!r}")
    return parts[0], parts[1]


def _check_pairs(merges: Sequence[Any]) -> Sequence[tuple[str, str]]:
    """``merges`` unchanged if each is a pair of non-empty strings; otherwise a ``ValueError`` naming the first."""
    for rank, m in enumerate(merges):
        if not isinstance(m, tuple | list) or len(m) != 2 or not all(isinstance(s, str) and s for s in m):
            raise ValueError(f"merge {rank} must be a pair of two non-empty symbols, got {m!r}")
    return merges
