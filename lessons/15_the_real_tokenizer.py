# %% [markdown]
# # Lesson 15 — The real tokenizer
#
# Lesson 05's tokenizer gives every word of its corpus one id and every other word `<unk>`.
# OpenAI's CLIP cannot work that way: it read 400 million captions in every language, with
# names, typos and emoji, and any fixed list of words would miss most of them. It uses a
# *byte-level byte-pair encoding* (BPE) instead, with a fixed vocabulary of 49,408 tokens:
#
#     text ─clean→ ─cut into pieces→ ─each piece's UTF-8 bytes→ ─merge frequent pairs→ tokens → ids
#
# Frequent words end as one token each, rare words as a few frequent pieces, and anything at
# all — Greek, Chinese, an emoji — as bytes at worst, so no text is ever unknown. This lesson
# takes it apart: the bytes and the table that prints them, the pattern that cuts text into
# pieces, the merges learned by hand on miniclip's own captions, the vocabulary that results,
# and then OpenAI's real vocabulary (where `open_clip_torch` is installed, which ships it).
#
# The code: `miniclip/model/bpe.py` (the tokenizer) and `miniclip/model/bpe_training.py`
# (learning the merges).

# %%
from collections import Counter

import numpy as np
import regex

from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
from miniclip.model.bpe import (
    FTFY,
    PATTERN,
    WITHOUT_FTFY,
    BPETokenizer,
    bpe,
    byte_chars,
    bytes_to_unicode,
    clean,
    openai_vocab_file,
    pre_tokenize,
)
from miniclip.model.bpe_training import count_pairs, learn_merges, merge_pair, piece_symbols
from miniclip.model.tokenizer import UNK, Tokenizer

np.set_printoptions(linewidth=120)

# %% [markdown]
# ## Bytes: 256 symbols spell anything
#
# A computer stores text as bytes. UTF-8, the encoding nearly all text uses, writes each
# character as one to four bytes: the 128 ASCII characters as one byte each (`c` = 99,
# `a` = 97, `t` = 116), accented Latin and Greek letters as two, Chinese as three, emoji as
# four. So a sequence of bytes, 256 possible symbols, can spell *any* text — a vocabulary
# that starts from the bytes can never meet an unknown character. The price is length:
# text outside ASCII takes more symbols per character.

# %%
for text in ("cat", "café", "γάτα", "猫", "🐱"):
    raw = text.encode()  # UTF-8, Python's default
    print(f"{text!r:8} {len(text)} characters → {len(raw):2d} bytes {list(raw)}")
assert list(b"cat") == [99, 97, 116]  # ASCII: one byte per character
assert list("é".encode()) == [0xC3, 0xA9]  # two bytes: 195, 169
assert [len(text.encode()) for text in ("γάτα", "猫", "🐱")] == [8, 3, 4]

# %% [markdown]
# ## Bytes as visible characters
#
# The merges are stored as text, one pair a line, separated by a space (`"c at</w>"`). So
# every byte needs a character that can be printed and read back unharmed — not a space,
# not a newline, not a control character. `bytes_to_unicode()` keeps the 188 printable bytes
# as themselves (`!` … `~`, `¡` … `¬`, `®` … `ÿ`) and moves the other 68 to `chr(256)`,
# `chr(257)`, … in byte order. The bytes 0–32 are all non-printable, so they take the first
# 33 places: the newline (byte 10) becomes `chr(256 + 10)` = `Ċ`, the space (byte 32)
# `chr(256 + 32)` = `Ġ` — the `Ġ` familiar from GPT-2's vocabulary.
#
# `byte_chars(piece)` writes a piece's UTF-8 bytes with these characters: `"é"` is the two
# bytes 0xC3 and 0xA9, both printable, so it is written `"Ã©"`.

# %%
table = bytes_to_unicode()
kept = [b for b, c in table.items() if ord(c) == b]
moved = [b for b, c in table.items() if ord(c) != b]
print(f"{len(kept)} bytes stand for themselves, {len(moved)} are moved; e.g.")
for b in (10, 32, 97, 127, 173, 233):
    print(f"  byte {b:3d} {bytes([b])!r:8} → {table[b]!r}  (U+{ord(table[b]):04X})")
print("byte_chars('café') =", repr(byte_chars("café")), "  byte_chars('🐱') =", repr(byte_chars("🐱")))
assert len(table) == 256 and len(set(table.values())) == 256  # one character per byte, all different
assert len(kept) == 188 and len(moved) == 68
assert moved[:33] == list(range(33)) and table[32] == chr(288) == "Ġ" and table[10] == "Ċ"
assert table[ord("a")] == "a" and byte_chars("café") == "caf" + chr(0xC3) + chr(0xA9) == "cafÃ©"

# %% [markdown]
# One difference from GPT-2 matters later: GPT-2 keeps the space *in front of* a word
# (`"Ġcat"`), while CLIP drops whitespace altogether and marks the *end* of a word instead,
# with `</w>` on its last symbol. So in CLIP's vocabulary `"cat</w>"` (the word) and `"cat"`
# (the start of "catalog") are different tokens, and `Ġ` never occurs in real text's tokens.
#
# ## Cleaning, then cutting into pieces
#
# Before anything is merged, `clean()` tidies the text as OpenAI's code does: `ftfy.fix_text`
# repairs broken text where the `ftfy` package is installed (below), HTML entities are
# unescaped twice (`"&amp;amp;"` → `"&"`), runs of whitespace become one space, and
# everything is lower-cased.
#
# Then the pattern `PATTERN` cuts the text into *pieces*. BPE never merges across two
# pieces, and whitespace only separates them. Its alternatives, tried in this order:
#
#     <|startoftext|> <|endoftext|>   the special tokens, should the text spell them
#     's 't 're 've 'm 'll 'd         English contractions, split from their word
#     [\p{L}]+                        a run of letters, of any alphabet
#     [\p{N}]                         ONE digit: "2024" is four pieces
#     [^\s\p{L}\p{N}]+                a run of anything else: punctuation, symbols, emoji
#
# Single digits keep numbers from becoming thousands of tokens of their own ("1984", "2048",
# …); the price is that a year costs four tokens. Below, each piece with the alternative that
# matched it:

# %%
RULES = {  # the pattern's alternatives, one by one
    "special": r"<\|startoftext\|>|<\|endoftext\|>",
    "contraction": r"'s|'t|'re|'ve|'m|'ll|'d",
    "letters": r"[\p{L}]+",
    "digit": r"[\p{N}]",
    "other": r"[^\s\p{L}\p{N}]+",
}


def rule(piece: str) -> str:
    """Which alternative of PATTERN produced ``piece`` (the first that matches it whole)."""
    return next(name for name, alternative in RULES.items() if regex.fullmatch(alternative, piece, regex.IGNORECASE))


examples = ["It's the dog's ball, isn't it?", "Room 101: 2024 photos", "Wow!!! ...really?!", "I ❤️ my 🐱🐶"]
for text in examples:
    pieces = pre_tokenize(text)
    print(f"{text!r}  →  cleaned {clean(text)!r}")
    print("    " + "  ".join(f"{p!r}:{rule(p)}" for p in pieces))
assert pre_tokenize(examples[0]) == ["it", "'s", "the", "dog", "'s", "ball", ",", "isn", "'t", "it", "?"]
assert pre_tokenize(examples[1]) == ["room", "1", "0", "1", ":", "2", "0", "2", "4", "photos"]
assert pre_tokenize(examples[2]) == ["wow", "!!!", "...", "really", "?!"]
assert pre_tokenize(examples[3]) == ["i", "❤️", "my", "🐱🐶"]  # two emoji side by side: one run of "other"
assert PATTERN.findall(clean(examples[0])) == pre_tokenize(examples[0])
assert all(rule(p) for text in examples for p in pre_tokenize(text))  # every piece is one of the five kinds

# %% [markdown]
# (The heart `❤️` is two code points, U+2764 and the variation selector U+FE0F; neither is a
# letter or a digit, so they stay one piece.)
#
# ## Learning the merges by hand, on miniclip's captions
#
# Where do the merges come from? From counting. Take a corpus: here CIFAR-10's ten class
# names written into CLIP's 18 prompt templates (`"a blurry photo of a {}."`), 180 captions.
# Cut them into pieces and count the pieces:

# %%
classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
captions = [template.format(name) for name in classes for template in CLIP_CIFAR10_TEMPLATES]
pieces = Counter(p for caption in captions for p in pre_tokenize(caption))
print(f"{len(captions)} captions, {sum(pieces.values())} pieces, {len(pieces)} distinct:")
print("  " + ", ".join(f"{p} {n}" for p, n in pieces.most_common()))
assert len(captions) == 180 and len(pieces) == 26
assert pieces["photo"] == 180 and pieces["horse"] == 18 and pieces["a"] == 270

# %% [markdown]
# Each distinct piece starts as its bytes, the last marked with `</w>`: `"photo"` is
# `p h o t o</w>`, `"horse"` is `h o r s e</w>`. Now count every *adjacent pair* of symbols,
# each piece's pairs weighted by how often the piece occurs. `p h o t o</w>` holds the pairs
# `(p, h)`, `(h, o)`, `(o, t)` and `(t, o</w>)`, 180 times each; `horse` holds another
# `(h, o)`, 18 times. So `(h, o)` occurs 180 + 18 = 198 times: more than any other pair, and
# it becomes merge 0. Written out as a loop:

# %%
start = {piece_symbols(p): n for p, n in pieces.items()}  # (symbols of one piece) → how often it occurs
by_hand: Counter[tuple[str, str]] = Counter()
for symbols, n in start.items():
    for left, right in zip(symbols[:-1], symbols[1:], strict=True):
        by_hand[(left, right)] += n
print("photo starts as", piece_symbols("photo"), "  horse as", piece_symbols("horse"))
print("the most frequent pairs:", by_hand.most_common(6))
first = learn_merges(captions, 1)
print("learn_merges' first merge:", first[0])
assert by_hand == count_pairs(start)
assert by_hand[("h", "o")] == 180 + 18 == max(by_hand.values())
assert first == [("h", "o")]

# %% [markdown]
# Join `h o` into one symbol `ho` everywhere and count again. `photo` is now
# `p ho t o</w>`, and four pairs tie at 180: `(ho, t)`, `(o, f</w>)` (from "of"), `(p, ho)`
# and `(t, o</w>)`. A tie goes to the smallest pair in Python's string order, so that the
# same captions always give the same merges: `"ho" < "o" < "p" < "t"`, and `(ho, t)` is
# merge 1.

# %%
after_one = {merge_pair(symbols, ("h", "o")): n for symbols, n in start.items()}
again = count_pairs(after_one)
top = max(again.values())
tied = sorted(pair for pair, n in again.items() if n == top)
print(f"after merge 0, the pairs at {top}:", tied)
assert top == 180 and tied == [("ho", "t"), ("o", "f</w>"), ("p", "ho"), ("t", "o</w>")]
assert learn_merges(captions, 2)[1] == tied[0] == ("ho", "t")

# %% [markdown]
# ## Watching "photo" become one token
#
# `learn_merges` repeats the count-and-join until it has the merges asked for, or until no
# pair occurs twice. Asked for a thousand, it stops at 75. Here is what the merges do to
# `photo`, step by step (only the steps that change it): four of the first five merges build
# it, and from merge 4 on `photo</w>` is one symbol.

# %%
merges = learn_merges(captions, 1000)
symbols = piece_symbols("photo")
changed_at = []
for rank, pair in enumerate(merges):
    joined = merge_pair(symbols, pair)
    if joined != symbols:
        print(f"  merge {rank:2d} {pair[0] + ' + ' + pair[1]:16} → {' '.join(joined)}")
        changed_at.append(rank)
    symbols = joined
assert changed_at == [0, 1, 2, 4] and symbols == ("photo</w>",)
print(f"{len(merges)} merges learned; the first 20:", " ".join(f"{a}+{b}" for a, b in merges[:20]))

# %% [markdown]
# Why stop at 75? Because by then every piece of the corpus is one symbol, so there is no
# pair left to count. On a corpus this small, BPE ends as a word vocabulary: each of the 26
# distinct pieces is a token. The difference from lesson 05 is what happens to a word it
# never saw (below).

# %%
final = dict(start)
for pair in merges:
    final = {merge_pair(s, pair): n for s, n in final.items()}
assert len(merges) == 75 and all(len(s) == 1 for s in final) and not count_pairs(final)

# %% [markdown]
# ## The vocabulary that results
#
# `BPETokenizer.from_merges` builds the vocabulary the way OpenAI's is built: the 256 byte
# characters, the same 256 with `</w>` (a one-byte word), then the result of each merge in
# rank order, then `<|startoftext|>` and `<|endoftext|>`: 256 + 256 + 75 + 2 = 589 tokens.
# Encoding a piece (`bpe`) does not replay the merges in order: it joins the adjacent pair of
# *lowest rank* until no adjacent pair is a merge — the same result, since a merge's parts
# are always made by merges of lower rank.

# %%
tokenizer = BPETokenizer.from_merges(merges)
learned = tokenizer.tokens[512:-2]
print(f"vocab_size = {tokenizer.vocab_size}: ids 0–255 bytes, 256–511 bytes + </w>, 512–{511 + len(learned)} merges,")
print(f"  {tokenizer.start_id} {tokenizer.tokens[tokenizer.start_id]}, {tokenizer.end_id} {tokenizer.tokens[-1]}")
print("  the merged tokens:", " ".join(learned))
assert tokenizer.vocab_size == 256 + 256 + 75 + 2 == 589
assert learned == ["".join(pair) for pair in merges]  # all 75 results are new symbols here
assert bpe(byte_chars("photo"), tokenizer.ranks) == ["photo</w>"]
assert all(len(tokenizer.encode(p)) == 1 for p in pieces)  # all 26 pieces ("a" and "." are byte tokens)

# %% [markdown]
# ## Encoding and decoding
#
# A known caption is one token per piece. A word the corpus never held, such as "zebra",
# falls apart into its bytes — the learned merges contain no pair of it — but it *is*
# encoded: no `<unk>`. Decoding joins the symbols' bytes back and turns each `</w>` into a
# space. What comes back is the *cleaned* text: lower case, and a space wherever a piece
# ended (`"cat ."`): a tokenizer only needs to be faithful to what the model reads.

# %%
for caption in ("a photo of a cat.", "a photo of a zebra."):
    ids = tokenizer.encode(caption)
    print(f"{caption!r:24} ids {ids}")
    print(f"{'':24} symbols {[tokenizer.tokens[i] for i in ids]}  decoded {tokenizer.decode(ids)!r}")
zebra = [tokenizer.tokens[i] for i in tokenizer.encode("a photo of a zebra.")]
assert zebra == ["a</w>", "photo</w>", "of</w>", "a</w>", "z", "e", "b", "r", "a</w>", ".</w>"]
for caption in [*captions, "a photo of a zebra.", "A Photo   of a CAT!"]:
    assert tokenizer.decode(tokenizer.encode(caption)) == " ".join(pre_tokenize(caption))

# %% [markdown]
# A batch is as in lesson 05: `<|startoftext|>`, the tokens, `<|endoftext|>`, then padding
# to the fixed length L. OpenAI pads with id 0 — which is also the token `"!"` — so the
# mask, not the id, tells padding apart. A caption too long for L keeps its first L − 1
# tokens (start included) and still ends with the end token, because CLIP reads its summary
# of the caption there (lesson 16).

# %%
L = 10
ids, mask = tokenizer.encode_batch(["a photo of a cat.", "a blurry photo of the big black and white truck."], L)
print("ids:\n", ids, "\nmask:\n", mask.astype(int))
assert ids[0, 0] == tokenizer.start_id and ids[0, 7] == tokenizer.end_id and ids[0, 8:].tolist() == [0, 0]
assert tokenizer.tokens[0] == "!" and mask[0].sum() == 8  # padding id 0 is "!", told apart by the mask
assert ids[1, -1] == tokenizer.end_id and mask[1].sum() == L  # truncated: still ends with the end token
assert tokenizer.decode(ids[1]) == "a blurry photo of the big black and"  # the first L − 2 tokens

# %% [markdown]
# ## OpenAI's vocabulary
#
# OpenAI learned its merges the same way, from far more text, and published them as
# `bpe_simple_vocab_16e6.txt.gz` (262,144 merges, of which CLIP uses the first 48,894);
# `open_clip_torch` ships that file, and `BPETokenizer.from_openai_vocab` reads it. Where it
# is not installed this part is skipped (`pip install open_clip_torch` brings it; only the
# file is read, `open_clip` is not imported).


# %%
vocab_file = openai_vocab_file()
openai = BPETokenizer.from_openai_vocab(vocab_file) if vocab_file else None
if openai is None:
    print("open_clip_torch is not installed, so OpenAI's vocabulary file is not here: skipping OpenAI's part")
else:
    print(f"read {vocab_file.name}: vocab_size = {openai.vocab_size:,}")
    print("  first merges:", " ".join(f"{a}+{b}" for a, b in openai.merges[:10]))
    print("  first tokens:", openai.tokens[:4], "...", openai.tokens[256:259], "...", openai.tokens[512:516])
    print("  last tokens: ", openai.tokens[-3:])
    assert openai.vocab_size == 256 + 256 + 48_894 + 2 == 49_408
    assert (openai.start_id, openai.end_id) == (49406, 49407)

# %% [markdown]
# **Why "cat" is one token and a rare word several.** Encode a piece by joining, again and
# again, the adjacent pair of lowest rank. In `c a t</w>` the pairs are `(c, a)` and
# `(a, t</w>)`; `a t</w>` is merge 24 — the 25th most frequent pair of all — so it goes first,
# then `c at</w>`, merge 1,856: one token. "axolotl" was never frequent enough to be merged
# whole: it stops at four frequent pieces. A misspelling does the same: "phtoo" is `ph` +
# `too</w>`, while "photograph" is one token.


# %%
def merge_steps(piece: str, ranks: dict[tuple[str, str], int]) -> list[tuple[int, list[str]]]:
    """``bpe`` step by step: (rank of the pair joined, symbols after it), lowest rank first."""
    symbols = piece_symbols(piece)
    steps = [(-1, list(symbols))]
    while len(symbols) > 1:
        pairs = [p for p in zip(symbols[:-1], symbols[1:], strict=True) if p in ranks]
        if not pairs:
            break
        best = min(pairs, key=ranks.__getitem__)
        symbols = merge_pair(symbols, best)
        steps.append((ranks[best], list(symbols)))
    return steps


if openai is not None:
    for word in ("cat", "axolotl"):
        for rank, symbols in merge_steps(word, openai.ranks):
            print(f"  {'start' if rank < 0 else f'merge {rank:5,}':12} {' '.join(symbols)}")
        print(f"  {word!r} → ids {openai.encode(word)}")
    for word in ("photo", "photograph", "phtoo", "catt", "zebra", "axolotl"):
        ids = openai.encode(word)
        print(f"{word!r:13} {len(ids)} token(s): {[openai.tokens[i] for i in ids]}")
    assert [rank for rank, _ in merge_steps("cat", openai.ranks)] == [-1, 24, 1856]
    assert openai.encode("cat") == [2368] and openai.tokens[2368] == "cat</w>"
    assert [openai.tokens[i] for i in openai.encode("axolotl")] == ["ax", "o", "lot", "l</w>"]
    assert merge_steps("axolotl", openai.ranks)[-1][1] == bpe(byte_chars("axolotl"), openai.ranks)
    assert [openai.tokens[i] for i in openai.encode("phtoo")] == ["ph", "too</w>"]
    assert len(openai.encode("photograph")) == 1 and len(openai.encode("zebra")) == 1

# %% [markdown]
# **A batch of 77.** CLIP's text tower reads exactly 77 positions. "a photo of a cat." is
# six tokens; with `<|startoftext|>` (49406) and `<|endoftext|>` (49407) it fills 8, and 69
# zeros pad it. A caption of a hundred words is cut to its first 76 tokens and the end token.

# %%
if openai is not None:
    ids, mask = openai.encode_batch(["a photo of a cat.", "a photo of a " + "very " * 100 + "big cat."])
    print("ids[0][:12] =", ids[0, :12], "...  shape", ids.shape)
    print("mask[0][:12] =", mask[0, :12].astype(int), f"...  {int(mask[0].sum())} real tokens")
    print("the long caption ends:", ids[1, -4:], "→", repr(openai.decode(ids[1])[-30:]))
    assert ids.shape == (2, 77) and ids[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 269, 49407]
    assert mask[0].sum() == 8 and not ids[0, 8:].any()
    assert ids[1, -1] == openai.end_id and mask[1].sum() == 77 and ids[1, -2] == openai.encode("very")[0]

# %% [markdown]
# **No `<unk>`.** Every string has an encoding, because the 512 byte tokens are always in the
# vocabulary. Text the merges know is cheap; text they rarely saw pays a byte or two per
# character: Greek comes out at about two tokens per letter, while a common emoji was
# frequent enough to earn a token of its own. Decoding gives the text back.

# %%
if openai is not None:
    for text in ("καλημέρα κόσμε", "猫", "🐱", "🐱🐶", "naïve café"):
        ids = openai.encode(text)
        print(f"{text!r:18} {len(text):2d} characters → {len(ids):2d} tokens  decoded {openai.decode(ids)!r}")
        assert openai.decode(ids) == " ".join(pre_tokenize(text))
    assert len(openai.encode("καλημέρα")) == 16 and openai.encode("🐱") == [22979]

# %% [markdown]
# **ftfy.** OpenAI's `clean` starts with `ftfy.fix_text`, which repairs *mojibake* — UTF-8
# read as Latin-1 somewhere on its way, so "café" arrives as "cafÃ©" — and curly quotes.
# miniclip does the same when the `ftfy` package is installed and says so otherwise; a
# tokenizer without it gives different ids for broken text (and only for broken text).

# %%
broken = "cafÃ© “quoted”"
print(f"ftfy installed: {FTFY}" + ("" if FTFY else f" ({WITHOUT_FTFY})"))
print(f"clean({broken!r}) = {clean(broken)!r}")
if FTFY:
    assert clean(broken) == 'café "quoted"'
else:
    assert clean(broken) == broken.lower()
assert clean("Hello   World &amp;amp; co") == "hello world & co"  # entities twice, spaces, lower case: always

# %% [markdown]
# ## Lesson 05's words against bytes and merges
#
# The same 180 captions, three tokenizers: lesson 05's word tokenizer built on them, the BPE
# learned on them above, and OpenAI's. Tokens per caption count the start and end tokens.
# The word tokenizer is the smallest and the shortest (it drops the full stop), but a caption
# with a word it never saw loses that word to `<unk>`; both byte-pair tokenizers keep every
# word, the small one in bytes, OpenAI's in pieces it knows.

# %%
words_tokenizer = Tokenizer.build(captions)
rare = "a photo of an axolotl."
rows = [
    ("words (lesson 05)", words_tokenizer, lambda c: words_tokenizer.encode(c)),  # start and end included
    ("BPE learned here", tokenizer, lambda c: [0, *tokenizer.encode(c), 0]),
    *([("OpenAI's BPE", openai, lambda c: [0, *openai.encode(c), 0])] if openai else []),
]
print(f"{'':18} {'vocabulary':>10} {'tokens per caption':>19}   {rare!r}")
summary = {}
for name, tok, encode in rows:
    per_caption = float(np.mean([len(encode(c)) for c in captions]))
    rare_ids = encode(rare)
    unknown = rare_ids.count(UNK) if tok is words_tokenizer else 0
    summary[name] = (tok.vocab_size, per_caption, len(rare_ids), unknown)
    print(f"{name:18} {tok.vocab_size:>10,} {per_caption:>19.2f}   {len(rare_ids)} tokens, {unknown} unknown")
assert summary["words (lesson 05)"] == (29, 8 + 1 / 3, 7, 2)  # "an" and "axolotl" were never seen: <unk> twice
assert summary["BPE learned here"][:2] == (589, 9 + 1 / 3) and summary["BPE learned here"][3] == 0
assert words_tokenizer.decode(words_tokenizer.encode(rare)) == "a photo of <unk> <unk>"
if openai:
    assert summary["OpenAI's BPE"] == (49_408, 9 + 1 / 3, 11, 0)

# %% [markdown]
# ## What you should take away
#
# * text becomes UTF-8 bytes, 256 symbols that spell anything, each printed as a visible
#   character (the space as `Ġ`) so the merges can be stored as text;
# * a pattern cuts the cleaned text into pieces — contractions, letter runs, single digits,
#   runs of other symbols — and BPE never merges across pieces;
# * the merges are the most frequent adjacent pairs, counted, joined and counted again; a
#   frequent word ends as one token, a rare one as a few pieces, an unseen script as bytes;
# * so there is no `<unk>`: the vocabulary is fixed (49,408 for CLIP) and still covers every
#   string, at the cost of longer sequences for text the merges rarely saw.

# %%
print("lesson 15 passed: bytes, the pattern, merges learned by hand, and a vocabulary with no <unk>")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/15_the_real_tokenizer.py`.
#
# 1. *Write the backward before seeing it.* Sub-word tokens repeat: with the BPE learned above,
#    "a photo of a photo." is six tokens, and `a</w>` and `photo</w>` come twice each. The
#    embedding lookup (lesson 05) copies row `ids[k]` of the table to position k. Write its
#    backward — the gradient of the table — as a small `Module` and check it on those six ids
#    with `miniclip.teaching.gradcheck`. Then try `grad[ids] += dy` instead: which rows come
#    out wrong, and why?
# 2. *Change a number.* Learn only the first 4 merges. Before running, from the table of
#    "photo" becoming one token: how many tokens is "photo" now, and what is `vocab_size`?
# 3. *Derive, then check.* How many UTF-8 bytes is "naïve café", and how many of them are in
#    its two pieces? What does `byte_chars` write for "ï"? Count by hand, then check.
