# %% [markdown]
# # Lesson 05 — From words to vectors
#
# The walkthrough's captions were already lists of word ids. Real captions are strings:
# "A photo of a cat." This lesson follows one batch of captions from text to the vectors a
# text transformer reads:
#
#     captions ─tokenizer→ ids (N, L) + mask (N, L) ─lookup→ (N, L, D) ─+ positions→ (N, L, D)
#
# It builds a vocabulary, pads and truncates a batch, looks the ids up in an embedding table
# (and shows why that lookup's backward must be a scatter-*add*), and then shows why the
# positional embedding is needed: without it, "dog bites man" and "man bites dog" are the
# same caption to the model.
#
# The code: `miniclip/model/tokenizer.py`, `miniclip/layers/embedding.py` and `miniclip/layers/positional_embedding.py`.

# %%
import numpy as np

from miniclip import set_device
from miniclip.encoders.text_transformer import TextTransformer
from miniclip.layers import Embedding, MeanPool
from miniclip.layers.attention import MultiHeadSelfAttention
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.model.tokenizer import END, PAD, SPECIALS, START, UNK, Tokenizer, words
from miniclip.teaching.lesson_output import lesson_out, scratch_folder

set_device("cpu")  # lessons run on NumPy; on the GPU the same code runs on CuPy arrays
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## Words
#
# The tokenizer is word-level: lower-case the caption and keep each run of letters or digits.
# Punctuation and apostrophes only separate words. (CLIP itself uses byte-pair encoding,
# which splits rare words into common pieces; one id per word is enough for small data.)

# %%
print(words("A photo of a cat."))
print(words("A dog's ball!"))
assert words("A photo of a cat.") == ["a", "photo", "of", "a", "cat"]
assert words("A dog's ball!") == ["a", "dog", "s", "ball"]

# %% [markdown]
# ## A vocabulary from a handful of captions
#
# `Tokenizer.build` counts the words of a corpus. Four special tokens come first, then the
# words by falling frequency (ties alphabetically, so the same corpus always gives the same
# ids):
#
# * `<pad>` (0) fills a caption up to the fixed length `L` of a batch;
# * `<unk>` (1) stands for any word the vocabulary does not know;
# * `<start>` (2) and `<end>` (3) open and close every caption. CLIP's text encoder reads its
#   summary of the whole caption at the end token. Its text transformer is causal (each token
#   attends only to the tokens before it), so the end token sees every word because of that
#   mask and its position: it comes last. miniclip's small text transformer is not causal by
#   default; lesson 16 adds the mask.

# %%
corpus = [
    "a photo of a cat.",
    "a photo of a dog.",
    "A dog chasing a red ball!",
    "a cat sleeping on a sofa",
    "dog bites man",
    "man bites dog",
]
tokenizer = Tokenizer.build(corpus)
print(f"vocab_size = {tokenizer.vocab_size}")
for i, token in enumerate(tokenizer.tokens):
    print(f"  {i:2d} {token}")
assert tuple(tokenizer.tokens[:4]) == SPECIALS and (PAD, UNK, START, END) == (0, 1, 2, 3)
assert tokenizer.tokens[4] == "a"  # the most frequent word (8 times) gets the first free id
assert tokenizer.vocab_size == 4 + len({w for c in corpus for w in words(c)})

# %% [markdown]
# ## A batch: padding, truncation, the mask, unknown words
#
# A batch must be a rectangle, so every caption becomes exactly `L` ids. Short captions are
# padded with `<pad>`; long ones keep `<start>`, their first `L − 2` words and `<end>`. The
# mask says which positions are real (1) and which are padding (0); attention and pooling
# use it to ignore the padding. A word never seen in the corpus ("zebra") becomes `<unk>`.

# %%
batch = ["a photo of a cat.", "a photo of a zebra", "a cat sleeping on a red sofa in the sun"]
L = 8
ids, mask = tokenizer.encode_batch(batch, context_length=L)  # (N, L) int64, (N, L) float32
for caption, row, m in zip(batch, ids, mask, strict=True):
    print(f"{caption!r:44} ids {row}  mask {m.astype(int)}")
    print(f"{'':44} back: {' '.join(tokenizer.tokens[i] for i in row)}")
print("decode (specials dropped):", [tokenizer.decode(row) for row in ids])

assert ids.shape == mask.shape == (3, L) and ids.dtype == np.int64
assert ids[0, 0] == START and ids[0, 6] == END and ids[0, 7] == PAD and mask[0].sum() == 7
assert ids[1, 5] == UNK and tokenizer.decode(ids[1]) == "a photo of a <unk>"
assert ids[2, -1] == END and mask[2].sum() == L  # truncated: still ends with <end>
assert tokenizer.decode(ids[2]) == "a cat sleeping on a red"  # the first L − 2 = 6 words
assert np.array_equal(mask, (ids != PAD).astype(np.float32))

# %% [markdown]
# The vocabulary is part of a trained model (the embedding table's rows mean nothing without
# it), so it is saved beside the weights, as plain JSON. The lesson writes it and reads it back:
# into `05_tokenizer/` under `MINICLIP_LESSON_OUT` when that names a folder, otherwise into a
# scratch folder that lasts as long as the kernel.

# %%
vocab_folder = (lesson_out() or scratch_folder("05")) / "05_tokenizer"
vocab_folder.mkdir(exist_ok=True)
vocab_file = vocab_folder / "vocab.json"
tokenizer.save(vocab_file)
again = Tokenizer.load(vocab_file)
assert again.tokens == tokenizer.tokens
print("saved and reloaded", vocab_file)

# %% [markdown]
# ## The embedding lookup, and why its backward adds
#
# An embedding is a table with one learned row per token: `vectors[n, l] = table[ids[n, l]]`.
# It is the same as multiplying a one-hot row by the table, without building the one-hot.
#
# Its backward sends each position's gradient to the row it came from, and adds up what arrives
# at the same row: with $E$ the table and $x_{nl} = E_{\mathrm{ids}[n, l]}$ the looked-up vectors,
#
# $$
# \frac{\partial \ell}{\partial E_v} = \sum_{(n, l) : \mathrm{ids}[n, l] = v} \frac{\partial \ell}{\partial x_{nl}}
# $$
# "a photo of a cat"
# uses the row of "a" *twice*, so that row must receive the sum of both gradients (a value
# used twice gets the sum of its gradients, as in lesson 03). NumPy's `g[ids] += d` does not
# do that: with a repeated index it writes twice and the second write wins. The layer uses a
# scatter-add (`np.add.at`, or `cupyx.scatter_add` on the GPU).

# %%
rng = np.random.default_rng(0)
lookup = Embedding(tokenizer.vocab_size, 3, rng=rng, dtype=np.float64)
one = ids[:1]  # (1, L): "a photo of a cat"
vectors = lookup(one)  # (1, L, 3)
assert np.array_equal(vectors[0, 1], lookup.table.data[tokenizer.ids["a"]])
assert np.array_equal(vectors[0, 1], vectors[0, 4])  # both "a"s are the same row

d_vectors = rng.integers(-3, 4, size=vectors.shape).astype(np.float64)  # (1, L, 3): an upstream gradient
lookup.zero_grad()
lookup.backward(d_vectors)
a = tokenizer.ids["a"]
print("gradient at position 1 ('a'):", d_vectors[0, 1], "   at position 4 ('a'):", d_vectors[0, 4])
print("row 'a' of dtable (scatter-add):", lookup.table.grad[a])

naive = np.zeros_like(lookup.table.grad)
naive[one.reshape(-1)] += d_vectors.reshape(-1, 3)  # repeated index: one update is lost
print("row 'a' with a plain  g[ids] += d:", naive[a])
assert np.array_equal(lookup.table.grad[a], d_vectors[0, 1] + d_vectors[0, 4])
assert np.array_equal(naive[a], d_vectors[0, 4])  # only the last write survived
assert np.allclose(lookup.table.grad.sum(axis=0), d_vectors.sum(axis=(0, 1)))  # nothing lost in total

# %% [markdown]
# ## Word order: "dog bites man" is not "man bites dog"
#
# **A preview.** This part uses two layers the next lessons build: `MultiHeadSelfAttention`
# with its `key_padding_mask` (lesson 06 writes attention out by hand, forward and backward) and
# `TextTransformer` (the transformer block around it is lesson 06a's). Here they are black
# boxes; all we need from attention is that it mixes every token with every other, by scores
# computed from the token vectors themselves, and that the mask makes it ignore padding.
#
# The two captions have the same words, so the same multiset of rows of the table. Anything
# that treats the tokens as a *set* cannot tell them apart:
#
# * **mean pooling** of the word vectors (the walkthrough's bag of words) adds them up;
# * **adding positions and then mean pooling** still cannot:
#   $\frac{1}{L} \sum_{l} \left( x_l + p_l \right) = \frac{1}{L} \sum_{l} x_l + \frac{1}{L} \sum_{l} p_l$,
#   and the mean of the positions $p_l$ is the same for every caption of the same length;
# * **self-attention without positions** is permutation-equivariant: shuffle the tokens and
#   its outputs shuffle the same way (every score is between two token vectors, never
#   between positions), so their mean is unchanged.
#
# Only positions *and* attention together break the tie: each token now carries where it
# stands, and attention mixes that into what it gathers from the others, so "dog" at
# position 1 attends differently from "dog" at position 3.

# %%
order_ids, order_mask = tokenizer.encode_batch(["dog bites man", "man bites dog"], context_length=6)  # (2, 6)
print("ids:\n", order_ids)
D = 8
rng = np.random.default_rng(1)
embed = Embedding(tokenizer.vocab_size, D, rng=rng, dtype=np.float64)
positions = PositionalEmbedding(6, D, rng=rng, dtype=np.float64)
attention = MultiHeadSelfAttention(D, heads=2, rng=rng, dtype=np.float64)
pool = MeanPool()

x = embed(order_ids)  # (2, 6, D)
variants = {
    "bag of words (mean of lookups)": pool(x, order_mask),
    "positions, then mean": pool(positions(x), order_mask),
    "attention (no positions), then mean": pool(attention(x, key_padding_mask=order_mask), order_mask),
    "positions + attention, then mean": pool(attention(positions(x), key_padding_mask=order_mask), order_mask),
}  # each (2, D): one vector per caption


def gap(v: np.ndarray) -> float:
    """How far apart the two captions' vectors are, relative to the first one's length."""
    return float(np.linalg.norm(v[0] - v[1]) / np.linalg.norm(v[0]))


for name, v in variants.items():
    print(f"{name:38} relative distance {gap(v):.2e}")
gaps = {name: gap(v) for name, v in variants.items()}
assert max(gaps[k] for k in list(gaps)[:3]) < 1e-12  # order-blind, up to rounding
assert gaps["positions + attention, then mean"] > 1e-3

# %% [markdown]
# The difference is small at first because positions start small: miniclip's `Embedding`
# draws word vectors with σ = 1 and `PositionalEmbedding` draws positions with σ = 0.02, so at
# initialisation the words outweigh the positions fifty to one. (CLIP draws both small, token
# vectors with σ = 0.02 as GPT-2 does and positions with σ = 0.01: there the words start only
# twice as large, and this comparison would start far less lopsided.) Training grows the
# positions where word order matters. Scaled up to the size of the word vectors, the same
# positions separate the two captions clearly:

# %%
positions.positions.data *= 50  # σ ≈ 1, as large as the word vectors
loud = pool(attention(positions(x), key_padding_mask=order_mask), order_mask)  # (2, D)
print(f"positions 50× larger: relative distance {gap(loud):.2e}")
assert gap(loud) > 10 * gaps["positions + attention, then mean"]

# %% [markdown]
# The package's `TextTransformer` is this pipeline with LayerNorms, an MLP and residual
# connections around the attention (the transformer block of lesson 06a), pooled at the end
# token and projected. It is not causal by default, so every one of its tokens sees the whole
# caption (in CLIP's causal one only the end token does, because it comes last: lesson 16).
# What held above holds for it: zero its positions and the two captions give identical
# embeddings.

# %%
text = TextTransformer(
    vocab_size=tokenizer.vocab_size,
    context_length=6,
    width=16,
    depth=1,
    heads=2,
    embed_dim=8,
    rng=np.random.default_rng(2),
    dtype=np.float64,
)
with_positions = text(order_ids, order_mask)  # (2, 8)
text.positions.positions.data[...] = 0.0
without_positions = text(order_ids, order_mask)  # (2, 8)
print(f"TextTransformer with positions:    relative distance {gap(with_positions):.2e}")
print(f"TextTransformer, positions zeroed: relative distance {gap(without_positions):.2e}")
assert gap(with_positions) > 1e-4 and gap(without_positions) < 1e-12

# %% [markdown]
# ## What you should take away
#
# * a caption becomes `<start>`, one id per word (`<unk>` if unknown) and `<end>`, padded or
#   truncated to `L`; the mask marks the real tokens;
# * the lookup is a table index; its backward is a scatter-add, because a repeated word must
#   collect every gradient it caused;
# * neither mean pooling nor attention knows the order of the tokens; learned positions
#   added to the word vectors, mixed by attention, give the model word order.

# %%
print("lesson 05 passed: ids, masks and <unk>, scatter-add, and word order needs positions + attention")

# %% [markdown]
# ## Exercises
#
# Solutions, each checked by asserts: `lessons/solutions/05_words_to_vectors.py`.
#
# 1. **Write the backward first: the lookup's scatter-add.** Write a `Module` holding the table as
#    a `Parameter`, whose `forward(ids)` looks the rows up and whose `backward` adds each
#    position's gradient into its token's row (`np.add.at`). Check it with `gradcheck` on the
#    ids of "a photo of a cat." and "a cat sleeping on a red sofa" (ids are integers: only the
#    table is checked), show that the lookup is `onehot(ids) @ table` and its backward
#    `onehotᵀ @ d`, and compare with `Embedding`. How many contributions does the row of "a"
#    collect?
# 2. **Predict, then run: a context of 5.** Encode "a photo of a cat.", "dog bites man" and
#    "a cat" with `context_length=5`. Write down the ids (as tokens), the masks and the decoded
#    captions before running.
# 3. **Derive: what "positions, then mean" adds.** Show that
#    `pool(positions(x), mask) − pool(x, mask)` is the same vector for "dog bites man" and
#    "man bites dog", and say which one: the mean of which rows of the position table? Check it
#    with the lesson's layers.
