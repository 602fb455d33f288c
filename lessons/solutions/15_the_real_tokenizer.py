# %% [markdown]
# # Solutions to the exercises of lesson 15 — The real tokenizer
#
# Each exercise of `lessons/15_the_real_tokenizer.py`, solved and checked with the byte-pair
# tokenizer the lesson learns on CIFAR-10's 180 captions.

# %%
import numpy as np

from miniclip.data.captions import CLIP_CIFAR10_TEMPLATES
from miniclip.layers.embedding import Embedding
from miniclip.model.bpe import BPETokenizer, byte_chars
from miniclip.model.bpe_training import learn_merges
from miniclip.module import Module, Parameter
from miniclip.teaching.gradcheck import gradcheck

np.set_printoptions(precision=4, suppress=True, linewidth=120)
classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
captions = [template.format(name) for name in classes for template in CLIP_CIFAR10_TEMPLATES]
merges = learn_merges(captions, 1000)  # the lesson's 75
tokenizer = BPETokenizer.from_merges(merges)

# %% [markdown]
# ## Exercise 1 — the lookup's backward, with repeated tokens
#
# "a photo of a photo." is six tokens, and two of them come twice: `a</w>` at positions 0 and
# 3, `photo</w>` at 1 and 4. The lookup copies row `ids[k]` of the table to position k, so the
# gradient of that row is the *sum* of the gradients of every position that copied it:
#
# $$\frac{\partial L}{\partial T_v} = \sum_{k : \mathrm{ids}_k = v} \frac{\partial L}{\partial y_k}$$
#
# a scatter-add (`np.add.at`). The tempting `grad[ids] += dy` is wrong: NumPy's fancy
# assignment writes each repeated row once, so the last copy's gradient overwrites the others.


# %%
class Lookup(Module):
    """Rows of a table (V, D) picked by integer ids (L,): the embedding lookup, written out."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = Parameter(table.copy())

    def forward(self, ids: np.ndarray) -> np.ndarray:
        self.ids = ids
        return self.table.data[ids]  # (L, D)

    def backward(self, grad: np.ndarray) -> None:
        np.add.at(self.table.grad, self.ids, grad)  # every position adds onto its row
        return None  # ids are integers: no gradient


ids = np.array(tokenizer.encode("a photo of a photo."))  # (6,)
print("ids:", ids, [tokenizer.tokens[i] for i in ids])
assert ids[0] == ids[3] and ids[1] == ids[4]
table = np.random.default_rng(0).standard_normal((tokenizer.vocab_size, 4))  # (589, 4)
lookup = Lookup(table)
result = gradcheck(lookup, ids, label="lookup, repeated tokens")
print(result.report())
assert result.ok

dy = np.random.default_rng(1).standard_normal((len(ids), 4))  # (6, 4)
lookup.zero_grad()
lookup(ids)
lookup.backward(dy)
wrong = np.zeros_like(table)
wrong[ids] += dy  # fancy assignment: one write per distinct row
print("row of 'photo</w>': scatter-add", lookup.table.grad[ids[1]], " fancy +=", wrong[ids[1]])
assert np.allclose(lookup.table.grad[ids[1]], dy[1] + dy[4]) and np.allclose(wrong[ids[1]], dy[4])
package = Embedding(tokenizer.vocab_size, 4, rng=np.random.default_rng(0), dtype=np.float64)
package.table.data[...] = table
package(ids)
package.backward(dy)
assert np.allclose(package.table.grad, lookup.table.grad)  # the package's Embedding does the same

# %% [markdown]
# ## Exercise 2 — only four merges
#
# Prediction from the lesson's step table: merges 0, 1 and 2 turn `p h o t o</w>` into
# `p hoto</w>`; merge 3 is `(o, f</w>)`, which does not touch it; merge 4 would join the last
# pair. So with four merges "photo" is two tokens, `p` and `hoto</w>`, and the vocabulary is
# 256 + 256 + 4 + 2 = 518 tokens.

# %%
four = BPETokenizer.from_merges(merges[:4])
pieces = [four.tokens[i] for i in four.encode("photo")]
print(f"4 merges: vocab_size {four.vocab_size}, 'photo' → {pieces}")
assert four.vocab_size == 518 and pieces == ["p", "hoto</w>"]

# %% [markdown]
# ## Exercise 3 — bytes of "naïve café"
#
# By hand: n, a, v, e, c, a, f and the space are ASCII, one byte each (8); ï (U+00EF) and é
# (U+00E9) are two bytes each in UTF-8 (4): 12 bytes for 10 characters. The space is not part
# of a piece (the pattern only cuts at it), so the two pieces hold 11 bytes. ï is the bytes
# 0xC3 0xAF, both printable, so `byte_chars` writes it "Ã¯".

# %%
text = "naïve café"
print(f"{text!r}: {len(text)} characters, {len(text.encode())} bytes; ï → {list('ï'.encode())} → {byte_chars('ï')!r}")
assert len(text) == 10 and len(text.encode()) == 12
assert list("ï".encode()) == [0xC3, 0xAF] and byte_chars("ï") == "Ã¯"
assert sum(len(byte_chars(piece)) for piece in ("naïve", "café")) == 11
print("lesson 15 solutions: all checks passed")
