"""The predictive (bag-of-words) baseline against PyTorch autograd, in float64, with the same weights.

The PyTorch side is ``F.linear`` and ``F.cross_entropy`` with probability targets (the mean over the
batch of −Σ_v q_v log softmax(z)_v); its gradients come from autograd. Our ``Linear`` stores W as
(D_in, D_out), PyTorch as (D_out, D_in), so the weight is transposed on the way across and its
gradient on the way back. The targets are checked too, against a one-hot count written with torch.
"""

from __future__ import annotations

import numpy as np
import pytest

from miniclip.model.predictive import BagOfWordsPredictor, word_count_targets
from miniclip.model.tokenizer import END, PAD, START, UNK
from miniclip.teaching.gradient_cases.predictive import PredictorWithLoss

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch

F64 = np.float64
TOL = {"rtol": 1e-10, "atol": 1e-12}


@pytest.mark.parametrize("n,d,v", [(1, 3, 5), (4, 6, 11), (16, 8, 40)])
def test_loss_and_gradients_match_autograd(n: int, d: int, v: int) -> None:
    rng = np.random.default_rng(n * 100 + v)
    head = PredictorWithLoss(BagOfWordsPredictor(d, v, rng=rng, dtype=F64))
    head.predictor.linear.bias.data[...] = rng.normal(0, 0.5, v)  # not 0
    features = rng.standard_normal((n, d)) * 2  # (N, D)
    q = rng.uniform(0, 1, (n, v)) * (rng.uniform(size=(n, v)) < 0.4)  # sparse, like a bag of words
    q[:, 0] += 0.1  # no empty row
    q /= q.sum(axis=1, keepdims=True)  # (N, V)
    upstream = rng.standard_normal()

    loss = head(features, q)
    dfeatures = head.backward(upstream)

    w = torch.tensor(head.predictor.linear.weight.data.T.copy(), requires_grad=True)  # (V, D)
    b = torch.tensor(head.predictor.linear.bias.data.copy(), requires_grad=True)  # (V,)
    f = torch.tensor(features, requires_grad=True)
    theirs = F.cross_entropy(F.linear(f, w, b), torch.tensor(q))
    (theirs * upstream).backward()

    assert float(loss) == pytest.approx(theirs.item(), rel=1e-12)
    np.testing.assert_allclose(dfeatures, f.grad.numpy(), **TOL)
    np.testing.assert_allclose(head.predictor.linear.weight.grad, w.grad.numpy().T, **TOL)
    np.testing.assert_allclose(head.predictor.linear.bias.grad, b.grad.numpy(), **TOL)


def test_targets_match_a_one_hot_count_in_torch() -> None:
    rng = np.random.default_rng(7)
    n, length, v = 6, 9, 12
    lengths = rng.integers(3, length + 1, n)  # (N,) real tokens, start and end included
    ids = rng.integers(0, v, (n, length))  # specials (0-3) among the words too: those must be left out
    ids[:, 1] = 6  # a word at position 1, real in every caption (length >= 3): no caption is left empty
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.float32)  # (N, L)
    ids[mask == 0] = PAD
    ids[:, 0] = START
    ids[np.arange(n), lengths - 1] = END

    ours = word_count_targets(ids, mask, v, dtype=F64)

    t_ids = torch.tensor(ids)
    keep = torch.tensor(mask).bool()
    for token in (PAD, UNK, START, END):
        keep &= t_ids != token
    counts = (F.one_hot(t_ids, v).to(torch.float64) * keep[..., None]).sum(dim=1)  # (N, V)
    theirs = counts / counts.sum(dim=1, keepdim=True)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-15)
