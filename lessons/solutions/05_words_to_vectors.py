# %% [markdown]
# # Solutions to lesson 05's exercises
#
# Each exercise of `lessons/05_words_to_vectors.py`, solved in order and checked with an assert.
# Run it from the repository root: `python lessons/solutions/05_words_to_vectors.py`.

# %%
import numpy as np

from miniclip import set_device
from miniclip.layers import Embedding, MeanPool
from miniclip.layers.positional_embedding import PositionalEmbedding
from miniclip.model.tokenizer import END, PAD, START, Tokenizer
from miniclip.module import Module, Parameter
from miniclip.teaching.gradcheck import gradcheck

set_device("cpu")
corpus = [
    "a photo of a cat.",
    "a photo of a dog.",
    "A dog chasing a red ball!",
    "a cat sleeping on a red sofa",
    "dog bites man",
    "man bites dog",
]
tokenizer = Tokenizer.build(corpus)  # lesson 05's vocabulary

# %% [markdown]
# ## Exercise 1 · Write the embedding's backward
#
# The lookup is `x[n, l] = E[ids[n, l]]`, the same as `onehot(ids) @ E`. The backward of a
# product `A @ E` with respect to `E` is `Aᵀ @ dx`, here `onehotᵀ @ dx`: row v of the result adds
# the gradients of every position holding token v. `np.add.at` does that sum without building
# the one-hot; a plain `dE[ids] += dx` would keep only the last of two writes to the same row.


# %%
class MyEmbedding(Module):
    """A lookup table whose backward is a scatter-add, written by hand."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = Parameter(table.copy())

    def forward(self, ids: np.ndarray) -> np.ndarray:
        self.ids = ids
        return self.table.data[ids]  # (N, L, D)

    def backward(self, dx: np.ndarray) -> None:
        np.add.at(self.table.grad, self.ids.reshape(-1), dx.reshape(-1, dx.shape[-1]))
        return None  # ids are integers: nothing to return


ids, _ = tokenizer.encode_batch(["a photo of a cat.", "a cat sleeping on a red sofa"], context_length=8)  # (2, 8)
table = np.random.default_rng(0).standard_normal((tokenizer.vocab_size, 3))  # (V, 3)
result = gradcheck(MyEmbedding(table), ids, label="MyEmbedding")  # ids are ints: only the table is checked
print(result.report())
assert result.ok and len(result.tensors) == 1

dx = np.random.default_rng(1).standard_normal((2, 8, 3))  # an upstream gradient
mine = MyEmbedding(table)
mine(ids)
mine.backward(dx)
onehot = np.eye(tokenizer.vocab_size)[ids.reshape(-1)]  # (N·L, V)
assert np.allclose(onehot @ table, mine(ids).reshape(-1, 3))  # the lookup is a one-hot product
assert np.allclose(mine.table.grad, onehot.T @ dx.reshape(-1, 3))  # its backward is onehotᵀ @ dx
theirs = Embedding(tokenizer.vocab_size, 3, rng=np.random.default_rng(2), dtype=np.float64)
theirs(ids)
theirs.backward(dx)
assert np.allclose(mine.table.grad, theirs.table.grad)
a = tokenizer.ids["a"]
print(f"'a' is used {int((ids == a).sum())} times; its row collects all of them")
assert np.allclose(mine.table.grad[a], dx[ids == a].sum(axis=0))

# %% [markdown]
# ## Exercise 2 · Predict, then run: a context of 5
#
# With `L = 5`, "a photo of a cat." keeps `<start>`, its first `L − 2 = 3` words and `<end>`:
# ids `[2, a, photo, of, 3]`, mask all ones, decoded "a photo of". "dog bites man" fits exactly
# (3 words + 2 specials) and gets no padding; "a cat" gets one `<pad>`.

# %%
ids5, mask5 = tokenizer.encode_batch(["a photo of a cat.", "dog bites man", "a cat"], context_length=5)
print(ids5, mask5, [tokenizer.decode(row) for row in ids5], sep="\n")
t = tokenizer.ids
assert ids5[0].tolist() == [START, t["a"], t["photo"], t["of"], END] and mask5[0].sum() == 5
assert tokenizer.decode(ids5[0]) == "a photo of"
assert mask5[1].sum() == 5 and ids5[2].tolist() == [START, t["a"], t["cat"], END, PAD] and mask5[2].sum() == 4

# %% [markdown]
# ## Exercise 3 · Derive: what "positions, then mean" adds
#
# Over the real positions, `mean(x + p) = mean(x) + mean(p)`, and `mean(p)` over the first 5
# positions (`<start>`, three words, `<end>`) is the same vector for "dog bites man" and
# "man bites dog". So `pool(positions(x)) − pool(x)` is one vector, the mean of the first 5
# rows of the position table, for both captions: the positions shift the two captions by the
# same amount and cannot separate them.

# %%
order_ids, order_mask = tokenizer.encode_batch(["dog bites man", "man bites dog"], context_length=6)  # (2, 6)
rng = np.random.default_rng(1)
embed = Embedding(tokenizer.vocab_size, 8, rng=rng, dtype=np.float64)
positions = PositionalEmbedding(6, 8, rng=rng, dtype=np.float64)
pool = MeanPool()
x = embed(order_ids)  # (2, 6, 8)
shift = pool(positions(x), order_mask) - pool(x, order_mask)  # (2, 8)
assert np.allclose(shift[0], shift[1])
assert np.allclose(shift[0], positions.positions.data[:5].mean(axis=0))

print("lesson 05 solutions: all checked")
