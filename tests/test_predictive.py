"""The predictive (bag-of-words) baseline: its gradients, its targets from real captions, its loss by hand,
and zero-shot scoring with it. Every expected number is known without training."""

from __future__ import annotations

import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.evaluation.zeroshot import class_word_targets
from miniclip.layers.softmax import softmax_and_log
from miniclip.model.predictive import (
    BagOfWordsPredictor,
    PredictiveLoss,
    predictive_class_scores,
    word_count_targets,
)
from miniclip.model.tokenizer import END, PAD, START, UNK, Tokenizer
from miniclip.teaching.gradcheck import gradcheck
from miniclip.teaching.gradient_cases import case_rng
from miniclip.teaching.gradient_cases.predictive import CASES, PredictorWithLoss

F64 = np.float64
CORPUS = ["a dog and a cat", "the cat sat", "a photo of a dog", "a picture of the bird"]


@pytest.fixture
def tokenizer() -> Tokenizer:
    return Tokenizer.build(CORPUS)


def _bag(tokenizer: Tokenizer, counts: dict[str, int]) -> np.ndarray:
    """The expected target row: ``counts`` by word, divided by their sum."""
    row = np.zeros(tokenizer.vocab_size)
    for word, count in counts.items():
        row[tokenizer.ids[word]] = count
    return row / row.sum()


# --- gradients -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_match_central_differences(name: str) -> None:
    module, inputs, kwargs = CASES[name](case_rng(name))
    result = gradcheck(module, *inputs, kwargs=kwargs, label=name)
    assert result.ok, result.report()
    assert not [t.name for t in result.tensors if t.zero], result.report()


def test_backward_is_softmax_minus_targets_over_n_times_the_upstream_gradient() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((3, 5))  # (N, V)
    q = rng.uniform(0.1, 1, (3, 5))
    q /= q.sum(axis=1, keepdims=True)
    loss = PredictiveLoss()
    loss(logits, q)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * (p - q) / 3, rtol=1e-12, atol=1e-15)


def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        PredictiveLoss().backward()
    with pytest.raises(RuntimeError, match="before forward"):
        BagOfWordsPredictor(3, 5, rng=np.random.default_rng(0)).backward(np.zeros((2, 5), dtype=np.float32))


# --- the targets ---------------------------------------------------------------------------------------------------


def test_targets_count_the_words_of_real_captions(tokenizer: Tokenizer) -> None:
    captions = ["a dog and a cat", "The cat, the CAT!", "a zebra sat", "bird"]  # "zebra" is not in the vocabulary
    ids, mask = tokenizer.encode_batch(captions, context_length=8)  # (4, 8) with padding
    q = word_count_targets(ids, mask, tokenizer.vocab_size, dtype=F64)
    expected = [
        _bag(tokenizer, {"a": 2, "dog": 1, "and": 1, "cat": 1}),  # a 2/5, the others 1/5
        _bag(tokenizer, {"the": 2, "cat": 2}),  # 1/2 each
        _bag(tokenizer, {"a": 1, "sat": 1}),  # <unk> left out: 1/2 each, not 1/3
        _bag(tokenizer, {"bird": 1}),
    ]
    np.testing.assert_allclose(q, np.stack(expected), rtol=0, atol=1e-15)
    assert q.dtype == F64 and q.shape == (4, tokenizer.vocab_size)
    assert not q[:, [PAD, UNK, START, END]].any()


def test_targets_of_a_truncated_caption_count_only_the_words_kept(tokenizer: Tokenizer) -> None:
    ids, mask = tokenizer.encode_batch(["a dog and a cat"], context_length=4)  # <start> a dog <end>
    q = word_count_targets(ids, mask, tokenizer.vocab_size)
    np.testing.assert_allclose(q[0], _bag(tokenizer, {"a": 1, "dog": 1}), atol=1e-7)
    assert q.dtype == np.float32  # the default


def test_unknown_words_count_when_not_ignored(tokenizer: Tokenizer) -> None:
    ids, mask = tokenizer.encode_batch(["a zebra sat"], context_length=6)
    q = word_count_targets(ids, mask, tokenizer.vocab_size, ignore=(PAD, START, END), dtype=F64)
    expected = np.zeros(tokenizer.vocab_size)
    expected[[tokenizer.ids["a"], UNK, tokenizer.ids["sat"]]] = 1 / 3
    np.testing.assert_allclose(q[0], expected, atol=1e-15)


@pytest.mark.parametrize("caption", ["", "!!! ...", "zebra giraffe"])  # no words; punctuation; unknown words only
def test_a_caption_of_special_tokens_only_raises(tokenizer: Tokenizer, caption: str) -> None:
    ids, mask = tokenizer.encode_batch(["a cat", caption], context_length=5)
    with pytest.raises(ValueError, match=r"captions \[1\] have no word left"):
        word_count_targets(ids, mask, tokenizer.vocab_size)


def test_targets_reject_bad_input(tokenizer: Tokenizer) -> None:
    ids, mask = tokenizer.encode_batch(["a cat"], context_length=5)
    with pytest.raises(ValueError, match="token ids must lie in"):
        word_count_targets(ids, mask, vocab_size=5)  # "cat" has an id past 4
    with pytest.raises(ValueError, match="same shape"):
        word_count_targets(ids, mask[:, :3], tokenizer.vocab_size)
    with pytest.raises(ValueError, match="same shape"):
        word_count_targets(ids[0], mask[0], tokenizer.vocab_size)
    with pytest.raises(ValueError, match="must be integers"):
        word_count_targets(ids.astype(F64), mask, tokenizer.vocab_size)


# --- the loss ------------------------------------------------------------------------------------------------------


def test_loss_equals_a_hand_computation() -> None:
    logits = np.array([[0.0, math.log(2), math.log(5)], [1.0, 1.0, 1.0]])  # softmax rows (1, 2, 5)/8 and 1/3 each
    q = np.array([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]])
    hand = -(0.5 * math.log(1 / 8) + 0.5 * math.log(2 / 8) + 0.25 * math.log(1 / 3) + 0.75 * math.log(1 / 3)) / 2
    assert float(PredictiveLoss()(logits, q)) == pytest.approx(hand, rel=1e-14)


def test_loss_is_at_least_the_entropy_of_the_targets_with_equality_at_softmax_equal_targets() -> None:
    rng = np.random.default_rng(1)
    q = rng.uniform(0.05, 1, (6, 9))
    q /= q.sum(axis=1, keepdims=True)  # (N, V)
    entropy = -(q * np.log(q)).sum(axis=1).mean()
    loss = PredictiveLoss()
    for _ in range(20):
        assert float(loss(rng.standard_normal((6, 9)) * 3, q)) > entropy
    # softmax(log q + any per-row constant) = q
    assert float(loss(np.log(q) + rng.standard_normal((6, 1)), q)) == pytest.approx(entropy, rel=1e-12)


def test_loss_keeps_float32_and_rejects_mismatched_shapes() -> None:
    logits = np.zeros((2, 4), dtype=np.float32)
    q = np.full((2, 4), 0.25, dtype=np.float32)
    loss = PredictiveLoss()
    assert loss(logits, q).dtype == np.float32
    assert loss.backward().dtype == np.float32
    with pytest.raises(ValueError, match="targets must have the logits' shape"):
        loss(logits, q[:, :3])
    with pytest.raises(ValueError, match=r"logits \(N, V\)"):
        loss(logits[0], q[0])


def test_predictor_gives_one_logit_per_token_and_checks_its_input() -> None:
    predictor = BagOfWordsPredictor(3, 11, rng=np.random.default_rng(0), dtype=F64)
    assert predictor(np.ones((4, 3))).shape == (4, 11)
    assert predictor.vocab_size == 11
    assert set(predictor.parameters()) == {"linear.weight", "linear.bias"}
    with pytest.raises(ValueError, match=r"image features \(N, D\)"):
        predictor(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"Linear expects inputs \(\.\.\., 3\)"):
        predictor(np.ones((4, 5)))


# --- zero-shot scoring ---------------------------------------------------------------------------------------------


def test_class_targets_average_the_templates(tokenizer: Tokenizer) -> None:
    templates = ["a photo of a {}.", "the {}"]
    q = class_word_targets(tokenizer, ["cat", "dog"], templates, context_length=8, vocab_size=tokenizer.vocab_size)
    cat = (_bag(tokenizer, {"a": 2, "photo": 1, "of": 1, "cat": 1}) + _bag(tokenizer, {"the": 1, "cat": 1})) / 2
    assert q.shape == (2, tokenizer.vocab_size)
    np.testing.assert_allclose(q[0], cat, atol=1e-7)
    np.testing.assert_allclose(q.sum(axis=1), 1, rtol=1e-6)
    with pytest.raises(ValueError, match="token ids must lie in"):
        class_word_targets(tokenizer, ["cat"], templates, context_length=8, vocab_size=6)


def test_scores_pick_the_class_whose_words_the_image_predicts(tokenizer: Tokenizer) -> None:
    names = ["cat", "dog", "bird"]
    templates = ["a photo of a {}.", "a picture of the {}."]
    v = tokenizer.vocab_size
    q = class_word_targets(tokenizer, names, templates, context_length=10, vocab_size=v, dtype=F64)  # (3, V)
    logits = np.zeros((3, v))  # image n puts most of its probability on class perm[n]'s name
    perm = [1, 2, 0]
    for n, c in enumerate(perm):
        logits[n, tokenizer.ids[names[c]]] = 4.0
    _, log_p = softmax_and_log(logits, axis=1)  # (3, V)
    scores = predictive_class_scores(log_p, q)  # (3, 3)
    np.testing.assert_array_equal(scores.argmax(axis=1), perm)
    # linear in q: the score of the averaged targets is the average of the templates' scores
    per_template = [
        predictive_class_scores(log_p, class_word_targets(tokenizer, names, [t], 10, v, dtype=F64)) for t in templates
    ]
    np.testing.assert_allclose(scores, np.mean(per_template, axis=0), rtol=1e-12)
    with pytest.raises(ValueError, match="over the same V tokens"):
        predictive_class_scores(log_p[:, :-1], q)


def test_the_predictor_head_trains_towards_its_targets(tokenizer: Tokenizer) -> None:
    """Plain gradient descent on the head lowers the loss to near the targets' entropy."""
    ids, mask = tokenizer.encode_batch(["a dog", "the cat", "a bird"], context_length=5)
    q = word_count_targets(ids, mask, tokenizer.vocab_size, dtype=F64)  # (3, V)
    head = PredictorWithLoss(BagOfWordsPredictor(3, tokenizer.vocab_size, rng=np.random.default_rng(0), dtype=F64))
    features = np.eye(3)  # one feature per image
    first = float(head(features, q))
    for _ in range(500):
        head.zero_grad()
        head(features, q)
        head.backward()
        for p in head.parameters().values():
            p.data -= 1.0 * p.grad
    assert float(head(features, q)) < min(first, math.log(2) + 0.05)  # every row's entropy is ln 2


# --- the GPU -------------------------------------------------------------------------------------------------------


def _targets_loss_and_grads(device: str, tokenizer: Tokenizer) -> tuple:
    ids, mask = tokenizer.encode_batch(["a dog and a cat", "the cat sat", "a bird"], context_length=6)
    features = np.random.default_rng(3).standard_normal((3, 4))  # (N, D)
    with backend.using(device):
        q = word_count_targets(backend.to_device(ids), backend.to_device(mask), tokenizer.vocab_size, dtype=F64)
        head = PredictorWithLoss(BagOfWordsPredictor(4, tokenizer.vocab_size, rng=np.random.default_rng(4), dtype=F64))
        loss = head(backend.to_device(features), q)
        dfeatures = head.backward(0.7)
        grads = {name: backend.to_host(p.grad) for name, p in head.parameters().items()}
        classes = class_word_targets(tokenizer, ["cat", "dog"], ["a {}", "the {}."], 6, tokenizer.vocab_size)
        return backend.to_host(q), backend.to_float(loss), backend.to_host(dfeatures), grads, backend.to_host(classes)


@pytest.mark.gpu
def test_gpu_matches_cpu(tokenizer: Tokenizer) -> None:
    cpu = _targets_loss_and_grads("cpu", tokenizer)
    gpu = _targets_loss_and_grads("gpu", tokenizer)
    np.testing.assert_allclose(gpu[0], cpu[0], rtol=1e-12, atol=1e-15)
    assert gpu[1] == pytest.approx(cpu[1], rel=1e-10)
    np.testing.assert_allclose(gpu[2], cpu[2], rtol=1e-10, atol=1e-13)
    for name in cpu[3]:
        np.testing.assert_allclose(gpu[3][name], cpu[3][name], rtol=1e-10, atol=1e-13, err_msg=name)
    np.testing.assert_allclose(gpu[4], cpu[4], rtol=1e-6, atol=1e-7)
    assert backend.get_device() == "cpu"
